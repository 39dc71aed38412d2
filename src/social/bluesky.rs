//! Bluesky (AT Protocol): a session from an app password, kept in the store
//! and refreshed rather than re-created per post; posts through
//! `com.atproto.repo.createRecord` with link facets at UTF-8 byte offsets and
//! an external embed card, whose thumbnail is the article's picture uploaded
//! as a blob (made to fit Bluesky's limit; a card without one when the
//! picture cannot be fetched or fitted: a post is never dropped for its
//! picture). Each post has a record key fixed when it was queued, so a
//! retry in doubt first looks the record up instead of posting twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::platform::{Outgoing, Platform};
use super::reply::{Answer, Reply, VerifyError, send};
use super::teaser::{Counting, Rule};
use super::thumb::{self, Thumb};
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    #[serde(rename = "accessJwt")]
    access: String,
    #[serde(rename = "refreshJwt")]
    refresh: String,
    did: String,
}

pub struct BlueskyClient<'a> {
    pub account: &'a str,
    pub base_url: &'a url::Url,
    pub handle: &'a str,
    pub app_password: &'a str,
    /// Fetch card pictures from internal addresses too.
    pub allow_private_images: bool,
    pub timeout: Duration,
    pub store: &'a Store,
}

/// The most bytes a blob for a card's thumbnail may have (976.56 KiB).
pub const THUMB_MAX_BYTES: usize = 1_000_000;

const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// A record key in the AT Protocol's TID form (13 base32-sortable
/// characters: microseconds since the epoch, then a 10-bit clock id), fixed
/// for a post by when it was queued and its row id.
pub fn record_key(queued_at_ms: i64, post_id: i64) -> String {
    let micros = (queued_at_ms.max(0) as u64) * 1000 + (post_id.unsigned_abs() % 1000);
    let value = ((micros & ((1 << 53) - 1)) << 10) | (post_id.unsigned_abs() & 1023);
    (0..13)
        .rev()
        .map(|i| TID_ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// The link facets of `text`: every occurrence of `url`, at UTF-8 byte offsets.
pub fn link_facets(text: &str, url: &str) -> Vec<serde_json::Value> {
    text.match_indices(url)
        .map(|(start, _)| {
            serde_json::json!({
                "index": { "byteStart": start, "byteEnd": start + url.len() },
                "features": [{ "$type": "app.bsky.richtext.facet#link", "uri": url }],
            })
        })
        .collect()
}

fn is_expired(answer: &Answer) -> bool {
    answer.status.as_u16() == 400 && answer.json()["error"].as_str() == Some("ExpiredToken")
        || answer.status.as_u16() == 401
}

impl BlueskyClient<'_> {
    fn xrpc(&self, method: &str) -> String {
        format!("{}/xrpc/{method}", self.base_url.as_str().trim_end_matches('/'))
    }

    async fn save(&self, session: &Session, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.store
            .save_account_session(self.account, &serde_json::to_string(session).expect("serialises"), now)
            .await
    }

    /// Reads the session an answer carries and keeps it in the store.
    async fn adopt(&self, answer: &Answer, now: DateTime<Utc>) -> Result<Session, Reply> {
        let session: Session =
            serde_json::from_str(&answer.body).map_err(|e| Reply::Permanent(format!("unreadable session: {e}")))?;
        self.save(&session, now).await.map_err(|e| Reply::Transient {
            reply: e.to_string(),
            in_doubt: false,
        })?;
        Ok(session)
    }

    async fn create_session(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Result<Session, Reply> {
        let request = http
            .post(self.xrpc("com.atproto.server.createSession"))
            .json(&serde_json::json!({ "identifier": self.handle, "password": self.app_password }));
        let answer = send(request, self.timeout).await?;
        if !answer.status.is_success() {
            return Err(match answer.classify_failure(now) {
                Reply::AuthExpired(m) => Reply::Permanent(format!("the app password was refused: {m}")),
                other => other,
            });
        }
        self.adopt(&answer, now).await
    }

    async fn refresh(&self, http: &reqwest::Client, old: &Session, now: DateTime<Utc>) -> Result<Session, Reply> {
        let request = http
            .post(self.xrpc("com.atproto.server.refreshSession"))
            .bearer_auth(&old.refresh);
        let answer = send(request, self.timeout).await?;
        if !answer.status.is_success() {
            // The refresh token ran out too: log in again, once.
            return self.create_session(http, now).await;
        }
        self.adopt(&answer, now).await
    }

    async fn session(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Result<Session, Reply> {
        let stored = self
            .store
            .account_session(self.account)
            .await
            .map_err(|e| Reply::Transient {
                reply: e.to_string(),
                in_doubt: false,
            })?;
        match stored.and_then(|s| serde_json::from_str(&s).ok()) {
            Some(session) => Ok(session),
            None => self.create_session(http, now).await,
        }
    }

    /// The article's picture fetched, fitted under [`THUMB_MAX_BYTES`] and
    /// uploaded (`com.atproto.repo.uploadBlob`): the blob a card refers to.
    async fn thumbnail(
        &self,
        http: &reqwest::Client,
        session: &mut Session,
        picture: &str,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, String> {
        let bytes = super::picture::fetch(http, picture, self.timeout, self.allow_private_images).await?;
        let Thumb { bytes, mime } = tokio::task::spawn_blocking(move || thumb::fit(&bytes, THUMB_MAX_BYTES))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        for attempt in 0..2 {
            let request = http
                .post(self.xrpc("com.atproto.repo.uploadBlob"))
                .bearer_auth(&session.access)
                .header(reqwest::header::CONTENT_TYPE, mime)
                .body(bytes.clone());
            let answer = send(request, self.timeout).await.map_err(|reply| reply.to_string())?;
            if answer.status.is_success() {
                let blob = answer.json()["blob"].clone();
                return if blob.is_object() {
                    Ok(blob)
                } else {
                    Err(format!("uploadBlob answered without a blob: {}", answer.message()))
                };
            }
            if is_expired(&answer) && attempt == 0 {
                *session = self
                    .refresh(http, session, now)
                    .await
                    .map_err(|reply| reply.to_string())?;
                continue;
            }
            return Err(format!(
                "uploadBlob answered HTTP {}: {}",
                answer.status,
                answer.message()
            ));
        }
        Err("the session was refused even after a refresh".into())
    }

    /// Whether the record with key `rkey` exists already.
    async fn exists(&self, http: &reqwest::Client, session: &Session, rkey: &str) -> Option<bool> {
        let mut url = url::Url::parse(&self.xrpc("com.atproto.repo.getRecord")).ok()?;
        url.query_pairs_mut()
            .append_pair("repo", &session.did)
            .append_pair("collection", "app.bsky.feed.post")
            .append_pair("rkey", rkey);
        let request = http.get(url);
        let answer = send(request, self.timeout).await.ok()?;
        match answer.status.as_u16() {
            200 => Some(true),
            400 | 404 => Some(false),
            _ => None,
        }
    }
}

impl Platform for BlueskyClient<'_> {
    /// Graphemes up to 300, and at most 3,000 bytes.
    async fn rule(&self, _: &reqwest::Client, _: DateTime<Utc>) -> Result<Rule, StoreError> {
        Ok(Rule {
            counting: Counting::Graphemes,
            max: 300,
            max_bytes: Some(3000),
        })
    }

    /// Checks the app password by logging in (`createSession`), which
    /// also leaves a fresh session for the next post.
    async fn verify(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Option<Result<String, VerifyError>> {
        Some(match self.create_session(http, now).await {
            Ok(session) => Ok(format!("app password accepted for {} ({})", self.handle, session.did)),
            Err(reply) => Err(VerifyError::Failed(reply)),
        })
    }

    /// Creates the record under a key fixed by the post (so a retry cannot
    /// make a second), with a link card; when the last try may have gone
    /// through, looks the record up first.
    async fn post(&self, http: &reqwest::Client, outgoing: &Outgoing<'_>, now: DateTime<Utc>) -> Reply {
        let (post, article) = (outgoing.post, outgoing.article);
        let text = post.text.as_str();
        let rkey = &record_key(post.created_at.timestamp_millis(), post.id);
        let mut session = match self.session(http, now).await {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let url = |session: &Session| format!("https://bsky.app/profile/{}/post/{rkey}", session.did);
        if post.in_doubt && self.exists(http, &session, rkey).await == Some(true) {
            return Reply::Duplicate(format!("record {rkey} already exists"));
        }
        let mut external =
            serde_json::json!({ "uri": article.url, "title": article.title, "description": article.excerpt });
        if let Some(picture) = &article.image {
            match self.thumbnail(http, &mut session, picture, now).await {
                Ok(blob) => external["thumb"] = blob,
                Err(why) => warn!(
                    account = self.account,
                    picture, "the card goes without its picture: {why}"
                ),
            }
        }
        let body = serde_json::json!({
            "repo": session.did,
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
            "record": {
                "$type": "app.bsky.feed.post",
                "text": text,
                "createdAt": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "facets": link_facets(text, &article.url),
                "embed": { "$type": "app.bsky.embed.external", "external": external },
            },
        });
        for attempt in 0..2 {
            let request = http
                .post(self.xrpc("com.atproto.repo.createRecord"))
                .bearer_auth(&session.access)
                .json(&body);
            let answer = match send(request, self.timeout).await {
                Ok(answer) => answer,
                Err(reply) => return reply,
            };
            if answer.status.is_success() {
                let id = answer.json()["uri"].as_str().unwrap_or_default().to_string();
                return Reply::Posted {
                    id,
                    url: Some(url(&session)),
                    raw: answer.message(),
                };
            }
            if is_expired(&answer) && attempt == 0 {
                session = match self.refresh(http, &session, now).await {
                    Ok(session) => session,
                    Err(reply) => return reply,
                };
                continue;
            }
            let message = answer.message();
            if answer.status.as_u16() == 400 && message.to_lowercase().contains("already exists") {
                return Reply::Duplicate(message);
            }
            return answer.classify_failure(now);
        }
        Reply::AuthExpired("the session was refused even after a refresh".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_are_tids() {
        let key = record_key(1_764_000_000_000, 42);
        assert_eq!(key.len(), 13);
        assert!(key.bytes().all(|b| TID_ALPHABET.contains(&b)));
        assert!(
            matches!(key.as_bytes()[0], b'2'..=b'7' | b'a'..=b'j'),
            "the top bit is zero"
        );
        assert_eq!(key, record_key(1_764_000_000_000, 42), "stable");
        assert!(
            record_key(1_764_000_000_001, 1) > record_key(1_764_000_000_000, 1),
            "sortable by time"
        );
    }

    #[test]
    fn facets_use_byte_offsets() {
        let text = "Café 🎉 news https://ex.org/a";
        let facets = link_facets(text, "https://ex.org/a");
        assert_eq!(facets[0]["index"]["byteStart"], 16);
        assert_eq!(facets[0]["index"]["byteEnd"], 32);
        assert_eq!(&text[16..32], "https://ex.org/a");
    }
}
