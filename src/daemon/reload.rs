//! Reloading the configuration: on a file change (debounced) or SIGHUP the
//! whole configuration is loaded and checked again; a valid one replaces the
//! current one atomically and the log says what changed, an invalid one is
//! logged problem by problem and the daemon keeps the one it has. The
//! environment comes with it: `.env` as it is now (see `config::dotenv`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::app::App;
use crate::config::{ConfigError, DigestJob, JobSettings, Settings};
use crate::shutdown::Shutdown;

/// How long the files must be quiet after a change before reloading, so an
/// editor's save (write, rename, touch) counts once.
const DEBOUNCE: Duration = Duration::from_millis(300);

#[derive(Debug)]
pub enum Reloaded {
    Changed(Vec<String>),
    Unchanged,
    Rejected(ConfigError),
}

pub struct Reloader {
    path: PathBuf,
    tx: watch::Sender<Arc<App>>,
}

impl Reloader {
    pub fn new(path: &Path, tx: watch::Sender<Arc<App>>) -> Reloader {
        Reloader {
            path: path.to_path_buf(),
            tx,
        }
    }

    /// Loads and checks the configuration; swaps it in only when valid.
    pub fn reload(&self) -> Reloaded {
        // `.env` is read again: a secret replaced there reaches the daemon.
        let (env, unreadable) = crate::config::dotenv::environment();
        if let Some(why) = unreadable {
            warn!("{why}; the environment as it was is used");
        }
        match App::load(&self.path, env) {
            Ok(new) => {
                let changes = describe_changes(&self.tx.borrow().settings, &new.settings);
                self.tx.send_replace(Arc::new(new));
                if changes.is_empty() {
                    info!(file = %self.path.display(), "configuration reloaded: no job or source changed");
                    Reloaded::Unchanged
                } else {
                    for change in &changes {
                        info!(file = %self.path.display(), %change, "configuration reloaded");
                    }
                    Reloaded::Changed(changes)
                }
            }
            Err(e) => {
                for problem in &e.problems {
                    error!(origin = %problem.origin, key = %problem.key, problem = %problem.message, "configuration rejected; keeping the previous one");
                }
                Reloaded::Rejected(e)
            }
        }
    }

    /// The folders whose changes trigger a reload: the configuration file's
    /// folder and the templates folder.
    fn watched(&self) -> Vec<PathBuf> {
        let config_dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let templates = self.tx.borrow().settings.templates_dir.clone();
        vec![config_dir, templates]
    }

    /// Reloads on file changes and SIGHUP until shutdown.
    pub async fn watch(self, mut shutdown: Shutdown) {
        let (tx, mut rx) = mpsc::channel::<()>(16);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && matches!(
                    event.kind,
                    EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                )
            {
                let _ = tx.try_send(());
            }
        });
        let _watcher = match watcher {
            Ok(mut watcher) => {
                for dir in self.watched() {
                    if let Err(e) = watcher.watch(&dir, RecursiveMode::Recursive) {
                        warn!(dir = %dir.display(), error = %e, "cannot watch for changes; SIGHUP still reloads");
                    }
                }
                Some(watcher)
            }
            Err(e) => {
                warn!(error = %e, "file watching is unavailable; SIGHUP still reloads");
                None
            }
        };
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).expect("SIGHUP can be handled");
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    // Wait for the files to settle, swallowing the rest of the burst.
                    loop {
                        tokio::select! {
                            Some(()) = rx.recv() => continue,
                            () = tokio::time::sleep(DEBOUNCE) => break,
                        }
                    }
                    info!("configuration files changed: reloading");
                    self.reload();
                }
                _ = hangup.recv() => {
                    info!("SIGHUP: reloading the configuration");
                    self.reload();
                }
                () = shutdown.wait() => break,
            }
        }
    }
}

/// What differs between two configurations, in words: jobs and sources
/// added, removed or changed.
/// A job setting by its key, shown as the log line shows it.
type Shown = (&'static str, fn(&JobSettings) -> String);

/// What an operator changed in a job besides its schedule, as `key "old" -> "new"`.
fn job_edits(old: &JobSettings, new: &JobSettings) -> Vec<String> {
    // A setting the job's kind does not have shows as empty.
    fn digest(j: &JobSettings, show: fn(&DigestJob) -> String) -> String {
        j.digest().map(show).unwrap_or_default()
    }
    let fields: [Shown; 13] = [
        ("kind", |j| j.kind.name().to_string()),
        ("subject", |j| digest(j, |d| format!("{:?}", d.subject))),
        ("template", |j| digest(j, |d| format!("{:?}", d.template))),
        ("list", |j| digest(j, |d| format!("{:?}", d.list))),
        ("sources", |j| format!("{:?}", j.sources)),
        ("accounts", |j| {
            j.social().map(|s| format!("{:?}", s.accounts)).unwrap_or_default()
        }),
        ("cadence", |j| digest(j, |d| format!("{:?}", d.cadence))),
        ("max_articles", |j| digest(j, |d| d.max_articles.to_string())),
        ("min_articles", |j| digest(j, |d| d.min_articles.to_string())),
        ("show_images", |j| digest(j, |d| d.show_images.to_string())),
        ("send_when_empty", |j| digest(j, |d| d.send_when_empty.to_string())),
        ("lookback_hours", |j| j.lookback.num_hours().to_string()),
        ("catch_up_window_hours", |j| j.catch_up_window.num_hours().to_string()),
    ];
    fields
        .iter()
        .filter_map(|(key, show)| {
            let (before, after) = (show(old), show(new));
            (before != after).then(|| format!("{key} {before} -> {after}"))
        })
        .collect()
}

pub fn describe_changes(old: &Settings, new: &Settings) -> Vec<String> {
    let mut changes = Vec::new();
    for job in &new.jobs {
        match old.job(&job.name) {
            None => changes.push(format!(
                "job {} added: {:?} in {}",
                job.name, job.schedule, job.timezone
            )),
            Some(before) if before.schedule != job.schedule || before.timezone != job.timezone => {
                changes.push(format!(
                    "job {} rescheduled: {:?} in {} -> {:?} in {}",
                    job.name, before.schedule, before.timezone, job.schedule, job.timezone
                ))
            }
            Some(_) => {}
        }
        if let Some(before) = old.job(&job.name) {
            let edits = job_edits(before, job);
            if !edits.is_empty() {
                changes.push(format!("job {} changed: {}", job.name, edits.join("; ")));
            }
        }
    }
    for job in &old.jobs {
        if new.job(&job.name).is_none() {
            changes.push(format!("job {} removed", job.name));
        }
    }
    for source in &new.sources {
        match old.source(&source.name) {
            None => changes.push(format!("source {} added", source.name)),
            Some(before) if before != source => changes.push(format!("source {} changed", source.name)),
            Some(_) => {}
        }
    }
    for source in &old.sources {
        if new.source(&source.name).is_none() {
            changes.push(format!("source {} removed", source.name));
        }
    }
    changes
}
