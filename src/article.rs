//! An article as Herald keeps it: cleaned fields and a stable identity, built
//! from a [`Draft`] that a source parsed.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use url::Url;

use crate::clean;

/// The most characters an excerpt keeps.
pub const EXCERPT_CHARS: usize = 300;

/// The body of a draft, as the source had it.
#[derive(Debug, Clone)]
pub enum Body {
    Html(String),
    Text(String),
}

/// What a source parsed, before cleaning.
#[derive(Debug, Clone)]
pub struct Draft {
    /// A source-given id (feed GUID, front-matter `id`) that is trusted to be stable.
    pub id: Option<String>,
    pub url: Option<String>,
    pub title: String,
    pub author: Option<String>,
    pub tags: Vec<String>,
    pub image: Option<String>,
    pub summary: Option<String>,
    pub body: Body,
    pub published: DateTime<Utc>,
    /// Whether `published` is a date the article gives; false when it is
    /// only when Herald found it (a file's modification time, the fetch).
    pub dated: bool,
}

/// A cleaned article, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub source: String,
    pub identity: String,
    /// The identity an older Herald gave the same article, which the store
    /// renames to `identity` when it finds it (a folder article was once
    /// known by its URL, which changes with its title and `site.base_url`).
    pub former_identity: Option<String>,
    pub url: String,
    pub title: String,
    pub author: Option<String>,
    pub excerpt: String,
    pub content_html: String,
    pub tags: Vec<String>,
    pub image: Option<String>,
    pub published_at: DateTime<Utc>,
    /// Whether `published_at` is the article's own date. An undated
    /// article keeps the time it was first seen: an edit does not make it new.
    pub dated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ArticleError {
    #[error("the article has no title")]
    NoTitle,
    #[error("the article URL {0:?} is not an http(s) URL")]
    BadUrl(String),
}

impl Article {
    /// Cleans a draft from `source`; `base_url` gives URLs to drafts without one
    /// (the base URL plus a slug of the title).
    pub fn from_draft(source: &str, draft: Draft, base_url: Option<&Url>) -> Result<Article, ArticleError> {
        let title = clean::plain_line(&draft.title);
        if title.is_empty() {
            return Err(ArticleError::NoTitle);
        }
        let url = match (&draft.url, base_url) {
            (Some(u), _) => canonical_url(u).ok_or_else(|| ArticleError::BadUrl(u.clone()))?,
            (None, Some(base)) => {
                let base = if base.path().ends_with('/') {
                    base.clone()
                } else {
                    Url::parse(&format!("{base}/")).expect("a URL plus a slash is a URL")
                };
                base.join(&slug(&title))
                    .map_err(|_| ArticleError::BadUrl(base.to_string()))?
                    .to_string()
            }
            (None, None) => String::new(),
        };
        let (content_html, paragraphs) = match &draft.body {
            Body::Html(html) => {
                let clean = clean::sanitize_html(html);
                let paragraphs = clean::html_paragraphs(&clean);
                (clean, paragraphs)
            }
            Body::Text(text) => {
                let paragraphs = clean::paragraphs(text);
                (clean::text_to_html(&paragraphs), paragraphs)
            }
        };
        let summary_text = draft.summary.as_deref().map(|s| clean::html_paragraphs(s).join(" "));
        let excerpt = clean::excerpt(&title, summary_text.as_deref(), &paragraphs, EXCERPT_CHARS);
        let identity = match (&draft.id, url.is_empty()) {
            (Some(id), _) => format!("id:{source}:{}", clean::one_line(id)),
            (None, false) => format!("url:{url}"),
            (None, true) => format!("hash:{}", hex(&Sha256::digest(format!("{title}\n{content_html}")))),
        };
        let image = draft.image.as_deref().and_then(canonical_url);
        let mut tags: Vec<String> = draft
            .tags
            .iter()
            .map(|t| clean::plain_line(t))
            .filter(|t| !t.is_empty())
            .collect();
        tags.dedup();
        Ok(Article {
            source: source.to_string(),
            identity,
            former_identity: None,
            url,
            title,
            author: draft.author.map(|a| clean::plain_line(&a)).filter(|a| !a.is_empty()),
            excerpt,
            content_html,
            tags,
            image,
            published_at: draft.published,
            dated: draft.dated,
        })
    }

    /// A hash of everything a reader sees, to tell an edit from a re-read.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            &self.url,
            &self.title,
            self.author.as_deref().unwrap_or(""),
            &self.excerpt,
            &self.content_html,
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update(self.tags.join("\u{1f}").as_bytes());
        h.update(self.image.as_deref().unwrap_or("").as_bytes());
        if self.dated {
            h.update(self.published_at.timestamp_millis().to_le_bytes());
        }
        hex(&h.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical form of an article URL: no fragment, no tracking parameters.
/// `None` when it is not an absolute http(s) URL.
pub fn canonical_url(raw: &str) -> Option<String> {
    let mut url = Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_fragment(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !(k.starts_with("utm_") || matches!(k.as_ref(), "fbclid" | "gclid" | "mc_cid" | "mc_eid")))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Some(url.to_string())
}

/// A URL slug of a title: lowercase letters and digits joined by hyphens
/// (accents folded; other scripts kept, and percent-encoded in the URL).
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            c => c,
        };
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "article".into()
    } else {
        out.chars()
            .take(80)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Café owners rally: 3 new rules!"), "cafe-owners-rally-3-new-rules");
        assert_eq!(slug("!!!"), "article");
        assert_eq!(slug("港のフェリー 🎉"), "港のフェリー");
    }

    #[test]
    fn canonical_urls_drop_tracking_and_fragments() {
        assert_eq!(
            canonical_url("https://Example.org/a?utm_source=x&id=4#top").as_deref(),
            Some("https://example.org/a?id=4")
        );
        assert_eq!(canonical_url("javascript:alert(1)"), None);
    }
}
