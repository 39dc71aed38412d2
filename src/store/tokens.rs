//! Per social account, the state of its OAuth access token: which operator
//! secret it is about (by fingerprint), a refreshed token (sealed by the
//! caller), when the token in use expires, whether the platform refused it,
//! and when an expiry warning was last logged.

use chrono::{DateTime, Utc};

use super::columns::MaybeMillis;
use super::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountToken {
    /// The fingerprint of the operator's secret this state is about.
    #[sqlx(rename = "token_fingerprint")]
    pub fingerprint: Option<String>,
    /// A token the platform issued in exchange (a refresh), sealed.
    #[sqlx(rename = "token_sealed")]
    pub sealed: Option<String>,
    #[sqlx(rename = "token_expires_at", try_from = "MaybeMillis")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the platform refused the token (posts wait), and its reply.
    #[sqlx(rename = "token_refused_at", try_from = "MaybeMillis")]
    pub refused_at: Option<DateTime<Utc>>,
    #[sqlx(rename = "token_refused_reply")]
    pub refused_reply: Option<String>,
    #[sqlx(rename = "token_warned_at", try_from = "MaybeMillis")]
    pub warned_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "token_fingerprint, token_sealed, token_expires_at, token_refused_at, \
                       token_refused_reply, token_warned_at";

impl Store {
    /// The account's token state; all empty when it has none yet.
    pub async fn account_token(&self, account: &str) -> Result<AccountToken, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM account_state WHERE account = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account)
            .fetch_optional(&self.pool)
            .await?
            .unwrap_or_default())
    }

    /// Every account's token state, by account name.
    pub async fn account_tokens(&self) -> Result<Vec<(String, AccountToken)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            account: String,
            #[sqlx(flatten)]
            token: AccountToken,
        }
        let sql = format!("SELECT account, {COLUMNS} FROM account_state ORDER BY account");
        let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|r| (r.account, r.token)).collect())
    }

    /// Replaces the account's token state with `token`.
    pub async fn save_account_token(
        &self,
        account: &str,
        token: &AccountToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let millis = |at: Option<DateTime<Utc>>| at.map(|t| t.timestamp_millis());
        sqlx::query(
            "INSERT INTO account_state (account, token_fingerprint, token_sealed, token_expires_at, \
             token_refused_at, token_refused_reply, token_warned_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (account) DO UPDATE SET token_fingerprint = $2, token_sealed = $3, \
             token_expires_at = $4, token_refused_at = $5, token_refused_reply = $6, token_warned_at = $7, \
             updated_at = $8",
        )
        .bind(account)
        .bind(&token.fingerprint)
        .bind(&token.sealed)
        .bind(millis(token.expires_at))
        .bind(millis(token.refused_at))
        .bind(&token.refused_reply)
        .bind(millis(token.warned_at))
        .bind(now.timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
