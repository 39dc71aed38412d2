//! The daemon's mail channel. After a 5.7.x refusal or an open circuit the
//! channel stays paused, so the daemon does not hammer a server that refused
//! us or is down: for `retry_initial`, doubling with each pause in a row, at
//! most an hour. Shared by the retry drainer and scheduled fires; the pause
//! is shown in `/metrics` through the health record.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{error, info};

use crate::health::{ChannelPause, Health};
use crate::sender::SendReport;

/// The longest the channel stays paused before the daemon tries again.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

#[derive(Clone, Default)]
pub struct Channel(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    until: Option<DateTime<Utc>>,
    pauses_in_row: u32,
}

/// How long the channel stays paused after `earlier` pauses in a row.
fn pause_length(initial: Duration, earlier: u32) -> Duration {
    initial
        .saturating_mul(2u32.saturating_pow(earlier.min(16)))
        .min(MAX_PAUSE)
        .max(initial.min(MAX_PAUSE))
}

impl Channel {
    /// When the pause ends, while the channel is paused at `now`.
    pub fn paused_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.lock().expect("not poisoned").until.filter(|until| *until > now)
    }

    /// Notes what a drain did: a pause (re)starts the pause, a message sent
    /// without one ends the series and clears it from the health record.
    pub fn note(&self, report: &SendReport, initial: Duration, now: DateTime<Utc>, health: &Health) {
        let mut state = self.0.lock().expect("not poisoned");
        if let Some(pause) = &report.paused {
            let until = now + chrono::Duration::from_std(pause_length(initial, state.pauses_in_row)).expect("fits");
            state.pauses_in_row += 1;
            state.until = Some(until);
            let reason = pause.to_string();
            error!(%reason, until = %until, "mail channel PAUSED; sending resumes on its own after the pause");
            health.mail_paused(Some(ChannelPause { until, reason }));
        } else if report.sent > 0 && state.pauses_in_row > 0 {
            info!(pauses = state.pauses_in_row, "mail channel sending again");
            *state = State::default();
            health.mail_paused(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender::Pause;

    #[test]
    fn pauses_in_a_row_double_up_to_an_hour() {
        let initial = Duration::from_secs(300);
        let secs: Vec<u64> = (0..6).map(|n| pause_length(initial, n).as_secs()).collect();
        assert_eq!(secs, [300, 600, 1200, 2400, 3600, 3600]);
        assert_eq!(pause_length(Duration::from_secs(86400), 0).as_secs(), 3600);
    }

    #[test]
    fn a_pause_holds_until_its_end_and_a_sent_message_ends_the_series() {
        let channel = Channel::default();
        let health = Health::default();
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        let paused = SendReport {
            paused: Some(Pause::RelayDown {
                failures: 20,
                reply: "connection refused".into(),
            }),
            ..SendReport::default()
        };
        let initial = Duration::from_secs(60);
        channel.note(&paused, initial, now, &health);
        let first = channel.paused_until(now).unwrap();
        assert_eq!(first, now + chrono::Duration::seconds(60));
        assert_eq!(channel.paused_until(first), None, "over at its end");
        channel.note(&paused, initial, first, &health);
        assert_eq!(
            channel.paused_until(first),
            Some(first + chrono::Duration::seconds(120))
        );
        assert!(health.mail_pause().unwrap().reason.contains("circuit open"));

        let sent = SendReport {
            sent: 1,
            ..SendReport::default()
        };
        channel.note(&sent, initial, first, &health);
        assert_eq!(channel.paused_until(first), None);
        assert_eq!(health.mail_pause(), None);
        channel.note(&paused, initial, first, &health);
        assert_eq!(
            channel.paused_until(first),
            Some(first + chrono::Duration::seconds(60)),
            "a new series starts short"
        );
    }
}
