//! The one face every platform client shows: its length rule, a check of
//! its credentials, and a post. [`client`] is the only place that picks a
//! client for an account; the queue, the drain, `herald check` and
//! `herald post --dry-run` all go through [`Platform`].

use std::future::Future;

use chrono::{DateTime, Utc};

use super::bluesky::BlueskyClient;
use super::chat::{ChatClient, ChatKind};
use super::linkedin::LinkedInClient;
use super::mastodon::MastodonClient;
use super::reply::{Reply, VerifyError};
use super::teaser::Rule;
use super::threads::ThreadsClient;
use super::x::XClient;
use crate::config::{AccountKind, AccountSettings};
use crate::store::{PostRow, Store, StoreError, StoredArticle};

/// A queued post and the article it teases.
pub struct Outgoing<'a> {
    pub post: &'a PostRow,
    pub article: &'a StoredArticle,
}

/// What a platform client does.
pub trait Platform {
    /// How the platform counts a post's length, and its limits.
    fn rule(&self, http: &reqwest::Client, now: DateTime<Utc>)
    -> impl Future<Output = Result<Rule, StoreError>> + Send;

    /// Tries the credentials without posting, where the platform has a call
    /// for it; `None` where it has not (webhooks).
    fn verify(
        &self,
        http: &reqwest::Client,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Option<Result<String, VerifyError>>> + Send;

    /// Posts the teaser, classifying the platform's answer.
    fn post(
        &self,
        http: &reqwest::Client,
        outgoing: &Outgoing<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Reply> + Send;
}

/// The client of one account's platform.
pub enum Client<'a> {
    X(XClient<'a>),
    Mastodon(MastodonClient<'a>),
    Bluesky(BlueskyClient<'a>),
    Threads(ThreadsClient<'a>),
    LinkedIn(LinkedInClient<'a>),
    Chat(ChatClient<'a>),
}

/// The client for `account`; `store` keeps what a platform hands back
/// between runs (Bluesky's session, Mastodon's character limit). `token` is
/// the OAuth access token to send when it is not the operator's secret (a
/// refreshed one, see [`super::credentials`]).
pub fn client<'a>(account: &'a AccountSettings, store: &'a Store, token: Option<&'a str>) -> Client<'a> {
    let base_url = &account.base_url;
    let timeout = account.timeout;
    let chat = |kind| {
        Client::Chat(ChatClient {
            kind,
            url: base_url,
            timeout,
        })
    };
    match &account.kind {
        AccountKind::X {
            consumer_key,
            consumer_secret,
            access_token,
            access_token_secret,
        } => Client::X(XClient {
            base_url,
            consumer_key,
            consumer_secret,
            access_token,
            access_token_secret,
            timeout,
        }),
        AccountKind::Mastodon {
            access_token,
            visibility,
        } => Client::Mastodon(MastodonClient {
            account: &account.name,
            base_url,
            access_token,
            visibility,
            timeout,
            store,
        }),
        AccountKind::Bluesky {
            handle,
            app_password,
            allow_private_images,
        } => Client::Bluesky(BlueskyClient {
            account: &account.name,
            base_url,
            handle,
            app_password,
            allow_private_images: *allow_private_images,
            timeout,
            store,
        }),
        AccountKind::Threads { access_token, user_id } => Client::Threads(ThreadsClient {
            base_url,
            user_id,
            access_token: token.unwrap_or(access_token),
            timeout,
        }),
        AccountKind::LinkedIn {
            access_token,
            author,
            version,
            allow_private_images,
        } => Client::LinkedIn(LinkedInClient {
            base_url,
            access_token: token.unwrap_or(access_token),
            author,
            version,
            allow_private_images: *allow_private_images,
            timeout,
        }),
        AccountKind::Slack => chat(ChatKind::Slack),
        AccountKind::Discord => chat(ChatKind::Discord),
        AccountKind::Telegram { bot_token, chat_id } => chat(ChatKind::Telegram { bot_token, chat_id }),
        AccountKind::Webhook { secret, max_chars } => chat(ChatKind::Webhook {
            secret: secret.as_deref(),
            max_chars: *max_chars,
        }),
    }
}

impl Client<'_> {
    /// Exchanges the token for a new one where the platform allows it
    /// (Threads): the new token and when it expires. `None` elsewhere.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        now: DateTime<Utc>,
    ) -> Option<Result<(String, DateTime<Utc>), String>> {
        match self {
            Client::Threads(c) => Some(c.refresh(http, now).await),
            _ => None,
        }
    }
}

impl Platform for Client<'_> {
    async fn rule(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Result<Rule, StoreError> {
        match self {
            Client::X(c) => c.rule(http, now).await,
            Client::Mastodon(c) => c.rule(http, now).await,
            Client::Bluesky(c) => c.rule(http, now).await,
            Client::Threads(c) => c.rule(http, now).await,
            Client::LinkedIn(c) => c.rule(http, now).await,
            Client::Chat(c) => c.rule(http, now).await,
        }
    }

    async fn verify(&self, http: &reqwest::Client, now: DateTime<Utc>) -> Option<Result<String, VerifyError>> {
        match self {
            Client::X(c) => c.verify(http, now).await,
            Client::Mastodon(c) => c.verify(http, now).await,
            Client::Bluesky(c) => c.verify(http, now).await,
            Client::Threads(c) => c.verify(http, now).await,
            Client::LinkedIn(c) => c.verify(http, now).await,
            Client::Chat(c) => c.verify(http, now).await,
        }
    }

    async fn post(&self, http: &reqwest::Client, outgoing: &Outgoing<'_>, now: DateTime<Utc>) -> Reply {
        match self {
            Client::X(c) => c.post(http, outgoing, now).await,
            Client::Mastodon(c) => c.post(http, outgoing, now).await,
            Client::Bluesky(c) => c.post(http, outgoing, now).await,
            Client::Threads(c) => c.post(http, outgoing, now).await,
            Client::LinkedIn(c) => c.post(http, outgoing, now).await,
            Client::Chat(c) => c.post(http, outgoing, now).await,
        }
    }
}
