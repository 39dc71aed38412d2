//! X (Twitter) API v2: `POST /2/tweets` with a JSON body, signed with OAuth
//! 1.0a user context (HMAC-SHA1 over the method, URL and OAuth parameters).

use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth1_request::signature_method::HmacSha1;

use super::reply::{Reply, VerifyError, send};

pub struct XClient<'a> {
    pub base_url: &'a url::Url,
    pub consumer_key: &'a str,
    pub consumer_secret: &'a str,
    pub access_token: &'a str,
    pub access_token_secret: &'a str,
    pub timeout: Duration,
}

impl XClient<'_> {
    /// Checks the four keys without posting: `GET /2/users/me`, signed.
    pub async fn verify(&self, http: &reqwest::Client) -> Result<String, VerifyError> {
        let uri = format!("{}/2/users/me", self.base_url.as_str().trim_end_matches('/'));
        let token = oauth1_request::Token::from_parts(
            self.consumer_key,
            self.consumer_secret,
            self.access_token,
            self.access_token_secret,
        );
        let authorization = oauth1_request::authorize("GET", &uri, &(), &token, HmacSha1::new());
        let request = http.get(&uri).header(reqwest::header::AUTHORIZATION, authorization);
        let answer = send(request, self.timeout).await.map_err(VerifyError::Failed)?;
        if !answer.status.is_success() {
            return Err(VerifyError::Refused(answer.message()));
        }
        Ok(format!(
            "keys accepted for @{}",
            answer.json()["data"]["username"].as_str().unwrap_or("?")
        ))
    }

    pub async fn post(&self, http: &reqwest::Client, text: &str, now: DateTime<Utc>) -> Reply {
        let uri = format!("{}/2/tweets", self.base_url.as_str().trim_end_matches('/'));
        let token = oauth1_request::Token::from_parts(
            self.consumer_key,
            self.consumer_secret,
            self.access_token,
            self.access_token_secret,
        );
        // A JSON body is not part of the OAuth 1.0a signature base string.
        let authorization = oauth1_request::authorize("POST", &uri, &(), &token, HmacSha1::new());
        let request = http
            .post(&uri)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .json(&serde_json::json!({ "text": text }));
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
