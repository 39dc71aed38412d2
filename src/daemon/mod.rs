//! `herald run`: the long-lived daemon. It fires every job on its cron
//! schedule in its time zone, polls sources on their intervals, keeps the
//! delivery queue moving, reloads the configuration on file changes and
//! SIGHUP, and shuts down gracefully on SIGTERM or SIGINT.

mod background;
mod channel;
mod fires;
pub mod reload;
pub mod scheduler;
mod supervise;

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::health::Health;
use crate::schedule::missed_fire;
use crate::sender::DrainOptions;
use crate::shutdown::{self, ShutdownTrigger};
use crate::source;
use crate::store::Store;
use supervise::supervise;

pub use channel::Channel;
pub use fires::{Daemon, JobLocks, summary};

/// Triggers shutdown on the first SIGTERM or SIGINT; exits at once on the second.
async fn signals(trigger: ShutdownTrigger) {
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT can be handled");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(
        signal = name,
        "shutting down: no new work; in-flight sends may finish within the grace period"
    );
    trigger.trigger();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    warn!("second signal: exiting at once");
    std::process::exit(130);
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(app: App, config_path: &Path) -> anyhow::Result<ExitCode> {
    let store = app.open_store().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (trigger, shutdown) = shutdown::channel();
    let (tx, config) = watch::channel(Arc::new(app));
    let grace = config.borrow().settings.daemon.shutdown_grace;
    let daemon = Daemon {
        store: store.clone(),
        config: config.clone(),
        clock: clock.clone(),
        instance: crate::instance::id().to_string(),
        locks: JobLocks::default(),
        health: Arc::new(Health::default()),
        channel: Channel::default(),
        client: source::http_client(),
        drain: DrainOptions {
            wait_for_leases: false,
            shutdown: shutdown.clone(),
            grace,
        },
    };

    // Missed fires: at most one per job, the latest, when its policy and window allow.
    let now = clock.now();
    let mut catch_up = HashMap::new();
    for job in &config.borrow().settings.jobs {
        let last = store.last_fire(&job.name).await?;
        match missed_fire(&job.cron, job.timezone, last, now, job.catch_up, job.catch_up_window) {
            Some(at) => {
                info!(job = %job.name, scheduled = %at, "catching up the latest missed fire");
                catch_up.insert(job.name.clone(), at);
            }
            None => {
                if let Some(last) = last
                    && crate::schedule::latest_between(&job.cron, job.timezone, last, now).is_some()
                {
                    info!(job = %job.name, "missed fires are skipped (catch_up policy or window)");
                }
            }
        }
    }

    let web = match config.borrow().settings.web.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let state = web_state(&store, config.clone(), daemon.health.clone(), true, clock.clone()).await?;
            Some(tokio::spawn(crate::web::serve(listener, state, shutdown.clone())))
        }
        None => None,
    };
    info!(instance = %daemon.instance, jobs = config.borrow().settings.jobs.len(), sources = config.borrow().settings.sources.len(), "herald daemon started");
    tokio::spawn(signals(trigger));
    let reloader = tokio::spawn(reload::Reloader::new(config_path, tx).watch(shutdown.clone()));
    // Each loop is started again should it panic (the catch-up fires only the first time).
    let mut catch_up = Some(catch_up);
    let scheduler = {
        let (config, clock, handler, shutdown, health) = (
            config.clone(),
            clock.clone(),
            Arc::new(daemon.clone()),
            shutdown.clone(),
            daemon.health.clone(),
        );
        move || {
            scheduler::run(
                config.clone(),
                clock.clone(),
                handler.clone(),
                shutdown.clone(),
                health.clone(),
                catch_up.take().unwrap_or_default(),
            )
        }
    };
    let tasks = [
        tokio::spawn(supervise("scheduler", shutdown.clone(), scheduler)),
        tokio::spawn(supervise(
            "drainer",
            shutdown.clone(),
            restartable(&daemon, &shutdown, background::drainer),
        )),
        tokio::spawn(supervise(
            "poller",
            shutdown.clone(),
            restartable(&daemon, &shutdown, background::poller),
        )),
        tokio::spawn(supervise(
            "fire watcher",
            shutdown.clone(),
            restartable(&daemon, &shutdown, background::fire_watcher),
        )),
        tokio::spawn(supervise(
            "bounce mailbox",
            shutdown.clone(),
            restartable(&daemon, &shutdown, background::bounce_mailbox),
        )),
        tokio::spawn(supervise(
            "heartbeat",
            shutdown.clone(),
            restartable(&daemon, &shutdown, background::heartbeat),
        )),
    ];
    for task in tasks {
        task.await?;
    }
    if let Some(web) = web {
        web.await??;
    }
    reloader.abort();
    store.instance_stopped(&daemon.instance, clock.now()).await?;
    store.close().await;
    info!("herald daemon stopped");
    Ok(ExitCode::SUCCESS)
}

/// A background loop, made anew from the daemon at each (re)start.
fn restartable<Fut>(
    daemon: &Daemon,
    shutdown: &shutdown::Shutdown,
    run: fn(Daemon, shutdown::Shutdown) -> Fut,
) -> impl FnMut() -> Fut + use<Fut> {
    let (daemon, shutdown) = (daemon.clone(), shutdown.clone());
    move || run(daemon.clone(), shutdown.clone())
}

async fn web_state(
    store: &Store,
    app: watch::Receiver<Arc<App>>,
    health: Arc<Health>,
    expects_heartbeat: bool,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<crate::web::WebState> {
    let keys = store.token_keys(&app.borrow().tokens).await?;
    Ok(crate::web::WebState::new(
        store.clone(),
        app,
        keys,
        health,
        expects_heartbeat,
        clock,
    ))
}

/// `herald serve`: the HTTP interface alone, until SIGTERM or SIGINT.
pub async fn serve_only(app: App, listen: Option<std::net::SocketAddr>) -> anyhow::Result<ExitCode> {
    let addr = listen
        .or(app.settings.web.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid"));
    let store = app.open_store().await?;
    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(signals(trigger));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // `herald serve` does not reload: the channel keeps the one configuration.
    let (_keep, app) = watch::channel(Arc::new(app));
    let state = web_state(&store, app, Arc::new(Health::default()), false, Arc::new(SystemClock)).await?;
    crate::web::serve(listener, state, shutdown).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
