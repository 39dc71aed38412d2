//! Chat webhooks and bots: Slack and Discord incoming webhooks, Telegram's
//! bot `sendMessage`, and a generic JSON webhook (optionally HMAC-signed).

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::platform::{Outgoing, Platform};
use super::reply::{Reply, VerifyError, send};
use super::teaser::{Counting, Rule};
use crate::store::StoreError;

pub enum ChatKind<'a> {
    Slack,
    Discord,
    Telegram {
        bot_token: &'a str,
        chat_id: &'a str,
    },
    /// A generic JSON webhook; `max_chars` its operator's limit (100,000 unless set).
    Webhook {
        secret: Option<&'a str>,
        max_chars: Option<usize>,
    },
}

pub struct ChatClient<'a> {
    pub kind: ChatKind<'a>,
    pub url: &'a url::Url,
    pub timeout: Duration,
}

impl Platform for ChatClient<'_> {
    /// Characters, up to each service's message limit.
    async fn rule(&self, _: &reqwest::Client, _: DateTime<Utc>) -> Result<Rule, StoreError> {
        let max = match &self.kind {
            ChatKind::Discord => 2000,
            ChatKind::Telegram { .. } => 4096,
            ChatKind::Slack => 40_000,
            ChatKind::Webhook { max_chars, .. } => max_chars.unwrap_or(100_000),
        };
        Ok(Rule {
            counting: Counting::Chars,
            max,
            max_bytes: None,
        })
    }

    /// Checks a Telegram bot token without posting (`getMe`); `None` for
    /// webhooks, which have no such call.
    async fn verify(&self, http: &reqwest::Client, _: DateTime<Utc>) -> Option<Result<String, VerifyError>> {
        let ChatKind::Telegram { bot_token, .. } = &self.kind else {
            return None;
        };
        let url = format!("{}/bot{bot_token}/getMe", self.url.as_str().trim_end_matches('/'));
        let answer = match send(http.get(url), self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return Some(Err(VerifyError::Failed(reply))),
        };
        let json = answer.json();
        if !answer.status.is_success() || json["ok"].as_bool() != Some(true) {
            return Some(Err(VerifyError::Refused(answer.message())));
        }
        Some(Ok(format!(
            "bot token accepted for @{}",
            json["result"]["username"].as_str().unwrap_or("?")
        )))
    }

    /// Posts the teaser; a generic webhook also receives the article's data.
    async fn post(&self, http: &reqwest::Client, outgoing: &Outgoing<'_>, now: DateTime<Utc>) -> Reply {
        let text = outgoing.post.text.as_str();
        let request = match &self.kind {
            ChatKind::Slack => http.post(self.url.clone()).json(&serde_json::json!({ "text": text })),
            ChatKind::Discord => {
                let mut url = self.url.clone();
                url.query_pairs_mut().append_pair("wait", "true");
                http.post(url)
                    .json(&serde_json::json!({ "content": text, "allowed_mentions": { "parse": [] } }))
            }
            ChatKind::Telegram { bot_token, chat_id } => {
                let url = format!("{}/bot{bot_token}/sendMessage", self.url.as_str().trim_end_matches('/'));
                // The preview is the article's, whatever other link the template adds.
                let preview = serde_json::json!({ "url": outgoing.article.url, "prefer_large_media": true });
                http.post(url)
                    .json(&serde_json::json!({ "chat_id": chat_id, "text": text, "link_preview_options": preview }))
            }
            ChatKind::Webhook { secret, .. } => {
                let article = outgoing.article;
                let payload = serde_json::json!({
                    "title": article.title,
                    "url": article.url,
                    "excerpt": article.excerpt,
                    "author": article.author,
                    "tags": article.tags(),
                    "published": article.published_at.to_rfc3339(),
                });
                let body = serde_json::json!({ "text": text, "article": payload }).to_string();
                let mut request = http
                    .post(self.url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("Idempotency-Key", &outgoing.post.idempotency_key);
                if let Some(secret) = secret {
                    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
                    mac.update(body.as_bytes());
                    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
                    request = request.header("X-Herald-Signature", format!("sha256={hex}"));
                }
                request.body(body)
            }
        };
        let answer = match send(request, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return reply,
        };
        if !answer.status.is_success() {
            return match answer.classify_failure(now) {
                Reply::AuthExpired(m) => Reply::Permanent(m),
                other => other,
            };
        }
        let json = answer.json();
        let id = match &self.kind {
            ChatKind::Discord => json["id"].as_str().unwrap_or_default().to_string(),
            ChatKind::Telegram { .. } => {
                if json["ok"].as_bool() != Some(true) {
                    return Reply::Permanent(answer.message());
                }
                json["result"]["message_id"].to_string()
            }
            _ => String::new(),
        };
        Reply::Posted {
            id,
            url: None,
            raw: answer.message(),
        }
    }
}
