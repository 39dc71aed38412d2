//! A digest run: gather the articles published since the job's previous
//! edition, render what all recipients share once, create the edition with
//! one delivery row per subscriber in one transaction, then drain the queue.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::article::Article;
use crate::config::{DigestJob, JobSettings, Settings};
use crate::ingest::{self, SourceReport};
use crate::render::{EditionData, RenderError, SharedParts};
use crate::sender::{self, DrainOptions, SendContext, SendReport};
use crate::store::{EditionRow, Fire, FireRef, NewEdition, Recipients, Store, StoreError, StoredArticle};

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    #[error("cannot read the seed file {path}: {error}")]
    Seed { path: String, error: std::io::Error },
}

/// The start of the window an edition takes articles from: the previous
/// edition's time minus the job's look-back. A job's first edition looks
/// back from now, but never before the list's latest edition by a job the
/// configuration no longer has (the job's old name, if it was renamed), so
/// a renamed job does not send its list the look-back window again; a new
/// job beside the list's other jobs (another cadence) looks back as usual.
pub async fn window_start(
    store: &Store,
    job: &JobSettings,
    digest: &DigestJob,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    if let Some(last) = store.last_edition_at(&job.name).await? {
        return Ok(last - job.lookback);
    }
    let first = now - job.lookback;
    let mut configured = digest.siblings.clone();
    configured.push(job.name.clone());
    Ok(match store.last_list_edition_at(&digest.list, &configured).await? {
        Some(list_last) if list_last > first => list_last,
        _ => first,
    })
}

/// The articles the job's next edition would hold, newest first. `unsaved`
/// are articles just fetched but not stored (a dry run); those the store
/// already knows are ignored, as the store has the truth about them.
pub async fn plan(
    store: &Store,
    job: &JobSettings,
    digest: &DigestJob,
    now: DateTime<Utc>,
    unsaved: &[Article],
) -> Result<Vec<StoredArticle>, StoreError> {
    let since = window_start(store, job, digest, now).await?;
    let mut articles = store
        .edition_candidates(&job.name, &job.sources, since, now, digest.max_articles)
        .await?;
    let identities: Vec<String> = unsaved.iter().map(|a| a.identity.clone()).collect();
    let known = store.known_identities(&identities).await?;
    for a in unsaved {
        let in_window = a.published_at > since && a.published_at <= now;
        if in_window && job.sources.contains(&a.source) && !known.contains(&a.identity) {
            articles.push(StoredArticle {
                id: -1,
                identity: a.identity.clone(),
                source: a.source.clone(),
                url: a.url.clone(),
                title: a.title.clone(),
                author: a.author.clone(),
                excerpt: a.excerpt.clone(),
                tags: serde_json::to_string(&a.tags).expect("strings serialise"),
                image: a.image.clone(),
                published_at: a.published_at,
            });
        }
    }
    articles.sort_by(|a, b| b.published_at.cmp(&a.published_at).then(b.id.cmp(&a.id)));
    articles.truncate(digest.max_articles);
    Ok(articles)
}

/// Renders the shared parts of an edition of `job` holding `articles`.
/// `nonce` is the edition's when it is one to send: its archive address
/// (when the list is archived) goes into the "view in your browser" link.
pub fn render(
    app: &App,
    job: &JobSettings,
    digest: &DigestJob,
    articles: &[StoredArticle],
    now: DateTime<Utc>,
    nonce: Option<&str>,
) -> Result<SharedParts, RenderError> {
    let settings = &app.settings;
    let list = settings
        .list(&digest.list)
        .expect("checked config: a job's list exists");
    let archive_url = nonce
        .filter(|_| list.archive)
        .map(|nonce| settings.site.archive_url(&list.name, Some(nonce)).to_string());
    let data = EditionData::new(&settings.site, list, job, digest, articles, now, archive_url);
    app.templates.render_edition(job, digest, &data)
}

/// Which subscribers of its list a digest job sends to: those whose cadence
/// names it, and for the list's first digest job also those whose cadence
/// names no other job of the list.
pub fn recipients(digest: &DigestJob) -> Recipients<'_> {
    if digest.list_default {
        Recipients::AllBut(&digest.sibling_cadences)
    } else {
        Recipients::Cadence(&digest.cadence)
    }
}

/// Fills an empty list from its `seed` CSV, once: only when the list has
/// never had a subscriber.
pub async fn seed_list(
    store: &Store,
    settings: &Settings,
    list: &str,
    now: DateTime<Utc>,
) -> Result<Option<crate::import::ImportReport>, DigestError> {
    let Some(path) = settings.list(list).and_then(|l| l.seed.clone()) else {
        return Ok(None);
    };
    if store.subscriber_count(list, None).await? > 0 {
        return Ok(None);
    }
    let file = std::fs::File::open(&path).map_err(|error| DigestError::Seed {
        path: path.display().to_string(),
        error,
    })?;
    Ok(Some(
        crate::import::import_csv(store, list, file, Default::default(), now, |_| {}).await?,
    ))
}

/// What `herald digest JOB` did.
#[derive(Debug, Default)]
pub struct DigestReport {
    pub sources: Vec<SourceReport>,
    pub seeded: Option<crate::import::ImportReport>,
    pub edition: Option<EditionRow>,
    /// Articles in the window; fewer than `min_articles` make no edition
    /// (none at all does when `send_when_empty`).
    pub planned: usize,
    pub send: SendReport,
    /// How long creating the edition (its delivery rows) took.
    pub edition_time: std::time::Duration,
    /// How long the drain took.
    pub send_time: std::time::Duration,
}

/// Runs the job now: ingest its sources, create the edition if there is
/// something new, and deliver everything due for the job (this edition and
/// any an interrupted run left unfinished).
///
/// For a scheduled fire, `fire` is the claim this instance holds: the
/// edition is made as of the fire's first claim (its articles window ends
/// there, whoever carries the run out), it is recorded on the fire in its
/// own transaction, and a fire that already made its edition (a run taken
/// over after that point) only sends.
pub async fn run(
    ctx: Arc<SendContext>,
    job: &JobSettings,
    digest: &DigestJob,
    client: &reqwest::Client,
    now: DateTime<Utc>,
    drain: &DrainOptions,
    fire: Option<&Fire>,
) -> Result<DigestReport, DigestError> {
    let settings = &ctx.app.settings;
    let store = &ctx.store;
    let mut report = DigestReport::default();
    if fire.is_none_or(|f| f.edition.is_none()) {
        report.sources = ingest::ingest(store, settings, Some(&job.sources), client, now).await?;
        report.seeded = seed_list(store, settings, &digest.list, now).await?;
        let as_of = fire.map_or(now, |f| f.claimed_at);
        let articles = plan(store, job, digest, as_of, &[]).await?;
        report.planned = articles.len();
        if digest.makes_edition(articles.len()) {
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let parts = render(&ctx.app, job, digest, &articles, as_of, Some(&nonce[..16]))?;
            let ids: Vec<i64> = articles.iter().map(|a| a.id).collect();
            let edition = NewEdition {
                job: &job.name,
                list: &digest.list,
                nonce: &nonce[..16],
                subject: &parts.subject,
                html: &parts.html,
                text: &parts.text,
                article_ids: &ids,
                recipients: recipients(digest),
                fire: fire.map(|f| FireRef {
                    scheduled_at: f.scheduled_at,
                    instance: &f.claimed_by,
                }),
            };
            let started = std::time::Instant::now();
            let made = store.create_edition(&edition, as_of).await?;
            tracing::info!(
                job = %job.name,
                edition = made.id,
                articles = made.article_count,
                recipients = made.recipient_count,
                "edition created"
            );
            report.edition = Some(made);
            report.edition_time = started.elapsed();
            crate::failpoint::pause(crate::failpoint::EDITION_COMMITTED).await;
        }
    }
    let started = std::time::Instant::now();
    report.send = sender::drain(ctx.clone(), &job.name, drain).await?;
    report.send_time = started.elapsed();
    Ok(report)
}
