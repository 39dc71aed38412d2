//! The delivery queue: one row per (edition, subscriber). A row is `sending`
//! with a lease before its SMTP transaction starts; a row whose lease ran out
//! while `sending` (the process died) goes back to the queue flagged in doubt.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::columns::{Flag, Millis};
use super::lease::{self, Queue};
use super::{Attributes, Store, StoreError, SubscriberStatus};

text_state! {
    /// The states a delivery row moves through.
    pub enum DeliveryState("delivery state") {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
        Suppressed = "suppressed",
        Expired = "expired",
        /// Its edition was cancelled (`herald cancel`) before it was sent.
        Cancelled = "cancelled",
    }
}

/// A claimed row with what the sender needs to build the message.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub edition_id: i64,
    pub email: String,
    pub attempts: i64,
    #[sqlx(try_from = "Flag")]
    pub in_doubt: bool,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
    pub name: Option<String>,
    pub uid: String,
    #[sqlx(try_from = "String")]
    pub attributes: Attributes,
    #[sqlx(try_from = "String")]
    pub status: SubscriberStatus,
    #[sqlx(try_from = "Flag")]
    pub suppressed: bool,
    /// When the claim's lease runs out (ms): with the claimer, what an
    /// outcome write checks it still holds.
    #[sqlx(try_from = "Millis")]
    pub lease_until: DateTime<Utc>,
}

/// A finished attempt to record: its row, the lease it was claimed under
/// ([`Claimed::lease_until`]), how it ended and the address (for suppression).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub id: i64,
    pub lease_until: DateTime<Utc>,
    pub outcome: &'a Outcome,
    pub email: &'a str,
}

/// A row as `herald deliveries` lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub edition_id: i64,
    pub job: String,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub state: DeliveryState,
    pub attempts: i64,
    #[sqlx(try_from = "Flag")]
    pub in_doubt: bool,
    #[sqlx(try_from = "Millis")]
    pub next_attempt_at: DateTime<Utc>,
    pub last_reply: Option<String>,
    #[sqlx(try_from = "Millis")]
    pub updated_at: DateTime<Utc>,
    /// The instance that claimed the row last (sent it, or is sending it).
    pub claimed_by: Option<String>,
}

/// How many rows are in one state, and how many of those are in doubt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount<S = DeliveryState> {
    pub state: S,
    pub count: i64,
    pub in_doubt: i64,
}

/// How one delivery attempt ended, as the store records it.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        reply: String,
    },
    /// Try again at `at`; `in_doubt` when the message may have gone out.
    Retry {
        reply: String,
        at: DateTime<Utc>,
        in_doubt: bool,
    },
    /// Permanently refused; `suppress` adds the address to the suppression list.
    Failed {
        reply: String,
        suppress: bool,
    },
    /// Not sent: the address is suppressed or the subscriber left.
    Suppressed {
        reason: String,
    },
    /// Retried for longer than the maximum age.
    Expired {
        reply: String,
    },
    /// Not attempted (the channel paused): back to the queue as it was.
    Released,
}

/// A claim's lease: who claims rows (an instance name) and until when.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub by: &'a str,
    pub now: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Rows that may be sent: of editions neither paused (`Store::pause_edition`)
/// nor cancelled (`Store::cancel_edition`), of jobs not held (`Store::hold_job`).
const SENDABLE: &str = "edition_id NOT IN (SELECT id FROM editions WHERE paused IS NOT NULL OR cancelled_at IS NOT NULL) \
     AND job NOT IN (SELECT job FROM job_holds)";

/// Sent rows per multi-row update: two parameters each.
const SENT_PER_STATEMENT: usize = 64;

impl Store {
    /// Puts rows of `job` that are `sending` with an expired lease back in the
    /// queue, flagged in doubt, and makes queued rows of cancelled editions
    /// (a row retried or taken back after the cancel) `cancelled`. Returns
    /// how many rows were put back.
    pub async fn recover_expired_leases(&self, job: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let recovered = lease::recover_expired(&self.pool, Queue::Deliveries, job, now).await?;
        let now = now.timestamp_millis();
        sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', updated_at = $2 WHERE job = $1 AND state = 'queued' \
             AND edition_id IN (SELECT id FROM editions WHERE cancelled_at IS NOT NULL)",
        )
        .bind(job)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(recovered)
    }

    /// Claims up to `limit` due rows of `job`: each becomes `sending` with
    /// `lease` before anything is sent.
    pub async fn claim_deliveries(
        &self,
        job: &str,
        limit: usize,
        lease: &Lease<'_>,
    ) -> Result<Vec<Claimed>, StoreError> {
        Ok(self.record_and_claim(&[], job, limit, lease).await?.0)
    }

    /// Records how attempts ended, in one transaction; `by` is the claimer.
    /// Returns how many rows were written (see `write_outcomes`).
    pub async fn record_outcomes(&self, by: &str, rows: &[Attempt<'_>], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = write_outcomes(&mut tx, by, rows, now.timestamp_millis()).await?;
        tx.commit().await?;
        Ok(written)
    }

    /// Records how attempts ended, then claims up to `limit` due rows of
    /// `job`, in one transaction: a sender's finished rows leave `sending`
    /// as the rows that take their place enter it, so the number of rows
    /// `sending` never grows past what the sender had, and a round costs one
    /// commit (on PostgreSQL, one flush of its log). Returns the claimed rows
    /// and how many outcomes were written.
    pub async fn record_and_claim(
        &self,
        outcomes: &[Attempt<'_>],
        job: &str,
        limit: usize,
        lease: &Lease<'_>,
    ) -> Result<(Vec<Claimed>, u64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = write_outcomes(&mut tx, lease.by, outcomes, lease.now.timestamp_millis()).await?;
        let claimed = if limit == 0 {
            Vec::new()
        } else {
            claim(&mut tx, self.backend, job, limit, lease).await?
        };
        tx.commit().await?;
        Ok((claimed, written))
    }

    /// Counts rows by state, for one job or all.
    pub async fn delivery_counts(&self, job: Option<&str>) -> Result<Vec<StateCount>, StoreError> {
        lease::counts(&self.pool, Queue::Deliveries, job).await
    }

    pub async fn deliveries(
        &self,
        job: Option<&str>,
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, edition_id, job, email, state, attempts, in_doubt, next_attempt_at, last_reply, updated_at, claimed_by FROM deliveries \
             WHERE ($1 = '' OR job = $1) AND ($2 = '' OR state = $2) ORDER BY id LIMIT $3",
        )
        .bind(job.unwrap_or(""))
        .bind(state.map(DeliveryState::as_str).unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// When the earliest lease on a `sending` row of `job` runs out.
    pub async fn earliest_lease(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        lease::earliest(&self.pool, Queue::Deliveries, job).await
    }

    /// The earliest next attempt among queued rows of `job` (paused editions' rows wait for `herald resume`).
    pub async fn next_retry_at(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let sql =
            format!("SELECT MIN(next_attempt_at) FROM deliveries WHERE job = $1 AND state = 'queued' AND {SENDABLE}");
        let at: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(job)
            .fetch_one(&self.pool)
            .await?;
        Ok(at.and_then(DateTime::from_timestamp_millis))
    }
}

/// Makes up to `limit` due rows of `job` `sending` with a lease, and reads
/// what sending them needs, in one statement.
async fn claim(
    conn: &mut sqlx::AnyConnection,
    backend: super::Backend,
    job: &str,
    limit: usize,
    lease: &Lease<'_>,
) -> Result<Vec<Claimed>, StoreError> {
    let subscriber = |column: &str| {
        format!("(SELECT s.{column} FROM subscribers s WHERE s.id = deliveries.subscriber_id) AS {column}")
    };
    let returning = format!(
        "id, edition_id, email, attempts, in_doubt, created_at, lease_until, {}, {}, {}, {}, \
         (SELECT COUNT(*) FROM suppressions x JOIN subscribers s ON x.email_key = s.email_key \
          WHERE s.id = deliveries.subscriber_id) AS suppressed",
        subscriber("name"),
        subscriber("uid"),
        subscriber("attributes"),
        subscriber("status"),
    );
    let sql = lease::claim_sql(Queue::Deliveries, backend, &format!(" AND {SENDABLE}"), &returning);
    let mut rows: Vec<Claimed> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(job)
        .bind(lease.now.timestamp_millis())
        .bind(lease.until.timestamp_millis())
        .bind(limit as i64)
        .bind(lease.by)
        .fetch_all(&mut *conn)
        .await?;
    rows.sort_unstable_by_key(|row| row.id);
    Ok(rows)
}

/// Writes the outcomes of attempts, each only while `by` still holds the
/// row under the lease it claimed it with (`sending`, `claimed_by`,
/// `lease_until`): a row whose lease ran out and was taken back is not
/// overwritten by its earlier claimer. Returns how many rows were written.
async fn write_outcomes(
    conn: &mut sqlx::AnyConnection,
    by: &str,
    rows: &[Attempt<'_>],
    now_ms: i64,
) -> Result<u64, StoreError> {
    const HELD: &str = "state = 'sending' AND claimed_by = $2";
    let mut written = 0;
    // Sent rows, by far the most, go in multi-row statements; the rest one by one.
    let sent: Vec<(i64, i64, &str)> = rows
        .iter()
        .filter_map(|a| match a.outcome {
            Outcome::Sent { reply } => Some((a.id, a.lease_until.timestamp_millis(), reply.as_str())),
            _ => None,
        })
        .collect();
    for chunk in sent.chunks(SENT_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                format!(
                    "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), ${})",
                    3 * i + 3,
                    3 * i + 4,
                    3 * i + 5
                )
            })
            .collect();
        let sql = format!(
            "WITH v (id, until, reply) AS (VALUES {}) \
             UPDATE deliveries SET state = 'sent', last_reply = v.reply, lease_until = NULL, updated_at = $1 \
             FROM v WHERE deliveries.id = v.id AND deliveries.{HELD} AND deliveries.lease_until = v.until",
            values.join(", ")
        );
        let mut update = sqlx::query(AssertSqlSafe(sql)).bind(now_ms).bind(by);
        for (id, until, reply) in chunk {
            update = update.bind(id).bind(until).bind(*reply);
        }
        written += update.execute(&mut *conn).await?.rows_affected();
    }
    for a in rows.iter().filter(|a| !matches!(a.outcome, Outcome::Sent { .. })) {
        let (state, reply, next, in_doubt, undo_attempt) = match a.outcome {
            Outcome::Sent { .. } => unreachable!("sent rows are written above"),
            Outcome::Retry { reply, at, in_doubt } => (
                "queued",
                Some(reply.as_str()),
                Some(at.timestamp_millis()),
                *in_doubt,
                0,
            ),
            Outcome::Failed { reply, .. } => ("failed", Some(reply.as_str()), None, false, 0),
            Outcome::Suppressed { reason } => ("suppressed", Some(reason.as_str()), None, false, 1),
            Outcome::Expired { reply } => ("expired", Some(reply.as_str()), None, false, 0),
            Outcome::Released => ("queued", None, Some(now_ms), false, 1),
        };
        let updated = sqlx::query(AssertSqlSafe(format!(
            "UPDATE deliveries SET state = $3, last_reply = COALESCE($4, last_reply), next_attempt_at = COALESCE($5, next_attempt_at), \
             in_doubt = CASE WHEN $6 = 1 THEN 1 ELSE in_doubt END, attempts = attempts - $7, lease_until = NULL, updated_at = $8 \
             WHERE id = $1 AND {HELD} AND lease_until = $9",
        )))
        .bind(a.id)
        .bind(by)
        .bind(state)
        .bind(reply)
        .bind(next)
        .bind(in_doubt as i64)
        .bind(undo_attempt)
        .bind(now_ms)
        .bind(a.lease_until.timestamp_millis())
        .execute(&mut *conn)
        .await?
        .rows_affected();
        // Only the holder of the row's claim suppresses its address.
        if let (1, Outcome::Failed { reply, suppress: true }) = (updated, a.outcome) {
            super::subscribers::insert_suppression(&mut *conn, a.email, reply, now_ms).await?;
        }
        written += updated;
    }
    Ok(written)
}
