//! What a scheduled fire does in the daemon: claim the (job, scheduled time)
//! in the store so no other instance runs it, take the job's lock so no other
//! work on the job overlaps it here, then run the digest, renewing the
//! claim's lease while it runs. A fire whose claimer's lease ran out (the
//! instance died) is taken over by a live instance and carried on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::channel::Channel;
use super::scheduler::FireHandler;
use crate::app::App;
use crate::clock::Clock;
use crate::config::{DigestJob, JobKind, JobSettings, SocialJob};
use crate::digest::{self, DigestReport};
use crate::health::Health;
use crate::sender::{self, DrainOptions, SendContext};
use crate::social;
use crate::store::{Fire, Store};

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
    pub config: watch::Receiver<Arc<App>>,
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
    pub fn app(&self) -> Arc<App> {
        self.config.borrow().clone()
    }

    fn fire_lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.app().settings.daemon.fire_lease).expect("fits")
    }

    async fn run_fire(self, job: JobSettings, at: DateTime<Utc>) {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_fire(&job.name, at, &self.instance, now, now + self.fire_lease())
            .await;
        match claimed {
            Ok(Some(fire)) => self.carry_out(&job, fire).await,
            Ok(None) => {
                info!(job = %job.name, scheduled = %at, "fire already claimed by another run");
                if job.digest().is_some() {
                    self.help_fire(&job, at).await;
                }
                // The claimer may have died: then the fire is this instance's to take over.
                match self.store.fire(&job.name, at).await {
                    Ok(Some(fire)) => self.adopt(&job, fire).await,
                    Ok(None) => {}
                    Err(e) => warn!(job = %job.name, error = %e, "cannot look at the fire"),
                }
            }
            Err(e) => {
                error!(job = %job.name, scheduled = %at, error = %e, "cannot claim the fire: skipped");
            }
        }
    }

    /// Takes over `fire` if it is unfinished and its claimer's lease has run
    /// out (the claimer died or lost the store), then carries its run on
    /// from where it stopped. Does nothing when the lease still holds or
    /// another instance took the fire first.
    pub async fn adopt(&self, job: &JobSettings, fire: Fire) {
        let now = self.clock.now();
        if fire.finished_at.is_some() || fire.lease_until >= now || fire.claimed_by == self.instance {
            return;
        }
        match self
            .store
            .take_over_fire(&fire, &self.instance, now, now + self.fire_lease())
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                warn!(job = %job.name, scheduled = %fire.scheduled_at, error = %e, "cannot take the fire over");
                return;
            }
        }
        let late = (now - fire.scheduled_at).num_seconds();
        warn!(
            job = %job.name,
            scheduled = %fire.scheduled_at,
            dead_instance = %fire.claimed_by,
            late_secs = late,
            edition = ?fire.edition,
            "fire taken over from an instance whose claim ran out: its run goes on here"
        );
        let fire = Fire {
            claimed_by: self.instance.clone(),
            lease_until: now + self.fire_lease(),
            takeovers: fire.takeovers + 1,
            ..fire
        };
        self.carry_out(job, fire).await;
    }

    /// Runs a fire this instance holds, renewing its lease until the run
    /// ends, then records the end.
    async fn carry_out(&self, job: &JobSettings, fire: Fire) {
        let lock = self.locks.of(&job.name);
        let work = async {
            let _guard = lock.lock().await;
            crate::failpoint::pause(crate::failpoint::FIRE_CLAIMED).await;
            match self.store.hold_of(&job.name).await {
                Ok(Some(hold)) => {
                    warn!(job = %job.name, scheduled = %fire.scheduled_at, reason = %hold.reason, "job is held: the fire is recorded and builds nothing");
                    return format!("held: {}", hold.reason);
                }
                Ok(None) => {}
                Err(e) => warn!(job = %job.name, error = %e, "cannot look up whether the job is held"),
            }
            match &job.kind {
                JobKind::Digest(d) => self.digest_fire(job, d, &fire).await,
                JobKind::Social(s) => self.social_fire(job, s, fire.scheduled_at).await,
            }
        };
        let outcome = tokio::select! {
            outcome = work => outcome,
            never = self.renew(&fire) => match never {},
        };
        match self
            .store
            .finish_fire(&job.name, fire.scheduled_at, &self.instance, &outcome, self.clock.now())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                warn!(job = %job.name, scheduled = %fire.scheduled_at, "the fire was taken over while it ran here: its end is recorded by the instance that took it")
            }
            Err(e) => warn!(job = %job.name, error = %e, "cannot record the end of the fire"),
        }
    }

    /// Renews this instance's lease on `fire` every third of the lease, for
    /// as long as it is polled (the run it goes with is under way).
    async fn renew(&self, fire: &Fire) -> std::convert::Infallible {
        let mut held = true;
        loop {
            let lease = self.app().settings.daemon.fire_lease;
            tokio::time::sleep(lease / 3).await;
            if !held {
                continue;
            }
            let until = self.clock.now() + self.fire_lease();
            match self
                .store
                .renew_fire(&fire.job, fire.scheduled_at, &self.instance, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    warn!(job = %fire.job, scheduled = %fire.scheduled_at, "this instance's claim on the fire ran out and another instance took it over");
                    held = false;
                }
                Err(e) => warn!(job = %fire.job, error = %e, "cannot renew the claim on the fire"),
            }
        }
    }

    /// Sends a share of the edition that another instance's run of this fire
    /// makes: every second, while that run is unfinished and its claim
    /// holds, claims and sends whatever of the job's queue is due. (The
    /// claims keep two instances off the same row; the drainer takes over
    /// rows from an instance that died.)
    async fn help_fire(&self, job: &JobSettings, at: DateTime<Utc>) {
        let ctx = match SendContext::new(self.store.clone(), self.app(), self.clock.clone()).await {
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
            // Helping ends once the fire is finished, its claimer's lease has
            // run out, or it is this instance's own (taken over here).
            match self.store.fire(&job.name, at).await {
                Ok(Some(fire))
                    if fire.finished_at.is_none()
                        && fire.lease_until >= self.clock.now()
                        && fire.claimed_by != self.instance => {}
                Ok(_) => break,
                Err(e) => {
                    warn!(job = %job.name, error = %e, "cannot look at another instance's fire");
                    break;
                }
            }
            if let Ok(_guard) = lock.try_lock() {
                match sender::drain(ctx.clone(), &job.name, &self.drain).await {
                    Ok(report) => {
                        let app = self.app();
                        let settings = &app.settings;
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

    async fn digest_fire(&self, job: &JobSettings, d: &DigestJob, fire: &Fire) -> String {
        let at = fire.scheduled_at;
        match self.digest(job, d, fire).await {
            Ok(report) => {
                log_report(&job.name, &report, fire.edition);
                let retry_initial = self.app().settings.mail.retry_initial;
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

    async fn social_fire(&self, job: &JobSettings, social: &SocialJob, at: DateTime<Utc>) -> String {
        let app = self.app();
        let settings = &app.settings;
        match social::run(
            &self.store,
            settings,
            job,
            social,
            &self.client,
            self.clock.as_ref(),
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

    async fn digest(&self, job: &JobSettings, d: &DigestJob, fire: &Fire) -> anyhow::Result<DigestReport> {
        let ctx = Arc::new(SendContext::new(self.store.clone(), self.app(), self.clock.clone()).await?);
        Ok(digest::run(ctx, job, d, &self.client, self.clock.now(), &self.drain, Some(fire)).await?)
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

/// Logs a fire's run; `made_before` is the edition the fire had made
/// before this instance took it over.
fn log_report(job: &str, report: &DigestReport, made_before: Option<i64>) {
    for source in &report.sources {
        match &source.error {
            Some(e) => warn!(job, source = %source.source, error = %e, "source failed; stored articles kept"),
            None => {
                info!(job, source = %source.source, new = source.new.len(), updated = source.updated, "source polled")
            }
        }
    }
    if report.edition.is_none() {
        match made_before {
            Some(edition) => info!(
                job,
                edition, "the edition was made before the takeover: sending what is left of it"
            ),
            None => info!(job, "nothing new since the last edition: no edition"),
        }
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
