//! The sender drains a job's delivery queue: it claims due rows (each is
//! `sending`, with a lease, before its SMTP transaction starts), sends one
//! envelope per recipient with bounded concurrency and an optional rate
//! limit, and records each classified outcome. 4xx and connection failures
//! retry with exponential backoff up to a maximum age; 5.1.x suppresses the
//! address; 5.7.x pauses the whole channel, since the fault is ours.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::clock;
use crate::config::{MailSettings, Settings};
use crate::mail::{Delivery, MailTransport};
use crate::message::{self, Addressee, EditionParts};
use crate::shutdown::Shutdown;
use crate::store::{Claimed, Outcome, Store, StoreError};
use crate::token::TokenKeys;

/// What one drain did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendReport {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    pub suppressed: u64,
    pub expired: u64,
    /// Rows found `sending` with an expired lease (a crashed run): requeued, flagged in doubt.
    pub recovered_in_doubt: u64,
    /// Why the channel paused, when it did.
    pub paused: Option<String>,
}

impl SendReport {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Sent { .. } => self.sent += 1,
            Outcome::Retry { .. } => self.retrying += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Suppressed { .. } => self.suppressed += 1,
            Outcome::Expired { .. } => self.expired += 1,
            Outcome::Released => {}
        }
    }
}

/// Spaces sends `1/rate` seconds apart across all connections.
struct RateLimit {
    period: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    fn new(per_second: f64) -> RateLimit {
        RateLimit {
            period: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().expect("the rate limit lock is never poisoned");
            let slot = (*next).max(Instant::now());
            *next = slot + self.period;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// What every send task shares.
pub struct SendContext {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub transport: MailTransport,
    pub keys: TokenKeys,
}

/// How a drain behaves around other runs and shutdown.
#[derive(Clone)]
pub struct DrainOptions {
    /// Wait for rows leased by another run to come free (or expire) before
    /// returning. One-shot commands do; the daemon's drainer comes back later.
    pub wait_for_leases: bool,
    pub shutdown: Shutdown,
    /// After shutdown, how long in-flight sends may take to finish.
    pub grace: Duration,
}

impl DrainOptions {
    /// For a one-shot command: finish everything, including rows an interrupted run left.
    pub fn to_completion() -> DrainOptions {
        DrainOptions {
            wait_for_leases: true,
            shutdown: Shutdown::never(),
            grace: Duration::ZERO,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot set up the mail transport: {0}")]
    Transport(String),
}

impl SendContext {
    /// The transport and token keys for `settings`, on `store`.
    pub async fn new(store: Store, settings: Arc<Settings>) -> Result<SendContext, ContextError> {
        let keys = store.token_keys(&settings.tokens).await?;
        let transport = MailTransport::build(&settings.mail).map_err(ContextError::Transport)?;
        Ok(SendContext {
            store,
            settings,
            transport,
            keys,
        })
    }
}

struct Run {
    ctx: Arc<SendContext>,
    rate: Option<RateLimit>,
    paused: AtomicBool,
    pause_reason: Mutex<Option<String>>,
    shutdown: Shutdown,
    /// Rows whose sends are under way.
    in_flight: Mutex<HashSet<i64>>,
}

/// The delay before retry number `attempts` (1-based): the initial delay,
/// doubling each time, at most six hours, with up to 10% jitter.
pub fn backoff(initial: Duration, attempts: i64, id: i64) -> Duration {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    let base = initial
        .saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(6 * 3600));
    let jitter = (id as u64).wrapping_mul(2_654_435_761) % 1000;
    base + base.mul_f64(jitter as f64 / 10_000.0)
}

fn lease_for(mail: &MailSettings) -> chrono::Duration {
    chrono::Duration::from_std(mail.send_timeout * 2 + Duration::from_secs(5)).expect("the lease fits")
}

/// A claimed row on its way to a send worker; the permit is one of the
/// run's `sending` slots, given back once the row's outcome is recorded.
struct Work {
    row: Claimed,
    parts: Arc<EditionParts>,
    slot: OwnedSemaphorePermit,
}

/// A finished attempt on its way to the outcome writer.
struct Done {
    id: i64,
    email: String,
    outcome: Outcome,
    slot: OwnedSemaphorePermit,
}

/// Outcomes written in one transaction at most.
const OUTCOMES_PER_WRITE: usize = 512;

/// Sends every due delivery of `job` until none is left, the channel pauses
/// or shutdown is triggered.
///
/// Three parts run at once: this loop claims due rows in batches (each row is
/// `sending`, with a lease, before it is handed on), `max_connections` workers
/// each send one message at a time, and one writer records the outcomes in
/// batched transactions. At most `max_connections` rows are claimed and not
/// yet recorded at any time (a row's slot is given back only once its outcome
/// is written), so memory stays constant whatever the list size, and a crash
/// leaves at most that many rows to be found in doubt.
pub async fn drain(ctx: Arc<SendContext>, job: &str, options: &DrainOptions) -> Result<SendReport, StoreError> {
    let mail = &ctx.settings.mail;
    let recovered = ctx.store.recover_expired_leases(job, clock::now()).await?;
    if recovered > 0 {
        warn!(
            job,
            rows = recovered,
            "requeued deliveries left sending by an interrupted run; flagged in doubt"
        );
    }
    let run = Arc::new(Run {
        ctx: ctx.clone(),
        rate: mail.rate_limit.map(RateLimit::new),
        paused: AtomicBool::new(false),
        pause_reason: Mutex::new(None),
        shutdown: options.shutdown.clone(),
        in_flight: Mutex::new(HashSet::new()),
    });
    let workers = mail.max_connections.max(1);
    let total_slots = workers;
    let slots = Arc::new(Semaphore::new(total_slots));
    let (work_tx, work_rx) = mpsc::channel::<Work>(total_slots);
    let work_rx = Arc::new(tokio::sync::Mutex::new(work_rx));
    let (done_tx, done_rx) = mpsc::channel::<Done>(total_slots);
    let writer = tokio::spawn(write_outcomes(run.clone(), slots.clone(), done_rx));
    let mut pool = JoinSet::new();
    for _ in 0..workers {
        pool.spawn(worker(run.clone(), work_rx.clone(), done_tx.clone()));
    }
    drop(done_tx);

    let mut recovered_total = recovered;
    let claimed = claim_loop(
        &ctx,
        job,
        options,
        &run,
        &slots,
        total_slots,
        &work_tx,
        &mut recovered_total,
    )
    .await;
    drop(work_tx);

    let mut shutdown = options.shutdown.clone();
    let grace = if shutdown.is_triggered() || claimed.is_err() {
        options.grace
    } else {
        Duration::MAX
    };
    let finished = tokio::select! {
        finished = tokio::time::timeout(grace, async { while pool.join_next().await.is_some() {} }) => finished.is_ok(),
        // Shutdown while the last sends finish: they get the grace period from now.
        () = shutdown.wait(), if grace == Duration::MAX => {
            tokio::time::timeout(options.grace, async { while pool.join_next().await.is_some() {} }).await.is_ok()
        }
    };
    if !finished {
        // The grace period is over: cut the remaining sends off. They may
        // have reached the server, so they go back to the queue in doubt.
        pool.abort_all();
        while pool.join_next().await.is_some() {}
    }
    let mut report = writer.await.expect("the outcome writer does not panic")?;
    claimed?;
    let cut: Vec<i64> = run.in_flight.lock().expect("not poisoned").drain().collect();
    if !cut.is_empty() {
        warn!(
            job,
            rows = cut.len(),
            "shutdown grace period over: unfinished sends requeued in doubt"
        );
        let outcome = Outcome::Retry {
            reply: "interrupted by shutdown".to_string(),
            at: clock::now(),
            in_doubt: true,
        };
        let batch: Vec<(i64, &Outcome, &str)> = cut.iter().map(|id| (*id, &outcome, "")).collect();
        ctx.store.record_outcomes(&batch, clock::now()).await?;
        report.retrying += cut.len() as u64;
    }
    report.recovered_in_doubt = recovered_total;
    report.paused = run.pause_reason.lock().expect("not poisoned").clone();
    Ok(report)
}

/// Claims due rows in batches and hands them to the workers, until none is
/// left (after waiting out other runs' leases, when asked to), the channel
/// pauses or shutdown is triggered.
#[allow(clippy::too_many_arguments)]
async fn claim_loop(
    ctx: &SendContext,
    job: &str,
    options: &DrainOptions,
    run: &Run,
    slots: &Arc<Semaphore>,
    total_slots: usize,
    work: &mpsc::Sender<Work>,
    recovered: &mut u64,
) -> Result<(), StoreError> {
    let mail = &ctx.settings.mail;
    let mut shutdown = options.shutdown.clone();
    let mut editions: HashMap<i64, Arc<EditionParts>> = HashMap::new();
    // Claim at least a quarter of the slots at a time, so the store sees one
    // claim per several messages rather than one per message.
    let min_batch = (total_slots / 4).max(1) as u32;
    while !run.paused.load(Ordering::SeqCst) && !shutdown.is_triggered() {
        let first = tokio::select! {
            permits = slots.clone().acquire_many_owned(min_batch) => match permits {
                Ok(permits) => permits,
                Err(_) => break, // closed: the outcome writer failed
            },
            () = shutdown.wait() => break,
        };
        let mut held: Vec<OwnedSemaphorePermit> = Vec::with_capacity(total_slots);
        let mut first = first;
        while first.num_permits() > 1 {
            held.push(first.split(1).expect("more than one permit"));
        }
        held.push(first);
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            held.push(permit);
        }
        let now = clock::now();
        let batch = ctx
            .store
            .claim_deliveries(job, held.len(), now, now + lease_for(mail))
            .await?;
        if batch.is_empty() {
            drop(held);
            if slots.available_permits() < total_slots {
                // Rows are still in flight: once they are recorded, retries
                // may be due again (or the queue is done).
                match slots.acquire_many(total_slots as u32).await {
                    Ok(all) => drop(all),
                    Err(_) => break,
                }
                continue;
            }
            // Rows still leased belong to a run that died (or is finishing
            // elsewhere): wait out the lease, then take back what is left.
            if !options.wait_for_leases {
                break;
            }
            let Some(until) = ctx.store.earliest_lease(job).await? else {
                break;
            };
            let wait = (until - now).to_std().unwrap_or_default() + Duration::from_millis(10);
            info!(
                job,
                wait_ms = wait.as_millis() as u64,
                "waiting for leased deliveries of an interrupted run"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.wait() => break,
            }
            let taken = ctx.store.recover_expired_leases(job, clock::now()).await?;
            if taken > 0 {
                warn!(
                    job,
                    rows = taken,
                    "requeued deliveries left sending by an interrupted run; flagged in doubt"
                );
            }
            *recovered += taken;
            continue;
        }
        for (row, slot) in batch.into_iter().zip(held) {
            let parts = match editions.get(&row.edition_id) {
                Some(parts) => parts.clone(),
                None => {
                    let e = ctx.store.edition(row.edition_id).await?;
                    let title = ctx
                        .settings
                        .list(&e.list_name)
                        .map_or(e.list_name.clone(), |l| l.title.clone());
                    let parts = Arc::new(EditionParts::new(
                        e.id,
                        &e.nonce,
                        &e.list_name,
                        &title,
                        &e.subject,
                        &e.html,
                        &e.text,
                    ));
                    editions.insert(e.id, parts.clone());
                    parts
                }
            };
            if work.send(Work { row, parts, slot }).await.is_err() {
                break;
            }
        }
    }
    Ok(())
}

/// One of `max_connections` workers: takes claimed rows one at a time and
/// sends each (or releases it, once the run pauses or shuts down).
async fn worker(run: Arc<Run>, work: Arc<tokio::sync::Mutex<mpsc::Receiver<Work>>>, done: mpsc::Sender<Done>) {
    loop {
        let next = work.lock().await.recv().await;
        let Some(Work { row, parts, slot }) = next else {
            return;
        };
        run.in_flight.lock().expect("not poisoned").insert(row.id);
        let outcome = run.send_one(&row, &parts).await;
        let finished = Done {
            id: row.id,
            email: row.email,
            outcome,
            slot,
        };
        // The writer records it from here; if the writer is gone the row stays
        // `sending` and comes back, in doubt, when its lease runs out.
        let _ = done.send(finished).await;
        run.in_flight.lock().expect("not poisoned").remove(&row.id);
    }
}

/// Records outcomes as they come, as many per transaction as have arrived
/// (up to [`OUTCOMES_PER_WRITE`]), and counts them.
/// If the store fails, the run stops: rows left `sending` come back in doubt
/// when their leases run out.
async fn write_outcomes(
    run: Arc<Run>,
    slots: Arc<Semaphore>,
    mut done: mpsc::Receiver<Done>,
) -> Result<SendReport, StoreError> {
    let mut report = SendReport::default();
    let mut batch: Vec<Done> = Vec::with_capacity(OUTCOMES_PER_WRITE);
    while done.recv_many(&mut batch, OUTCOMES_PER_WRITE).await > 0 {
        let rows: Vec<(i64, &Outcome, &str)> = batch.iter().map(|d| (d.id, &d.outcome, d.email.as_str())).collect();
        if let Err(e) = run.ctx.store.record_outcomes(&rows, clock::now()).await {
            error!(error = %e, "cannot record delivery outcomes; stopping this run");
            run.paused.store(true, Ordering::SeqCst);
            slots.close();
            return Err(e);
        }
        for d in batch.drain(..) {
            report.count(d.outcome);
            drop(d.slot);
        }
    }
    Ok(report)
}

impl Run {
    async fn send_one(&self, row: &Claimed, parts: &EditionParts) -> Outcome {
        let ctx = &self.ctx;
        let mail = &ctx.settings.mail;
        if self.paused.load(Ordering::SeqCst) || self.shutdown.is_triggered() {
            return Outcome::Released;
        }
        if row.suppressed > 0 {
            return Outcome::Suppressed {
                reason: "the address is on the suppression list".into(),
            };
        }
        if row.status != "active" {
            return Outcome::Suppressed {
                reason: format!("the subscriber is {}", row.status),
            };
        }
        if let Some(rate) = &self.rate {
            rate.wait().await;
            if self.shutdown.is_triggered() {
                return Outcome::Released;
            }
        }
        let site = &ctx.settings.site;
        let to = Addressee {
            email: &row.email,
            name: row.name.as_deref(),
            uid: &row.uid,
            attributes: serde_json::from_str(&row.attributes).unwrap_or_default(),
            unsubscribe_url: message::unsubscribe_url(site, &ctx.keys, &row.uid),
            preferences_url: message::preferences_url(site, &ctx.keys, &row.uid),
        };
        let built = message::build(
            site,
            parts,
            &to,
            message::message_id(site, parts, row.id),
            "",
            SystemTime::from(clock::now()),
            ctx.transport.body_encoding().await,
        );
        let message = match built {
            Ok(m) => m,
            Err(e) => {
                return Outcome::Failed {
                    reply: e.to_string(),
                    suppress: false,
                };
            }
        };
        let label = format!("{}-e{}-d{}-{}", parts.list_name, parts.edition_id, row.id, row.email);
        let delivery = ctx.transport.send(message, &label, mail.send_timeout).await;
        let now = clock::now();
        match delivery {
            Delivery::Accepted(reply) => {
                info!(delivery = row.id, to = %row.email, %reply, "sent");
                Outcome::Sent { reply }
            }
            Delivery::Transient { reply, in_doubt } => {
                let age = now - DateTime::<Utc>::from_timestamp_millis(row.created_at).unwrap_or(now);
                if age.to_std().unwrap_or_default() > mail.retry_max_age {
                    warn!(delivery = row.id, to = %row.email, %reply, "gave up: older than retry_max_age");
                    return Outcome::Expired { reply };
                }
                let at = now
                    + chrono::Duration::from_std(backoff(mail.retry_initial, row.attempts, row.id))
                        .expect("backoff fits");
                warn!(delivery = row.id, to = %row.email, %reply, in_doubt, retry_at = %at, "deferred");
                Outcome::Retry { reply, at, in_doubt }
            }
            Delivery::BadAddress(reply) => {
                warn!(delivery = row.id, to = %row.email, %reply, "address rejected; suppressed");
                Outcome::Failed { reply, suppress: true }
            }
            Delivery::Rejected(reply) => {
                warn!(delivery = row.id, to = %row.email, %reply, "message rejected");
                Outcome::Failed { reply, suppress: false }
            }
            Delivery::Policy(reply) => {
                error!(delivery = row.id, %reply, "the server refused us on policy or authentication grounds: mail channel paused");
                self.paused.store(true, Ordering::SeqCst);
                self.pause_reason
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert_with(|| reply.clone());
                Outcome::Retry {
                    reply,
                    at: now,
                    in_doubt: false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_spaces_sends_evenly() {
        let limit = RateLimit::new(10.0);
        let start = Instant::now();
        for _ in 0..5 {
            limit.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(400));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mail = MailSettings {
            transport: crate::config::TransportSettings::File { dir: "x".into() },
            max_connections: 1,
            rate_limit: None,
            send_timeout: Duration::from_secs(60),
            retry_initial: Duration::from_secs(300),
            retry_max_age: Duration::from_secs(3 * 86400),
            dkim: None,
        };
        let secs = |attempts| backoff(mail.retry_initial, attempts, 1).as_secs();
        assert!((300..=330).contains(&secs(1)), "{}", secs(1));
        assert!((600..=660).contains(&secs(2)), "{}", secs(2));
        assert!((1200..=1320).contains(&secs(3)), "{}", secs(3));
        assert!((6 * 3600..=6 * 3600 + 2160).contains(&secs(15)), "{}", secs(15));
    }
}
