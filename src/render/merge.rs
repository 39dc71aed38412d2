//! Merge fields: per-recipient values in a once-per-edition render.
//!
//! Templates write `{{recipient "name" default="reader"}}`; the shared render
//! leaves a marker there, and [`MergeTemplate::fill`] puts each recipient's
//! value in, escaped for the part it goes into. Substitution costs one pass
//! over the rendered text, however many articles the edition holds.

use std::borrow::Cow;

use crate::clean::escape_html;

const OPEN: char = '\u{E000}';
const SEP: char = '\u{E001}';
const CLOSE: char = '\u{E002}';

/// The fields a template may ask for.
pub const FIELDS: &[&str] = &["name", "email", "unsubscribe_url", "preferences_url"];

/// Whether `field` is a merge field: one of [`FIELDS`] or `attributes.<key>`.
pub fn is_known_field(field: &str) -> bool {
    FIELDS.contains(&field) || field.strip_prefix("attributes.").is_some_and(|k| !k.is_empty())
}

/// The marker the shared render leaves for `field`.
pub fn marker(field: &str, default: &str) -> String {
    format!("{OPEN}{field}{SEP}{}{CLOSE}", strip_markers(default))
}

/// Removes marker characters from data, so no article or subscriber value can
/// smuggle in a merge field.
pub fn strip_markers(value: &str) -> Cow<'_, str> {
    if value.contains([OPEN, SEP, CLOSE]) {
        Cow::Owned(value.chars().filter(|c| !matches!(*c, OPEN | SEP | CLOSE)).collect())
    } else {
        Cow::Borrowed(value)
    }
}

/// The values of one recipient.
pub trait Recipient {
    /// The value of `field`, or `None` to use the template's default.
    fn field(&self, field: &str) -> Option<Cow<'_, str>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Field { name: String, default: String },
}

/// A rendered part split at its merge fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeTemplate {
    segments: Vec<Segment>,
    literal_len: usize,
}

/// How values are escaped for the part they go into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    Html,
    /// Plain text and header values: control characters become spaces.
    Text,
}

impl MergeTemplate {
    pub fn parse(rendered: &str) -> MergeTemplate {
        let mut segments = Vec::new();
        let mut rest = rendered;
        let mut literal_len = 0;
        while let Some(start) = rest.find(OPEN) {
            let after = &rest[start + OPEN.len_utf8()..];
            let Some(end) = after.find(CLOSE) else { break };
            let inner = &after[..end];
            let (name, default) = inner.split_once(SEP).unwrap_or((inner, ""));
            if start > 0 {
                literal_len += start;
                segments.push(Segment::Literal(rest[..start].to_string()));
            }
            segments.push(Segment::Field {
                name: name.to_string(),
                default: default.to_string(),
            });
            rest = &after[end + CLOSE.len_utf8()..];
        }
        if !rest.is_empty() {
            literal_len += rest.len();
            segments.push(Segment::Literal(rest.to_string()));
        }
        MergeTemplate { segments, literal_len }
    }

    /// The names of the fields this part uses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Field { name, .. } => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
    }

    pub fn fill(&self, recipient: &dyn Recipient, escape: Escape) -> String {
        let mut out = String::with_capacity(self.literal_len + 64);
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Field { name, default } => {
                    let value = recipient.field(name).filter(|v| !v.trim().is_empty());
                    let value = value.as_deref().unwrap_or(default);
                    let value = strip_markers(value);
                    match escape {
                        Escape::Html => out.push_str(&escape_html(&value)),
                        Escape::Text => out.push_str(&crate::clean::one_line(&value)),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct R;
    impl Recipient for R {
        fn field(&self, field: &str) -> Option<Cow<'_, str>> {
            match field {
                "name" => Some("Ana <b>".into()),
                _ => None,
            }
        }
    }

    #[test]
    fn fills_and_escapes() {
        let t = MergeTemplate::parse(&format!(
            "Hi {}, from {}!",
            marker("name", "reader"),
            marker("attributes.city", "here")
        ));
        assert_eq!(t.fill(&R, Escape::Html), "Hi Ana &lt;b&gt;, from here!");
        assert_eq!(t.fill(&R, Escape::Text), "Hi Ana <b>, from here!");
        assert_eq!(t.fields().collect::<Vec<_>>(), vec!["name", "attributes.city"]);
    }
}
