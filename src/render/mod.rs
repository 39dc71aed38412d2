//! Rendering digests: Handlebars templates in strict mode, an HTML part with
//! escaping and inlined CSS, a text part without escaping. What all recipients
//! share is rendered once per edition ([`TemplateSet::render_edition`]); each
//! recipient's values are merged in afterwards ([`merge`]). Rendering does no I/O.

pub mod data;
pub mod merge;
pub mod welcome;

use std::path::{Path, PathBuf};

use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason};

use crate::config::{DigestJob, JobSettings};
pub use data::EditionData;
use merge::{is_known_field, marker};

/// A problem with a template, with the file it is in.
#[derive(Debug, Clone)]
pub struct TemplateProblem {
    pub file: Option<String>,
    pub key: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
#[error("rendering {part} of job {job:?} failed: {message}")]
pub struct RenderError {
    pub job: String,
    pub part: Part,
    pub message: String,
}

/// The part of an edition a template renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The `subject` setting of the job (a template string, not a file).
    Subject,
    Text,
    Html,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        })
    }
}

/// A Handlebars rendering error in an operator's words: where in the
/// template, and what (a field the template is not given, by its path).
fn describe(e: &handlebars::RenderError) -> String {
    let what = match e.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
            format!("`{path}` is not a field this template is given")
        }
        handlebars::RenderErrorReason::MissingVariable(None) => "a field this template is not given".to_string(),
        other => other.to_string(),
    };
    match (e.line_no, e.column_no) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: {what}"),
        (Some(line), None) => format!("line {line}: {what}"),
        _ => what,
    }
}

/// The compiled templates.
#[derive(Debug)]
pub struct TemplateSet {
    dir: PathBuf,
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

/// The parts of an edition all recipients share, with merge-field markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedParts {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// `{{recipient "field" default="..."}}`: leaves a merge marker.
fn recipient_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let field = h
        .param(0)
        .and_then(|p| p.value().as_str())
        .ok_or_else(|| RenderErrorReason::Other("recipient needs a field name, e.g. {{recipient \"name\"}}".into()))?;
    if !is_known_field(field) {
        return Err(RenderErrorReason::Other(format!(
            "recipient field {field:?} is unknown (use name, email, unsubscribe_url, preferences_url or attributes.<key>)"
        ))
        .into());
    }
    let default = h.hash_get("default").and_then(|v| v.value().as_str()).unwrap_or("");
    out.write(&marker(field, default))?;
    Ok(())
}

fn registry(escape: bool) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    if !escape {
        hb.register_escape_fn(handlebars::no_escape);
    }
    hb.register_helper("recipient", Box::new(recipient_helper));
    hb
}

/// Template files under `dir` ending in `ext`, named by their path without it.
fn template_files(dir: &Path, ext: &str) -> Vec<(String, PathBuf)> {
    fn walk(root: &Path, dir: &Path, ext: &str, out: &mut Vec<(String, PathBuf)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, ext, out);
            } else if let Some(rel) = path.strip_prefix(root).ok().and_then(|r| r.to_str())
                && let Some(name) = rel.strip_suffix(ext)
            {
                out.push((name.replace('\\', "/"), path.clone()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, ext, &mut out);
    out.sort();
    out
}

impl TemplateSet {
    /// The folder the templates were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compiles every template under `dir` and test-renders each digest
    /// job's templates with sample data, reporting every problem found.
    pub fn load(dir: &Path, jobs: &[JobSettings]) -> Result<TemplateSet, Vec<TemplateProblem>> {
        let mut problems = Vec::new();
        let mut html = registry(true);
        let mut text = registry(false);
        for (hb, ext) in [(&mut html, ".html.hbs"), (&mut text, ".txt.hbs")] {
            for (name, path) in template_files(dir, ext) {
                if let Err(e) = hb.register_template_file(&name, &path) {
                    problems.push(TemplateProblem {
                        file: Some(path.display().to_string()),
                        key: String::new(),
                        message: e.to_string(),
                    });
                }
            }
        }
        let digests = || jobs.iter().filter_map(|j| j.digest().map(|d| (j, d)));
        for (job, d) in digests() {
            let key = format!("jobs.{:?}.subject", job.name);
            if let Err(e) = text.register_template_string(&subject_name(&job.name), &d.subject) {
                problems.push(TemplateProblem {
                    file: None,
                    key,
                    message: format!("the subject template does not compile: {e}"),
                });
            }
        }
        let set = TemplateSet {
            dir: dir.to_path_buf(),
            html,
            text,
        };
        if problems.is_empty() {
            for (job, d) in digests() {
                problems.extend(set.try_job(job, d));
            }
            problems.extend(set.try_pages());
            problems.extend(set.try_welcome());
        }
        // Jobs sharing a template would each report its problem: once is enough.
        let mut seen = std::collections::HashSet::new();
        problems.retain(|p| seen.insert((p.file.clone(), p.key.clone(), p.message.clone())));
        if problems.is_empty() { Ok(set) } else { Err(problems) }
    }

    /// Checks a job's templates exist and render sample editions (one full, one sparse).
    fn try_job(&self, job: &JobSettings, d: &DigestJob) -> Vec<TemplateProblem> {
        let mut problems = Vec::new();
        for (hb, ext) in [(&self.html, ".html.hbs"), (&self.text, ".txt.hbs")] {
            if !hb.has_template(&d.template) {
                problems.push(TemplateProblem {
                    file: None,
                    key: format!("jobs.{:?}.template", job.name),
                    message: format!("{} not found", self.dir.join(format!("{}{ext}", d.template)).display()),
                });
            }
        }
        if !problems.is_empty() {
            return problems;
        }
        for data in EditionData::samples(job, d) {
            if let Err(e) = self.render_edition(job, d, &data) {
                let template = |ext: &str| Some(self.dir.join(format!("{}{ext}", d.template)).display().to_string());
                let (file, key) = match e.part {
                    Part::Subject => (None, format!("jobs.{:?}.subject", job.name)),
                    Part::Html => (template(".html.hbs"), String::new()),
                    Part::Text => (template(".txt.hbs"), String::new()),
                };
                problems.push(TemplateProblem {
                    file,
                    key,
                    message: format!("does not render: {}", e.message),
                });
                break;
            }
        }
        problems
    }

    /// Checks the web pages and mails exist and render with the data the web interface gives them.
    fn try_pages(&self) -> Vec<TemplateProblem> {
        let site = serde_json::json!({ "name": "Sample", "postal_address": "1 Sample Street" });
        let cadences = serde_json::json!([
            { "value": "daily", "label": "Daily", "checked": true },
            { "value": "weekly", "label": "Weekly", "checked": false },
        ]);
        let with_site = |mut extra: serde_json::Value| {
            extra["site"] = site.clone();
            extra
        };
        let pages = [
            (
                "pages/unsubscribe",
                with_site(serde_json::json!({
                    "email": "a@example.org", "list_title": "L", "action": "/u?token=t", "preferences_url": "/p?token=t"
                })),
            ),
            (
                "pages/unsubscribed",
                with_site(serde_json::json!({ "email": "a@example.org", "list_title": "L" })),
            ),
            ("pages/invalid-link", with_site(serde_json::json!({}))),
            (
                "pages/message",
                with_site(serde_json::json!({ "heading": "H", "text": "T" })),
            ),
            (
                "pages/subscribe",
                with_site(serde_json::json!({
                    "list_title": "L", "action": "/subscribe/l", "csrf": "c", "email": "", "name": "",
                    "consent": "I agree.", "choose_cadence": true, "cadences": cadences, "error": "E"
                })),
            ),
            (
                "pages/check-inbox",
                with_site(serde_json::json!({ "email": "a@example.org", "list_title": "L" })),
            ),
            (
                "pages/confirm",
                with_site(serde_json::json!({
                    "email": "a@example.org", "list_title": "L", "action": "/confirm?token=t", "csrf": "c"
                })),
            ),
            (
                "pages/confirmed",
                with_site(serde_json::json!({
                    "email": "a@example.org", "list_title": "L", "preferences_url": "/p?token=t"
                })),
            ),
            (
                "pages/preferences",
                with_site(serde_json::json!({
                    "email": "a@example.org", "name": "A", "action": "/p?token=t", "csrf": "c", "saved": true,
                    "lists": [{ "name": "l", "title": "L", "subscribed": true, "choose_cadence": true, "cadences": cadences }]
                })),
            ),
            (
                "pages/archive",
                with_site(serde_json::json!({
                    "list_title": "L", "feed_url": "/archive/l/feed.atom", "subscribe_url": "/subscribe/l",
                    "editions": [{ "subject": "S", "date": "1 January 2026", "url": "/archive/l/0123", "count": 3 }],
                    "newer_url": "/archive/l?page=1", "older_url": "/archive/l?page=3"
                })),
            ),
        ];
        let notice = with_site(serde_json::json!({
            "email": "a@example.org", "list_title": "L", "confirm_url": "https://example.org/confirm?token=t"
        }));
        let mut problems: Vec<TemplateProblem> = pages
            .into_iter()
            .filter_map(|(name, data)| {
                let file = Some(self.dir.join(format!("{name}.html.hbs")).display().to_string());
                if !self.html.has_template(name) {
                    return Some(TemplateProblem {
                        file,
                        key: String::new(),
                        message: "not found (the web interface needs it)".into(),
                    });
                }
                self.render_page(name, &data).err().map(|e| TemplateProblem {
                    file,
                    key: String::new(),
                    message: format!("does not render: {}", describe(&e)),
                })
            })
            .collect();
        for (hb, ext) in [(&self.html, ".html.hbs"), (&self.text, ".txt.hbs")] {
            let file = Some(self.dir.join(format!("emails/confirm{ext}")).display().to_string());
            if !hb.has_template("emails/confirm") {
                problems.push(TemplateProblem {
                    file,
                    key: String::new(),
                    message: "not found (sign-up confirmation mails need it)".into(),
                });
            } else if let Err(e) = hb.render("emails/confirm", &notice) {
                problems.push(TemplateProblem {
                    file,
                    key: String::new(),
                    message: format!("does not render: {}", describe(&e)),
                });
            }
        }
        problems
    }

    /// Renders a one-off mail from `emails/<name>.html.hbs` and `.txt.hbs`: (HTML, text).
    pub fn render_notice(
        &self,
        name: &str,
        data: &serde_json::Value,
    ) -> Result<(String, String), handlebars::RenderError> {
        Ok((self.html.render(name, data)?, self.text.render(name, data)?))
    }

    /// Renders a web page from `templates/pages/` (HTML-escaped, strict).
    pub fn render_page(&self, name: &str, data: &serde_json::Value) -> Result<String, handlebars::RenderError> {
        self.html.render(name, data)
    }

    /// Renders what all recipients of an edition share.
    pub fn render_edition(
        &self,
        job: &JobSettings,
        d: &DigestJob,
        data: &EditionData,
    ) -> Result<SharedParts, RenderError> {
        let fail = |part: Part| {
            move |e: handlebars::RenderError| RenderError {
                job: job.name.clone(),
                part,
                message: describe(&e),
            }
        };
        let subject = self
            .text
            .render(&subject_name(&job.name), data)
            .map_err(fail(Part::Subject))?;
        let text = self.text.render(&d.template, data).map_err(fail(Part::Text))?;
        let html = self.html.render(&d.template, data).map_err(fail(Part::Html))?;
        let html = css_inline::CSSInliner::options()
            .load_remote_stylesheets(false)
            .keep_style_tags(true)
            .build()
            .inline(&html)
            .map_err(|e| RenderError {
                job: job.name.clone(),
                part: Part::Html,
                message: format!("inlining CSS: {e}"),
            })?;
        Ok(SharedParts {
            subject: crate::clean::one_line(&subject),
            html,
            text,
        })
    }
}

fn subject_name(job: &str) -> String {
    format!("subject:{job}")
}
