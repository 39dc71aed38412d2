//! Parses one article file: `.txt` (title line, blank line, paragraphs), `.md`
//! with TOML (`+++`) or YAML (`---`) front matter, and `.json`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::article::{Body, Draft};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty")]
    Empty,
    #[error("no title: the first line must be the title")]
    NoTitle,
    #[error("the front matter is not closed with {0}")]
    UnclosedFrontMatter(&'static str),
    #[error("bad front matter: {0}")]
    FrontMatter(String),
    #[error("bad JSON: {0}")]
    Json(String),
    #[error("bad `published` value {0:?}: use RFC 3339 (2026-03-01T07:00:00Z) or a date (2026-03-01)")]
    Published(String),
    #[error("not an article file (use .txt, .md or .json)")]
    UnknownExtension,
}

/// The fields front matter (and the JSON format) may give.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    id: Option<String>,
    title: Option<String>,
    url: Option<String>,
    published: Option<String>,
    author: Option<String>,
    #[serde(default)]
    tags: Tags,
    image: Option<String>,
    summary: Option<String>,
    /// JSON only: the body as plain text paragraphs.
    body: Option<String>,
    /// JSON only: the body as HTML.
    content_html: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum Tags {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Tags {
    fn into_vec(self) -> Vec<String> {
        match self {
            Tags::None => Vec::new(),
            Tags::One(s) => s
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            Tags::Many(v) => v,
        }
    }
}

/// Parses `text`, the content of a file with extension `ext`; `modified` is
/// the publication time when the file does not give one.
pub fn parse(ext: &str, text: &str, modified: DateTime<Utc>) -> Result<Draft, FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(FileError::Empty);
    }
    match ext {
        "txt" => parse_text(text, modified),
        "md" | "markdown" => parse_markdown(text, modified),
        "json" => {
            let meta: Meta = serde_json::from_str(text).map_err(|e| FileError::Json(e.to_string()))?;
            let body = match (&meta.content_html, &meta.body) {
                (Some(html), _) => Body::Html(html.clone()),
                (None, Some(body)) => Body::Text(body.clone()),
                (None, None) => Body::Text(String::new()),
            };
            let title = meta.title.clone().ok_or(FileError::NoTitle)?;
            draft(meta, title, body, modified)
        }
        _ => Err(FileError::UnknownExtension),
    }
}

fn parse_text(text: &str, modified: DateTime<Utc>) -> Result<Draft, FileError> {
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let title = lines.next().ok_or(FileError::NoTitle)?.trim().to_string();
    let rest: Vec<&str> = lines.collect();
    draft(Meta::default(), title, Body::Text(rest.join("\n")), modified)
}

fn parse_markdown(text: &str, modified: DateTime<Utc>) -> Result<Draft, FileError> {
    let (meta, body) = split_front_matter(text)?;
    let mut body_lines = body.lines().skip_while(|l| l.trim().is_empty()).peekable();
    let title = match meta.title.clone() {
        Some(t) => t,
        None => {
            let first = body_lines.next().ok_or(FileError::NoTitle)?;
            first.trim_start_matches('#').trim().to_string()
        }
    };
    let markdown: Vec<&str> = body_lines.collect();
    let markdown = markdown.join("\n");
    let mut html = String::new();
    let parser = pulldown_cmark::Parser::new(&markdown)
        .filter(|e| !matches!(e, pulldown_cmark::Event::Html(_) | pulldown_cmark::Event::InlineHtml(_)));
    pulldown_cmark::html::push_html(&mut html, parser);
    draft(meta, title, Body::Html(html), modified)
}

fn split_front_matter(text: &str) -> Result<(Meta, &str), FileError> {
    let first = text.lines().next().unwrap_or("").trim_end();
    let fence = match first {
        "+++" => "+++",
        "---" => "---",
        _ => return Ok((Meta::default(), text)),
    };
    let after = &text[text.find('\n').map_or(text.len(), |i| i + 1)..];
    let mut offset = 0;
    for line in after.split_inclusive('\n') {
        if line.trim_end() == fence {
            let front = &after[..offset];
            let body = &after[offset + line.len()..];
            let value: serde_json::Value = if fence == "+++" {
                let table: toml::Table = toml::from_str(front).map_err(|e| FileError::FrontMatter(e.to_string()))?;
                toml_to_json(toml::Value::Table(table))
            } else if front.trim().is_empty() {
                serde_json::Value::Object(Default::default())
            } else {
                let yaml: serde_yaml::Value =
                    serde_yaml::from_str(front).map_err(|e| FileError::FrontMatter(e.to_string()))?;
                serde_json::to_value(yaml).map_err(|e| FileError::FrontMatter(e.to_string()))?
            };
            let meta = serde_json::from_value(value).map_err(|e| FileError::FrontMatter(e.to_string()))?;
            return Ok((meta, body));
        }
        offset += line.len();
    }
    Err(FileError::UnclosedFrontMatter(fence))
}

fn toml_to_json(value: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => J::from(f),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect()),
    }
}

fn draft(meta: Meta, title: String, body: Body, modified: DateTime<Utc>) -> Result<Draft, FileError> {
    if title.trim().is_empty() {
        return Err(FileError::NoTitle);
    }
    let published = match &meta.published {
        Some(p) => parse_published(p).ok_or_else(|| FileError::Published(p.clone()))?,
        None => modified,
    };
    Ok(Draft {
        id: meta.id,
        url: meta.url,
        title,
        author: meta.author,
        tags: meta.tags.into_vec(),
        image: meta.image,
        summary: meta.summary,
        body,
        published,
        dated: meta.published.is_some(),
    })
}

/// RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC) or a bare date (midnight UTC).
pub fn parse_published(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(value, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn text_file_title_and_paragraphs() {
        let d = parse("txt", "\n  Title here \n\nFirst para\nwraps.\n\nSecond.\n", t0()).unwrap();
        assert_eq!(d.title, "Title here");
        assert_eq!(d.published, t0());
        let Body::Text(body) = d.body else {
            panic!("text body expected")
        };
        assert_eq!(crate::clean::paragraphs(&body), vec!["First para wraps.", "Second."]);
    }

    #[test]
    fn toml_and_yaml_front_matter() {
        let toml = "+++\ntitle = \"T\"\npublished = 2026-03-01T07:00:00Z\ntags = [\"a\", \"b\"]\n+++\nBody text.\n";
        let d = parse("md", toml, t0()).unwrap();
        assert_eq!((d.title.as_str(), d.tags.len()), ("T", 2));
        assert_eq!(d.published.to_rfc3339(), "2026-03-01T07:00:00+00:00");

        let yaml =
            "---\nurl: https://example.org/x\ntags: one, two\npublished: 2026-03-01\n---\n# Heading title\n\nBody.\n";
        let d = parse("md", yaml, t0()).unwrap();
        assert_eq!(d.title, "Heading title");
        assert_eq!(d.tags, vec!["one", "two"]);
        assert_eq!(d.url.as_deref(), Some("https://example.org/x"));
    }

    #[test]
    fn errors_are_specific() {
        assert!(matches!(
            parse("md", "---\ntitle: x\n", t0()),
            Err(FileError::UnclosedFrontMatter("---"))
        ));
        assert!(matches!(
            parse("json", "{\"title\": \"x\", \"colour\": 1}", t0()),
            Err(FileError::Json(_))
        ));
        assert!(matches!(
            parse("md", "+++\npublished = \"soon\"\n+++\n# T\n", t0()),
            Err(FileError::Published(_))
        ));
        assert!(matches!(parse("txt", "  \n\n", t0()), Err(FileError::Empty)));
    }
}
