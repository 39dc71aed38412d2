//! What a platform's answer means for the retry logic: posted, a duplicate
//! (counts as posted), rate limited until a time, auth expired, transient or
//! permanent, read from the HTTP status, the headers and the JSON body.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};

/// A classified answer to one post request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Posted {
        id: String,
        url: Option<String>,
        raw: String,
    },
    /// The platform already has this post (X's duplicate-content 403, an existing Bluesky record).
    Duplicate(String),
    RateLimited {
        until: DateTime<Utc>,
        reply: String,
    },
    /// The credentials were refused after the one refresh the platform allows.
    AuthExpired(String),
    /// 5xx, timeouts, connection failures: retry with backoff. `in_doubt` when
    /// the post may have been made before the failure.
    Transient {
        reply: String,
        in_doubt: bool,
    },
    /// Any other 4xx: the platform's message.
    Permanent(String),
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Posted { id, .. } => write!(f, "posted as {id}"),
            Reply::Duplicate(m) => write!(f, "already posted: {m}"),
            Reply::RateLimited { until, reply } => write!(f, "rate limited until {until}: {reply}"),
            Reply::AuthExpired(m) => write!(f, "credentials refused: {m}"),
            Reply::Transient { reply, .. } | Reply::Permanent(reply) => f.write_str(reply),
        }
    }
}

/// Why a platform did not confirm an account's credentials.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The platform answered with a refusal: its status and its own words.
    #[error("HTTP {0}")]
    Refused(String),
    /// No answer that says yes: a timeout, a connection failure, a rate limit.
    #[error("{0}")]
    Failed(Reply),
}

/// A raw HTTP answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// The most bytes of a platform's answer read. Real answers are a few KiB;
/// a longer one is not read further and counts as no answer (in doubt: the
/// request may have been taken).
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

impl Answer {
    pub async fn read(mut response: Response) -> Result<Answer, Reply> {
        let status = response.status();
        let headers = response.headers().clone();
        let failed = |reply: String| Reply::Transient { reply, in_doubt: true };
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(crate::error_chain(&e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(failed(format!(
                    "HTTP {}: an answer over {MAX_ANSWER_BYTES} bytes, not read further",
                    status.as_u16()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        Ok(Answer { status, headers, body })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The platform's own words, from the usual JSON fields, else the body.
    pub fn message(&self) -> String {
        let json = self.json();
        let text = [
            "detail",
            "error_description",
            "description",
            "message",
            "error",
            "title",
        ]
        .iter()
        .find_map(|k| json.get(k).and_then(|v| v.as_str()).map(str::to_string))
        // Meta's Graph API (Threads): {"error": {"message": ..., "code": ...}}.
        .or_else(|| json["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| self.body.chars().take(300).collect());
        format!("{} {}", self.status.as_u16(), text.trim())
    }

    /// When a 429 says to come back: `x-rate-limit-reset` / `ratelimit-reset`
    /// (epoch seconds), `Retry-After` (seconds or an HTTP date),
    /// `X-RateLimit-Reset` (Mastodon: an ISO 8601 time), a JSON `retry_after`
    /// (Discord, seconds; Telegram, under `parameters`). A minute when none says.
    pub fn retry_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let epoch = |v: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n > 1_000_000_000)
                .and_then(|s| DateTime::from_timestamp(s, 0))
        };
        let after = |secs: f64| now + chrono::Duration::milliseconds((secs * 1000.0).ceil() as i64);
        if let Some(at) = header("x-rate-limit-reset")
            .or(header("ratelimit-reset"))
            .and_then(epoch)
        {
            return at;
        }
        if let Some(v) = header("x-ratelimit-reset") {
            if let Ok(at) = DateTime::parse_from_rfc3339(v) {
                return at.with_timezone(&Utc);
            }
            if let Some(at) = epoch(v) {
                return at;
            }
        }
        if let Some(v) = header("retry-after") {
            if let Ok(secs) = v.parse::<f64>() {
                return after(secs);
            }
            if let Ok(at) = DateTime::parse_from_rfc2822(v) {
                return at.with_timezone(&Utc);
            }
        }
        let json = self.json();
        let secs = json
            .get("retry_after")
            .or_else(|| json.get("parameters").and_then(|p| p.get("retry_after")))
            .and_then(|v| v.as_f64());
        after(secs.unwrap_or(60.0))
    }

    /// The classification every platform shares for non-success answers.
    pub fn classify_failure(&self, now: DateTime<Utc>) -> Reply {
        match self.status.as_u16() {
            429 => Reply::RateLimited {
                until: self.retry_at(now),
                reply: self.message(),
            },
            401 => Reply::AuthExpired(self.message()),
            500..=599 => Reply::Transient {
                reply: self.message(),
                in_doubt: false,
            },
            _ => Reply::Permanent(self.message()),
        }
    }
}

/// `url` with `pairs` appended as its query.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(url).expect("an API URL made from a checked base URL");
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// `request` with `pairs` as an `application/x-www-form-urlencoded` body.
pub fn form(request: reqwest::RequestBuilder, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    request
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
}

/// Sends a request and reads the answer; a failure to get one is transient
/// (in doubt unless the connection was never made). The error leaves the
/// URL out: some carry a secret (a Telegram bot token, a chat webhook's
/// address, a Threads refresh's token), and the reply goes to logs and rows.
pub async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Answer, Reply> {
    match request.timeout(timeout).send().await {
        Ok(response) => Answer::read(response).await,
        Err(e) => Err(Reply::Transient {
            in_doubt: !e.is_connect(),
            reply: crate::error_chain(&e.without_url()),
        }),
    }
}
