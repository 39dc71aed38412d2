//! Scheduled fires and instance heartbeats.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

impl Store {
    /// Claims the fire of `job` scheduled at `at` for `instance`; false when
    /// another run (here or on another instance) already has it.
    pub async fn claim_fire(
        &self,
        job: &str,
        at: DateTime<Utc>,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO job_fires (job, scheduled_at, claimed_by, claimed_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job, scheduled_at) DO NOTHING",
        )
        .bind(job)
        .bind(at.timestamp_millis())
        .bind(instance)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn finish_fire(
        &self,
        job: &str,
        at: DateTime<Utc>,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE job_fires SET finished_at = $3, outcome = $4 WHERE job = $1 AND scheduled_at = $2")
            .bind(job)
            .bind(at.timestamp_millis())
            .bind(now.timestamp_millis())
            .bind(outcome)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether the fire of `job` at `at` is still being run by an instance
    /// that is alive (its heartbeat newer than `alive_since`).
    pub async fn fire_running(
        &self,
        job: &str,
        at: DateTime<Utc>,
        alive_since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let running: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM job_fires f JOIN instances i ON i.id = f.claimed_by \
             WHERE f.job = $1 AND f.scheduled_at = $2 AND f.finished_at IS NULL \
             AND i.stopped_at IS NULL AND i.heartbeat_at >= $3",
        )
        .bind(job)
        .bind(at.timestamp_millis())
        .bind(alive_since.timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok(running > 0)
    }

    /// The scheduled time of the job's latest recorded fire.
    pub async fn last_fire(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar("SELECT MAX(scheduled_at) FROM job_fires WHERE job = $1")
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
