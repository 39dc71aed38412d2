//! The daemon's background loops: the retry drainer, which keeps every job's
//! queue moving (retries, rows an interrupted run left), the source poller,
//! the fire watcher, which takes over fires whose claimer died, the bounce
//! mailbox poller, and the heartbeat.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use super::fires::Daemon;
use crate::bounce::{self, Intake};
use crate::config::JobKind;
use crate::sender::{self, SendContext};
use crate::shutdown::Shutdown;
use crate::store::welcome_queue;
use crate::{ingest, social};

/// The longest the drainer and the poller sleep between looks.
const MAX_IDLE: Duration = Duration::from_secs(30);

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default()
}

/// Delivers due rows of every job and every list's welcome mails, whenever
/// the job (or queue) is not already running.
pub async fn drainer(daemon: Daemon, mut shutdown: Shutdown) {
    // One send context (SMTP pool, token keys) per configuration, so pooled
    // connections survive from one round to the next; rebuilt after a reload.
    let mut context: Option<Arc<SendContext>> = None;
    // A reload wakes the drainer: new settings or secrets act at once.
    let mut reloads = Some(daemon.config.clone());
    loop {
        let app = daemon.app();
        let settings = &app.settings;
        if !context.as_ref().is_some_and(|ctx| Arc::ptr_eq(&ctx.app, &app)) {
            context = match SendContext::new(daemon.store.clone(), app.clone(), daemon.clock.clone()).await {
                Ok(ctx) => Some(Arc::new(ctx)),
                Err(e) => {
                    error!(error = %e, "cannot prepare sending");
                    None
                }
            };
        }
        let mut wake = daemon.clock.now() + chrono::Duration::from_std(MAX_IDLE).expect("fits");
        if let Some(until) = daemon.channel.paused_until(daemon.clock.now()) {
            wake = until;
        }
        for job in &settings.jobs {
            if shutdown.is_triggered() || daemon.channel.paused_until(daemon.clock.now()).is_some() {
                break;
            }
            let lock = daemon.locks.of(&job.name);
            let Ok(_guard) = lock.try_lock() else { continue };
            if matches!(daemon.store.hold_of(&job.name).await, Ok(Some(_))) {
                continue;
            }
            if let JobKind::Social(social) = &job.kind {
                for name in &social.accounts {
                    let account = settings.account(name).expect("checked config");
                    match social::post::drain(&daemon.store, account, &daemon.client, daemon.clock.as_ref(), &shutdown)
                        .await
                    {
                        Ok(report) => {
                            if report.posted + report.retrying + report.failed > 0 {
                                info!(account = %name, posted = report.posted, retrying = report.retrying, failed = report.failed, "posts drained");
                            }
                            // Spacing, the daily cap or a rate limit says when; else the next retry.
                            let next = match report.waiting_until {
                                Some(at) => Some(at),
                                None => daemon.store.next_post_at(name).await.ok().flatten(),
                            };
                            if let Some(at) = next {
                                wake = wake.min(at);
                            }
                        }
                        Err(e) => error!(account = %name, error = %e, "posting failed"),
                    }
                }
                continue;
            }
            if let Some(ctx) = &context {
                drain_mail(&daemon, ctx, &job.name, &mut wake).await;
            }
        }
        // Each list's welcome mails, queued by confirmations.
        for list in &settings.lists {
            let queue = welcome_queue(&list.name);
            if shutdown.is_triggered() || daemon.channel.paused_until(daemon.clock.now()).is_some() {
                break;
            }
            let lock = daemon.locks.of(&queue);
            let Ok(_guard) = lock.try_lock() else { continue };
            if let Some(ctx) = &context {
                drain_mail(&daemon, ctx, &queue, &mut wake).await;
            }
        }
        daemon.health.beat(daemon.clock.now());
        let wait = until(daemon.clock.now(), wake).max(Duration::from_secs(1));
        let reloaded = async {
            match &mut reloads {
                Some(rx) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = shutdown.wait() => break,
            () = tokio::time::sleep(wait) => {}
            alive = reloaded => {
                if !alive {
                    // The reloader is gone (shutting down): stop watching.
                    reloads = None;
                }
            }
        }
    }
}

/// Sends what is due in one mail queue (a job's, or a list's welcome mails),
/// notes a pause, and brings `wake` forward to its next retry or lease.
async fn drain_mail(daemon: &Daemon, ctx: &Arc<SendContext>, queue: &str, wake: &mut DateTime<Utc>) {
    let drained = sender::drain(ctx.clone(), queue, &daemon.drain).await;
    match &drained {
        Ok(report) if *report != sender::SendReport::default() => info!(
            job = %queue,
            sent = report.sent,
            retrying = report.retrying,
            failed = report.failed,
            recovered_in_doubt = report.recovered_in_doubt,
            "queue drained"
        ),
        Ok(_) => {}
        Err(e) => error!(job = %queue, error = %e, "draining the queue failed"),
    }
    if let Ok(report) = &drained {
        let now = daemon.clock.now();
        daemon
            .channel
            .note(report, ctx.app.settings.mail.retry_initial, now, &daemon.health);
        if let Some(until) = daemon.channel.paused_until(now) {
            *wake = until;
        }
    }
    for at in [
        daemon.store.next_retry_at(queue).await,
        daemon.store.earliest_lease(queue).await,
    ]
    .into_iter()
    .flatten()
    .flatten()
    {
        *wake = (*wake).min(at);
    }
}

/// Polls each source on its own interval.
pub async fn poller(daemon: Daemon, mut shutdown: Shutdown) {
    let mut next: HashMap<String, DateTime<Utc>> = HashMap::new();
    loop {
        let app = daemon.app();
        let settings = &app.settings;
        let now = daemon.clock.now();
        next.retain(|name, _| settings.source(name).is_some());
        for source in &settings.sources {
            next.entry(source.name.clone()).or_insert(now);
        }
        for source in &settings.sources {
            if next[&source.name] > now {
                continue;
            }
            let names = [source.name.clone()];
            match ingest::ingest(&daemon.store, settings, Some(&names), &daemon.client, now).await {
                Ok(reports) => {
                    for r in reports {
                        match r.error {
                            Some(e) => warn!(source = %r.source, error = %e, "poll failed; stored articles kept"),
                            None => info!(source = %r.source, new = r.new.len(), updated = r.updated, "source polled"),
                        }
                    }
                }
                Err(e) => error!(source = %source.name, error = %e, "storing what the source gave failed"),
            }
            let interval = chrono::Duration::from_std(source.poll_interval).expect("fits");
            next.insert(source.name.clone(), daemon.clock.now() + interval);
        }
        let wake = next.values().min().copied().unwrap_or(now);
        let wait = until(daemon.clock.now(), wake).clamp(Duration::from_millis(100), MAX_IDLE);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.wait() => break,
        }
    }
}

/// Records the instance's heartbeat in the store every few seconds.
pub async fn heartbeat(daemon: Daemon, mut shutdown: Shutdown) {
    let host = crate::instance::host();
    loop {
        let now = daemon.clock.now();
        daemon.health.beat(now);
        if let Err(e) = daemon
            .store
            .heartbeat(&daemon.instance, &host, std::process::id(), now)
            .await
        {
            warn!(error = %e, "cannot record the heartbeat");
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
            () = shutdown.wait() => break,
        }
    }
}

/// Looks for unfinished fires whose claimer's lease ran out, every third of
/// the lease (at once at start-up): the latest fire of a job within its
/// catch-up window is taken over and its run carried on here, unless
/// another instance takes it first; one that a later fire superseded, or
/// that is past its window, is closed as abandoned, with a warning.
pub async fn fire_watcher(daemon: Daemon, mut shutdown: Shutdown) {
    let mut runs: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    loop {
        runs.retain(|run| !run.is_finished());
        let app = daemon.app();
        let settings = &app.settings;
        match daemon.store.unfinished_fires().await {
            Ok(fires) => {
                let now = daemon.clock.now();
                for fire in fires
                    .into_iter()
                    .filter(|f| f.lease_until < now && f.claimed_by != daemon.instance)
                {
                    let Some(job) = settings.job(&fire.job) else { continue };
                    let why = if fire.superseded {
                        Some("a later fire of the job ran")
                    } else if now - fire.scheduled_at > job.catch_up_window {
                        Some("its claimer died and it is past the job's catch_up_window_hours")
                    } else {
                        None
                    };
                    if let Some(why) = why {
                        if let Ok(true) = daemon.store.abandon_fire(&fire, why, now).await {
                            warn!(job = %fire.job, scheduled = %fire.scheduled_at, dead_instance = %fire.claimed_by, edition = ?fire.edition, why, "unfinished fire abandoned");
                        }
                        continue;
                    }
                    let (daemon, job) = (daemon.clone(), job.clone());
                    runs.push(tokio::spawn(async move { daemon.adopt(&job, fire).await }));
                }
            }
            Err(e) => warn!(error = %e, "cannot look for unfinished fires"),
        }
        tokio::select! {
            () = tokio::time::sleep(settings.daemon.fire_lease / 3) => {}
            () = shutdown.wait() => break,
        }
    }
    for run in runs {
        let _ = run.await;
    }
}

/// Polls the `[bounces.imap]` mailbox every `poll_seconds`, when one is set
/// (looking again after a reload when none is).
pub async fn bounce_mailbox(daemon: Daemon, mut shutdown: Shutdown) {
    loop {
        let app = daemon.app();
        let wait = match &app.settings.bounces.imap {
            None => MAX_IDLE,
            Some(imap) => {
                match daemon.store.token_keys(&app.tokens).await {
                    Ok(keys) => {
                        let settings = &app.settings;
                        let intake = Intake::new(&daemon.store, &keys, &settings.bounces, &settings.site.domain);
                        match bounce::imap::poll(imap, intake, daemon.clock.now()).await {
                            Ok(polled) if polled.done > 0 => info!(tally = %polled.tally, "bounce mailbox read"),
                            Ok(_) => {}
                            Err(e) => {
                                warn!(error = %e, "polling the bounce mailbox failed; trying again at the next poll")
                            }
                        }
                    }
                    Err(e) => error!(error = %e, "cannot read the token keys to poll the bounce mailbox"),
                }
                imap.poll_interval
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.wait() => break,
        }
    }
}
