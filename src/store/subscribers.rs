//! Subscribers of lists and the suppression list.

use chrono::{DateTime, Utc};

use sqlx::{Any, Executor};

use super::{Store, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscriber {
    pub id: i64,
    pub list_name: String,
    pub email: String,
    pub name: Option<String>,
    pub attributes: String,
    pub status: String,
    pub uid: String,
    pub created_at: i64,
}

/// A subscriber to add, already validated.
#[derive(Debug, Clone)]
pub struct NewSubscriber {
    pub email: String,
    pub name: Option<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    AlreadySubscribed,
    Resubscribed,
}

/// The key addresses are unique by: the whole address, lowercased.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn new_uid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Inserts an active subscriber unless the address is already on the list;
/// returns how many rows were added (0 or 1).
async fn insert<'e>(
    executor: impl Executor<'e, Database = Any>,
    list: &str,
    s: &NewSubscriber,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let attributes = serde_json::Value::Object(s.attributes.clone()).to_string();
    Ok(sqlx::query(
        "INSERT INTO subscribers (list_name, email, email_key, name, attributes, status, uid, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $7) ON CONFLICT (list_name, email_key) DO NOTHING",
    )
    .bind(list)
    .bind(s.email.trim())
    .bind(email_key(&s.email))
    .bind(&s.name)
    .bind(attributes)
    .bind(new_uid())
    .bind(now.timestamp_millis())
    .execute(executor)
    .await?
    .rows_affected())
}

impl Store {
    /// Adds one subscriber, or reactivates one who had left (with a new uid,
    /// so tokens from before are void).
    pub async fn add_subscriber(
        &self,
        list: &str,
        s: &NewSubscriber,
        now: DateTime<Utc>,
    ) -> Result<AddOutcome, StoreError> {
        let inserted = insert(&self.pool, list, s, now).await?;
        let now = now.timestamp_millis();
        if inserted == 1 {
            return Ok(AddOutcome::Added);
        }
        let reactivated = sqlx::query(
            "UPDATE subscribers SET status = 'active', uid = $3, updated_at = $4, name = COALESCE($5, name) \
             WHERE list_name = $1 AND email_key = $2 AND status <> 'active'",
        )
        .bind(list)
        .bind(email_key(&s.email))
        .bind(new_uid())
        .bind(now)
        .bind(&s.name)
        .execute(&self.pool)
        .await?;
        Ok(if reactivated.rows_affected() == 1 {
            AddOutcome::Resubscribed
        } else {
            AddOutcome::AlreadySubscribed
        })
    }

    /// Adds a batch in one transaction, skipping addresses already on the list.
    /// Returns how many were added.
    pub async fn import_subscribers(
        &self,
        list: &str,
        batch: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for s in batch {
            added += insert(&mut *tx, list, s, now).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Marks a subscriber as unsubscribed; returns whether one was active.
    pub async fn unsubscribe(&self, list: &str, email: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', updated_at = $3 WHERE list_name = $1 AND email_key = $2 AND status = 'active'",
        )
        .bind(list)
        .bind(email_key(email))
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Unsubscribes whoever holds `uid` (from a verified token).
    pub async fn unsubscribe_uid(&self, uid: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE subscribers SET status = 'unsubscribed', updated_at = $2 WHERE uid = $1 AND status = 'active'",
        )
        .bind(uid)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn subscribers(
        &self,
        list: &str,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Subscriber>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, list_name, email, name, attributes, status, uid, created_at FROM subscribers \
             WHERE list_name = $1 AND ($2 = '' OR status = $2) ORDER BY id LIMIT $3",
        )
        .bind(list)
        .bind(status.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn subscriber_by_uid(&self, uid: &str) -> Result<Option<Subscriber>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, list_name, email, name, attributes, status, uid, created_at FROM subscribers WHERE uid = $1",
        )
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Counts a list's subscribers by status (all statuses when `status` is `None`).
    pub async fn subscriber_count(&self, list: &str, status: Option<&str>) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE list_name = $1 AND ($2 = '' OR status = $2)")
                .bind(list)
                .bind(status.unwrap_or(""))
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn suppress(&self, email: &str, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO suppressions (email_key, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT (email_key) DO NOTHING")
            .bind(email_key(email))
            .bind(reason)
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn is_suppressed(&self, email: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM suppressions WHERE email_key = $1")
            .bind(email_key(email))
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }
}
