//! When a failed send or post is tried again: one rule for mail and social.

use std::time::Duration;

/// The delay before retry number `attempts` (1-based): the initial delay,
/// doubling each time, at most six hours, with up to 10% jitter.
pub fn backoff(initial: Duration, attempts: i64, id: i64) -> Duration {
    let exp = attempts.clamp(1, 20) as u32 - 1;
    let base = initial
        .saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(6 * 3600));
    let jitter = (id as u64).wrapping_mul(2_654_435_761) % 1000;
    base + base.mul_f64(jitter as f64 / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let secs = |attempts| backoff(Duration::from_secs(300), attempts, 1).as_secs();
        assert!((300..=330).contains(&secs(1)), "{}", secs(1));
        assert!((600..=660).contains(&secs(2)), "{}", secs(2));
        assert!((1200..=1320).contains(&secs(3)), "{}", secs(3));
        assert!((6 * 3600..=6 * 3600 + 2160).contains(&secs(15)), "{}", secs(15));
    }

    #[test]
    fn rows_retried_together_spread_apart() {
        let initial = Duration::from_secs(300);
        let delays: std::collections::HashSet<Duration> = (1..=20).map(|id| backoff(initial, 1, id)).collect();
        assert!(delays.len() > 10, "{delays:?}");
    }
}
