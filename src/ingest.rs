//! Polling sources: all of a job's sources at once, each failure kept to its
//! own source, and what they found stored once per identity. A feed item
//! without a picture gets the one its page names, read once, when it is new.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::join_all;
use tracing::{debug, warn};

use crate::article::Article;
use crate::config::{Settings, SourceKind, SourceSettings};
use crate::source::fetch::{self, Caps, Wanted};
use crate::source::{self, Polled, SourceError, Validators, page_image};
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
            Ok(mut polled) => {
                if let SourceKind::Feed {
                    page_images: true,
                    timeout,
                    allow_private_redirects,
                    ..
                } = &s.kind
                {
                    let caps = Caps {
                        timeout: *timeout,
                        max_bytes: PAGE_HEAD_BYTES,
                        allow_private: *allow_private_redirects,
                    };
                    pictures_from_pages(store, client, &mut polled.articles, caps).await?;
                }
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

/// How much of an article's page is read for the picture its head names.
const PAGE_HEAD_BYTES: usize = 512 * 1024;
/// Pages read at once.
const PAGES_AT_ONCE: usize = 4;
/// New articles whose page is read in one poll at most, the newest first:
/// a first read of a feed with years of items reads no more than this.
const PAGES_PER_POLL: usize = 50;

/// Gives articles without a picture the one their page names (`og:image`,
/// else `twitter:image`). A known article keeps the picture the store has
/// for it, so reading the feed again changes nothing and fetches nothing;
/// a new one has its page read once, within `caps` (the newest
/// [`PAGES_PER_POLL`] of a poll). A page that cannot be read leaves the
/// article without a picture.
async fn pictures_from_pages(
    store: &Store,
    client: &reqwest::Client,
    articles: &mut [Article],
    caps: Caps,
) -> Result<(), StoreError> {
    let lacking: Vec<usize> = (0..articles.len())
        .filter(|&i| articles[i].image.is_none() && !articles[i].url.is_empty())
        .collect();
    if lacking.is_empty() {
        return Ok(());
    }
    let identities: Vec<String> = lacking.iter().map(|&i| articles[i].identity.clone()).collect();
    let stored = store.stored_images(&identities).await?;
    let mut new = Vec::new();
    for i in lacking {
        match stored.get(&articles[i].identity) {
            Some(image) => articles[i].image = image.clone(),
            None => new.push((i, articles[i].url.clone())),
        }
    }
    new.sort_by_key(|(i, _)| std::cmp::Reverse(articles[*i].published_at));
    new.truncate(PAGES_PER_POLL);
    let found: Vec<(usize, Option<String>)> = futures::stream::iter(new)
        .map(|(i, page)| async move {
            let picture = match fetch::fetch(client, &page, caps, Wanted::Page).await {
                Ok(bytes) => url::Url::parse(&page)
                    .ok()
                    .and_then(|at| page_image::page_image(&String::from_utf8_lossy(&bytes), &at)),
                Err(e) => {
                    debug!(page, "no picture from the article's page: {e}");
                    None
                }
            };
            (i, picture.and_then(|p| crate::article::canonical_url(&p)))
        })
        .buffer_unordered(PAGES_AT_ONCE)
        .collect()
        .await;
    for (i, picture) in found {
        articles[i].image = picture;
    }
    Ok(())
}
