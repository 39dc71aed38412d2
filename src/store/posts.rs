//! Social posts and per-account state. A post row is `posting`, with a lease,
//! before its request goes out; `posted` (with the platform's id) after.

use chrono::{DateTime, Utc};

use super::columns::{Flag, Millis};
use super::lease::{self, Queue};
use super::{StateCount, Store, StoreError, StoredArticle};

text_state! {
    /// The states a post record moves through.
    pub enum PostState("post state") {
        Queued = "queued",
        /// Its request is out, under a lease.
        Posting = "posting",
        Posted = "posted",
        /// Never to be posted: the article came before the account, or before its look-back.
        Skipped = "skipped",
        Failed = "failed",
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PostRow {
    pub id: i64,
    pub account: String,
    pub article_id: i64,
    #[sqlx(try_from = "String")]
    pub state: PostState,
    pub text: String,
    pub idempotency_key: String,
    pub attempts: i64,
    #[sqlx(try_from = "Flag")]
    pub in_doubt: bool,
    #[sqlx(try_from = "Millis")]
    pub created_at: DateTime<Utc>,
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    pub last_reply: Option<String>,
}

/// How one post attempt ended, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    Posted {
        remote_id: String,
        remote_url: Option<String>,
        reply: String,
    },
    Retry {
        reply: String,
        at: DateTime<Utc>,
        in_doubt: bool,
    },
    Failed {
        reply: String,
    },
    /// Not attempted: back to the queue as it was, due at `at`.
    Released {
        at: DateTime<Utc>,
    },
}

const POST_COLUMNS: &str = "id, account, article_id, state, text, idempotency_key, attempts, in_doubt, created_at, remote_id, remote_url, last_reply";

impl Store {
    /// Whether a social run has recorded the account's existing articles yet.
    pub async fn account_initialized(&self, account: &str) -> Result<bool, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM account_state WHERE account = $1 AND initialized_at IS NOT NULL")
                .bind(account)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    pub async fn initialize_account(&self, account: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO account_state (account, initialized_at, updated_at) VALUES ($1, $2, $2) \
             ON CONFLICT (account) DO UPDATE SET initialized_at = COALESCE(account_state.initialized_at, $2)",
        )
        .bind(account)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn account_session(&self, account: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT session FROM account_state WHERE account = $1")
                .bind(account)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    pub async fn save_account_session(
        &self,
        account: &str,
        session: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO account_state (account, session, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account) DO UPDATE SET session = $2, updated_at = $3",
        )
        .bind(account)
        .bind(session)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn account_char_limit(&self, account: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT char_limit FROM account_state WHERE account = $1")
                .bind(account)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }

    pub async fn save_account_char_limit(
        &self,
        account: &str,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO account_state (account, char_limit, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (account) DO UPDATE SET char_limit = $2, updated_at = $3",
        )
        .bind(account)
        .bind(limit)
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Articles from `sources` that have no post row for `account`, newest first.
    pub async fn unposted_articles(&self, account: &str, sources: &[String]) -> Result<Vec<StoredArticle>, StoreError> {
        if sources.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, identity, source, url, title, author, excerpt, tags, image, published_at FROM articles a \
             WHERE a.source IN ({}) AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.account = $1 AND p.article_id = a.id) \
             ORDER BY a.published_at DESC, a.id DESC",
            super::placeholders(2, sources.len())
        );
        let mut query = sqlx::query_as::<_, StoredArticle>(sqlx::AssertSqlSafe(sql)).bind(account);
        for source in sources {
            query = query.bind(source);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Records a post for (account, article) in `state` (`queued` or `skipped`) unless one exists.
    pub async fn add_post(
        &self,
        account: &str,
        article_id: i64,
        state: PostState,
        text: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let key = format!("herald-{}", uuid::Uuid::new_v4().simple());
        let done = sqlx::query(
            "INSERT INTO posts (account, article_id, state, text, idempotency_key, attempts, next_attempt_at, in_doubt, last_reply, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 0, $6, 0, $7, $6, $6) ON CONFLICT (account, article_id) DO NOTHING",
        )
        .bind(account)
        .bind(article_id)
        .bind(state.as_str())
        .bind(text)
        .bind(key)
        .bind(now.timestamp_millis())
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts `posting` rows of `account` whose lease ran out back in the queue, in doubt.
    pub async fn recover_expired_post_leases(&self, account: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        lease::recover_expired(&self.pool, Queue::Posts, account, now).await
    }

    /// Claims the account's next due post: it becomes `posting` with a lease before anything is sent.
    pub async fn claim_post(&self, account: &str, lease: &super::Lease<'_>) -> Result<Option<PostRow>, StoreError> {
        let sql = lease::claim_sql(Queue::Posts, self.backend, "", POST_COLUMNS);
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account)
            .bind(lease.now.timestamp_millis())
            .bind(lease.until.timestamp_millis())
            .bind(1_i64)
            .bind(lease.by)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// When the earliest lease on a `posting` row of `account` runs out.
    pub async fn earliest_post_lease(&self, account: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        lease::earliest(&self.pool, Queue::Posts, account).await
    }

    pub async fn record_post(&self, id: i64, outcome: &PostOutcome, now: DateTime<Utc>) -> Result<(), StoreError> {
        let now_ms = now.timestamp_millis();
        let q = match outcome {
            PostOutcome::Posted { remote_id, remote_url, reply } => sqlx::query(
                "UPDATE posts SET state = 'posted', remote_id = $2, remote_url = $3, last_reply = $4, posted_at = $5, \
                 lease_until = NULL, updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(remote_id.clone())
            .bind(remote_url.clone())
            .bind(reply.clone())
            .bind(now_ms),
            PostOutcome::Retry { reply, at, in_doubt } => sqlx::query(
                "UPDATE posts SET state = 'queued', last_reply = $2, next_attempt_at = $3, \
                 in_doubt = CASE WHEN $4 = 1 THEN 1 ELSE in_doubt END, lease_until = NULL, updated_at = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(reply.clone())
            .bind(at.timestamp_millis())
            .bind(*in_doubt as i64)
            .bind(now_ms),
            PostOutcome::Failed { reply } => sqlx::query(
                "UPDATE posts SET state = 'failed', last_reply = $2, lease_until = NULL, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(reply.clone())
            .bind(now_ms),
            PostOutcome::Released { at } => sqlx::query(
                "UPDATE posts SET state = 'queued', attempts = attempts - 1, next_attempt_at = $2, lease_until = NULL, updated_at = $3 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(at.timestamp_millis())
            .bind(now_ms),
        };
        q.execute(&self.pool).await?;
        Ok(())
    }

    /// When the account last posted, and how many posts it made since `since`.
    pub async fn post_activity(
        &self,
        account: &str,
        since: DateTime<Utc>,
    ) -> Result<(Option<DateTime<Utc>>, i64, Option<DateTime<Utc>>), StoreError> {
        let (last, count, oldest): (Option<i64>, i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT MAX(posted_at) FROM posts WHERE account = $1 AND state = 'posted'), \
             COUNT(*), MIN(posted_at) FROM posts WHERE account = $1 AND state = 'posted' AND posted_at > $2",
        )
        .bind(account)
        .bind(since.timestamp_millis())
        .fetch_one(&self.pool)
        .await?;
        Ok((
            last.and_then(DateTime::from_timestamp_millis),
            count,
            oldest.and_then(DateTime::from_timestamp_millis),
        ))
    }

    /// Posts of an account (all accounts when `None`), by state.
    pub async fn posts(&self, account: Option<&str>, limit: i64) -> Result<Vec<PostRow>, StoreError> {
        let sql = format!("SELECT {POST_COLUMNS} FROM posts WHERE ($1 = '' OR account = $1) ORDER BY id LIMIT $2");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The post records of `account` (or all) by state, counted in the store.
    pub async fn post_counts(&self, account: Option<&str>) -> Result<Vec<StateCount<PostState>>, StoreError> {
        lease::counts(&self.pool, Queue::Posts, account).await
    }

    /// The earliest next attempt among the account's queued posts.
    pub async fn next_post_at(&self, account: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM posts WHERE account = $1 AND state = 'queued'")
                .bind(account)
                .fetch_one(&self.pool)
                .await?;
        Ok(at.and_then(DateTime::from_timestamp_millis))
    }
}
