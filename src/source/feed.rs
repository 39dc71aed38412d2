//! The feed source: RSS 0.9-2.0, Atom and JSON Feed over HTTP(S), with
//! conditional GET, a byte cap while reading, a timeout and an item cap.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION};
use url::Url;

use super::{Polled, SourceError, Validators};
use crate::article::{Article, Body, Draft};

pub struct Limits {
    pub timeout: Duration,
    pub max_bytes: u64,
    pub max_items: usize,
    pub trust_ids: bool,
    /// Follow a redirect to an internal address instead of refusing it.
    pub allow_private_redirects: bool,
}

pub async fn poll(
    name: &str,
    client: &reqwest::Client,
    url: &Url,
    limits: &Limits,
    previous: &Validators,
    now: DateTime<Utc>,
) -> Result<Polled, SourceError> {
    let shown = url.to_string();
    let http = |error: reqwest::Error| SourceError::Http {
        url: shown.clone(),
        error: crate::error_chain(&error),
    };
    let started = tokio::time::Instant::now();
    let mut at = url.clone();
    let mut hops = 0;
    let response = loop {
        let mut request = client
            .get(at.clone())
            .timeout(limits.timeout.saturating_sub(started.elapsed()));
        if let Some(etag) = &previous.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(modified) = &previous.last_modified {
            request = request.header(IF_MODIFIED_SINCE, modified);
        }
        let response = request.send().await.map_err(http)?;
        // The client leaves redirects to internal addresses to us.
        let redirected = response.status().is_redirection() && response.status() != StatusCode::NOT_MODIFIED;
        let target = redirected
            .then(|| response.headers().get(LOCATION)?.to_str().ok())
            .flatten()
            .and_then(|location| response.url().join(location).ok());
        let Some(target) = target else { break response };
        if !limits.allow_private_redirects {
            return Err(SourceError::PrivateRedirect {
                url: shown,
                to: target.to_string(),
            });
        }
        hops += 1;
        if hops > super::MAX_REDIRECTS {
            return Err(SourceError::TooManyRedirects {
                url: shown,
                max: super::MAX_REDIRECTS,
            });
        }
        at = target;
    };
    if response.status() == StatusCode::NOT_MODIFIED {
        return Ok(Polled {
            not_modified: true,
            ..Polled::default()
        });
    }
    if !response.status().is_success() {
        return Err(SourceError::Status {
            url: shown,
            status: response.status().as_u16(),
        });
    }
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header(ETAG),
        last_modified: header(LAST_MODIFIED),
    };
    if response.content_length().is_some_and(|len| len > limits.max_bytes) {
        return Err(SourceError::TooLarge {
            url: shown,
            max: limits.max_bytes,
        });
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(http)?;
        if body.len() as u64 + chunk.len() as u64 > limits.max_bytes {
            return Err(SourceError::TooLarge {
                url: shown,
                max: limits.max_bytes,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let mut polled = parse(name, url, &body, limits, now)?;
    polled.validators = Some(validators);
    Ok(polled)
}

/// Parses a fetched feed document into cleaned articles (at most
/// `limits.max_items`) and the items it had to skip.
pub fn parse(name: &str, url: &Url, body: &[u8], limits: &Limits, now: DateTime<Utc>) -> Result<Polled, SourceError> {
    let shown = url.to_string();
    let parser = feed_rs::parser::Builder::new()
        .base_uri(Some(url.as_str()))
        .id_generator(|_, _, _| String::new())
        .build();
    let feed = parser.parse(body).map_err(|e| SourceError::Parse {
        url: shown.clone(),
        error: e.to_string(),
    })?;
    let mut polled = Polled::default();
    let fetched_at = now;
    if feed.entries.len() > limits.max_items {
        polled.skipped.push(format!(
            "{shown}: {} items; read the first {} (the source's max_items)",
            feed.entries.len(),
            limits.max_items
        ));
    }
    for (index, entry) in feed.entries.into_iter().take(limits.max_items).enumerate() {
        let draft = entry_draft(entry, limits.trust_ids, fetched_at);
        match Article::from_draft(name, draft, None) {
            Ok(article) if article.url.is_empty() && article.identity.starts_with("hash:") => {
                polled.skipped.push(format!("{shown} item {}: no link", index + 1));
            }
            Ok(article) => polled.articles.push(article),
            Err(e) => polled.skipped.push(format!("{shown} item {}: {e}", index + 1)),
        }
    }
    Ok(polled)
}

fn entry_draft(entry: feed_rs::model::Entry, trust_ids: bool, fetched_at: chrono::DateTime<Utc>) -> Draft {
    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
        .or(entry.links.first())
        .map(|l| l.href.clone());
    let text_of = |t: &feed_rs::model::Text| {
        if t.content_type.essence().to_string() == "text/html" {
            crate::clean::html_paragraphs(&t.content).join(" ")
        } else {
            t.content.clone()
        }
    };
    let body = match (&entry.content, &entry.summary) {
        (Some(content), _) if content.body.is_some() => Body::Html(content.body.clone().unwrap_or_default()),
        (_, Some(summary)) => Body::Html(summary.content.clone()),
        _ => Body::Text(String::new()),
    };
    let image = entry
        .media
        .iter()
        .flat_map(|m| {
            m.thumbnails
                .iter()
                .map(|t| t.image.uri.clone())
                .chain(m.content.iter().filter_map(|c| {
                    let is_image = c.content_type.as_ref().is_some_and(|t| t.ty().as_str() == "image");
                    c.url.as_ref().filter(|_| is_image).map(|u| u.to_string())
                }))
        })
        .next();
    Draft {
        id: Some(entry.id).filter(|id| trust_ids && !id.trim().is_empty()),
        url: link,
        title: entry.title.as_ref().map(text_of).unwrap_or_default(),
        author: entry.authors.first().and_then(|a| a.name.clone()),
        tags: entry
            .categories
            .iter()
            .map(|c| c.label.clone().unwrap_or_else(|| c.term.clone()))
            .collect(),
        image,
        summary: entry.summary.as_ref().map(|s| s.content.clone()),
        body,
        dated: entry.published.or(entry.updated).is_some(),
        published: entry.published.or(entry.updated).unwrap_or(fetched_at),
    }
}
