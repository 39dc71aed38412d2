//! What a scheduled fire does in the daemon: claim the (job, scheduled time)
//! in the store so no other instance runs it, take the job's lock so no other
//! work on the job overlaps it here, then run the digest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::channel::Channel;
use super::scheduler::FireHandler;
use crate::clock::Clock;
use crate::config::{JobKind, JobSettings, Settings};
use crate::digest::{self, DigestReport};
use crate::health::Health;
use crate::sender::{self, DrainOptions, SendContext};
use crate::social;
use crate::store::Store;

/// How recent an instance's heartbeat (written every 10 s) must be for it to count as alive.
const HEARTBEAT_FRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// One async lock per job, shared by its fires and the retry drainer.
#[derive(Clone, Default)]
pub struct JobLocks(Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>);

impl JobLocks {
    pub fn of(&self, job: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .lock()
            .expect("not poisoned")
            .entry(job.to_string())
            .or_default()
            .clone()
    }
}

/// The parts of the daemon every fire and drain uses.
#[derive(Clone)]
pub struct Daemon {
    pub store: Store,
    pub config: watch::Receiver<Arc<Settings>>,
    pub clock: Arc<dyn Clock>,
    pub instance: String,
    pub locks: JobLocks,
    pub health: Arc<Health>,
    /// The mail channel's pause, shared by fires and the drainer.
    pub channel: Channel,
    pub client: reqwest::Client,
    pub drain: DrainOptions,
}

impl Daemon {
    pub fn settings(&self) -> Arc<Settings> {
        self.config.borrow().clone()
    }

    async fn run_fire(self, job: JobSettings, at: DateTime<Utc>) {
        match self
            .store
            .claim_fire(&job.name, at, &self.instance, self.clock.now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                info!(job = %job.name, scheduled = %at, "fire already claimed by another run");
                if job.kind == JobKind::Digest {
                    self.help_fire(&job, at).await;
                }
                return;
            }
            Err(e) => {
                error!(job = %job.name, scheduled = %at, error = %e, "cannot claim the fire: skipped");
                return;
            }
        }
        let lock = self.locks.of(&job.name);
        let _guard = lock.lock().await;
        let outcome = match job.kind {
            JobKind::Digest => self.digest_fire(&job, at).await,
            JobKind::Social => self.social_fire(&job, at).await,
        };
        if let Err(e) = self.store.finish_fire(&job.name, at, &outcome, self.clock.now()).await {
            warn!(job = %job.name, error = %e, "cannot record the end of the fire");
        }
    }

    /// Sends a share of the edition that another instance's run of this fire
    /// makes: every second, while that run is unfinished and its instance
    /// alive, claims and sends whatever of the job's queue is due. (The
    /// claims keep two instances off the same row; the drainer takes over
    /// from an instance that died.)
    async fn help_fire(&self, job: &JobSettings, at: DateTime<Utc>) {
        let ctx = match SendContext::new(self.store.clone(), self.settings()).await {
            Ok(ctx) => Arc::new(ctx),
            Err(e) => {
                error!(job = %job.name, error = %e, "cannot prepare sending");
                return;
            }
        };
        let lock = self.locks.of(&job.name);
        let mut shutdown = self.drain.shutdown.clone();
        let mut sent = 0;
        loop {
            let alive_since = self.clock.now() - chrono::Duration::from_std(HEARTBEAT_FRESH).expect("fits");
            match self.store.fire_running(&job.name, at, alive_since).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    warn!(job = %job.name, error = %e, "cannot look at another instance's fire");
                    break;
                }
            }
            if let Ok(_guard) = lock.try_lock() {
                match sender::drain(ctx.clone(), &job.name, &self.drain).await {
                    Ok(report) => {
                        let settings = self.settings();
                        self.channel
                            .note(&report, settings.mail.retry_initial, self.clock.now(), &self.health);
                        sent += report.sent;
                    }
                    Err(e) => warn!(job = %job.name, error = %e, "helping with the edition failed"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                () = shutdown.wait() => break,
            }
        }
        if sent > 0 {
            info!(job = %job.name, scheduled = %at, sent, "helped send another instance's edition");
        }
    }

    async fn digest_fire(&self, job: &JobSettings, at: DateTime<Utc>) -> String {
        match self.digest(job).await {
            Ok(report) => {
                log_report(&job.name, &report);
                let retry_initial = self.settings().mail.retry_initial;
                self.channel
                    .note(&report.send, retry_initial, self.clock.now(), &self.health);
                let failed = report.sources.iter().filter(|s| s.error.is_some()).count();
                let error = report
                    .send
                    .paused
                    .as_ref()
                    .map(ToString::to_string)
                    .or_else(|| {
                        report
                            .send
                            .paused_editions
                            .first()
                            .map(|(id, reason)| format!("edition #{id} paused: {reason}"))
                    })
                    .or_else(|| (failed > 0).then(|| format!("{failed} source(s) failed")));
                self.health.job_finished(&job.name, self.clock.now(), error);
                summary(&report)
            }
            Err(e) => {
                error!(job = %job.name, scheduled = %at, error = %e, "job run failed");
                self.health
                    .job_finished(&job.name, self.clock.now(), Some(e.to_string()));
                format!("error: {e}")
            }
        }
    }

    async fn social_fire(&self, job: &JobSettings, at: DateTime<Utc>) -> String {
        let settings = self.settings();
        match social::run(
            &self.store,
            &settings,
            job,
            &self.client,
            self.clock.now(),
            &self.drain.shutdown,
        )
        .await
        {
            Ok(report) => {
                let mut parts = Vec::new();
                for a in &report.accounts {
                    info!(job = %job.name, account = %a.account, queued = a.queued, skipped = a.skipped, posted = a.posted, retrying = a.retrying, failed = a.failed, "account done");
                    parts.push(format!("{}: {} posted, {} failed", a.account, a.posted, a.failed));
                }
                let failed: u64 = report.accounts.iter().map(|a| a.failed).sum();
                self.health.job_finished(
                    &job.name,
                    self.clock.now(),
                    (failed > 0).then(|| format!("{failed} post(s) failed")),
                );
                parts.join("; ")
            }
            Err(e) => {
                error!(job = %job.name, scheduled = %at, error = %e, "job run failed");
                self.health
                    .job_finished(&job.name, self.clock.now(), Some(e.to_string()));
                format!("error: {e}")
            }
        }
    }

    async fn digest(&self, job: &JobSettings) -> anyhow::Result<DigestReport> {
        let ctx = Arc::new(SendContext::new(self.store.clone(), self.settings()).await?);
        Ok(digest::run(ctx, job, &self.client, self.clock.now(), &self.drain).await?)
    }
}

impl FireHandler for Daemon {
    fn fire(&self, job: JobSettings, at: DateTime<Utc>) -> BoxFuture<'static, ()> {
        Box::pin(self.clone().run_fire(job, at))
    }
}

/// A one-line summary of a run, for the fire record.
pub fn summary(report: &DigestReport) -> String {
    let s = &report.send;
    let edition = report.edition.as_ref().map_or("no edition".to_string(), |e| {
        format!(
            "edition {} ({} articles, {} recipients)",
            e.id, e.article_count, e.recipient_count
        )
    });
    format!(
        "{edition}; {} sent, {} retrying, {} failed, {} suppressed, {} expired{}",
        s.sent,
        s.retrying,
        s.failed,
        s.suppressed,
        s.expired,
        s.paused.as_ref().map(|p| format!("; PAUSED: {p}")).unwrap_or_default()
            + &s.paused_editions
                .iter()
                .map(|(id, reason)| format!("; edition #{id} PAUSED: {reason}"))
                .collect::<String>()
    )
}

fn log_report(job: &str, report: &DigestReport) {
    for source in &report.sources {
        match &source.error {
            Some(e) => warn!(job, source = %source.source, error = %e, "source failed; stored articles kept"),
            None => {
                info!(job, source = %source.source, new = source.new.len(), updated = source.updated, "source polled")
            }
        }
    }
    match &report.edition {
        Some(e) => info!(
            job,
            edition = e.id,
            articles = e.article_count,
            recipients = e.recipient_count,
            "edition created"
        ),
        None => info!(job, "nothing new since the last edition: no edition"),
    }
    let s = &report.send;
    info!(
        job,
        sent = s.sent,
        retrying = s.retrying,
        failed = s.failed,
        suppressed = s.suppressed,
        expired = s.expired,
        "job finished"
    );
    if let Some(reason) = &s.paused {
        error!(job, %reason, "mail channel PAUSED; rows stay queued");
    }
}
