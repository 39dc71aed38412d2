//! Mastodon: `POST /api/v1/statuses` with a bearer token and an
//! `Idempotency-Key`, so a retried request returns the first post instead of
//! making a second. The character limit comes from `/api/v2/instance`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use tracing::warn;

use super::platform::{Outgoing, Platform};
use super::reply::{Reply, VerifyError, send};
use super::teaser::{Counting, Rule};
use crate::store::{Store, StoreError};

/// The limit when the instance does not say.
const FALLBACK_LIMIT: usize = 500;

pub struct MastodonClient<'a> {
    pub account: &'a str,
    pub base_url: &'a url::Url,
    pub access_token: &'a str,
    pub visibility: &'a str,
    pub timeout: Duration,
    /// Where the instance's character limit is kept once read.
    pub store: &'a Store,
}

impl MastodonClient<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }

    /// The instance's character limit, or `None` when it cannot be read.
    async fn char_limit(&self, http: &reqwest::Client) -> Option<usize> {
        let answer = send(http.get(self.url("/api/v2/instance")), self.timeout).await.ok()?;
        if !answer.status.is_success() {
            return None;
        }
        answer.json()["configuration"]["statuses"]["max_characters"]
            .as_u64()
            .map(|n| n as usize)
    }
}

impl Platform for MastodonClient<'_> {
    /// Characters with every URL as 23, up to the instance's limit (read
    /// once and kept; 500 when the instance does not say).
    async fn rule(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Result<Rule, StoreError> {
        let max = match self.store.account_char_limit(self.account).await? {
            Some(limit) => limit as usize,
            None => match self.char_limit(http).await {
                Some(limit) => {
                    self.store
                        .save_account_char_limit(self.account, limit as i64, now)
                        .await?;
                    limit
                }
                None => {
                    warn!(account = %self.account, "the instance did not give its character limit; using {FALLBACK_LIMIT}");
                    FALLBACK_LIMIT
                }
            },
        };
        Ok(Rule {
            counting: Counting::CharsUrl23,
            max,
            max_bytes: None,
        })
    }

    /// Checks the token without posting (`GET /api/v1/accounts/verify_credentials`):
    /// the account it belongs to, or why not.
    async fn verify(&self, http: &reqwest::Client, _: DateTime<Utc>) -> Option<Result<String, VerifyError>> {
        let request = http
            .get(self.url("/api/v1/accounts/verify_credentials"))
            .bearer_auth(self.access_token);
        let answer = match send(request, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return Some(Err(VerifyError::Failed(reply))),
        };
        if !answer.status.is_success() {
            return Some(Err(VerifyError::Refused(answer.message())));
        }
        Some(Ok(format!(
            "token accepted for @{}",
            answer.json()["acct"].as_str().unwrap_or("?")
        )))
    }

    async fn post(&self, http: &reqwest::Client, outgoing: &Outgoing<'_>, now: DateTime<Utc>) -> Reply {
        let request = http
            .post(self.url("/api/v1/statuses"))
            .bearer_auth(self.access_token)
            .header("Idempotency-Key", &outgoing.post.idempotency_key)
            .json(&serde_json::json!({ "status": outgoing.post.text, "visibility": self.visibility }));
        let answer = match send(request, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return reply,
        };
        if answer.status.is_success() {
            let json = answer.json();
            return Reply::Posted {
                id: json["id"].as_str().unwrap_or_default().to_string(),
                url: json["url"].as_str().map(str::to_string),
                raw: answer.message(),
            };
        }
        // A 401 is a revoked or expired OAuth token: the post waits for a new one.
        answer.classify_failure(now)
    }
}
