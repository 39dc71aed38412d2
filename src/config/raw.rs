//! The configuration as written: serde structs that mirror the TOML file and the
//! `HERALD_` environment overrides, before any checking.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawConfig {
    #[serde(default)]
    pub site: RawSite,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub mail: RawMail,
    #[serde(default)]
    pub tokens: RawTokens,
    #[serde(default)]
    pub bounces: RawBounces,
    #[serde(default)]
    pub templates: RawTemplates,
    #[serde(default)]
    pub daemon: RawDaemon,
    #[serde(default)]
    pub web: RawWeb,
    #[serde(default)]
    pub sources: Vec<RawSource>,
    #[serde(default)]
    pub lists: Vec<RawList>,
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    #[serde(default)]
    pub jobs: Vec<RawJob>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawSite {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub postal_address: Option<String>,
    pub unsubscribe_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawStore {
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawMail {
    pub transport: Option<String>,
    pub max_connections: Option<i64>,
    pub rate_limit: Option<f64>,
    pub send_timeout_secs: Option<i64>,
    pub retry_initial_secs: Option<i64>,
    pub retry_max_age_hours: Option<i64>,
    pub error_budget_percent: Option<i64>,
    pub error_budget_min_attempts: Option<i64>,
    pub breaker_after_failures: Option<i64>,
    #[serde(default)]
    pub file: RawFileMail,
    #[serde(default)]
    pub smtp: RawSmtp,
    pub dkim: Option<RawDkim>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawDkim {
    pub selector: Option<String>,
    /// The signing domain (`d=`); default: the domain of `site.from`.
    pub domain: Option<String>,
    /// `rsa` (default) or `ed25519`.
    pub algorithm: Option<String>,
    /// A file holding the private key.
    pub private_key_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawFileMail {
    pub dir: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawSmtp {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub helo_name: Option<String>,
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawBounces {
    pub address: Option<String>,
    pub soft_limit: Option<i64>,
    pub soft_window_days: Option<i64>,
    pub match_window_days: Option<i64>,
    pub complaint_alert_percent: Option<f64>,
    pub max_message_kb: Option<i64>,
    pub mailgun_signing_key: Option<String>,
    pub postmark_username: Option<String>,
    pub postmark_password: Option<String>,
    pub sendgrid_verification_key: Option<String>,
    #[serde(default)]
    pub sns_topic_arns: Vec<String>,
    pub sns_certificate_base: Option<String>,
    #[serde(default)]
    pub imap: RawImap,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawImap {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub folder: Option<String>,
    pub move_to: Option<String>,
    pub poll_seconds: Option<i64>,
    pub timeout_secs: Option<i64>,
    pub max_messages: Option<i64>,
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawTokens {
    pub secret: Option<String>,
    #[serde(default)]
    pub previous_secrets: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawTemplates {
    pub dir: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawWeb {
    /// Where the HTTP interface listens, e.g. `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// Requests per minute one client IP may make to the pages (sign-up, confirm, unsubscribe, preferences).
    pub rate_limit_per_minute: Option<i64>,
    /// Take the client IP from the last `X-Forwarded-For` hop (behind a reverse proxy).
    pub trust_forwarded_for: Option<bool>,
    pub hsts: Option<bool>,
    /// A listener of its own for `/metrics` and `/healthz` (e.g. on a private address).
    pub metrics_listen: Option<String>,
    /// A bearer token that opens `/metrics` on the public listener.
    pub metrics_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct RawDaemon {
    pub shutdown_grace_secs: Option<i64>,
    pub log_format: Option<String>,
    pub fire_lease_secs: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawSource {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `folder`: the folder of article files.
    pub path: Option<String>,
    /// `folder`: base URL for articles without one (defaults to `site.base_url`).
    pub base_url: Option<String>,
    /// `feed`: the feed URL.
    pub url: Option<String>,
    pub timeout_secs: Option<i64>,
    pub max_bytes: Option<i64>,
    pub max_items: Option<i64>,
    pub trust_ids: Option<bool>,
    pub allow_private_redirects: Option<bool>,
    /// `feed`: read a new item's page for its picture when the feed gives none.
    pub page_images: Option<bool>,
    /// How often `herald run` polls this source.
    pub poll_interval_secs: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawList {
    pub name: Option<String>,
    pub title: Option<String>,
    pub seed: Option<String>,
    /// Whether the web interface shows a sign-up form for this list (default true).
    pub signup: Option<bool>,
    pub archive: Option<bool>,
    /// The consent wording shown on the sign-up form and kept with each consent record.
    pub consent: Option<String>,
}

/// A social account. Its secrets never come from here: they are read from
/// `HERALD_SECRET_<ACCOUNT>_<FIELD>` environment variables.
#[derive(Debug, Clone, Deserialize)]
pub struct RawAccount {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub base_url: Option<String>,
    pub template: Option<String>,
    pub max_hashtags: Option<i64>,
    pub min_spacing_secs: Option<i64>,
    pub daily_cap: Option<i64>,
    pub backfill: Option<bool>,
    pub lookback_hours: Option<i64>,
    pub timeout_secs: Option<i64>,
    /// `mastodon`: public, unlisted, private or direct.
    pub visibility: Option<String>,
    /// `bluesky`: the account's handle or DID.
    pub handle: Option<String>,
    pub allow_private_images: Option<bool>,
    /// `telegram`: the chat or channel id (`@channel` or a number).
    pub chat_id: Option<String>,
    /// `webhook`: where to POST.
    pub url: Option<String>,
    /// `webhook`: a length limit, if the receiver has one.
    pub max_chars: Option<i64>,
    /// `threads`: the Threads user id the token belongs to (`me` by default).
    pub user_id: Option<String>,
    /// `linkedin`: who posts, `urn:li:person:...` or `urn:li:organization:...`.
    pub author: Option<String>,
    /// `linkedin`: the `LinkedIn-Version` header, `YYYYMM`.
    pub api_version: Option<String>,
    /// When the access token expires, as the operator knows it (RFC 3339 or a date).
    pub token_expires_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawJob {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub list: Option<String>,
    pub sources: Option<Vec<String>>,
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    pub template: Option<String>,
    pub subject: Option<String>,
    pub max_articles: Option<i64>,
    pub min_articles: Option<i64>,
    pub show_images: Option<bool>,
    pub send_when_empty: Option<bool>,
    pub lookback_hours: Option<i64>,
    pub catch_up: Option<String>,
    /// `social`: the accounts it posts to.
    pub accounts: Option<Vec<String>>,
    pub catch_up_window_hours: Option<i64>,
    /// `digest`: what subscribers who want this job choose (e.g. "daily"); default: the job's name.
    pub cadence: Option<String>,
}
