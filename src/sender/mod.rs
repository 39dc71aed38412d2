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

mod dispatch;
mod worker;

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
use crate::bounce::verp;
use crate::clock::Clock;
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

/// What every send task shares.
pub struct SendContext {
    pub store: Store,
    pub app: Arc<App>,
    pub transport: MailTransport,
    pub keys: TokenKeys,
    /// Every time a send reads: leases, outcomes, `Date` headers.
    pub clock: Arc<dyn Clock>,
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
    /// The transport and token keys for `app`, on `store`, on `clock`'s time.
    pub async fn new(store: Store, app: Arc<App>, clock: Arc<dyn Clock>) -> Result<SendContext, ContextError> {
        let keys = store.token_keys(&app.tokens).await?;
        let transport = MailTransport::build(&app.settings.mail, app.dkim.clone())?;
        Ok(SendContext {
            store,
            app,
            transport,
            keys,
            clock,
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
    in_flight: Mutex<HashSet<(i64, DateTime<Utc>)>>,
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
    lease_until: DateTime<Utc>,
    edition_id: i64,
    round: u64,
    email: String,
    outcome: Outcome,
}

/// Per edition, the messages tried in this run and those refused for good.
#[derive(Default)]
struct Budget(HashMap<i64, (u64, u64)>);

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
    let recovered = ctx.store.recover_expired_leases(job, ctx.clock.now()).await?;
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
        pool.spawn(worker::run(run.clone(), work_rx.clone(), done_tx.clone()));
    }
    drop(done_tx);
    let dispatcher = tokio::spawn(dispatch::run(
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
    let cut: Vec<(i64, DateTime<Utc>)> = run.in_flight.lock().expect("not poisoned").drain().collect();
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
            at: ctx.clock.now(),
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
            .record_outcomes(crate::instance::id(), &batch, ctx.clock.now())
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
