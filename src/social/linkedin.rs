//! LinkedIn: `POST /rest/posts` (the versioned Posts API: `LinkedIn-Version`
//! and `X-Restli-Protocol-Version: 2.0.0`) as a member or an organization,
//! with an article block (source, title, description, and a thumbnail
//! uploaded through the Images API when the article has a picture). The
//! commentary is escaped for LinkedIn's "little text format", whose
//! reserved characters would otherwise be read as markup or cut the text.
//! A retry in doubt looks for the article among the author's latest posts
//! before posting again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::warn;

use super::platform::{Outgoing, Platform};
use super::reply::{Answer, Reply, VerifyError, send, with_query};
use super::teaser::{Counting, Rule, is_little_text_reserved};
use crate::store::StoreError;

/// The most characters of a post's commentary, as sent (escaped).
pub const MAX_COMMENTARY: usize = 3000;
/// How many of the author's latest posts an in-doubt retry looks through.
const LOOK_BACK: usize = 20;

pub struct LinkedInClient<'a> {
    pub base_url: &'a url::Url,
    pub access_token: &'a str,
    /// `urn:li:person:...` or `urn:li:organization:...`.
    pub author: &'a str,
    /// The `LinkedIn-Version` header, `YYYYMM`.
    pub version: &'a str,
    pub allow_private_images: bool,
    pub timeout: Duration,
}

/// `text` in LinkedIn's little text format: every reserved character
/// escaped with a backslash, so it shows as written.
pub fn little_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_little_text_reserved(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl LinkedInClient<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url.as_str().trim_end_matches('/'))
    }

    /// A request to the versioned REST API, with its headers.
    fn rest(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .bearer_auth(self.access_token)
            .header("LinkedIn-Version", self.version)
            .header("X-Restli-Protocol-Version", "2.0.0")
    }

    /// The article's picture uploaded: the image URN a thumbnail names.
    async fn thumbnail(&self, http: &reqwest::Client, picture: &str) -> Result<String, String> {
        let bytes = super::picture::fetch(http, picture, self.timeout, self.allow_private_images).await?;
        let request = self
            .rest(http.post(with_query(&self.url("rest/images"), &[("action", "initializeUpload")])))
            .json(&serde_json::json!({ "initializeUploadRequest": { "owner": self.author } }));
        let answer = send(request, self.timeout).await.map_err(|reply| reply.to_string())?;
        if !answer.status.is_success() {
            return Err(format!("initializeUpload answered {}", answer.message()));
        }
        let json = answer.json();
        let (Some(upload), Some(image)) = (json["value"]["uploadUrl"].as_str(), json["value"]["image"].as_str()) else {
            return Err(format!(
                "initializeUpload answered without an upload: {}",
                answer.message()
            ));
        };
        // The token goes only to LinkedIn's own hosts (or the configured API's).
        if !self.may_receive_token(upload) {
            return Err(format!(
                "initializeUpload named an upload address off LinkedIn: {upload}"
            ));
        }
        let request = http.put(upload).bearer_auth(self.access_token).body(bytes);
        let answer = send(request, self.timeout).await.map_err(|reply| reply.to_string())?;
        if !answer.status.is_success() {
            return Err(format!("the upload answered {}", answer.message()));
        }
        Ok(image.to_string())
    }

    /// Whether `url` may be sent the access token: https on a LinkedIn host,
    /// or the configured API's own scheme, host and port (a self-hosted or
    /// test API).
    fn may_receive_token(&self, url: &str) -> bool {
        let Ok(url) = url::Url::parse(url) else {
            return false;
        };
        let linkedin = url.scheme() == "https"
            && url
                .host_str()
                .is_some_and(|h| h == "linkedin.com" || h.ends_with(".linkedin.com"));
        let same_api = url.scheme() == self.base_url.scheme()
            && url.host_str() == self.base_url.host_str()
            && url.port_or_known_default() == self.base_url.port_or_known_default();
        linkedin || same_api
    }

    /// The author's post about `article_url` among their latest, if any.
    async fn find(&self, http: &reqwest::Client, article_url: &str) -> Option<String> {
        let url = with_query(
            &self.url("rest/posts"),
            &[
                ("q", "author"),
                ("author", self.author),
                ("count", &LOOK_BACK.to_string()),
                ("sortBy", "LAST_MODIFIED"),
            ],
        );
        let request = self.rest(http.get(url));
        let answer = send(request, self.timeout).await.ok()?;
        if !answer.status.is_success() {
            return None;
        }
        let json = answer.json();
        json["elements"].as_array()?.iter().find_map(|post| {
            (post["content"]["article"]["source"].as_str() == Some(article_url))
                .then(|| post["id"].as_str().unwrap_or_default().to_string())
        })
    }

    fn failure(&self, answer: &Answer, now: DateTime<Utc>) -> Reply {
        let message = answer.message();
        if answer.status.as_u16() == 422 && message.to_lowercase().contains("duplicate") {
            return Reply::Duplicate(message);
        }
        answer.classify_failure(now)
    }
}

/// Where a post can be seen, from its URN.
fn post_url(urn: &str) -> String {
    format!("https://www.linkedin.com/feed/update/{urn}/")
}

impl Platform for LinkedInClient<'_> {
    /// 3,000 characters of commentary as sent, escapes included.
    async fn rule(&self, _: &reqwest::Client, _: DateTime<Utc>) -> Result<Rule, StoreError> {
        Ok(Rule {
            counting: Counting::LittleText,
            max: MAX_COMMENTARY,
            max_bytes: None,
        })
    }

    /// Reads the member behind the token (`GET /v2/userinfo`); a token
    /// without the profile scope is accepted all the same (403).
    async fn verify(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Option<Result<String, VerifyError>> {
        let request = http.get(self.url("v2/userinfo")).bearer_auth(self.access_token);
        let answer = match send(request, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return Some(Err(VerifyError::Failed(reply))),
        };
        Some(match answer.status.as_u16() {
            200 => Ok(format!(
                "token accepted for {} ({})",
                answer.json()["name"].as_str().unwrap_or("?"),
                self.author
            )),
            403 => Ok(format!(
                "token accepted for {} (it may not read the profile)",
                self.author
            )),
            429 | 500..=599 => Err(VerifyError::Failed(answer.classify_failure(now))),
            _ => Err(VerifyError::Refused(answer.message())),
        })
    }

    async fn post(&self, http: &reqwest::Client, outgoing: &Outgoing<'_>, now: DateTime<Utc>) -> Reply {
        let (post, article) = (outgoing.post, outgoing.article);
        if post.in_doubt
            && let Some(urn) = self.find(http, &article.url).await
        {
            return Reply::Duplicate(format!("{urn} already posts {}", article.url));
        }
        let mut block = serde_json::json!({
            "source": article.url,
            "title": article.title,
            "description": article.excerpt,
        });
        if let Some(picture) = &article.image {
            match self.thumbnail(http, picture).await {
                Ok(image) => block["thumbnail"] = image.into(),
                Err(why) => warn!(
                    author = self.author,
                    picture, "the article goes without its picture: {why}"
                ),
            }
        }
        let body = serde_json::json!({
            "author": self.author,
            "commentary": little_text(&post.text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "content": { "article": block },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false,
        });
        let request = self.rest(http.post(self.url("rest/posts"))).json(&body);
        let answer = match send(request, self.timeout).await {
            Ok(answer) => answer,
            Err(reply) => return reply,
        };
        if !answer.status.is_success() {
            return self.failure(&answer, now);
        }
        let urn = answer
            .headers
            .get("x-restli-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Reply::Posted {
            url: (!urn.is_empty()).then(|| post_url(&urn)),
            id: urn,
            raw: format!("{}", answer.status.as_u16()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_only_to_linkedin_or_the_configured_api() {
        let base = url::Url::parse("http://127.0.0.1:8080/").unwrap();
        let client = LinkedInClient {
            base_url: &base,
            access_token: "t",
            author: "urn:li:person:a",
            version: "202511",
            allow_private_images: false,
            timeout: Duration::from_secs(1),
        };
        for allowed in [
            "https://www-linkedin.linkedin.com/dms-uploads/abc",
            "https://api.linkedin.com/mediaUpload/x",
            "http://127.0.0.1:8080/upload/1",
        ] {
            assert!(client.may_receive_token(allowed), "{allowed}");
        }
        for refused in [
            "http://api.linkedin.com/upload",
            "https://linkedin.com.attacker.example/upload",
            "https://evillinkedin.com/upload",
            "http://127.0.0.1:9090/upload/1",
            "http://169.254.169.254/latest/meta-data",
            "not a url",
        ] {
            assert!(!client.may_receive_token(refused), "{refused}");
        }
    }

    #[test]
    fn reserved_characters_are_escaped_and_counted_as_sent() {
        let text = "Q&A (part 1): #budget @ 5% *now* [draft] {x} <b> a_b ~c | d\\e";
        let escaped = little_text(text);
        assert_eq!(
            escaped,
            "Q&A \\(part 1\\): \\#budget \\@ 5% \\*now\\* \\[draft\\] \\{x\\} \\<b\\> a\\_b \\~c \\| d\\\\e"
        );
        let rule = Rule {
            counting: Counting::LittleText,
            max: MAX_COMMENTARY,
            max_bytes: None,
        };
        assert_eq!(rule.length(text), escaped.chars().count());
        assert_eq!(little_text("Plain words, nothing else."), "Plain words, nothing else.");
    }
}
