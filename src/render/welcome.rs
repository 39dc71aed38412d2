//! The welcome mail a subscriber gets once their sign-up is confirmed: the
//! data its templates see, which templates a list uses, and its parts.
//!
//! A list's welcome mail is `emails/welcome-LIST` (`.html.hbs` and
//! `.txt.hbs`), else `emails/welcome`; with neither, the list sends none.
//! The text template may start with a `Subject: ...` line (a template too);
//! without one the subject is "Welcome to" and the list's title.

use serde::Serialize;

use super::data::{ListData, SiteData, safe};
use super::{SharedParts, TemplateProblem, TemplateSet};
use crate::config::{ListSettings, Site};

/// The name every welcome template starts with.
const WELCOME: &str = "emails/welcome";

/// What the welcome templates see. Per-subscriber values (name, address,
/// unsubscribe and preferences links) come through `{{recipient "..."}}`.
#[derive(Debug, Clone, Serialize)]
pub struct WelcomeData {
    pub site: SiteData,
    pub list: ListData,
    /// The list's public archive, when it has one.
    pub archive_url: Option<String>,
    /// The list's latest edition in its archive, when there is one.
    pub latest: Option<LatestEdition>,
}

/// An archived edition a welcome mail can point to.
#[derive(Debug, Clone, Serialize)]
pub struct LatestEdition {
    pub subject: String,
    pub url: String,
    pub date: String,
    pub count: i64,
}

impl WelcomeData {
    pub fn new(site: &Site, list: &ListSettings, archive_url: Option<String>, latest: Option<LatestEdition>) -> Self {
        WelcomeData {
            site: SiteData::of(site),
            list: ListData::of(list),
            archive_url,
            latest: latest.map(|l| LatestEdition {
                subject: safe(&l.subject),
                ..l
            }),
        }
    }

    /// Sample data a welcome template must render: a list without an
    /// archive, and one with an archive and an edition in it.
    fn samples() -> [WelcomeData; 2] {
        let site = SiteData {
            name: "Sample".into(),
            base_url: "https://example.org/".into(),
            postal_address: "1 Sample Street".into(),
        };
        let list = ListData {
            name: "sample".into(),
            title: "Sample list".into(),
        };
        [
            WelcomeData {
                site: site.clone(),
                list: list.clone(),
                archive_url: None,
                latest: None,
            },
            WelcomeData {
                site,
                list,
                archive_url: Some("https://example.org/archive/sample".into()),
                latest: Some(LatestEdition {
                    subject: "Sample edition".into(),
                    url: "https://example.org/archive/sample/0123456789abcdef".into(),
                    date: "1 January 2026".into(),
                    count: 3,
                }),
            },
        ]
    }
}

impl TemplateSet {
    /// The welcome template `list` uses, if any.
    pub fn welcome_template(&self, list: &str) -> Option<String> {
        [format!("{WELCOME}-{list}"), WELCOME.to_string()]
            .into_iter()
            .find(|name| self.html.has_template(name) || self.text.has_template(name))
    }

    /// Renders the welcome mail `name` for `data`: the parts every
    /// recipient shares, with merge markers where each one's values go.
    pub fn render_welcome(&self, name: &str, data: &WelcomeData) -> Result<SharedParts, handlebars::RenderError> {
        let html = self.html.render(name, data)?;
        let text = self.text.render(name, data)?;
        let (subject, text) = match text.strip_prefix("Subject:") {
            Some(rest) => {
                let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
                (
                    crate::clean::one_line(line),
                    body.trim_start_matches(['\r', '\n']).to_string(),
                )
            }
            None => (String::new(), text),
        };
        let subject = if subject.is_empty() {
            format!("Welcome to {}", data.list.title)
        } else {
            subject
        };
        Ok(SharedParts { subject, html, text })
    }

    /// Every welcome template present must have both parts and render the
    /// sample data.
    pub(super) fn try_welcome(&self) -> Vec<TemplateProblem> {
        let mut names: Vec<&str> = self
            .html
            .get_templates()
            .keys()
            .chain(self.text.get_templates().keys())
            .map(String::as_str)
            .filter(|name| *name == WELCOME || name.starts_with(&format!("{WELCOME}-")))
            .collect();
        names.sort_unstable();
        names.dedup();
        let problem = |name: &str, ext: &str, message: String| TemplateProblem {
            file: Some(self.dir.join(format!("{name}{ext}")).display().to_string()),
            key: String::new(),
            message,
        };
        let mut problems = Vec::new();
        for name in names {
            let missing: Vec<&str> = [(&self.html, ".html.hbs"), (&self.text, ".txt.hbs")]
                .into_iter()
                .filter(|(hb, _)| !hb.has_template(name))
                .map(|(_, ext)| ext)
                .collect();
            if let Some(ext) = missing.first() {
                problems.push(problem(
                    name,
                    ext,
                    "not found (a welcome mail needs both an HTML and a text part)".to_string(),
                ));
                continue;
            }
            for data in WelcomeData::samples() {
                let failed = match self.html.render(name, &data) {
                    Err(e) => Some((".html.hbs", e)),
                    Ok(_) => self.text.render(name, &data).err().map(|e| (".txt.hbs", e)),
                };
                if let Some((ext, e)) = failed {
                    problems.push(problem(name, ext, format!("does not render: {}", super::describe(&e))));
                    break;
                }
            }
        }
        problems
    }
}
