//! Leases, the one shape both queues (deliveries and posts) share: a due row
//! is claimed by setting its working state, a lease and its claimer, skipping
//! rows another instance is claiming; a row still in its working state when
//! its lease has run out belonged to a claimer that died, and goes back to
//! the queue flagged in doubt.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::AnyPool;

use super::{Backend, StateCount, StoreError, parse_state};

impl Backend {
    /// The clause that makes a claim's row-picking subquery skip rows another
    /// transaction is claiming (PostgreSQL); SQLite has one writer and needs none.
    pub(super) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }
}

/// A table of leased rows.
#[derive(Debug, Clone, Copy)]
pub(super) enum Queue {
    /// One row per (edition, subscriber), scoped by job, `sending` while leased.
    Deliveries,
    /// One row per (account, article), scoped by account, `posting` while leased.
    Posts,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::Deliveries => "deliveries",
            Queue::Posts => "posts",
        }
    }

    fn scope(self) -> &'static str {
        match self {
            Queue::Deliveries => "job",
            Queue::Posts => "account",
        }
    }

    fn working(self) -> &'static str {
        match self {
            Queue::Deliveries => "sending",
            Queue::Posts => "posting",
        }
    }
}

/// The one claim statement: up to `$4` due rows of scope `$1` (due at `$2`,
/// and matching `due`, an extra condition on the queue's rows) take the
/// working state, the lease `$3` and the claimer `$5`, one attempt more,
/// and come back as `returning`. Oldest due first; rows another claimer is
/// taking are skipped.
///
/// The rows are picked once, in a materialised CTE: PostgreSQL may run an
/// `IN (SELECT .. LIMIT ..)` subquery more than once in one UPDATE (as the
/// inner side of a join), each run skipping the rows the statement has just
/// updated as locked and picking further ones: the claim then took more rows
/// than its limit, and left some in the working state unreturned. (A bare bound
/// `LIMIT $4` would make SQLite recompile the statement at every execution;
/// the cast keeps it a run-time value.)
pub(super) fn claim_sql(queue: Queue, backend: Backend, due: &str, returning: &str) -> String {
    format!(
        "WITH picked AS MATERIALIZED (SELECT id FROM {table} WHERE {scope} = $1 AND state = 'queued' \
         AND next_attempt_at <= $2{due} ORDER BY next_attempt_at, id LIMIT CAST($4 AS BIGINT){lock}) \
         UPDATE {table} SET state = '{working}', lease_until = $3, claimed_by = $5, attempts = attempts + 1, updated_at = $2 \
         WHERE id IN (SELECT id FROM picked) AND state = 'queued' \
         RETURNING {returning}",
        table = queue.table(),
        working = queue.working(),
        scope = queue.scope(),
        lock = backend.skip_locked(),
    )
}

/// When the earliest lease on a row of `scope` in the working state runs out.
pub(super) async fn earliest(pool: &AnyPool, queue: Queue, scope: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let sql = format!(
        "SELECT MIN(lease_until) FROM {table} WHERE {scope} = $1 AND state = '{working}'",
        table = queue.table(),
        scope = queue.scope(),
        working = queue.working(),
    );
    let at: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(scope)
        .fetch_one(pool)
        .await?;
    Ok(at.and_then(DateTime::from_timestamp_millis))
}

/// The rows of `scope` (all when `None`) by state, in name order, with how
/// many of each are in doubt: counted in the store.
pub(super) async fn counts<S: FromStr>(
    pool: &AnyPool,
    queue: Queue,
    scope: Option<&str>,
) -> Result<Vec<StateCount<S>>, StoreError>
where
    S::Err: std::fmt::Debug,
{
    let sql = format!(
        "SELECT state, COUNT(*), COUNT(CASE WHEN in_doubt = 1 THEN 1 END) FROM {table} \
         WHERE ($1 = '' OR {scope} = $1) GROUP BY state ORDER BY state",
        table = queue.table(),
        scope = queue.scope(),
    );
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.unwrap_or(""))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(state, count, in_doubt)| StateCount {
            state: parse_state(&state),
            count,
            in_doubt,
        })
        .collect())
}

/// Puts the rows of `scope` (a job, an account) whose lease ran out while in
/// the working state back in the queue, due now and flagged in doubt: their
/// claimer died, and whether the send or post was made is unknown. Returns
/// how many rows were taken back.
pub(super) async fn recover_expired(
    pool: &AnyPool,
    queue: Queue,
    scope: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let sql = format!(
        "UPDATE {table} SET state = 'queued', in_doubt = 1, lease_until = NULL, next_attempt_at = $2, updated_at = $2 \
         WHERE {scope} = $1 AND state = '{working}' AND lease_until < $2",
        table = queue.table(),
        scope = queue.scope(),
        working = queue.working(),
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope)
        .bind(now.timestamp_millis())
        .execute(pool)
        .await?
        .rows_affected())
}
