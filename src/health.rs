//! The daemon's health: a heartbeat per loop and the last outcome of each job,
//! kept in memory for the `/healthz` endpoint and logs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobHealth {
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The mail channel is paused until `until`, for `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPause {
    pub until: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Health {
    last_beat_ms: AtomicI64,
    jobs: Mutex<BTreeMap<String, JobHealth>>,
    mail_pause: Mutex<Option<ChannelPause>>,
}

impl Health {
    /// Records that a loop of the daemon went round.
    pub fn beat(&self, now: DateTime<Utc>) {
        self.last_beat_ms.fetch_max(now.timestamp_millis(), Ordering::Relaxed);
    }

    pub fn last_beat(&self) -> Option<DateTime<Utc>> {
        match self.last_beat_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    pub fn job_finished(&self, job: &str, now: DateTime<Utc>, error: Option<String>) {
        let mut jobs = self.jobs.lock().expect("not poisoned");
        let entry = jobs.entry(job.to_string()).or_default();
        entry.last_run_at = Some(now);
        if error.is_none() {
            entry.last_success_at = Some(now);
        }
        entry.last_error = error;
    }

    /// Records that the mail channel paused (or, with `None`, that it sends again).
    pub fn mail_paused(&self, pause: Option<ChannelPause>) {
        *self.mail_pause.lock().expect("not poisoned") = pause;
    }

    pub fn mail_pause(&self) -> Option<ChannelPause> {
        self.mail_pause.lock().expect("not poisoned").clone()
    }

    pub fn jobs(&self) -> BTreeMap<String, JobHealth> {
        self.jobs.lock().expect("not poisoned").clone()
    }
}
