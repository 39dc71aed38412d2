//! Editions: which articles went to a list on one run of a job, the rendered
//! parts all recipients share, and one delivery row per recipient.

use chrono::{DateTime, Utc};

use super::columns::Millis;
use super::{Store, StoreError};

pub struct NewEdition<'a> {
    pub job: &'a str,
    pub list: &'a str,
    pub nonce: &'a str,
    pub subject: &'a str,
    pub html: &'a str,
    pub text: &'a str,
    pub article_ids: &'a [i64],
    pub recipients: Recipients<'a>,
    /// The scheduled fire that makes the edition, if any: the edition is
    /// made only while `instance` holds the fire, and once per fire.
    pub fire: Option<FireRef<'a>>,
}

/// A fire an edition is made for, and the instance that holds it.
#[derive(Debug, Clone, Copy)]
pub struct FireRef<'a> {
    pub scheduled_at: DateTime<Utc>,
    pub instance: &'a str,
}

/// Which of the list's active subscribers an edition goes to, by the
/// cadence (daily, weekly, ...) each chose.
#[derive(Debug, Clone, Copy)]
pub enum Recipients<'a> {
    /// Those who chose this cadence.
    Cadence(&'a str),
    /// The list's default job: everyone whose cadence is none of these
    /// (the list's other jobs' cadences), including those who chose none.
    AllBut(&'a [String]),
    /// The one subscriber with this uid (a welcome mail).
    Uid(&'a str),
}

/// What the queue of a list's welcome mails is called in the ledger: its
/// editions and deliveries carry it where a digest's carry the job's name.
/// A job's name cannot contain `:`, so it is never a job's.
pub fn welcome_queue(list: &str) -> String {
    format!("{WELCOME_PREFIX}{list}")
}

const WELCOME_PREFIX: &str = "welcome:";

/// Editions that are digests, not welcome mails (whose queue starts with
/// [`WELCOME_PREFIX`]): the condition on `editions`. Only digests are in
/// the archive and count for where a job's next edition starts.
const DIGESTS: &str = "job NOT LIKE 'welcome:%'";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EditionRow {
    pub id: i64,
    pub job: String,
    pub list_name: String,
    pub nonce: String,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
    pub article_count: i64,
    pub recipient_count: i64,
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// An edition as the public archive lists it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ArchivedEdition {
    pub id: i64,
    pub nonce: String,
    pub subject: String,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
    pub article_count: i64,
}

/// An edition the error budget paused.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PausedEdition {
    pub id: i64,
    pub job: String,
    pub list_name: String,
    pub reason: String,
    #[sqlx(try_from = "Millis")]
    pub paused_at: DateTime<Utc>,
    /// Its rows still waiting to be sent.
    pub queued: i64,
}

/// Who of a list's subscribers (`s`) an edition goes to: active, not
/// suppressed, of the job's cadence (or the one by uid). Parameters are
/// numbered from `first`; returns the SQL condition and the values to bind, in order.
fn recipient_filter(recipients: Recipients<'_>, first: usize) -> (String, Vec<&str>) {
    let (clause, values): (String, Vec<&str>) = match recipients {
        Recipients::Cadence(c) => (format!("AND s.cadence = ${first}"), vec![c]),
        Recipients::Uid(uid) => (format!("AND s.uid = ${first}"), vec![uid]),
        Recipients::AllBut([]) => (String::new(), Vec::new()),
        Recipients::AllBut(others) => {
            let marks: Vec<String> = (0..others.len()).map(|i| format!("${}", i + first)).collect();
            let clause = format!("AND s.cadence NOT IN ({})", marks.join(", "));
            (clause, others.iter().map(String::as_str).collect())
        }
    };
    (
        format!(
            "s.status = 'active' {clause} \
             AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.email_key = s.email_key)"
        ),
        values,
    )
}

/// Writes the edition, its articles and its delivery rows in `tx`; the
/// edition's id. See [`Store::create_edition`].
pub(super) async fn insert_edition(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    e: &NewEdition<'_>,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let now = now.timestamp_millis();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO editions (job, list_name, nonce, created_at, article_count, recipient_count, subject, html, text) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8) RETURNING id",
    )
    .bind(e.job)
    .bind(e.list)
    .bind(e.nonce)
    .bind(now)
    .bind(e.article_ids.len() as i64)
    .bind(e.subject)
    .bind(e.html)
    .bind(e.text)
    .fetch_one(&mut **tx)
    .await?;
    for (position, article) in e.article_ids.iter().enumerate() {
        sqlx::query("INSERT INTO edition_articles (edition_id, job, article_id, position) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(e.job)
            .bind(article)
            .bind(position as i64)
            .execute(&mut **tx)
            .await?;
    }
    let (filter, cadences) = recipient_filter(e.recipients, 5);
    let sql = format!(
        "INSERT INTO deliveries (edition_id, job, subscriber_id, email, state, attempts, next_attempt_at, in_doubt, created_at, updated_at) \
         SELECT $1, $2, s.id, s.email, 'queued', 0, $3, 0, $3, $3 FROM subscribers s \
         WHERE s.list_name = $4 AND {filter} ORDER BY s.id"
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(e.job)
        .bind(now)
        .bind(e.list);
    for c in cadences {
        insert = insert.bind(c);
    }
    let recipients = insert.execute(&mut **tx).await?.rows_affected();
    sqlx::query("UPDATE editions SET recipient_count = $2 WHERE id = $1")
        .bind(id)
        .bind(recipients as i64)
        .execute(&mut **tx)
        .await?;
    if let Some(fire) = &e.fire {
        let held = sqlx::query(
            "UPDATE job_fires SET edition_id = $4 WHERE job = $1 AND scheduled_at = $2 AND claimed_by = $3 \
             AND edition_id IS NULL AND finished_at IS NULL",
        )
        .bind(e.job)
        .bind(fire.scheduled_at.timestamp_millis())
        .bind(fire.instance)
        .bind(id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if held == 0 {
            return Err(StoreError::FireLost {
                job: e.job.to_string(),
                scheduled_at: fire.scheduled_at,
            });
        }
    }
    Ok(id)
}

impl Store {
    /// How many subscribers of `list` an edition for `recipients` would go
    /// to now: the same selection as [`Store::create_edition`] makes.
    pub async fn recipient_count(&self, list: &str, recipients: Recipients<'_>) -> Result<i64, StoreError> {
        let (filter, cadences) = recipient_filter(recipients, 2);
        let sql = format!("SELECT COUNT(*) FROM subscribers s WHERE s.list_name = $1 AND {filter}");
        let mut count = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(list);
        for c in cadences {
            count = count.bind(c);
        }
        Ok(count.fetch_one(&self.pool).await?)
    }

    /// Creates the edition, claims its articles for the job and writes one
    /// `queued` delivery row per active, unsuppressed subscriber, all in one
    /// transaction. Fails without writing anything if another edition of the
    /// job already took one of the articles, or when the edition is for a
    /// fire that `fire.instance` no longer holds or that already has one.
    pub async fn create_edition(&self, e: &NewEdition<'_>, now: DateTime<Utc>) -> Result<EditionRow, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = insert_edition(&mut tx, e, now).await?;
        crate::failpoint::pause(crate::failpoint::EDITION_UNCOMMITTED).await;
        tx.commit().await?;
        self.edition(id).await
    }

    /// The list's editions for its archive, newest first: `limit` of them
    /// after skipping `offset`. A cancelled edition is not in it.
    pub async fn archived_editions(
        &self,
        list: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ArchivedEdition>, StoreError> {
        let sql = format!(
            "SELECT id, nonce, subject, created_at, article_count FROM editions \
             WHERE list_name = $1 AND cancelled_at IS NULL AND {DIGESTS} \
             ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(list)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?)
    }

    /// One edition of the list's archive, by the nonce its address carries.
    pub async fn archived_edition(&self, list: &str, nonce: &str) -> Result<Option<EditionRow>, StoreError> {
        let sql = format!(
            "SELECT id, job, list_name, nonce, created_at, article_count, recipient_count, subject, html, text \
             FROM editions WHERE list_name = $1 AND nonce = $2 AND cancelled_at IS NULL AND {DIGESTS}"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(list)
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn edition(&self, id: i64) -> Result<EditionRow, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, job, list_name, nonce, created_at, article_count, recipient_count, subject, html, text FROM editions WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Pauses an edition: its queued rows are not claimed until it is resumed.
    /// Returns false when it was already paused (the first reason is kept).
    pub async fn pause_edition(&self, id: i64, reason: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let changed = sqlx::query("UPDATE editions SET paused = $2, paused_at = $3 WHERE id = $1 AND paused IS NULL")
            .bind(id)
            .bind(reason)
            .bind(now.timestamp_millis())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(changed > 0)
    }

    /// Clears the pause of the given editions (all paused ones when `ids` is
    /// empty); their queued rows are due again. Returns the editions resumed.
    pub async fn resume_editions(&self, ids: &[i64]) -> Result<Vec<PausedEdition>, StoreError> {
        let paused: Vec<PausedEdition> = self
            .paused_editions()
            .await?
            .into_iter()
            .filter(|e| ids.is_empty() || ids.contains(&e.id))
            .collect();
        let mut tx = self.pool.begin().await?;
        for e in &paused {
            sqlx::query("UPDATE editions SET paused = NULL, paused_at = NULL WHERE id = $1")
                .bind(e.id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(paused)
    }

    /// Every paused edition, with why, and how many of its rows wait.
    pub async fn paused_editions(&self) -> Result<Vec<PausedEdition>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT e.id, e.job, e.list_name, e.paused AS reason, e.paused_at, \
             (SELECT COUNT(*) FROM deliveries d WHERE d.edition_id = e.id AND d.state = 'queued') AS queued \
             FROM editions e WHERE e.paused IS NOT NULL ORDER BY e.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The creation time of the job's latest edition.
    pub async fn last_edition_at(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT created_at FROM editions WHERE job = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?;
        Ok(at.and_then(DateTime::from_timestamp_millis))
    }

    /// The creation time of the list's latest edition made by a job other
    /// than those named in `except`.
    pub async fn last_list_edition_at(
        &self,
        list: &str,
        except: &[String],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let marks: Vec<String> = (0..except.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = if except.is_empty() {
            format!("SELECT MAX(created_at) FROM editions WHERE list_name = $1 AND {DIGESTS}")
        } else {
            format!(
                "SELECT MAX(created_at) FROM editions WHERE list_name = $1 AND {DIGESTS} AND job NOT IN ({})",
                marks.join(", ")
            )
        };
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(list);
        for name in except {
            query = query.bind(name.clone());
        }
        let at: Option<i64> = query.fetch_one(&self.pool).await?;
        Ok(at.and_then(DateTime::from_timestamp_millis))
    }

    /// Cancels an edition for good: its queued rows become `cancelled` and
    /// none of its rows is claimed again; rows being sent finish. `None`
    /// when there is no such edition.
    pub async fn cancel_edition(&self, id: i64, now: DateTime<Utc>) -> Result<Option<Cancelled>, StoreError> {
        let now = now.timestamp_millis();
        let mut tx = self.pool.begin().await?;
        let found = sqlx::query("UPDATE editions SET cancelled_at = COALESCE(cancelled_at, $2) WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if found == 0 {
            return Ok(None);
        }
        let cancelled = sqlx::query(
            "UPDATE deliveries SET state = 'cancelled', updated_at = $2 WHERE edition_id = $1 AND state = 'queued'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let (sending, sent): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(CASE WHEN state = 'sending' THEN 1 END), COUNT(CASE WHEN state = 'sent' THEN 1 END) \
             FROM deliveries WHERE edition_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Cancelled {
            cancelled,
            sending: sending as u64,
            sent: sent as u64,
        }))
    }
}

/// What cancelling an edition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled {
    /// Rows that will never be sent.
    pub cancelled: u64,
    /// Rows being sent at the cancel, which finish.
    pub sending: u64,
    /// Rows sent before the cancel.
    pub sent: u64,
}
