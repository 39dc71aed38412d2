//! Column shapes that are not what the code means by them: flags kept as
//! 0/1 integers and times kept as Unix milliseconds (one shape on SQLite and
//! PostgreSQL alike). Rows read them with `#[sqlx(try_from = "Flag")]` or
//! `#[sqlx(try_from = "Millis")]` and hold a `bool` or a `DateTime<Utc>`.

use chrono::{DateTime, Utc};

/// A flag column: 0 is false, anything else true.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
pub struct Flag(i64);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0 != 0
    }
}

/// A time column in Unix milliseconds.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
pub struct Millis(i64);

/// A stored time outside chrono's range (written by something other than Herald).
#[derive(Debug, thiserror::Error)]
#[error("{0} ms is not a time Herald can read")]
pub struct OutOfRange(i64);

impl TryFrom<Millis> for DateTime<Utc> {
    type Error = OutOfRange;

    fn try_from(ms: Millis) -> Result<DateTime<Utc>, OutOfRange> {
        DateTime::from_timestamp_millis(ms.0).ok_or(OutOfRange(ms.0))
    }
}

/// A time column in Unix milliseconds that may be empty.
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
pub struct MaybeMillis(Option<i64>);

impl TryFrom<MaybeMillis> for Option<DateTime<Utc>> {
    type Error = OutOfRange;

    fn try_from(ms: MaybeMillis) -> Result<Option<DateTime<Utc>>, OutOfRange> {
        ms.0.map(|ms| DateTime::try_from(Millis(ms))).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_times_decode_to_what_they_mean() {
        assert!(!bool::from(Flag(0)));
        assert!(bool::from(Flag(1)));
        assert!(bool::from(Flag(-3)));
        let t = DateTime::<Utc>::try_from(Millis(1_780_000_000_123)).unwrap();
        assert_eq!(t.timestamp_millis(), 1_780_000_000_123);
        assert!(DateTime::<Utc>::try_from(Millis(i64::MAX)).is_err());
    }
}
