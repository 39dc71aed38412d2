//! Polling sources: all of a job's sources at once, each failure kept to its
//! own source, and what they found stored once per identity.

use chrono::{DateTime, Utc};
use futures::future::join_all;
use tracing::warn;

use crate::article::Article;
use crate::config::{Settings, SourceSettings};
use crate::source::{self, Polled, SourceError, Validators};
use crate::store::{Store, StoreError, Upsert};

/// What one source gave in one ingest.
#[derive(Debug, Default)]
pub struct SourceReport {
    pub source: String,
    pub new: Vec<Article>,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: Vec<String>,
    pub not_modified: bool,
    pub error: Option<String>,
}

fn selected<'a>(settings: &'a Settings, names: Option<&[String]>) -> Vec<&'a SourceSettings> {
    settings
        .sources
        .iter()
        .filter(|s| names.is_none_or(|n| n.contains(&s.name)))
        .collect()
}

/// Polls the named sources (all when `None`) without storing anything.
pub async fn fetch(
    settings: &Settings,
    names: Option<&[String]>,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> Vec<(String, Result<Polled, SourceError>)> {
    let sources = selected(settings, names);
    let none = Validators::default();
    let polls = sources.iter().map(|s| source::poll(s, client, &none, now));
    sources
        .iter()
        .map(|s| s.name.clone())
        .zip(join_all(polls).await)
        .collect()
}

/// Polls the named sources (all when `None`) and stores what they found.
pub async fn ingest(
    store: &Store,
    settings: &Settings,
    names: Option<&[String]>,
    client: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<Vec<SourceReport>, StoreError> {
    let sources = selected(settings, names);
    let mut validators = Vec::new();
    for s in &sources {
        validators.push(store.validators(&s.name).await?);
    }
    let polls = sources
        .iter()
        .zip(&validators)
        .map(|(s, v)| source::poll(s, client, v, now));
    let results = join_all(polls).await;
    let mut reports = Vec::new();
    for (s, result) in sources.iter().zip(results) {
        let mut report = SourceReport {
            source: s.name.clone(),
            ..SourceReport::default()
        };
        match result {
            Ok(polled) => {
                let stored = store.upsert_articles(&polled.articles, now).await?;
                for (article, upsert) in polled.articles.into_iter().zip(stored) {
                    if upsert != Upsert::Unchanged && article.excerpt.is_empty() {
                        warn!(
                            source = %s.name,
                            title = %article.title,
                            url = %article.url,
                            "the article has no excerpt (its summary and first paragraphs are only boilerplate or too short): digests and teasers show the headline alone"
                        );
                    }
                    match upsert {
                        Upsert::Inserted => report.new.push(article),
                        Upsert::Updated => report.updated += 1,
                        Upsert::Unchanged => report.unchanged += 1,
                    }
                }
                for skipped in &polled.skipped {
                    warn!(source = %s.name, item = %skipped, "skipped an unreadable item");
                }
                report.skipped = polled.skipped;
                report.not_modified = polled.not_modified;
                store
                    .record_poll(&s.name, polled.validators.as_ref(), None, now)
                    .await?;
            }
            Err(e) => {
                store.record_poll(&s.name, None, Some(&e.to_string()), now).await?;
                report.error = Some(e.to_string());
            }
        }
        reports.push(report);
    }
    Ok(reports)
}
