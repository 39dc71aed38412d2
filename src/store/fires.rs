//! Scheduled fires and instance heartbeats.
//!
//! A fire is claimed by (job, scheduled time) under the table's primary key,
//! so one instance runs it. The claim is a lease: the claimer renews it while
//! the run goes on, and once it has run out another instance may take the
//! fire over with a conditional update (exactly one wins) and carry the run
//! on. Only a finished fire counts as the job's last.

use chrono::{DateTime, Utc};

use super::columns::{Flag, MaybeMillis, Millis};
use super::{Store, StoreError};

/// A claimed fire as the store has it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Fire {
    pub job: String,
    #[sqlx(try_from = "Millis")]
    pub scheduled_at: DateTime<Utc>,
    /// The instance that holds (or last held) the claim.
    pub claimed_by: String,
    /// When the fire was first claimed: the time its edition is made as of,
    /// whoever carries the run out.
    #[sqlx(try_from = "Millis")]
    pub claimed_at: DateTime<Utc>,
    #[sqlx(try_from = "Millis")]
    pub lease_until: DateTime<Utc>,
    /// The edition the fire made, once made.
    #[sqlx(rename = "edition_id")]
    pub edition: Option<i64>,
    #[sqlx(try_from = "MaybeMillis")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times the fire was taken over from an instance that died.
    pub takeovers: i64,
    /// Whether a later fire of the same job has been claimed since.
    #[sqlx(try_from = "Flag")]
    pub superseded: bool,
}

const FIRE_COLUMNS: &str = "f.job, f.scheduled_at, f.claimed_by, f.claimed_at, f.lease_until, f.edition_id, \
     f.finished_at, f.takeovers, CASE WHEN EXISTS (SELECT 1 FROM job_fires later \
     WHERE later.job = f.job AND later.scheduled_at > f.scheduled_at) THEN 1 ELSE 0 END AS superseded";

impl Store {
    /// Claims the fire of `job` scheduled at `at` for `instance`, leased until
    /// `lease_until`; `None` when it was already claimed (here or elsewhere).
    pub async fn claim_fire(
        &self,
        job: &str,
        at: DateTime<Utc>,
        instance: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<Fire>, StoreError> {
        let done = sqlx::query(
            "INSERT INTO job_fires (job, scheduled_at, claimed_by, claimed_at, lease_until) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job, scheduled_at) DO NOTHING",
        )
        .bind(job)
        .bind(at.timestamp_millis())
        .bind(instance)
        .bind(now.timestamp_millis())
        .bind(lease_until.timestamp_millis())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.fire(job, at).await
    }

    /// The fire of `job` scheduled at `at`, if it was ever claimed.
    pub async fn fire(&self, job: &str, at: DateTime<Utc>) -> Result<Option<Fire>, StoreError> {
        let sql = format!("SELECT {FIRE_COLUMNS} FROM job_fires f WHERE f.job = $1 AND f.scheduled_at = $2");
        let row: Option<Fire> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(job)
            .bind(at.timestamp_millis())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// Every fire not finished yet, oldest first.
    pub async fn unfinished_fires(&self) -> Result<Vec<Fire>, StoreError> {
        let sql = format!(
            "SELECT {FIRE_COLUMNS} FROM job_fires f WHERE f.finished_at IS NULL ORDER BY f.scheduled_at, f.job"
        );
        let rows: Vec<Fire> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        Ok(rows)
    }

    /// Takes `fire` over for `instance` if it is still unfinished, still
    /// held by the instance it was read with, and its lease has run out by
    /// `now`. Of several instances trying at once exactly one gets true.
    pub async fn take_over_fire(
        &self,
        fire: &Fire,
        instance: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE job_fires SET claimed_by = $3, lease_until = $5, takeovers = takeovers + 1 \
             WHERE job = $1 AND scheduled_at = $2 AND claimed_by = $4 AND finished_at IS NULL AND lease_until < $6",
        )
        .bind(&fire.job)
        .bind(fire.scheduled_at.timestamp_millis())
        .bind(instance)
        .bind(&fire.claimed_by)
        .bind(lease_until.timestamp_millis())
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends `instance`'s lease on an unfinished fire; false when the
    /// instance no longer holds it (another took it over).
    pub async fn renew_fire(
        &self,
        job: &str,
        at: DateTime<Utc>,
        instance: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE job_fires SET lease_until = $4 \
             WHERE job = $1 AND scheduled_at = $2 AND claimed_by = $3 AND finished_at IS NULL",
        )
        .bind(job)
        .bind(at.timestamp_millis())
        .bind(instance)
        .bind(lease_until.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the end of a fire `instance` holds; false when it no longer
    /// holds it (the instance that took it over records the end).
    pub async fn finish_fire(
        &self,
        job: &str,
        at: DateTime<Utc>,
        instance: &str,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE job_fires SET finished_at = $4, outcome = $5 \
             WHERE job = $1 AND scheduled_at = $2 AND claimed_by = $3 AND finished_at IS NULL",
        )
        .bind(job)
        .bind(at.timestamp_millis())
        .bind(instance)
        .bind(now.timestamp_millis())
        .bind(outcome)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Closes a fire nobody will carry out (a later fire ran, or it is past
    /// its job's catch-up window), if its lease has still run out by `now`.
    pub async fn abandon_fire(&self, fire: &Fire, why: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE job_fires SET finished_at = $4, outcome = $5 \
             WHERE job = $1 AND scheduled_at = $2 AND claimed_by = $3 AND finished_at IS NULL AND lease_until < $4",
        )
        .bind(&fire.job)
        .bind(fire.scheduled_at.timestamp_millis())
        .bind(&fire.claimed_by)
        .bind(now.timestamp_millis())
        .bind(format!("abandoned: {why}"))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The scheduled time of the job's latest finished fire: a fire claimed
    /// and never finished is not the last one (it is taken over or caught up).
    pub async fn last_fire(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT MAX(scheduled_at) FROM job_fires WHERE job = $1 AND finished_at IS NOT NULL")
                .bind(job)
                .fetch_one(&self.pool)
                .await?;
        Ok(at.and_then(DateTime::from_timestamp_millis))
    }

    /// Records that `instance` is alive.
    pub async fn heartbeat(&self, instance: &str, host: &str, pid: u32, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = $4",
        )
        .bind(instance)
        .bind(host)
        .bind(pid as i64)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn instance_stopped(&self, instance: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE instances SET stopped_at = $2, heartbeat_at = $2 WHERE id = $1")
            .bind(instance)
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> bool {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .is_ok()
    }
}
