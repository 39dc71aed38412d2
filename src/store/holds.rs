//! Jobs held by an operator (`herald hold JOB`): while held, a job's fires
//! are recorded and build nothing, and none of its rows is claimed.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// A job on hold: since when, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub job: String,
    pub held_at: DateTime<Utc>,
    pub reason: String,
}

impl Store {
    /// Holds `job`; false when it was already held (the first reason is kept).
    pub async fn hold_job(&self, job: &str, reason: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO job_holds (job, held_at, reason) VALUES ($1, $2, $3) ON CONFLICT (job) DO NOTHING",
        )
        .bind(job)
        .bind(now.timestamp_millis())
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Releases `job`; false when it was not held.
    pub async fn release_job(&self, job: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM job_holds WHERE job = $1")
            .bind(job)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The hold on `job`, if it is held.
    pub async fn hold_of(&self, job: &str) -> Result<Option<Hold>, StoreError> {
        Ok(self.holds().await?.into_iter().find(|h| h.job == job))
    }

    /// Every held job.
    pub async fn holds(&self) -> Result<Vec<Hold>, StoreError> {
        let rows: Vec<(String, i64, String)> =
            sqlx::query_as("SELECT job, held_at, reason FROM job_holds ORDER BY job")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(job, at, reason)| Hold {
                job,
                held_at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                reason,
            })
            .collect())
    }
}
