//! Threads (Meta's Graph API for Threads): a text container with the
//! article as its `link_attachment`, then `threads_publish`. The publishing
//! quota (`threads_publishing_limit`, 250 posts a day) is read before each
//! post and respected; a retry in doubt looks for the post among the
//! account's latest before publishing again. Long-lived tokens are refreshed
//! with `refresh_access_token`. The access token goes in form bodies and the
//! `Authorization` header, never in a URL, except for the refresh, which
//! only takes it there.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::platform::{Outgoing, Platform};
use super::reply::{Answer, Reply, VerifyError, form, send, with_query};
use super::teaser::{Counting, Rule};
use crate::store::StoreError;

/// The Graph API version Herald speaks.
const VERSION: &str = "v1.0";
/// How far back an in-doubt retry looks for its post.
const LOOK_BACK: usize = 25;
/// The longest lifetime a refreshed token may claim (Threads gives 60 days).
const MAX_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::days(366);
/// How long a post waits when the day's quota is used up: the quota is a
/// moving 24-hour window, so a slot frees as the oldest post ages out.
const QUOTA_WAIT: chrono::TimeDelta = chrono::TimeDelta::hours(1);

pub struct ThreadsClient<'a> {
    pub base_url: &'a url::Url,
    pub user_id: &'a str,
    pub access_token: &'a str,
    pub timeout: Duration,
}

/// Whether a Graph API error is about the token: code 190 (expired,
/// revoked or invalid), or 102 (the session).
fn is_token_error(answer: &Answer) -> bool {
    matches!(answer.json()["error"]["code"].as_i64(), Some(190 | 102)) || answer.status.as_u16() == 401
}

/// Whether a Graph API error is a rate limit (application, user or publishing).
fn is_rate_limit(answer: &Answer) -> bool {
    answer.status.as_u16() == 429 || matches!(answer.json()["error"]["code"].as_i64(), Some(4 | 17 | 32 | 613))
}

impl ThreadsClient<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/{VERSION}/{path}", self.base_url.as_str().trim_end_matches('/'))
    }

    /// A failed answer, classified the Graph API's way (which often says 400).
    fn failure(&self, answer: &Answer, now: DateTime<Utc>) -> Reply {
        if is_token_error(answer) {
            Reply::AuthExpired(answer.message())
        } else if is_rate_limit(answer) {
            Reply::RateLimited {
                until: answer.retry_at(now),
                reply: answer.message(),
            }
        } else {
            answer.classify_failure(now)
        }
    }

    /// Posts used and allowed in the current window.
    async fn quota(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Result<(i64, i64), Reply> {
        let request = http
            .get(with_query(
                &self.url(&format!("{}/threads_publishing_limit", self.user_id)),
                &[("fields", "quota_usage,config")],
            ))
            .bearer_auth(self.access_token);
        let answer = send(request, self.timeout).await?;
        if !answer.status.is_success() {
            return Err(self.failure(&answer, now));
        }
        let json = answer.json();
        let entry = &json["data"][0];
        let used = entry["quota_usage"].as_i64().unwrap_or(0);
        let total = entry["config"]["quota_total"].as_i64().unwrap_or(250);
        Ok((used, total))
    }

    /// The account's post with exactly `text` among its latest, if any.
    async fn find(&self, http: &reqwest::Client, text: &str) -> Option<(String, Option<String>)> {
        let request = http
            .get(with_query(
                &self.url(&format!("{}/threads", self.user_id)),
                &[("fields", "id,text,permalink"), ("limit", &LOOK_BACK.to_string())],
            ))
            .bearer_auth(self.access_token);
        let answer = send(request, self.timeout).await.ok()?;
        if !answer.status.is_success() {
            return None;
        }
        let json = answer.json();
        json["data"].as_array()?.iter().find_map(|post| {
            (post["text"].as_str() == Some(text)).then(|| {
                (
                    post["id"].as_str().unwrap_or_default().to_string(),
                    post["permalink"].as_str().map(str::to_string),
                )
            })
        })
    }

    /// A post's public address, when the API gives it.
    async fn permalink(&self, http: &reqwest::Client, id: &str) -> Option<String> {
        let request = http
            .get(with_query(&self.url(id), &[("fields", "permalink")]))
            .bearer_auth(self.access_token);
        let answer = send(request, self.timeout).await.ok()?;
        answer.json()["permalink"].as_str().map(str::to_string)
    }

    /// Exchanges the long-lived token for a new one: the token and when it expires.
    pub async fn refresh(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Result<(String, DateTime<Utc>), String> {
        let url = format!("{}/refresh_access_token", self.base_url.as_str().trim_end_matches('/'));
        let request = http.get(with_query(
            &url,
            &[("grant_type", "th_refresh_token"), ("access_token", self.access_token)],
        ));
        let answer = send(request, self.timeout).await.map_err(|reply| reply.to_string())?;
        if !answer.status.is_success() {
            return Err(answer.message());
        }
        let json = answer.json();
        let token = json["access_token"].as_str().filter(|t| !t.is_empty());
        let expires_in = json["expires_in"].as_i64().filter(|s| *s > 0);
        // A lifetime beyond a year is no real answer (and could overflow the time).
        let expires_at = expires_in
            .filter(|secs| *secs <= MAX_LIFETIME.num_seconds())
            .and_then(chrono::TimeDelta::try_seconds)
            .and_then(|lifetime| now.checked_add_signed(lifetime));
        match (token, expires_at) {
            (Some(token), Some(at)) => Ok((token.to_string(), at)),
            _ => Err(format!(
                "an answer without a token or a plausible lifetime: {}",
                answer.message()
            )),
        }
    }
}

impl Platform for ThreadsClient<'_> {
    /// 500 characters, each emoji counted as its UTF-8 bytes.
    async fn rule(&self, _: &reqwest::Client, _: DateTime<Utc>) -> Result<Rule, StoreError> {
        Ok(Rule {
            counting: Counting::EmojiBytes,
            max: 500,
            max_bytes: None,
        })
    }

    /// Reads the profile the token belongs to (`GET /me`), posting nothing.
    async fn verify(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Option<Result<String, VerifyError>> {
        let request = http
            .get(with_query(&self.url("me"), &[("fields", "id,username")]))
            .bearer_auth(self.access_token);
        let answer = match send(request, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return Some(Err(VerifyError::Failed(reply))),
        };
        if !answer.status.is_success() {
            return Some(Err(match self.failure(&answer, now) {
                reply @ (Reply::RateLimited { .. } | Reply::Transient { .. }) => VerifyError::Failed(reply),
                _ => VerifyError::Refused(answer.message()),
            }));
        }
        let json = answer.json();
        Some(Ok(format!(
            "token accepted for @{} ({})",
            json["username"].as_str().unwrap_or("?"),
            json["id"].as_str().unwrap_or("?")
        )))
    }

    async fn post(&self, http: &reqwest::Client, outgoing: &Outgoing<'_>, now: DateTime<Utc>) -> Reply {
        let (post, article) = (outgoing.post, outgoing.article);
        if post.in_doubt
            && let Some((id, url)) = self.find(http, &post.text).await
        {
            return Reply::Duplicate(format!(
                "post {id} already published{}",
                url.map(|u| format!(" at {u}")).unwrap_or_default()
            ));
        }
        match self.quota(http, now).await {
            Ok((used, total)) if used >= total => {
                return Reply::RateLimited {
                    until: now + QUOTA_WAIT,
                    reply: format!("the publishing quota is used up ({used} of {total} posts in 24 hours)"),
                };
            }
            Ok(_) => {}
            // The token or a rate limit decides for the post too; any other
            // trouble reading the quota leaves it to the publish to refuse.
            Err(reply @ (Reply::AuthExpired(_) | Reply::RateLimited { .. })) => return reply,
            Err(other) => tracing::debug!(reply = %other, "the publishing quota could not be read"),
        }
        let container = form(
            http.post(self.url(&format!("{}/threads", self.user_id))),
            &[
                ("media_type", "TEXT"),
                ("text", post.text.as_str()),
                ("link_attachment", article.url.as_str()),
                ("access_token", self.access_token),
            ],
        );
        let answer = match send(container, self.timeout).await {
            // A container is not a post: one lost on the way is just never published.
            Err(Reply::Transient { reply, .. }) => return Reply::Transient { reply, in_doubt: false },
            Err(reply) => return reply,
            Ok(answer) => answer,
        };
        if !answer.status.is_success() {
            return self.failure(&answer, now);
        }
        let Some(creation_id) = answer.json()["id"].as_str().map(str::to_string) else {
            return Reply::Transient {
                reply: format!("a container without an id: {}", answer.message()),
                in_doubt: false,
            };
        };
        let publish = form(
            http.post(self.url(&format!("{}/threads_publish", self.user_id))),
            &[
                ("creation_id", creation_id.as_str()),
                ("access_token", self.access_token),
            ],
        );
        let answer = match send(publish, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return reply,
        };
        if !answer.status.is_success() {
            return self.failure(&answer, now);
        }
        let id = answer.json()["id"].as_str().unwrap_or_default().to_string();
        Reply::Posted {
            url: self.permalink(http, &id).await,
            id,
            raw: answer.message(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::social::teaser::Rule;

    #[test]
    fn emoji_count_as_their_bytes() {
        let rule = Rule {
            counting: Counting::EmojiBytes,
            max: 500,
            max_bytes: None,
        };
        assert_eq!(rule.length("Café"), 4, "letters count one each");
        assert_eq!(rule.length("🎉"), 4);
        assert_eq!(
            rule.length("👍🏽"),
            8,
            "an emoji with a skin tone: two pictographs' bytes"
        );
        assert_eq!(rule.length("❤️"), 6, "a heart (3 bytes) and its variation selector (3)");
        assert_eq!(rule.length("日本"), 2, "CJK is not emoji");
    }
}
