//! Counts across the store for `/metrics`: what was ingested, edited,
//! delivered and posted, read at scrape time so every process that shares
//! the store (the daemon, one-shot commands) is counted.

use sqlx::AssertSqlSafe;

use super::{Store, StoreError};

/// One labelled value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// What `/metrics` shows from the store.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub articles_by_source: Vec<Sample>,
    pub editions_by_job: Vec<Sample>,
    pub last_edition_by_job: Vec<Sample>,
    pub deliveries_by_state: Vec<Sample>,
    pub replies_by_class: Vec<Sample>,
    pub posts_by_outcome: Vec<Sample>,
    pub subscribers_by_status: Vec<Sample>,
    pub queue_depth: Vec<Sample>,
    /// Editions paused over the error budget: their queued rows, labelled with why.
    pub paused_editions: Vec<Sample>,
    /// Fires taken over from an instance that died, by job.
    pub fires_taken_over: Vec<Sample>,
    /// Fires claimed and not finished, by job.
    pub fires_unfinished: Vec<Sample>,
    /// Jobs held by an operator, with why.
    pub jobs_held: Vec<Sample>,
    /// Bounce ledger records, by kind and whether they matched a delivery.
    pub bounces_by_kind: Vec<Sample>,
    /// Complaints per sent message, for each edition that drew any.
    pub complaint_rate_by_edition: Vec<Sample>,
    /// Suppressed addresses, by why.
    pub suppressions_by_reason: Vec<Sample>,
    /// Deliveries sent over the last `window_secs`, per second.
    pub send_rate: f64,
}

/// A suppression's reason, as the places that write it word it: the bounce
/// ledger (`hard bounce ...`, `N soft bounces in a row ...`, `complaint ...`),
/// an erasure, a 5xx refusal at send time (the reply itself), and the rest
/// an operator's.
const SUPPRESSION_REASON: &str = "CASE WHEN reason LIKE 'hard bounce%' THEN 'hard_bounce' \
     WHEN reason LIKE '% soft bounces in a row%' THEN 'soft_bounces' \
     WHEN reason LIKE 'complaint%' THEN 'complaint' \
     WHEN reason = 'erased on request' THEN 'erasure' \
     WHEN reason LIKE '5%' THEN 'refused_at_send' ELSE 'operator' END";

/// Counts rows grouped by `columns` (each a SQL expression) with `label` names.
async fn grouped(store: &Store, labels: &[&'static str], select: &str, tail: &str) -> Result<Vec<Sample>, StoreError> {
    let sql = format!("SELECT {select}, COUNT(*) FROM {tail}");
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&store.pool).await?;
    use sqlx::Row;
    Ok(rows
        .iter()
        .map(|row| Sample {
            labels: labels
                .iter()
                .enumerate()
                .map(|(i, name)| (*name, row.try_get::<String, _>(i).unwrap_or_default()))
                .collect(),
            value: row.try_get::<i64, _>(labels.len()).unwrap_or_default() as f64,
        })
        .collect())
}

impl Store {
    /// Reads every count `/metrics` shows; `now_ms` and `window_secs` set the send-rate window.
    pub async fn stats(&self, now_ms: i64, window_secs: i64) -> Result<Stats, StoreError> {
        let reply_class = "CASE WHEN SUBSTR(last_reply, 1, 1) IN ('2', '4', '5') \
                           THEN SUBSTR(last_reply, 1, 1) || 'xx' ELSE 'other' END";
        let last_editions =
            sqlx::query_as::<_, (String, i64)>("SELECT job, MAX(created_at) FROM editions GROUP BY job ORDER BY job")
                .fetch_all(&self.pool)
                .await?;
        let sent_recently: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'sent' AND updated_at > $1")
                .bind(now_ms - window_secs * 1000)
                .fetch_one(&self.pool)
                .await?;
        Ok(Stats {
            articles_by_source: grouped(self, &["source"], "source", "articles GROUP BY source ORDER BY source")
                .await?,
            editions_by_job: grouped(self, &["job"], "job", "editions GROUP BY job ORDER BY job").await?,
            last_edition_by_job: last_editions
                .into_iter()
                .map(|(job, at)| Sample {
                    labels: vec![("job", job)],
                    value: at as f64 / 1000.0,
                })
                .collect(),
            deliveries_by_state: grouped(
                self,
                &["job", "state"],
                "job, state",
                "deliveries GROUP BY job, state ORDER BY job, state",
            )
            .await?,
            replies_by_class: grouped(
                self,
                &["job", "class"],
                &format!("job, {reply_class}"),
                &format!(
                    "deliveries WHERE last_reply IS NOT NULL GROUP BY job, {reply_class} ORDER BY job, {reply_class}"
                ),
            )
            .await?,
            posts_by_outcome: grouped(
                self,
                &["account", "state"],
                "account, state",
                "posts GROUP BY account, state ORDER BY account, state",
            )
            .await?,
            subscribers_by_status: grouped(
                self,
                &["list", "status"],
                "list_name, status",
                "subscribers GROUP BY list_name, status ORDER BY list_name, status",
            )
            .await?,
            queue_depth: grouped(
                self,
                &["job"],
                "job",
                "deliveries WHERE state IN ('queued', 'sending') GROUP BY job ORDER BY job",
            )
            .await?,
            paused_editions: self
                .paused_editions()
                .await?
                .into_iter()
                .map(|e| Sample {
                    labels: vec![("job", e.job), ("edition", e.id.to_string()), ("reason", e.reason)],
                    value: e.queued as f64,
                })
                .collect(),
            fires_taken_over: sqlx::query_as::<_, (String, i64)>(
                "SELECT job, CAST(SUM(takeovers) AS BIGINT) FROM job_fires GROUP BY job HAVING SUM(takeovers) > 0 ORDER BY job",
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(job, n)| Sample {
                labels: vec![("job", job)],
                value: n as f64,
            })
            .collect(),
            fires_unfinished: grouped(
                self,
                &["job"],
                "job",
                "job_fires WHERE finished_at IS NULL GROUP BY job ORDER BY job",
            )
            .await?,
            jobs_held: self
                .holds()
                .await?
                .into_iter()
                .map(|h| Sample {
                    labels: vec![("job", h.job), ("reason", h.reason)],
                    value: 1.0,
                })
                .collect(),
            bounces_by_kind: grouped(
                self,
                &["kind", "matched"],
                "kind, CASE WHEN matched_by = 'unmatched' THEN 'no' ELSE 'yes' END",
                "bounces GROUP BY kind, CASE WHEN matched_by = 'unmatched' THEN 'no' ELSE 'yes' END ORDER BY 1, 2",
            )
            .await?,
            complaint_rate_by_edition: sqlx::query_as::<_, (String, i64, i64, i64)>(
                "SELECT e.job, e.id, COUNT(DISTINCT b.delivery_id), \
                 (SELECT COUNT(*) FROM deliveries s WHERE s.edition_id = e.id AND s.state = 'sent') \
                 FROM bounces b JOIN deliveries d ON d.id = b.delivery_id JOIN editions e ON e.id = d.edition_id \
                 WHERE b.kind = 'complaint' GROUP BY e.job, e.id ORDER BY e.id",
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(job, edition, complaints, sent)| Sample {
                labels: vec![("job", job), ("edition", edition.to_string())],
                value: complaints as f64 / sent.max(1) as f64,
            })
            .collect(),
            suppressions_by_reason: grouped(
                self,
                &["reason"],
                SUPPRESSION_REASON,
                &format!("suppressions GROUP BY {SUPPRESSION_REASON} ORDER BY 1"),
            )
            .await?,
            send_rate: sent_recently as f64 / window_secs as f64,
        })
    }
}
