//! The scheduler core: fires each job at its cron times in its time zone, on
//! whatever configuration is current, and never runs a job over itself. It
//! knows nothing of the store or of mail: a [`FireHandler`] runs each fire.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::app::App;
use crate::clock::Clock;
use crate::config::JobSettings;
use crate::health::Health;
use crate::schedule::next_after;
use crate::shutdown::Shutdown;

/// The longest the loop sleeps before looking at the clock again, so a wall
/// clock that jumps (NTP, suspend) is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Runs one fire of a job.
pub trait FireHandler: Send + Sync + 'static {
    /// Runs `job`'s fire scheduled at `at`; resolves when the run is over.
    fn fire(&self, job: JobSettings, at: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

fn same_schedule(a: &JobSettings, b: &JobSettings) -> bool {
    a.schedule == b.schedule && a.timezone == b.timezone
}

/// Fires jobs until shutdown, then waits for the runs under way.
/// `catch_up` gives, per job, a missed fire to run at once.
pub async fn run(
    mut config: watch::Receiver<Arc<App>>,
    clock: Arc<dyn Clock>,
    handler: Arc<dyn FireHandler>,
    mut shutdown: Shutdown,
    health: Arc<Health>,
    catch_up: HashMap<String, DateTime<Utc>>,
) {
    let mut current = config.borrow_and_update().clone();
    let start = clock.now();
    let mut next: HashMap<String, DateTime<Utc>> = current
        .settings
        .jobs
        .iter()
        .filter_map(|j| {
            let at = catch_up
                .get(&j.name)
                .copied()
                .or_else(|| next_after(&j.cron, j.timezone, start))?;
            Some((j.name.clone(), at))
        })
        .collect();
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        let now = clock.now();
        health.beat(now);
        let wait = next
            .values()
            .min()
            .map_or(MAX_SLEEP, |t| (*t - now).to_std().unwrap_or_default())
            .min(MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = config.changed() => {
                if changed.is_err() {
                    break;
                }
                let new = config.borrow_and_update().clone();
                let now = clock.now();
                next.retain(|name, _| new.settings.job(name).is_some());
                for job in &new.settings.jobs {
                    let unchanged = current.settings.job(&job.name).is_some_and(|old| same_schedule(old, job));
                    if !unchanged || !next.contains_key(&job.name) {
                        match next_after(&job.cron, job.timezone, now) {
                            Some(at) => next.insert(job.name.clone(), at),
                            None => next.remove(&job.name),
                        };
                    }
                }
                current = new;
                continue;
            }
            () = shutdown.wait() => break,
        }
        let now = clock.now();
        for job in &current.settings.jobs {
            let Some(&at) = next.get(&job.name) else { continue };
            if at > now {
                continue;
            }
            // The next fire is after both the one due and now: a loop that
            // slept through several fire times runs the job once, not once each.
            match next_after(&job.cron, job.timezone, at.max(now)) {
                Some(following) => next.insert(job.name.clone(), following),
                None => next.remove(&job.name),
            };
            if running.get(&job.name).is_some_and(|run| !run.is_finished()) {
                warn!(job = %job.name, scheduled = %at, "the previous run is still working: this fire is skipped");
                continue;
            }
            info!(job = %job.name, scheduled = %at, "job fired");
            running.insert(job.name.clone(), tokio::spawn(handler.fire(job.clone(), at)));
        }
    }
    for (_, run) in running {
        let _ = run.await;
    }
}
