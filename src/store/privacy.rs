//! Subscriber data on request: the suppression list an operator manages,
//! and erasure (GDPR art. 17): personal data removed, a hashed suppression
//! kept so that no import or sign-up brings the address back.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::subscribers::{email_key, new_uid};
use super::{Store, StoreError};

/// How an erased address is remembered: a hash of its key, never the address.
pub fn erased_key(email: &str) -> String {
    let digest = Sha256::digest(email_key(email).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// One entry of the suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// The address's key, or `sha256:...` for an erased address.
    pub key: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// What erasing an address did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Subscriptions scrubbed (one per list).
    pub subscriptions: u64,
    /// Consent records deleted.
    pub consents: u64,
    /// Delivery records whose address was replaced.
    pub deliveries: u64,
    /// Bounce and complaint records deleted.
    pub bounces: u64,
}

impl Store {
    /// Which of `emails` are suppressed, by their address or, once erased,
    /// by its hash; returned as keys of the given addresses.
    pub async fn suppressed_among(&self, emails: &[&str]) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        for chunk in emails.chunks(200) {
            let keys: Vec<(String, String)> = chunk.iter().map(|e| (email_key(e), erased_key(e))).collect();
            let marks: Vec<String> = (1..=keys.len() * 2).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT email_key FROM suppressions WHERE email_key IN ({})",
                marks.join(", ")
            );
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for (plain, hashed) in &keys {
                query = query.bind(plain.clone()).bind(hashed.clone());
            }
            let hits: HashSet<String> = query.fetch_all(&self.pool).await?.into_iter().collect();
            for (plain, hashed) in keys {
                if hits.contains(&plain) || hits.contains(&hashed) {
                    found.insert(plain);
                }
            }
        }
        Ok(found)
    }

    /// The suppression list, oldest first.
    pub async fn suppressions(&self) -> Result<Vec<Suppression>, StoreError> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT email_key, reason, created_at FROM suppressions ORDER BY created_at, email_key")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(key, reason, at)| Suppression {
                key,
                reason,
                created_at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
            })
            .collect())
    }

    /// Takes an address off the suppression list; false when it was not on
    /// it. An erased address stays suppressed: only its hash is known.
    pub async fn unsuppress(&self, email: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM suppressions WHERE email_key = $1")
            .bind(email_key(email))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Erases an address everywhere, in one transaction: each subscription
    /// keeps its row (editions' records point at it) with the address, name,
    /// attributes and cadence replaced and status `erased` (so nothing is
    /// sent to it and its links die with its uid); its consent records are
    /// deleted; delivery records lose the address and the server's replies;
    /// the plain suppression, if any, becomes a hashed one.
    pub async fn erase(&self, email: &str, now: DateTime<Utc>) -> Result<Erased, StoreError> {
        let key = email_key(email);
        let now = now.timestamp_millis();
        let sqlite = self.backend == super::Backend::Sqlite;
        let mut conn = self.pool.acquire().await?;
        if sqlite {
            // Freed pages are zeroed, so the old values do not linger in the file.
            sqlx::query("PRAGMA secure_delete = ON").execute(&mut *conn).await?;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = $1 ORDER BY id")
            .bind(&key)
            .fetch_all(&mut *tx)
            .await?;
        let mut erased = Erased::default();
        for id in ids {
            let placeholder = format!("erased-{id}@erased.invalid");
            sqlx::query(
                "UPDATE subscribers SET email = $2, email_key = $3, name = NULL, attributes = '{}', cadence = '', \
                 status = 'erased', uid = $4, updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(&placeholder)
            .bind(format!("erased:{id}"))
            .bind(new_uid())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            erased.subscriptions += 1;
            erased.bounces += sqlx::query("DELETE FROM bounces WHERE subscriber_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            erased.consents += sqlx::query("DELETE FROM consents WHERE subscriber_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            erased.deliveries += sqlx::query(
                "UPDATE deliveries SET email = $2, last_reply = NULL, \
                 state = CASE WHEN state = 'queued' THEN 'suppressed' ELSE state END WHERE subscriber_id = $1",
            )
            .bind(id)
            .bind(&placeholder)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        // A report's diagnostic quotes the address: the records go whole.
        erased.bounces += sqlx::query("DELETE FROM bounces WHERE address = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM suppressions WHERE email_key = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO suppressions (email_key, reason, created_at) VALUES ($1, 'erased on request', $2) \
             ON CONFLICT (email_key) DO NOTHING",
        )
        .bind(erased_key(email))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if sqlite {
            sqlx::query("PRAGMA secure_delete = OFF").execute(&mut *conn).await?;
            // Old page images in the write-ahead log go too.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut *conn)
                .await?;
        }
        Ok(erased)
    }
}
