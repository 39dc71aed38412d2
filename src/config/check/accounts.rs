//! `[[accounts]]`: social accounts, their secrets from the environment, their templates.

use super::*;

/// The API base URL each platform has unless `base_url` says otherwise.
pub(super) fn default_base_url(kind: &str) -> Option<&'static str> {
    match kind {
        "x" => Some("https://api.x.com"),
        "bluesky" => Some("https://bsky.social"),
        "telegram" => Some("https://api.telegram.org"),
        "threads" => Some("https://graph.threads.net"),
        "linkedin" => Some("https://api.linkedin.com"),
        _ => None,
    }
}

pub(super) fn check_accounts(c: &mut Checker, raw: &RawConfig) -> Vec<AccountSettings> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, a) in raw.accounts.iter().enumerate() {
        let key = item_key("accounts", i, &a.name);
        let k = |field: &str| format!("{key}.{field}");
        let Some(name) = check_name(c, &key, &a.name, &mut seen) else {
            continue;
        };
        let Some(kind_name) = c.required(&k("type"), &a.kind) else {
            continue;
        };
        let mut secret = |field: &str| match c.origins.secret(&name, field) {
            Some(value) => value,
            None => {
                let var = secret_var(&name, field);
                c.problems.push(Problem {
                    origin: format!("environment {var}"),
                    key: key.clone(),
                    message: format!(
                        "the {kind_name} account needs its {field} in {var} (secrets are never read from files)"
                    ),
                });
                String::new()
            }
        };
        let kind = match kind_name.as_str() {
            "x" => AccountKind::X {
                consumer_key: secret("consumer_key"),
                consumer_secret: secret("consumer_secret"),
                access_token: secret("access_token"),
                access_token_secret: secret("access_token_secret"),
            },
            "mastodon" => AccountKind::Mastodon {
                access_token: secret("access_token"),
                visibility: String::new(),
            },
            "bluesky" => AccountKind::Bluesky {
                handle: String::new(),
                app_password: secret("app_password"),
                allow_private_images: a.allow_private_images.unwrap_or(false),
            },
            "slack" | "discord" => {
                let webhook = secret("webhook_url");
                if !webhook.is_empty() {
                    c.url(
                        &format!("{} (from {})", k("webhook_url"), secret_var(&name, "webhook_url")),
                        &webhook,
                    );
                }
                if kind_name == "slack" {
                    AccountKind::Slack
                } else {
                    AccountKind::Discord
                }
            }
            "telegram" => AccountKind::Telegram {
                bot_token: secret("bot_token"),
                chat_id: String::new(),
            },
            "webhook" => AccountKind::Webhook {
                secret: c.origins.secret(&name, "signing_secret"),
                max_chars: a.max_chars.map(|n| n.max(1) as usize),
            },
            "threads" => AccountKind::Threads {
                access_token: secret("access_token"),
                user_id: String::new(),
            },
            "linkedin" => AccountKind::LinkedIn {
                access_token: secret("access_token"),
                author: String::new(),
                version: String::new(),
                allow_private_images: a.allow_private_images.unwrap_or(false),
            },
            other => {
                c.problem(
                    &k("type"),
                    format!(
                        "{other:?} is not one of x, mastodon, bluesky, threads, linkedin, slack, discord, telegram, webhook"
                    ),
                );
                continue;
            }
        };
        let kind = match kind {
            AccountKind::Mastodon { access_token, .. } => {
                let visibility = a.visibility.clone().unwrap_or_else(|| "public".into());
                if !["public", "unlisted", "private", "direct"].contains(&visibility.as_str()) {
                    c.problem(
                        &k("visibility"),
                        format!("{visibility:?} is not one of public, unlisted, private, direct"),
                    );
                }
                AccountKind::Mastodon {
                    access_token,
                    visibility,
                }
            }
            AccountKind::Bluesky {
                app_password,
                allow_private_images,
                ..
            } => {
                let handle = c.required(&k("handle"), &a.handle).unwrap_or_default();
                AccountKind::Bluesky {
                    handle,
                    app_password,
                    allow_private_images,
                }
            }
            AccountKind::Telegram { bot_token, .. } => {
                let chat_id = c.required(&k("chat_id"), &a.chat_id).unwrap_or_default();
                AccountKind::Telegram { bot_token, chat_id }
            }
            AccountKind::Threads { access_token, .. } => {
                let user_id = a.user_id.clone().unwrap_or_else(|| "me".into());
                let numeric = !user_id.is_empty() && user_id.bytes().all(|b| b.is_ascii_digit());
                if user_id != "me" && !numeric {
                    c.problem(
                        &k("user_id"),
                        format!("{user_id:?} is not a Threads user id (digits) or \"me\""),
                    );
                }
                AccountKind::Threads { access_token, user_id }
            }
            AccountKind::LinkedIn {
                access_token,
                allow_private_images,
                ..
            } => {
                let author = c.required(&k("author"), &a.author).unwrap_or_default();
                if !author.is_empty() && !is_linkedin_author(&author) {
                    c.problem(
                        &k("author"),
                        format!("{author:?} is not urn:li:person:ID or urn:li:organization:NUMBER"),
                    );
                }
                let version = a.api_version.clone().unwrap_or_else(|| LINKEDIN_VERSION.into());
                if version.len() != 6 || !version.bytes().all(|b| b.is_ascii_digit()) {
                    c.problem(
                        &k("api_version"),
                        format!("{version:?} is not a LinkedIn-Version (YYYYMM)"),
                    );
                }
                AccountKind::LinkedIn {
                    access_token,
                    author,
                    version,
                    allow_private_images,
                }
            }
            other => other,
        };
        let token_expires_at = a
            .token_expires_at
            .as_deref()
            .and_then(|value| match parse_expiry(value) {
                Some(at) => Some(at),
                None => {
                    c.problem(
                        &k("token_expires_at"),
                        format!("{value:?} is not a date (2027-01-31) or an RFC 3339 time (2027-01-31T09:00:00Z)"),
                    );
                    None
                }
            });
        if token_expires_at.is_some() && kind.oauth_token().is_none() {
            c.problem(
                &k("token_expires_at"),
                format!(
                    "{} {kind_name} account has no expiring OAuth token (only threads, linkedin and mastodon)",
                    if kind_name.starts_with(['a', 'e', 'i', 'o', 'u', 'x']) {
                        "an"
                    } else {
                        "a"
                    }
                ),
            );
        }
        // Chat webhooks are addressed by their (secret) webhook URL; the others by an API base URL.
        let base = match &kind {
            AccountKind::Slack | AccountKind::Discord => c.origins.secret(&name, "webhook_url"),
            AccountKind::Webhook { .. } => c.required(&k("url"), &a.url),
            AccountKind::Mastodon { .. } => c.required(&k("base_url"), &a.base_url),
            _ => a
                .base_url
                .clone()
                .or_else(|| default_base_url(&kind_name).map(str::to_string)),
        };
        let Some(base_url) = base.and_then(|u| c.url(&k("base_url"), &u)) else {
            continue;
        };
        // Compiled (and its errors reported) by `app::App::load`; `None` is the platform's default.
        let template = a.template.clone();
        let default_cap = if matches!(kind, AccountKind::X { .. }) { 10 } else { 50 };
        // Threads shows one hashtag a post; the others take three by default.
        let default_hashtags = if matches!(kind, AccountKind::Threads { .. }) {
            1
        } else {
            3
        };
        out.push(AccountSettings {
            base_url,
            template,
            max_hashtags: c.positive(
                &k("max_hashtags"),
                a.max_hashtags.or(Some(default_hashtags)).filter(|n| *n > 0),
                default_hashtags,
                30,
            ) as usize,
            min_spacing: Duration::from_secs(a.min_spacing_secs.unwrap_or(60).max(0) as u64),
            daily_cap: c.positive(&k("daily_cap"), a.daily_cap, default_cap, 10_000) as u32,
            backfill: a.backfill.unwrap_or(false),
            lookback: chrono::Duration::hours(c.positive(&k("lookback_hours"), a.lookback_hours, 24, 24 * 366)),
            timeout: Duration::from_secs(c.positive(&k("timeout_secs"), a.timeout_secs, 20, 600) as u64),
            token_expires_at,
            name,
            kind,
        });
    }
    out
}

/// The `LinkedIn-Version` Herald speaks unless `api_version` says otherwise.
const LINKEDIN_VERSION: &str = "202511";

/// `urn:li:person:ID` (letters, digits, `-`, `_`) or `urn:li:organization:NUMBER`.
fn is_linkedin_author(urn: &str) -> bool {
    if let Some(id) = urn.strip_prefix("urn:li:person:") {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    } else if let Some(id) = urn.strip_prefix("urn:li:organization:") {
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
    } else {
        false
    }
}

/// An expiry as an operator writes it: an RFC 3339 time, or a date (its start, UTC).
fn parse_expiry(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(at.with_timezone(&chrono::Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}
