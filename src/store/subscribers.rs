//! Subscribers of lists and the suppression list.

use chrono::{DateTime, Utc};

use sqlx::{Any, Executor};

use super::columns::Millis;
use super::editions::NewEdition;
use super::{Store, StoreError};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscriber {
    pub id: i64,
    pub list_name: String,
    pub email: String,
    pub name: Option<String>,
    #[sqlx(try_from = "String")]
    pub attributes: Attributes,
    #[sqlx(try_from = "String")]
    pub status: SubscriberStatus,
    pub uid: String,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
    /// The digest cadence chosen (a job's `cadence`); empty: the list's default.
    pub cadence: String,
}

text_state! {
    /// Where a subscriber stands on a list. Only `Active` is sent digests.
    pub enum SubscriberStatus("subscriber status") {
        /// Signed up on the web, not yet confirmed.
        Pending = "pending",
        Active = "active",
        Unsubscribed = "unsubscribed",
        /// Personal data deleted on request; the row keeps only what the ledger needs.
        Erased = "erased",
    }
}

/// A subscriber's own fields (from an import's extra columns), kept as a
/// JSON object in the `attributes` column and read back whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(pub serde_json::Map<String, serde_json::Value>);

/// Text that is not a JSON object reads as no attributes: a message then
/// goes out with its merge fields empty rather than not at all.
impl From<String> for Attributes {
    fn from(text: String) -> Self {
        Attributes(serde_json::from_str(&text).unwrap_or_default())
    }
}

/// The columns [`Subscriber`] reads.
const COLUMNS: &str = "id, list_name, email, name, attributes, status, uid, created_at, cadence";

/// What a web sign-up did.
#[derive(Debug, Clone)]
pub enum SignupOutcome {
    /// The subscriber is (now) pending: send them a confirmation link.
    Pending(Subscriber),
    /// The address is already an active subscriber; nothing changed.
    AlreadyActive(Subscriber),
}

/// A stored consent event and when it happened.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConsentRecord {
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub consent: Consent,
}

/// One consent event, as the web interface saw it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Consent {
    /// `signup`, `confirm`, `preferences`, `join` or `unsubscribe`.
    pub action: String,
    /// The path of the page the form was on.
    pub page: String,
    pub ip: String,
    pub user_agent: String,
    /// A short hash of the wording the subscriber was shown.
    pub wording_version: String,
    pub wording: String,
}

/// A subscriber to add, already validated.
#[derive(Debug, Clone, Default)]
pub struct NewSubscriber {
    pub email: String,
    pub name: Option<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Imported as having left (an unsubscribe at a previous provider): kept
    /// as history, never sent to, and never made active by a later import.
    pub unsubscribed: bool,
    /// The digest cadence chosen; empty: the list's default.
    pub cadence: String,
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

/// Rows per multi-row `INSERT` when importing: 7 parameters each, well
/// under SQLite's and PostgreSQL's limits on parameters per statement.
const ROWS_PER_INSERT: usize = 50;

/// A subscriber uid: 12 hex digits of the current time in milliseconds, then
/// 20 random ones (80 random bits). Unguessable, and new uids land at the end
/// of the uid index, which keeps a million-row import from scattering writes.
pub(super) fn new_uid() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64 & 0xffff_ffff_ffff;
    format!("{millis:012x}{}", &random[..20])
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

/// Puts an address on the suppression list (once).
/// Puts `email` on the suppression list; `false` when it was there already.
pub(super) async fn insert_suppression<'e>(
    executor: impl Executor<'e, Database = Any>,
    email: &str,
    reason: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO suppressions (email_key, reason, created_at) VALUES ($1, $2, $3) ON CONFLICT (email_key) DO NOTHING",
    )
    .bind(email_key(email))
    .bind(reason)
    .bind(now_ms)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn insert_consent<'e>(
    executor: impl Executor<'e, Database = Any>,
    subscriber_id: i64,
    c: &Consent,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO consents (subscriber_id, action, page, ip, user_agent, wording_version, wording, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(subscriber_id)
    .bind(&c.action)
    .bind(&c.page)
    .bind(&c.ip)
    .bind(&c.user_agent)
    .bind(&c.wording_version)
    .bind(&c.wording)
    .bind(now.timestamp_millis())
    .execute(executor)
    .await?;
    Ok(())
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

    /// Adds a batch in one transaction, skipping addresses already on the
    /// list, with multi-row inserts of [`ROWS_PER_INSERT`] rows. Returns how many were added.
    pub async fn import_subscribers(
        &self,
        list: &str,
        batch: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let now = now.timestamp_millis();
        let mut tx = self.pool.begin().await?;
        if self.backend == super::Backend::Sqlite {
            // A large list's indexes do not fit SQLite's default 2 MB page cache.
            sqlx::query("PRAGMA cache_size = -65536").execute(&mut *tx).await?;
        }
        let mut added = 0;
        for chunk in batch.chunks(ROWS_PER_INSERT) {
            // SQLite gets anonymous `?` marks: sqlx maps each numbered mark
            // by name, which costs time quadratic in the marks per statement.
            let positional = self.backend == super::Backend::Sqlite;
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    if positional {
                        return "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)".to_string();
                    }
                    let p = i * 7;
                    format!(
                        "($1, ${}, ${}, ${}, ${}, ${}, ${}, $2, $2, ${})",
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6,
                        p + 7,
                        p + 8,
                        p + 9
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO subscribers (list_name, email, email_key, name, attributes, status, uid, created_at, updated_at, cadence) \
                 VALUES {} ON CONFLICT (list_name, email_key) DO NOTHING",
                rows.join(", ")
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
            if !positional {
                insert = insert.bind(list).bind(now);
            }
            for s in chunk {
                if positional {
                    insert = insert.bind(list);
                }
                insert = insert
                    .bind(s.email.trim().to_string())
                    .bind(email_key(&s.email))
                    .bind(s.name.clone())
                    .bind(serde_json::Value::Object(s.attributes.clone()).to_string())
                    .bind(if s.unsubscribed { "unsubscribed" } else { "active" })
                    .bind(new_uid());
                if positional {
                    insert = insert.bind(now).bind(now);
                }
                insert = insert.bind(s.cadence.clone());
            }
            added += insert.execute(&mut *tx).await?.rows_affected();
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
        status: Option<SubscriberStatus>,
        limit: i64,
    ) -> Result<Vec<Subscriber>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscribers WHERE list_name = $1 AND ($2 = '' OR status = $2) ORDER BY id LIMIT $3"
        )))
        .bind(list)
        .bind(status.map_or("", SubscriberStatus::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn subscriber_by_uid(&self, uid: &str) -> Result<Option<Subscriber>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscribers WHERE uid = $1"
        )))
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A web sign-up: a new address becomes `pending`; a pending one stays
    /// pending (its name and cadence updated, its uid kept, so an earlier
    /// confirmation mail still works); one who had left becomes pending again
    /// with a new uid, so tokens from before are void. An active subscriber
    /// is left as it is.
    pub async fn signup(
        &self,
        list: &str,
        email: &str,
        name: Option<&str>,
        cadence: &str,
        now: DateTime<Utc>,
    ) -> Result<SignupOutcome, StoreError> {
        let now_ms = now.timestamp_millis();
        sqlx::query(
            "INSERT INTO subscribers (list_name, email, email_key, name, attributes, status, uid, created_at, updated_at, cadence) \
             VALUES ($1, $2, $3, $4, '{}', 'pending', $5, $6, $6, $7) ON CONFLICT (list_name, email_key) DO NOTHING",
        )
        .bind(list)
        .bind(email.trim())
        .bind(email_key(email))
        .bind(name)
        .bind(new_uid())
        .bind(now_ms)
        .bind(cadence)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "UPDATE subscribers SET name = COALESCE($3, name), cadence = $4, updated_at = $5, \
             uid = CASE WHEN status = 'pending' THEN uid ELSE $6 END, status = 'pending' \
             WHERE list_name = $1 AND email_key = $2 AND status <> 'active'",
        )
        .bind(list)
        .bind(email_key(email))
        .bind(name)
        .bind(cadence)
        .bind(now_ms)
        .bind(new_uid())
        .execute(&self.pool)
        .await?;
        let subscriber = self
            .subscriber_by_address(list, email)
            .await?
            .ok_or(StoreError::Sql(sqlx::Error::RowNotFound))?;
        Ok(if subscriber.status == SubscriberStatus::Active {
            SignupOutcome::AlreadyActive(subscriber)
        } else {
            SignupOutcome::Pending(subscriber)
        })
    }

    /// Confirms a pending subscriber and keeps the consent record, in one
    /// transaction with the `welcome` mail's edition and delivery row when
    /// there is one (its recipients select this subscriber, now active);
    /// returns whether one was pending.
    pub async fn confirm_uid(
        &self,
        uid: &str,
        consent: &Consent,
        welcome: Option<&NewEdition<'_>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE subscribers SET status = 'active', confirmed_at = $2, updated_at = $2 \
             WHERE uid = $1 AND status = 'pending' RETURNING id",
        )
        .bind(uid)
        .bind(now.timestamp_millis())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            return Ok(false);
        };
        insert_consent(&mut *tx, id, consent, now).await?;
        if let Some(welcome) = welcome {
            super::editions::insert_edition(&mut tx, welcome, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Changes the name and cadence of whoever holds `uid`.
    pub async fn update_preferences(
        &self,
        uid: &str,
        name: Option<&str>,
        cadence: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE subscribers SET name = $2, cadence = $3, updated_at = $4 WHERE uid = $1")
            .bind(uid)
            .bind(name)
            .bind(cadence)
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts an address whose ownership is proven (it holds a signed link) on
    /// a list as active, or reactivates it there (with a new uid).
    pub async fn join_confirmed(
        &self,
        list: &str,
        email: &str,
        name: Option<&str>,
        cadence: &str,
        now: DateTime<Utc>,
    ) -> Result<Subscriber, StoreError> {
        let added = NewSubscriber {
            email: email.to_string(),
            name: name.map(str::to_string),
            ..Default::default()
        };
        self.add_subscriber(list, &added, now).await?;
        sqlx::query(
            "UPDATE subscribers SET cadence = $3, confirmed_at = COALESCE(confirmed_at, $4) WHERE list_name = $1 AND email_key = $2",
        )
        .bind(list)
        .bind(email_key(email))
        .bind(cadence)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        self.subscriber_by_address(list, email)
            .await?
            .ok_or(StoreError::Sql(sqlx::Error::RowNotFound))
    }

    pub async fn subscriber_by_address(&self, list: &str, email: &str) -> Result<Option<Subscriber>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscribers WHERE list_name = $1 AND email_key = $2"
        )))
        .bind(list)
        .bind(email_key(email))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every list row of one address, in list-name order.
    pub async fn subscriptions_of(&self, email: &str) -> Result<Vec<Subscriber>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscribers WHERE email_key = $1 ORDER BY list_name"
        )))
        .bind(email_key(email))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn record_consent(&self, subscriber_id: i64, c: &Consent, now: DateTime<Utc>) -> Result<(), StoreError> {
        insert_consent(&self.pool, subscriber_id, c, now).await
    }

    /// A subscriber's consent record, oldest first.
    pub async fn consents(&self, subscriber_id: i64) -> Result<Vec<Consent>, StoreError> {
        Ok(self
            .consent_history(subscriber_id)
            .await?
            .into_iter()
            .map(|r| r.consent)
            .collect())
    }

    /// A subscriber's consent record with the time of each event, oldest first.
    pub async fn consent_history(&self, subscriber_id: i64) -> Result<Vec<ConsentRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT created_at, action, page, ip, user_agent, wording_version, wording FROM consents \
             WHERE subscriber_id = $1 ORDER BY created_at, id",
        )
        .bind(subscriber_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Counts a list's subscribers by status (all statuses when `status` is `None`).
    pub async fn subscriber_count(&self, list: &str, status: Option<SubscriberStatus>) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE list_name = $1 AND ($2 = '' OR status = $2)")
                .bind(list)
                .bind(status.map_or("", SubscriberStatus::as_str))
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Active subscribers per list name in the store, configured or not.
    pub async fn subscribers_by_list(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT list_name, COUNT(*) FROM subscribers WHERE status = 'active' GROUP BY list_name ORDER BY list_name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn suppress(&self, email: &str, reason: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        insert_suppression(&self.pool, email, reason, now.timestamp_millis()).await?;
        Ok(())
    }

    /// Whether the address is suppressed, by itself or, once erased, by its hash.
    pub async fn is_suppressed(&self, email: &str) -> Result<bool, StoreError> {
        Ok(!self.suppressed_among(&[email]).await?.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::Attributes;

    #[test]
    fn attributes_read_back_whole_and_junk_reads_as_none() {
        let read = Attributes::from(r#"{"city":"Millbrook","plan":"print"}"#.to_string());
        assert_eq!(read.0["city"], "Millbrook");
        assert_eq!(read.0.len(), 2);
        for junk in ["", "not json", "[1, 2]", "\"text\""] {
            assert!(Attributes::from(junk.to_string()).0.is_empty(), "{junk}");
        }
    }
}
