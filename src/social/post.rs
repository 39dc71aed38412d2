//! A social run: queue a teaser per new article and account (recorded before
//! any request, unique per pair), then post each account's due teasers within
//! its spacing, daily cap and the platform's rate limits.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use super::credentials;
use super::platform::{self, Outgoing, Platform};
use super::reply::Reply;
use super::teaser::{self, Rule, TeaserError, TeaserInput};
use crate::clock::Clock;
use crate::config::AccountSettings;
use crate::shutdown::Shutdown;
use crate::store::{Lease, PostOutcome, PostState, Store, StoreError, StoredArticle};
use handlebars::Handlebars;

/// The first retry of a failed post comes after this, doubling each time.
const RETRY_INITIAL: Duration = Duration::from_secs(60);
/// How long an account whose token expired or was refused is left alone.
const BLOCKED_RECHECK: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// A post still failing this long after it was queued is given up.
const RETRY_MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(3);

/// What one run did for one account.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountReport {
    pub account: String,
    pub queued: u64,
    pub skipped: u64,
    pub posted: u64,
    pub retrying: u64,
    pub failed: u64,
    /// Posts left queued until spacing or the daily cap allows, or the rate limit resets.
    pub waiting_until: Option<DateTime<Utc>>,
    /// Why the account's posts wait for the operator: its token expired or was refused.
    pub blocked: Option<String>,
}

/// The platform's length rule for an account (Mastodon's from its instance, cached).
pub async fn rule(
    store: &Store,
    account: &AccountSettings,
    http: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<Rule, StoreError> {
    platform::client(account, store, None).rule(http, now).await
}

pub fn teaser_input(article: &StoredArticle) -> TeaserInput {
    TeaserInput {
        title: article.title.clone(),
        excerpt: article.excerpt.clone(),
        url: article.url.clone(),
        author: article.author.clone(),
        tags: article.tags(),
    }
}

/// What an account does with an article it has no post record for.
#[derive(Debug)]
pub enum Plan {
    /// Recorded as `skipped` with this reason, never posted.
    Skip(&'static str),
    /// Queued with this teaser.
    Post(String),
    /// Recorded as `failed`: no teaser fits the platform.
    CannotPost(TeaserError),
}

/// The one rule that [`queue`] records and `herald post --dry-run` shows:
/// articles that existed before the account was added are skipped unless
/// it backfills, so are those older than its look-back; the rest get a
/// teaser, or fail when none fits.
pub fn plan(
    account: &AccountSettings,
    first_run: bool,
    published: DateTime<Utc>,
    input: &TeaserInput,
    template: &Handlebars<'static>,
    rule: &Rule,
    now: DateTime<Utc>,
) -> Plan {
    if first_run && !account.backfill {
        Plan::Skip("existed before the account was added")
    } else if published < now - account.lookback {
        Plan::Skip("published before the account's look-back")
    } else {
        match teaser::build(template, input, account.max_hashtags, rule) {
            Ok(text) => Plan::Post(text),
            Err(e) => Plan::CannotPost(e),
        }
    }
}

/// Records a post row for every article of `sources` the account has none
/// for: `queued` with its teaser, or `skipped` (articles that existed before
/// the account was added, unless it backfills; articles older than its
/// look-back), or `failed` when no teaser fits.
pub async fn queue(
    store: &Store,
    account: &AccountSettings,
    sources: &[String],
    http: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<AccountReport, StoreError> {
    let mut report = AccountReport {
        account: account.name.clone(),
        ..AccountReport::default()
    };
    let first_run = !store.account_initialized(&account.name).await?;
    let articles = store.unposted_articles(&account.name, sources).await?;
    let rule = rule(store, account, http, now).await?;
    let template = teaser::compile(teaser::template_of(account)).expect("checked at load");
    for article in articles {
        let input = teaser_input(&article);
        let name = &account.name;
        match plan(account, first_run, article.published_at, &input, &template, &rule, now) {
            Plan::Skip(reason) => {
                store
                    .add_post(name, article.id, PostState::Skipped, "", Some(reason), now)
                    .await?;
                report.skipped += 1;
            }
            Plan::Post(text) => {
                store
                    .add_post(name, article.id, PostState::Queued, &text, None, now)
                    .await?;
                report.queued += 1;
            }
            Plan::CannotPost(e) => {
                error!(account = %name, article = %article.url, error = %e, "no teaser fits the platform");
                let reason = e.to_string();
                store
                    .add_post(name, article.id, PostState::Failed, "", Some(&reason), now)
                    .await?;
                report.failed += 1;
            }
        }
    }
    if first_run {
        store.initialize_account(&account.name, now).await?;
        if report.skipped > 0 {
            info!(account = %account.name, skipped = report.skipped, "new account: existing articles recorded without posting (no backfill)");
        }
    }
    Ok(report)
}

/// Posts the account's due teasers, one at a time, until none is due, the
/// spacing or daily cap says wait, the platform rate-limits, or shutdown.
pub async fn drain(
    store: &Store,
    account: &AccountSettings,
    http: &reqwest::Client,
    clock: &dyn Clock,
    shutdown: &Shutdown,
) -> Result<AccountReport, StoreError> {
    let name = account.name.as_str();
    let mut report = AccountReport {
        account: name.to_string(),
        ..AccountReport::default()
    };
    let token = credentials::prepare(store, account, http, clock.now()).await?;
    if let Some(why) = token.as_ref().and_then(|t| t.blocked(account, clock.now())) {
        // Nothing changes this but a new secret (a reload wakes the daemon),
        // so the account's queue is not looked at again for a while.
        report.blocked = Some(why);
        report.waiting_until = Some(clock.now() + BLOCKED_RECHECK);
        return Ok(report);
    }
    let client = platform::client(account, store, token.as_ref().map(|t| t.value.as_str()));
    let lease = chrono::Duration::from_std(account.timeout * 2 + Duration::from_secs(5)).expect("fits");
    store.recover_expired_post_leases(name, clock.now()).await?;
    while !shutdown.is_triggered() {
        let now = clock.now();
        let (last, posted_today, oldest) = store.post_activity(name, now - chrono::Duration::days(1)).await?;
        if posted_today >= account.daily_cap as i64 {
            report.waiting_until = oldest.map(|t| t + chrono::Duration::days(1));
            info!(
                account = name,
                cap = account.daily_cap,
                "daily cap reached; the rest waits"
            );
            break;
        }
        if let Some(next) = last.map(|t| t + chrono::Duration::from_std(account.min_spacing).expect("fits"))
            && next > now
        {
            if store.next_post_at(name).await?.is_some() {
                report.waiting_until = Some(next);
            }
            break;
        }
        let claim = Lease {
            by: crate::instance::id(),
            now,
            until: now + lease,
        };
        let Some(post) = store.claim_post(name, &claim).await? else {
            break;
        };
        let article = store.article(post.article_id).await?;
        let reply = client
            .post(
                http,
                &Outgoing {
                    post: &post,
                    article: &article,
                },
                now,
            )
            .await;
        let now = clock.now();
        let outcome = match reply {
            Reply::Posted { id, url, raw } => {
                info!(account = name, article = %article.url, remote = %id, "posted");
                report.posted += 1;
                PostOutcome::Posted {
                    remote_id: id,
                    remote_url: url,
                    reply: raw,
                }
            }
            Reply::Duplicate(reply) => {
                info!(account = name, article = %article.url, %reply, "the platform has this post already: counted as posted");
                report.posted += 1;
                PostOutcome::Posted {
                    remote_id: String::new(),
                    remote_url: None,
                    reply: format!("duplicate: {reply}"),
                }
            }
            Reply::RateLimited { until, reply } => {
                warn!(account = name, %until, %reply, "rate limited: waiting until the reset");
                store
                    .record_post(post.id, &PostOutcome::Released { at: until }, now)
                    .await?;
                report.waiting_until = Some(until);
                break;
            }
            Reply::Transient { reply, in_doubt } => {
                if now - post.created_at > RETRY_MAX_AGE {
                    error!(account = name, article = %article.url, %reply, "giving up after three days of failures");
                    report.failed += 1;
                    PostOutcome::Failed { reply }
                } else {
                    let at = now
                        + chrono::Duration::from_std(crate::retry::backoff(RETRY_INITIAL, post.attempts, post.id))
                            .expect("fits");
                    warn!(account = name, article = %article.url, %reply, in_doubt, retry_at = %at, "post deferred");
                    report.retrying += 1;
                    PostOutcome::Retry { reply, at, in_doubt }
                }
            }
            // An OAuth token the platform refused: the post waits, and so
            // does the rest of the account's queue, until the secret is replaced.
            Reply::AuthExpired(reply) if let Some(token) = &token => {
                store
                    .record_post(post.id, &PostOutcome::Released { at: now }, now)
                    .await?;
                let refused = credentials::refused(store, account, token, &reply, now).await?;
                let why = refused.blocked(account, now).expect("a refused token blocks");
                error!(account = name, "{why}");
                report.blocked = Some(why);
                report.waiting_until = Some(now + BLOCKED_RECHECK);
                break;
            }
            Reply::AuthExpired(reply) | Reply::Permanent(reply) => {
                error!(account = name, article = %article.url, %reply, "the platform refused the post");
                report.failed += 1;
                PostOutcome::Failed { reply }
            }
        };
        store.record_post(post.id, &outcome, now).await?;
    }
    Ok(report)
}
