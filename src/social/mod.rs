//! Social posting: teasers of new articles to X, Mastodon, Bluesky, Threads,
//! LinkedIn and chat webhooks, once per (article, account), within each
//! platform's rules, with OAuth tokens watched for expiry.

pub mod bluesky;
pub mod chat;
pub mod credentials;
pub mod linkedin;
pub mod mastodon;
pub mod picture;
pub mod platform;
pub mod post;
pub mod reply;
pub mod teaser;
pub mod threads;
pub mod thumb;
pub mod x;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{JobSettings, Settings, SocialJob};
use crate::ingest::{self, SourceReport};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};
use platform::Platform;
use post::AccountReport;

/// What a social job's run did.
#[derive(Debug, Default)]
pub struct SocialReport {
    pub sources: Vec<SourceReport>,
    pub accounts: Vec<AccountReport>,
}

/// Tries an account's credentials without posting, where the platform has
/// a call for it (X, Mastodon, Bluesky, Telegram); `None` for webhooks.
pub async fn verify(
    store: &Store,
    account: &crate::config::AccountSettings,
    http: &reqwest::Client,
    now: DateTime<Utc>,
) -> Option<Result<String, reply::VerifyError>> {
    let token = credentials::current(store, account).await.ok().flatten();
    platform::client(account, store, token.as_ref().map(|t| t.value.as_str()))
        .verify(http, now)
        .await
}

/// Runs a social job now: poll its sources, queue a teaser per new article
/// and account, and post what is due.
pub async fn run(
    store: &Store,
    settings: &Settings,
    job: &JobSettings,
    social: &SocialJob,
    http: &reqwest::Client,
    clock: &dyn Clock,
    shutdown: &Shutdown,
) -> Result<SocialReport, StoreError> {
    let now = clock.now();
    let mut report = SocialReport {
        sources: ingest::ingest(store, settings, Some(&job.sources), http, now).await?,
        ..SocialReport::default()
    };
    for name in &social.accounts {
        let account = settings.account(name).expect("checked config: a job's accounts exist");
        let queued = post::queue(store, account, &job.sources, http, now).await?;
        let sent = post::drain(store, account, http, clock, shutdown).await?;
        report.accounts.push(AccountReport {
            account: name.clone(),
            queued: queued.queued,
            skipped: queued.skipped,
            posted: sent.posted,
            retrying: sent.retrying,
            failed: queued.failed + sent.failed,
            waiting_until: sent.waiting_until,
            blocked: sent.blocked,
        });
    }
    Ok(report)
}
