//! Schedule maths, pure: when a job's cron line fires in its IANA time zone,
//! and which missed fire (if any) a restarted daemon should catch up.
//!
//! Cron lines are read by croner, which follows the Open Cron Pattern
//! Specification on DST days: a time in the spring-forward gap fires once,
//! right after the gap; a time in the fall-back overlap fires once.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// The first fire strictly after `after`.
pub fn next_after(cron: &Cron, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The next `n` fires strictly after `after`.
pub fn upcoming(cron: &Cron, tz: Tz, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    let mut out = Vec::with_capacity(n);
    let mut t = after;
    while out.len() < n {
        match next_after(cron, tz, t) {
            Some(next) => {
                out.push(next);
                t = next;
            }
            None => break,
        }
    }
    out
}

/// The latest fire in `(after, until]`, if any.
pub fn latest_between(cron: &Cron, tz: Tz, after: DateTime<Utc>, until: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let previous = cron
        .find_previous_occurrence(&until.with_timezone(&tz), true)
        .ok()?
        .with_timezone(&Utc);
    (previous > after).then_some(previous)
}

pub use crate::config::CatchUp;

/// The one missed fire to run now: the most recent fire after the job's last
/// recorded fire, when the policy is `Latest` and it is no older than `window`.
/// A job that never fired has missed nothing.
pub fn missed_fire(
    cron: &Cron,
    tz: Tz,
    last_fire: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: CatchUp,
    window: chrono::Duration,
) -> Option<DateTime<Utc>> {
    let last = last_fire?;
    let missed = latest_between(cron, tz, last, now)?;
    (policy == CatchUp::Latest && now - missed <= window).then_some(missed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_cron;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const NEW_YORK: Tz = chrono_tz::America::New_York;

    #[test]
    fn a_daily_0230_job_on_the_spring_forward_day_runs_once_right_after_the_gap() {
        // 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT; 02:30 does not exist.
        let cron = parse_cron("30 2 * * *").unwrap();
        let fires = upcoming(&cron, NEW_YORK, utc("2026-03-07T12:00:00Z"), 3);
        assert_eq!(
            fires,
            vec![
                utc("2026-03-08T07:00:00Z"),
                utc("2026-03-09T06:30:00Z"),
                utc("2026-03-10T06:30:00Z")
            ],
            "03:00 EDT on the day of the gap, then 02:30 EDT"
        );
    }

    #[test]
    fn a_daily_0130_job_on_the_fall_back_day_runs_once() {
        // 2026-11-01: New York clocks fall back from 02:00 EDT to 01:00 EST; 01:30 happens twice.
        let cron = parse_cron("30 1 * * *").unwrap();
        let fires = upcoming(&cron, NEW_YORK, utc("2026-10-31T12:00:00Z"), 3);
        assert_eq!(
            fires,
            vec![
                utc("2026-11-01T05:30:00Z"),
                utc("2026-11-02T06:30:00Z"),
                utc("2026-11-03T06:30:00Z")
            ]
        );
        // Asked again from inside the repeated hour, it does not fire a second time that day.
        assert_eq!(
            next_after(&cron, NEW_YORK, utc("2026-11-01T06:00:00Z")),
            Some(utc("2026-11-02T06:30:00Z"))
        );
    }

    #[test]
    fn a_leap_day_job_waits_for_the_next_leap_year() {
        let cron = parse_cron("0 7 29 2 *").unwrap();
        assert_eq!(
            next_after(&cron, chrono_tz::UTC, utc("2026-03-01T00:00:00Z")),
            Some(utc("2028-02-29T07:00:00Z"))
        );
    }

    #[test]
    fn weekday_numbers_shortcuts_and_seconds() {
        let london = chrono_tz::Europe::London;
        // 2026-11-29 is a Sunday: 0 and 7 both mean Sunday.
        for line in ["0 9 * * 0", "0 9 * * 7", "0 9 * * SUN"] {
            let cron = parse_cron(line).unwrap();
            assert_eq!(
                next_after(&cron, london, utc("2026-11-28T12:00:00Z")),
                Some(utc("2026-11-29T09:00:00Z")),
                "{line}"
            );
        }
        let daily = parse_cron("@daily").unwrap();
        assert_eq!(
            next_after(&daily, london, utc("2026-07-01T12:00:00Z")),
            Some(utc("2026-07-01T23:00:00Z")),
            "midnight BST"
        );
        let every_ten_seconds = parse_cron("*/10 * * * * *").unwrap();
        assert_eq!(
            next_after(&every_ten_seconds, london, utc("2026-07-01T12:00:01Z")),
            Some(utc("2026-07-01T12:00:10Z"))
        );
    }

    #[test]
    fn catch_up_runs_only_the_latest_missed_fire_within_the_window() {
        let cron = parse_cron("0 7 * * *").unwrap();
        let tz = chrono_tz::UTC;
        let window = chrono::Duration::hours(6);
        let last = Some(utc("2026-11-20T07:00:00Z"));
        // Down for days: only the most recent fire (today 07:00) is caught up.
        let now = utc("2026-11-25T09:00:00Z");
        assert_eq!(
            missed_fire(&cron, tz, last, now, CatchUp::Latest, window),
            Some(utc("2026-11-25T07:00:00Z"))
        );
        // Older than the window: skipped.
        assert_eq!(
            missed_fire(&cron, tz, last, utc("2026-11-25T14:00:00Z"), CatchUp::Latest, window),
            None
        );
        assert_eq!(missed_fire(&cron, tz, last, now, CatchUp::Skip, window), None);
        // Nothing missed since the last fire, and a new job has missed nothing.
        assert_eq!(
            missed_fire(
                &cron,
                tz,
                Some(utc("2026-11-25T07:00:00Z")),
                now,
                CatchUp::Latest,
                window
            ),
            None
        );
        assert_eq!(missed_fire(&cron, tz, None, now, CatchUp::Latest, window), None);
    }
}
