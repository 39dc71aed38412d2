//! Mastodon: `POST /api/v1/statuses` with a bearer token and an
//! `Idempotency-Key`, so a retried request returns the first post instead of
//! making a second. The character limit comes from `/api/v2/instance`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::reply::{Reply, VerifyError, send};

/// The limit when the instance does not say.
pub const FALLBACK_LIMIT: usize = 500;

pub struct MastodonClient<'a> {
    pub base_url: &'a url::Url,
    pub access_token: &'a str,
    pub visibility: &'a str,
    pub timeout: Duration,
}

impl MastodonClient<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }

    /// The instance's character limit, or `None` when it cannot be read.
    pub async fn char_limit(&self, http: &reqwest::Client) -> Option<usize> {
        let answer = send(http.get(self.url("/api/v2/instance")), self.timeout).await.ok()?;
        if !answer.status.is_success() {
            return None;
        }
        answer.json()["configuration"]["statuses"]["max_characters"]
            .as_u64()
            .map(|n| n as usize)
    }

    /// Checks the token without posting (`GET /api/v1/accounts/verify_credentials`):
    /// the account it belongs to, or why not.
    pub async fn verify(&self, http: &reqwest::Client) -> Result<String, VerifyError> {
        let request = http
            .get(self.url("/api/v1/accounts/verify_credentials"))
            .bearer_auth(self.access_token);
        let answer = send(request, self.timeout).await.map_err(VerifyError::Failed)?;
        if !answer.status.is_success() {
            return Err(VerifyError::Refused(answer.message()));
        }
        Ok(format!(
            "token accepted for @{}",
            answer.json()["acct"].as_str().unwrap_or("?")
        ))
    }

    pub async fn post(&self, http: &reqwest::Client, text: &str, idempotency_key: &str, now: DateTime<Utc>) -> Reply {
        let request = http
            .post(self.url("/api/v1/statuses"))
            .bearer_auth(self.access_token)
            .header("Idempotency-Key", idempotency_key)
            .json(&serde_json::json!({ "status": text, "visibility": self.visibility }));
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
        match answer.classify_failure(now) {
            // A Mastodon token is not refreshed: a 401 means it was revoked.
            Reply::AuthExpired(reply) => Reply::Permanent(reply),
            other => other,
        }
    }
}
