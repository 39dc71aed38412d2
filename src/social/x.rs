//! X (Twitter) API v2: `POST /2/tweets` with a JSON body, signed with OAuth
//! 1.0a user context (HMAC-SHA1 over the method, URL and OAuth parameters).

use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth1_request::signature_method::HmacSha1;

use super::platform::{Outgoing, Platform};
use super::reply::{Reply, VerifyError, send};
use super::teaser::{Counting, Rule};
use crate::store::StoreError;

pub struct XClient<'a> {
    pub base_url: &'a url::Url,
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub access_token: &'a str,
    pub access_token_secret: &'a str,
    pub timeout: Duration,
}

impl XClient<'_> {
    /// The OAuth 1.0a `Authorization` header for a request to `uri`.
    fn authorization(&self, method: &str, uri: &str) -> String {
        let token = oauth1_request::Token::from_parts(
            self.consumer_key,
            self.consumer_secret,
            self.access_token,
            self.access_token_secret,
        );
        // A JSON body is not part of the OAuth 1.0a signature base string.
        oauth1_request::authorize(method, uri, &(), &token, HmacSha1::new())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.as_str().trim_end_matches('/'))
    }
}

impl Platform for XClient<'_> {
    /// Weighted counting (a URL as 23, CJK and emoji as 2) up to 280.
    async fn rule(&self, _: &reqwest::Client, _: DateTime<Utc>) -> Result<Rule, StoreError> {
        Ok(Rule {
            counting: Counting::XWeighted,
            max: 280,
            max_bytes: None,
        })
    }

    /// Checks the four keys without posting: `GET /2/users/me`, signed.
    async fn verify(&self, http: &reqwest::Client, _: DateTime<Utc>) -> Option<Result<String, VerifyError>> {
        let uri = self.url("/2/users/me");
        let request = http
            .get(&uri)
            .header(reqwest::header::AUTHORIZATION, self.authorization("GET", &uri));
        let answer = match send(request, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return Some(Err(VerifyError::Failed(reply))),
        };
        if !answer.status.is_success() {
            return Some(Err(VerifyError::Refused(answer.message())));
        }
        Some(Ok(format!(
            "keys accepted for @{}",
            answer.json()["data"]["username"].as_str().unwrap_or("?")
        )))
    }

    async fn post(&self, http: &reqwest::Client, outgoing: &Outgoing<'_>, now: DateTime<Utc>) -> Reply {
        let uri = self.url("/2/tweets");
        let request = http
            .post(&uri)
            .header(reqwest::header::AUTHORIZATION, self.authorization("POST", &uri))
            .json(&serde_json::json!({ "text": outgoing.post.text }));
        let answer = match send(request, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return reply,
        };
        if answer.status.is_success() {
            let id = answer.json()["data"]["id"].as_str().unwrap_or_default().to_string();
            return Reply::Posted {
                url: Some(format!("https://x.com/i/web/status/{id}")),
                id,
                raw: answer.message(),
            };
        }
        if answer.status.as_u16() == 403 && answer.body.to_lowercase().contains("duplicate") {
            return Reply::Duplicate(answer.message());
        }
        match answer.classify_failure(now) {
            // OAuth 1.0a user tokens do not expire: a 401 means revoked or wrong keys.
            Reply::AuthExpired(reply) => Reply::Permanent(reply),
            other => other,
        }
    }
}
