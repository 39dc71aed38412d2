//! The sender drains a job's delivery queue: it claims due rows (each is
//! `sending`, with a lease, before its SMTP transaction starts), sends one
//! envelope per recipient with bounded concurrency and an optional rate
//! limit, and records each classified outcome. 4xx and connection failures
//! retry with exponential backoff up to a maximum age; 5.1.x suppresses the
//! address; a refusal of the session itself (greeting, EHLO, STARTTLS, AUTH,
//! MAIL FROM) pauses the whole channel and leaves the row untouched, since
//! no recipient is at fault, and so does a run of temporary failures with
//! nothing accepted between them (the circuit breaker: the relay is down or
//! throttling us). An edition whose
//! permanent failures go over the error budget is paused in the store until
//! `herald resume`, instead of burning through the rest of the list.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::app::App;
use crate::clock;
use crate::config::MailSettings;
use crate::mail::message::{self, Addressee, EditionParts};
use crate::mail::{Delivery, MailTransport, TransportError};
use crate::retry;
use crate::shutdown::Shutdown;
use crate::store::{Attempt, Claimed, Lease, Outcome, Store, StoreError, SubscriberStatus};
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
    pub paused: Option<Pause>,
    /// Editions this run paused for going over the error budget, with why.
    pub paused_editions: Vec<(i64, String)>,
}

/// Why a run stopped sending on the whole channel before its queue was empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pause {
    /// The server refused the session (a 5xx at the greeting, EHLO,
    /// STARTTLS, AUTH or MAIL FROM) or it could not be used safely: the
    /// fault is the relay's or ours, not any recipient's. Names the stage.
    Session(String),
    /// The circuit breaker opened: this many temporary failures in a row,
    /// with nothing accepted between them; the last one's reply.
    RelayDown { failures: u64, reply: String },
}

impl std::fmt::Display for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pause::Session(reply) => f.write_str(reply),
            Pause::RelayDown { failures, reply } => write!(
                f,
                "circuit open: {failures} sends in a row failed temporarily with none accepted (last: {reply})"
            ),
        }
    }
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
    pub app: Arc<App>,
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
    #[error("cannot set up the mail transport: {}", crate::error_chain(.0))]
    Transport(#[from] TransportError),
}

impl SendContext {
    /// The transport and token keys for `app`, on `store`.
    pub async fn new(store: Store, app: Arc<App>) -> Result<SendContext, ContextError> {
        let keys = store.token_keys(&app.tokens).await?;
        let transport = MailTransport::build(&app.settings.mail, app.dkim.clone())?;
        Ok(SendContext {
            store,
            app,
            transport,
            keys,
        })
    }
}

struct Run {
    ctx: Arc<SendContext>,
    /// The job whose queue this run drains, for the log lines.
    job: String,
    rate: Option<RateLimit>,
    paused: AtomicBool,
    pause_reason: Mutex<Option<Pause>>,
    /// Temporary failures since the last message the server took or refused for good.
    failing_in_row: AtomicU64,
    /// Editions this run paused, each with the claim round it paused at:
    /// rows claimed before it are released unsent (rows claimed later can
    /// only come after a `herald resume`, and are sent).
    paused_editions: Mutex<HashMap<i64, u64>>,
    shutdown: Shutdown,
    /// Rows whose sends are under way, with their leases.
    in_flight: Mutex<HashSet<(i64, i64)>>,
}

/// How often a drain logs its progress (counts and rate) at info.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How long a claim holds a row: a send (session set-up and a transaction,
/// each step bounded by `send_timeout`) and the wait for a rate-limit slot
/// behind the other connections' rows. A send that would outlast it is not
/// started, or is cut off (in doubt once its message began to go).
fn lease_for(mail: &MailSettings) -> chrono::Duration {
    let queue = match mail.rate_limit {
        Some(per_second) => Duration::from_secs_f64(mail.max_connections.max(1) as f64 / per_second),
        None => Duration::ZERO,
    };
    chrono::Duration::from_std(mail.send_timeout * 4 + Duration::from_secs(5) + queue).expect("the lease fits")
}

/// A claimed row on its way to a send worker.
struct Work {
    row: Claimed,
    parts: Arc<EditionParts>,
    /// The dispatcher's round that claimed it.
    round: u64,
}

/// A finished attempt on its way to the dispatcher.
struct Done {
    id: i64,
    lease_until: i64,
    edition_id: i64,
    round: u64,
    email: String,
    outcome: Outcome,
}

/// Per edition, the messages tried in this run and those refused for good.
#[derive(Default)]
struct Budget(HashMap<i64, (u64, u64)>);

impl Budget {
    /// Counts `done`; returns why its edition must pause when this outcome
    /// takes it over `budget` (once: its counts start again afterwards).
    fn count(&mut self, budget: crate::config::ErrorBudget, done: &Done) -> Option<String> {
        let refusal = match &done.outcome {
            Outcome::Sent { .. } => None,
            Outcome::Failed { reply, .. } => Some(reply),
            _ => return None,
        };
        let (attempts, failures) = self.0.entry(done.edition_id).or_default();
        *attempts += 1;
        *failures += u64::from(refusal.is_some());
        let reply = refusal.filter(|_| budget.exceeded(*attempts, *failures))?;
        let reason = format!(
            "{failures} of {attempts} messages refused for good, over the {}% error budget (last: {reply})",
            budget.percent
        );
        self.0.remove(&done.edition_id);
        Some(reason)
    }
}

/// Sends every due delivery of `job` until none is left, the channel pauses
/// or shutdown is triggered.
///
/// `max_connections` workers each send one message at a time; one dispatcher
/// records their outcomes and, in the same store transaction right after,
/// claims the rows that take their place (each row is `sending`, with a
/// lease, before it is handed on). At most `max_connections` rows are claimed
/// and not yet recorded at any time, so memory stays constant whatever the
/// list size, and a crash leaves at most that many rows to be found in doubt.
pub async fn drain(ctx: Arc<SendContext>, job: &str, options: &DrainOptions) -> Result<SendReport, StoreError> {
    let mail = &ctx.app.settings.mail;
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
        job: job.to_string(),
        rate: mail.rate_limit.map(RateLimit::new),
        paused: AtomicBool::new(false),
        pause_reason: Mutex::new(None),
        failing_in_row: AtomicU64::new(0),
        paused_editions: Mutex::new(HashMap::new()),
        shutdown: options.shutdown.clone(),
        in_flight: Mutex::new(HashSet::new()),
    });
    let slots = mail.max_connections.max(1);
    let (work_tx, work_rx) = mpsc::channel::<Work>(slots);
    let work_rx = Arc::new(tokio::sync::Mutex::new(work_rx));
    let (done_tx, done_rx) = mpsc::channel::<Done>(slots);
    let mut pool = JoinSet::new();
    for _ in 0..slots {
        pool.spawn(worker(run.clone(), work_rx.clone(), done_tx.clone()));
    }
    drop(done_tx);
    let dispatcher = tokio::spawn(dispatch(
        run.clone(),
        job.to_string(),
        options.clone(),
        slots,
        work_tx,
        done_rx,
    ));

    let finished = {
        let mut shutdown = options.shutdown.clone();
        let all_done = async { while pool.join_next().await.is_some() {} };
        tokio::pin!(all_done);
        tokio::select! {
            () = &mut all_done => true,
            // Shutdown while sends are under way: they get the grace period from now.
            () = shutdown.wait() => tokio::time::timeout(options.grace, &mut all_done).await.is_ok(),
        }
    };
    if !finished {
        // The grace period is over: cut the remaining sends off. They may
        // have reached the server, so they go back to the queue in doubt.
        pool.abort_all();
        while pool.join_next().await.is_some() {}
    }
    let dispatched = dispatcher.await.expect("the dispatcher does not panic");
    // Rows handed on but never taken by a worker (all were cut off) were not sent.
    let mut untouched = Vec::new();
    while let Ok(work) = work_rx.lock().await.try_recv() {
        untouched.push((work.row.id, work.row.lease_until));
    }
    let cut: Vec<(i64, i64)> = run.in_flight.lock().expect("not poisoned").drain().collect();
    let mut report = dispatched?;
    report.recovered_in_doubt += recovered;
    if !cut.is_empty() || !untouched.is_empty() {
        warn!(
            job,
            rows = cut.len(),
            "shutdown grace period over: unfinished sends requeued in doubt"
        );
        let interrupted = Outcome::Retry {
            reply: "interrupted by shutdown".to_string(),
            at: clock::now(),
            in_doubt: true,
        };
        let batch: Vec<Attempt> = cut
            .iter()
            .map(|(id, lease_until)| Attempt {
                id: *id,
                lease_until: *lease_until,
                outcome: &interrupted,
                email: "",
            })
            .chain(untouched.iter().map(|(id, lease_until)| Attempt {
                id: *id,
                lease_until: *lease_until,
                outcome: &Outcome::Released,
                email: "",
            }))
            .collect();
        ctx.store
            .record_outcomes(crate::instance::id(), &batch, clock::now())
            .await?;
        report.retrying += cut.len() as u64;
    }
    report.paused = run.pause_reason.lock().expect("not poisoned").clone();
    ctx.transport.close().await;
    Ok(report)
}

/// The shared parts of the editions a run sends, built once each.
#[derive(Default)]
struct Editions(HashMap<i64, Arc<EditionParts>>);

impl Editions {
    async fn get(&mut self, ctx: &SendContext, id: i64) -> Result<Arc<EditionParts>, StoreError> {
        if let Some(parts) = self.0.get(&id) {
            return Ok(parts.clone());
        }
        let e = ctx.store.edition(id).await?;
        let title = ctx
            .app
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
        self.0.insert(id, parts.clone());
        Ok(parts)
    }
}

/// Records outcomes as they come and claims a due row for every slot they
/// free, in one transaction per round (as many outcomes as have arrived),
/// and hands the claimed rows to the workers. Stops claiming once the queue is
/// empty (after waiting out other runs' leases, when asked to), the channel
/// pauses or shutdown is triggered, and returns once every claimed row is
/// recorded. If the store fails, the run stops: rows left `sending` come back
/// in doubt when their leases run out.
async fn dispatch(
    run: Arc<Run>,
    job: String,
    options: DrainOptions,
    slots: usize,
    work: mpsc::Sender<Work>,
    mut done: mpsc::Receiver<Done>,
) -> Result<SendReport, StoreError> {
    let ctx = &run.ctx;
    let mut shutdown = options.shutdown.clone();
    let mut report = SendReport::default();
    let mut editions = Editions::default();
    let mut budget = Budget::default();
    // Counts claim rounds, so a row can be told to have been claimed before its edition paused.
    let mut round = 0u64;
    let mut finished: Vec<Done> = Vec::with_capacity(slots);
    // Rows claimed and not yet recorded.
    let mut claimed = 0usize;
    // The last claim came back short: claim again only once nothing is in flight.
    let mut drained = false;
    // Progress is logged every PROGRESS_EVERY while rows go out.
    let started = Instant::now();
    let mut progress_at = started + PROGRESS_EVERY;
    loop {
        let stopping = run.paused.load(Ordering::SeqCst) || shutdown.is_triggered();
        let in_flight_after = claimed - finished.len();
        let want = if stopping || (drained && in_flight_after > 0) {
            0
        } else {
            slots - in_flight_after
        };
        for d in &finished {
            if run.claimed_before_pause(d.edition_id, d.round) {
                continue;
            }
            let Some(reason) = budget.count(ctx.app.settings.mail.error_budget, d) else {
                continue;
            };
            run.paused_editions
                .lock()
                .expect("not poisoned")
                .insert(d.edition_id, round);
            if let Err(e) = ctx.store.pause_edition(d.edition_id, &reason, clock::now()).await {
                error!(error = %e, "cannot pause an edition over its error budget; stopping this run");
                run.paused.store(true, Ordering::SeqCst);
                return Err(e);
            }
            error!(
                job,
                edition = d.edition_id,
                %reason,
                "edition PAUSED over its error budget: its rows stay queued until `herald resume`"
            );
            report.paused_editions.push((d.edition_id, reason));
        }
        if !finished.is_empty() || want > 0 {
            let outcomes: Vec<Attempt> = finished
                .iter()
                .map(|d| Attempt {
                    id: d.id,
                    lease_until: d.lease_until,
                    outcome: &d.outcome,
                    email: d.email.as_str(),
                })
                .collect();
            let now = clock::now();
            let lease = Lease {
                by: crate::instance::id(),
                now,
                until: now + lease_for(&ctx.app.settings.mail),
            };
            round += 1;
            let rows = match ctx.store.record_and_claim(&outcomes, &job, want, &lease).await {
                Ok((rows, written)) => {
                    let lost = outcomes.len() as u64 - written;
                    if lost > 0 {
                        warn!(
                            job,
                            rows = lost,
                            "outcomes not recorded: the rows' leases ran out and were taken back (they are in doubt)"
                        );
                    }
                    rows
                }
                Err(e) => {
                    error!(error = %e, "cannot record delivery outcomes or claim deliveries; stopping this run");
                    run.paused.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            };
            for d in finished.drain(..) {
                report.count(d.outcome);
            }
            if Instant::now() >= progress_at {
                progress_at = Instant::now() + PROGRESS_EVERY;
                info!(
                    job,
                    sent = report.sent,
                    retrying = report.retrying,
                    failed = report.failed,
                    suppressed = report.suppressed,
                    per_second = (report.sent as f64 / started.elapsed().as_secs_f64()).round() as u64,
                    "sending"
                );
            }
            claimed = in_flight_after + rows.len();
            if want > 0 {
                drained = rows.len() < want;
            }
            for row in rows {
                let parts = editions.get(ctx, row.edition_id).await?;
                // The channel holds as many rows as there are slots: this never waits.
                if work.send(Work { row, parts, round }).await.is_err() {
                    break;
                }
            }
        }
        if claimed == 0 {
            if stopping {
                break;
            }
            // Nothing due and nothing in flight. Rows still leased belong to
            // a run that died (or is finishing elsewhere): wait out the
            // lease, then take back what is left.
            if !options.wait_for_leases {
                break;
            }
            let Some(until) = ctx.store.earliest_lease(&job).await? else {
                break;
            };
            let wait = (until - clock::now()).to_std().unwrap_or_default() + Duration::from_millis(10);
            info!(
                job,
                wait_ms = wait.as_millis() as u64,
                "waiting for leased deliveries of an interrupted run"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.wait() => break,
            }
            let taken = ctx.store.recover_expired_leases(&job, clock::now()).await?;
            if taken > 0 {
                warn!(
                    job,
                    rows = taken,
                    "requeued deliveries left sending by an interrupted run; flagged in doubt"
                );
            }
            report.recovered_in_doubt += taken;
            drained = false;
            continue;
        }
        if done.recv_many(&mut finished, slots).await == 0 {
            break; // every worker is gone
        }
    }
    Ok(report)
}

/// One of `max_connections` workers: takes claimed rows one at a time and
/// sends each (or releases it, once the run pauses or shuts down).
async fn worker(run: Arc<Run>, work: Arc<tokio::sync::Mutex<mpsc::Receiver<Work>>>, done: mpsc::Sender<Done>) {
    loop {
        let next = work.lock().await.recv().await;
        let Some(Work { row, parts, round }) = next else {
            return;
        };
        run.in_flight
            .lock()
            .expect("not poisoned")
            .insert((row.id, row.lease_until));
        let outcome = if run.claimed_before_pause(row.edition_id, round) {
            Outcome::Released
        } else {
            run.send_one(&row, &parts).await
        };
        let finished = Done {
            id: row.id,
            lease_until: row.lease_until,
            edition_id: row.edition_id,
            round,
            email: row.email,
            outcome,
        };
        // The dispatcher records it from here; if the dispatcher is gone the
        // row stays `sending` and comes back, in doubt, when its lease runs out.
        let _ = done.send(finished).await;
        run.in_flight
            .lock()
            .expect("not poisoned")
            .remove(&(row.id, row.lease_until));
    }
}

impl Run {
    /// True when a row of `edition` claimed in `round` was claimed before
    /// this run paused the edition: it is not sent (nor counted again).
    fn claimed_before_pause(&self, edition: i64, round: u64) -> bool {
        self.paused_editions
            .lock()
            .expect("not poisoned")
            .get(&edition)
            .is_some_and(|paused_at| round <= *paused_at)
    }

    /// Stops this run's sends on the whole channel; the first reason is kept.
    fn pause(&self, why: Pause) {
        let mut reason = self.pause_reason.lock().expect("not poisoned");
        if reason.is_none() {
            error!(reason = %why, "mail channel PAUSED; unsent rows stay queued");
            *reason = Some(why);
        }
        self.paused.store(true, Ordering::SeqCst);
    }

    async fn send_one(&self, row: &Claimed, parts: &EditionParts) -> Outcome {
        let ctx = &self.ctx;
        let mail = &ctx.app.settings.mail;
        if self.paused.load(Ordering::SeqCst) || self.shutdown.is_triggered() {
            return Outcome::Released;
        }
        if row.suppressed > 0 {
            return Outcome::Suppressed {
                reason: "the address is on the suppression list".into(),
            };
        }
        if row.status != SubscriberStatus::Active {
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
        let site = &ctx.app.settings.site;
        let attributes = serde_json::from_str(&row.attributes).unwrap_or_default();
        let to = Addressee::new(site, &ctx.keys, &row.email, row.name.as_deref(), &row.uid, attributes);
        let message_id = message::message_id(site, parts, row.id);
        let date = SystemTime::from(clock::now());
        let build = |encoding| message::build(site, parts, &to, message_id.clone(), "", date, encoding);
        let label = format!("{}-e{}-d{}-{}", parts.list_name, parts.edition_id, row.id, row.email);
        // Nothing goes out once the lease is nearly over: another instance may take the row then.
        let lease_left = DateTime::<Utc>::from_timestamp_millis(row.lease_until).map(|until| until - clock::now());
        let deadline = lease_left.map(|left| Instant::now() + left.to_std().unwrap_or_default());
        let delivery = ctx.transport.send(&build, &label, mail.send_timeout, deadline).await;
        let now = clock::now();
        let failing_in_row = match &delivery {
            Delivery::Transient { .. } => self.failing_in_row.fetch_add(1, Ordering::SeqCst) + 1,
            Delivery::Abandoned => self.failing_in_row.load(Ordering::SeqCst),
            _ => {
                self.failing_in_row.store(0, Ordering::SeqCst);
                0
            }
        };
        if failing_in_row >= mail.breaker_after
            && let Delivery::Transient { reply, .. } = &delivery
        {
            self.pause(Pause::RelayDown {
                failures: failing_in_row,
                reply: reply.clone(),
            });
        }
        match delivery {
            Delivery::Accepted(reply) => {
                debug!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, "sent");
                Outcome::Sent { reply }
            }
            Delivery::Transient { reply, in_doubt } => {
                let age = now - DateTime::<Utc>::from_timestamp_millis(row.created_at).unwrap_or(now);
                if age.to_std().unwrap_or_default() > mail.retry_max_age {
                    warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, "gave up: older than retry_max_age");
                    return Outcome::Expired { reply };
                }
                let at = now
                    + chrono::Duration::from_std(retry::backoff(mail.retry_initial, row.attempts, row.id))
                        .expect("backoff fits");
                warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, in_doubt, retry_at = %at, "deferred");
                Outcome::Retry { reply, at, in_doubt }
            }
            Delivery::BadAddress(reply) => {
                warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, "address rejected; suppressed");
                Outcome::Failed { reply, suppress: true }
            }
            Delivery::Rejected(reply) => {
                warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, %reply, "message rejected");
                Outcome::Failed { reply, suppress: false }
            }
            Delivery::SessionRefused(reply) => {
                self.pause(Pause::Session(reply));
                Outcome::Released
            }
            Delivery::Abandoned => {
                warn!(job = %self.job, edition = row.edition_id, delivery = row.id, to = %row.email, "not sent: its lease ran out before DATA; back to the queue");
                Outcome::Released
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
    fn the_budget_pauses_an_edition_once_its_failures_pass_the_share_after_the_minimum() {
        let budget = crate::config::ErrorBudget {
            percent: 20,
            min_attempts: 10,
        };
        let done = |edition_id, failed: bool| Done {
            id: 1,
            lease_until: 0,
            edition_id,
            round: 1,
            email: "a@example.org".into(),
            outcome: if failed {
                Outcome::Failed {
                    reply: "550 5.1.1 no such user".into(),
                    suppress: true,
                }
            } else {
                Outcome::Sent { reply: "250 ok".into() }
            },
        };
        let mut counts = Budget::default();
        // 8 sent, 2 failed: 20% is within the budget.
        for i in 0..10 {
            assert_eq!(counts.count(budget, &done(1, i % 5 == 0)), None);
        }
        // A third failure: 3 of 11 is over 20%.
        let reason = counts.count(budget, &done(1, true)).expect("over the budget");
        assert!(reason.starts_with("3 of 11 messages refused for good, over the 20% error budget (last: 550 5.1.1"));
        // Other editions keep their own counts; retries and releases do not count.
        assert_eq!(counts.count(budget, &done(2, true)), None, "below the minimum");
        let retry = Done {
            outcome: Outcome::Released,
            ..done(2, true)
        };
        assert_eq!(counts.count(budget, &retry), None);
        assert_eq!(counts.0[&2], (1, 1));
    }
}
