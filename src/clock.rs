//! The one place that reads wall-clock time. Everything else takes `now` as
//! an argument or a [`Clock`], so tests can drive time.

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

/// Time that follows tokio's clock from a fixed start, so a test with paused
/// tokio time (`tokio::time::pause`, `advance`) moves it.
pub struct TokioClock {
    start_utc: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(start_utc: DateTime<Utc>) -> Arc<TokioClock> {
        Arc::new(TokioClock {
            start_utc,
            start: tokio::time::Instant::now(),
        })
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.start_utc + chrono::Duration::from_std(self.start.elapsed()).expect("test durations fit")
    }
}
