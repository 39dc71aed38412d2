//! The bounce ledger: one row per (report, failed address), each tied to the
//! delivery it is about (or kept unmatched), and what it did to the address:
//! a hard bounce suppresses it, a complaint unsubscribes and suppresses it,
//! soft bounces suppress it once enough came with no delivery between.

use chrono::{DateTime, Utc};

use super::columns::Millis;
use super::subscribers::{email_key, insert_consent, insert_suppression};
use super::{Consent, Store, StoreError};

text_state! {
    /// What a report says about one address.
    pub enum BounceKind("bounce kind") {
        /// The address is gone (no such user or domain, disabled, moved): suppress now.
        Hard = "hard",
        /// The address may work later (full, greylisted, rate limited, too
        /// large, blocked by policy, delayed): count it.
        Soft = "soft",
        /// The reader marked the mail as spam: unsubscribe and suppress now.
        Complaint = "complaint",
    }
}

text_state! {
    /// What recording a finding did to its address.
    pub enum BounceAction("bounce action") {
        /// The address went on the suppression list.
        Suppressed = "suppressed",
        /// The subscriber was unsubscribed and the address suppressed (a complaint).
        Unsubscribed = "unsubscribed",
        /// A soft bounce, counted towards the limit.
        Counted = "counted",
        /// Nothing: the report matched no delivery, or the address was suppressed already.
        None = "none",
    }
}

/// The delivery a report is about.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BounceTarget {
    pub delivery_id: i64,
    pub edition_id: i64,
    pub subscriber_id: i64,
    pub list_name: String,
    /// The address the delivery went to.
    pub email: String,
}

/// One finding to record.
#[derive(Debug, Clone)]
pub struct NewBounce {
    /// The report's Message-ID or content hash.
    pub report_id: String,
    /// The failed address as the report names it; empty when it names none.
    pub address: String,
    pub kind: BounceKind,
    pub status: String,
    pub diagnostic: String,
    /// Where the report came from: `file`, `imap`, `webhook:<provider>`.
    pub source: String,
    /// `verp`, `message-id`, `address`, or `unmatched` (with no target).
    pub matched_by: &'static str,
    pub target: Option<BounceTarget>,
}

/// When soft bounces suppress an address.
#[derive(Debug, Clone, Copy)]
pub struct SoftLimit {
    pub count: u32,
    pub window: chrono::Duration,
}

/// A recorded finding, as `herald bounces` lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BounceRow {
    pub id: i64,
    pub report_id: String,
    pub address: String,
    #[sqlx(try_from = "String")]
    pub kind: BounceKind,
    pub status: String,
    pub diagnostic: String,
    pub source: String,
    pub matched_by: String,
    pub delivery_id: Option<i64>,
    pub edition_id: Option<i64>,
    #[sqlx(try_from = "String")]
    pub action: BounceAction,
    #[sqlx(try_from = "Millis")]
    pub received_at: DateTime<Utc>,
}

/// An edition's bounces and complaints beside its sent messages.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EditionBounces {
    pub edition_id: i64,
    pub job: String,
    pub hard: i64,
    pub soft: i64,
    pub complaints: i64,
    pub sent: i64,
}

const TARGET: &str = "SELECT d.id AS delivery_id, d.edition_id, d.subscriber_id, s.list_name, d.email \
                      FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id";

impl Store {
    /// The delivery `id`, if Herald made it (named by a VERP token).
    pub async fn bounce_target(&self, id: i64) -> Result<Option<BounceTarget>, StoreError> {
        let sql = format!("{TARGET} WHERE d.id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The delivery whose Message-ID was `<herald.{edition}.{delivery}.{nonce}@..>`:
    /// all three must agree, so a guessed id matches nothing.
    pub async fn bounce_target_by_message(
        &self,
        edition: i64,
        delivery: i64,
        nonce: &str,
    ) -> Result<Option<BounceTarget>, StoreError> {
        let sql = format!(
            "{TARGET} JOIN editions e ON e.id = d.edition_id WHERE d.id = $1 AND d.edition_id = $2 AND e.nonce = $3"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(delivery)
            .bind(edition)
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The latest delivery sent to `email` since `since`.
    pub async fn bounce_target_by_address(
        &self,
        email: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<BounceTarget>, StoreError> {
        let sql = format!(
            "{TARGET} WHERE s.email_key = $1 AND d.state = 'sent' AND d.updated_at >= $2 ORDER BY d.updated_at DESC, d.id DESC LIMIT 1"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(email_key(email))
            .bind(since.timestamp_millis())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Whether report `report_id` was recorded already (for any address).
    pub async fn bounce_report_seen(&self, report_id: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bounces WHERE report_id = $1")
            .bind(report_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Records findings and acts on each, in order, in one transaction
    /// (a batch shares one commit). An entry is `None` when that report's
    /// finding for that address was recorded before: it acts once.
    pub async fn record_bounces(
        &self,
        batch: &[NewBounce],
        soft: SoftLimit,
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<BounceAction>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut actions = Vec::with_capacity(batch.len());
        for b in batch {
            actions.push(record(&mut tx, b, soft, now).await?);
        }
        tx.commit().await?;
        Ok(actions)
    }

    /// Recorded findings, newest first, of one kind or all.
    pub async fn bounces(&self, kind: Option<BounceKind>, limit: i64) -> Result<Vec<BounceRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT b.id, b.report_id, b.address, b.kind, b.status, b.diagnostic, b.source, b.matched_by, \
             b.delivery_id, d.edition_id, b.action, b.received_at \
             FROM bounces b LEFT JOIN deliveries d ON d.id = b.delivery_id \
             WHERE ($1 = '' OR b.kind = $1) ORDER BY b.received_at DESC, b.id DESC LIMIT $2",
        )
        .bind(kind.map_or("", BounceKind::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Findings by kind (in name order), counted in the store.
    pub async fn bounce_counts(&self) -> Result<Vec<(BounceKind, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT kind, COUNT(*) FROM bounces GROUP BY kind ORDER BY kind")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, n)| Some((kind.parse().ok()?, n)))
            .collect())
    }

    /// The editions (of `job`, or all) that drew bounces or complaints, newest first.
    pub async fn edition_bounces(&self, job: Option<&str>) -> Result<Vec<EditionBounces>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT e.id AS edition_id, e.job, \
             COUNT(DISTINCT CASE WHEN b.kind = 'hard' THEN b.delivery_id END) AS hard, \
             COUNT(DISTINCT CASE WHEN b.kind = 'soft' THEN b.delivery_id END) AS soft, \
             COUNT(DISTINCT CASE WHEN b.kind = 'complaint' THEN b.delivery_id END) AS complaints, \
             (SELECT COUNT(*) FROM deliveries s WHERE s.edition_id = e.id AND s.state = 'sent') AS sent \
             FROM bounces b JOIN deliveries d ON d.id = b.delivery_id JOIN editions e ON e.id = d.edition_id \
             WHERE ($1 = '' OR e.job = $1) GROUP BY e.id, e.job ORDER BY e.id DESC",
        )
        .bind(job.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Complaints and sent messages of an edition.
    pub async fn edition_complaints(&self, edition: i64) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as(
            "SELECT (SELECT COUNT(DISTINCT b.delivery_id) FROM bounces b JOIN deliveries d ON d.id = b.delivery_id \
             WHERE d.edition_id = $1 AND b.kind = 'complaint'), \
             (SELECT COUNT(*) FROM deliveries WHERE edition_id = $1 AND state = 'sent')",
        )
        .bind(edition)
        .fetch_one(&self.pool)
        .await?)
    }
}

/// Records one finding and acts on it, inside the batch's transaction.
async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    b: &NewBounce,
    soft: SoftLimit,
    now: DateTime<Utc>,
) -> Result<Option<BounceAction>, StoreError> {
    // The address acted on is the delivery's: a report may name a
    // forwarding address the reader never gave.
    let address = email_key(b.target.as_ref().map_or(b.address.as_str(), |t| t.email.as_str()));
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO bounces (report_id, address, kind, status, diagnostic, source, matched_by, delivery_id, \
         subscriber_id, action, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'none', $10) \
         ON CONFLICT (report_id, address) DO NOTHING RETURNING id",
    )
    .bind(&b.report_id)
    .bind(&address)
    .bind(b.kind.as_str())
    .bind(&b.status)
    .bind(&b.diagnostic)
    .bind(&b.source)
    .bind(b.matched_by)
    .bind(b.target.as_ref().map(|t| t.delivery_id))
    .bind(b.target.as_ref().map(|t| t.subscriber_id))
    .bind(now.timestamp_millis())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else {
        return Ok(None);
    };
    let action = match &b.target {
        None => BounceAction::None,
        Some(target) => act(tx, b, target, &address, soft, now).await?,
    };
    if action != BounceAction::None {
        sqlx::query("UPDATE bounces SET action = $2 WHERE id = $1")
            .bind(id)
            .bind(action.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(Some(action))
}

/// What a matched finding does to its address (inside the recording transaction).
async fn act(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    b: &NewBounce,
    target: &BounceTarget,
    address: &str,
    soft: SoftLimit,
    now: DateTime<Utc>,
) -> Result<BounceAction, StoreError> {
    let now_ms = now.timestamp_millis();
    let suppress = async |tx: &mut sqlx::Transaction<'_, sqlx::Any>, reason: String| {
        insert_suppression(&mut **tx, address, &reason, now_ms).await
    };
    let code = if b.status.is_empty() {
        "no code"
    } else {
        b.status.as_str()
    };
    match b.kind {
        BounceKind::Hard => {
            let added = suppress(tx, format!("hard bounce ({code}), delivery {}", target.delivery_id)).await?;
            Ok(if added {
                BounceAction::Suppressed
            } else {
                BounceAction::None
            })
        }
        BounceKind::Complaint => {
            let unsubscribed = sqlx::query(
                "UPDATE subscribers SET status = 'unsubscribed', updated_at = $2 WHERE id = $1 AND status = 'active'",
            )
            .bind(target.subscriber_id)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?
            .rows_affected()
                == 1;
            let consent = Consent {
                action: "complaint".into(),
                page: format!("{} report {}", b.source, b.report_id),
                ip: String::new(),
                user_agent: String::new(),
                wording_version: String::new(),
                wording: format!("marked edition {} as spam", target.edition_id),
            };
            insert_consent(&mut **tx, target.subscriber_id, &consent, now).await?;
            let added = suppress(tx, format!("complaint, delivery {}", target.delivery_id)).await?;
            Ok(if unsubscribed || added {
                BounceAction::Unsubscribed
            } else {
                BounceAction::None
            })
        }
        BounceKind::Soft => {
            // The streak: distinct deliveries soft-bounced within the window,
            // since the last delivery to the address that went out before
            // this one and drew no bounce.
            let since = (now - soft.window).timestamp_millis();
            let streak: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT b.delivery_id) FROM bounces b WHERE b.address = $1 AND b.kind = 'soft' \
                 AND b.delivery_id IS NOT NULL AND b.received_at >= $2 AND b.delivery_id > COALESCE(( \
                   SELECT MAX(d.id) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
                   WHERE s.email_key = $1 AND d.state = 'sent' AND d.id < $3 \
                   AND NOT EXISTS (SELECT 1 FROM bounces x WHERE x.delivery_id = d.id)), 0)",
            )
            .bind(address)
            .bind(since)
            .bind(target.delivery_id)
            .fetch_one(&mut **tx)
            .await?;
            if streak >= i64::from(soft.count) {
                let added = suppress(
                    tx,
                    format!(
                        "{streak} soft bounces in a row, the last ({code}) on delivery {}",
                        target.delivery_id
                    ),
                )
                .await?;
                Ok(if added {
                    BounceAction::Suppressed
                } else {
                    BounceAction::Counted
                })
            } else {
                Ok(BounceAction::Counted)
            }
        }
    }
}
