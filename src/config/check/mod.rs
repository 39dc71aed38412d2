//! The second stage of loading: turns a [`RawConfig`] into [`Settings`],
//! collecting every problem instead of stopping at the first.

mod accounts;
mod jobs;
mod mail;
mod sources;

use accounts::check_accounts;
use jobs::check_jobs;
use mail::check_mail;
use sources::{check_lists, check_sources};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use url::Url;

use super::cron::parse_cron;
use super::raw::{RawConfig, RawDkim, RawJob, RawSource};
use super::{
    AccountKind, AccountSettings, BounceSettings, CatchUp, ConfigError, DaemonSettings, DigestJob, DkimAlgorithm,
    DkimSettings, ErrorBudget, JobKind, JobSettings, ListSettings, LogFormat, MailSettings, Origins, Problem, Settings,
    Site, SmtpSettings, SocialJob, SourceKind, SourceSettings, TlsMode, TokenSettings, TransportSettings, WebSettings,
    WebhookSettings,
};
use super::{Secret, secret_var};

struct Checker<'a> {
    origins: &'a Origins,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            origin: self.origins.of(key),
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn required<T: Clone>(&mut self, key: &str, value: &Option<T>) -> Option<T> {
        if value.is_none() {
            self.problem(key, "is required");
        }
        value.clone()
    }

    fn url(&mut self, key: &str, value: &str) -> Option<Url> {
        match Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Some(url),
            Ok(_) => {
                self.problem(key, format!("{value:?} is not an http(s) URL"));
                None
            }
            Err(e) => {
                self.problem(key, format!("{value:?} is not a URL: {e}"));
                None
            }
        }
    }

    fn positive(&mut self, key: &str, value: Option<i64>, default: i64, max: i64) -> i64 {
        match value {
            None => default,
            Some(v) if v >= 1 && v <= max => v,
            Some(v) => {
                self.problem(key, format!("must be between 1 and {max}, not {v}"));
                default
            }
        }
    }

    fn mailbox(&mut self, key: &str, value: &str) -> Option<lettre::message::Mailbox> {
        match value.parse::<lettre::message::Mailbox>() {
            Ok(mailbox) => Some(mailbox),
            Err(e) => {
                self.problem(key, format!("{value:?} is not a valid address: {e}"));
                None
            }
        }
    }
}

/// The key of item `index` of the array `table`, named by its `name` when it has one.
fn item_key(table: &str, index: usize, name: &Option<String>) -> String {
    match name {
        Some(name) => format!("{table}.{name:?}"),
        None => format!("{table}[{index}]"),
    }
}

/// Checks `raw`, resolving nothing against the network; relative paths are
/// relative to the current directory.
pub fn check(raw: RawConfig, origins: &Origins, file: &Path) -> Result<Settings, ConfigError> {
    let mut c = Checker {
        origins,
        problems: Vec::new(),
    };

    let site = check_site(&mut c, &raw);
    let store_url = raw
        .store
        .url
        .clone()
        .unwrap_or_else(|| "sqlite://data/herald.db".into());
    if !(store_url.starts_with("sqlite:")
        || store_url.starts_with("postgres://")
        || store_url.starts_with("postgresql://"))
    {
        c.problem(
            "store.url",
            format!("{store_url:?} is neither a sqlite: nor a postgres:// URL"),
        );
    }
    let mail = check_mail(&mut c, &raw, site.as_ref());
    let web = check_web(&mut c, &raw);
    let tokens = TokenSettings {
        secret: raw.tokens.secret.clone().filter(|s| !s.is_empty()).map(Secret::new),
        previous: raw
            .tokens
            .previous_secrets
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .map(Secret::new)
            .collect(),
    };
    let bounces = check_bounces(&mut c, &raw);
    let daemon = check_daemon(&mut c, &raw);
    let sources = check_sources(&mut c, &raw, site.as_ref().map(|s| &s.base_url));
    let lists = check_lists(&mut c, &raw);
    let accounts = check_accounts(&mut c, &raw);
    let jobs = check_jobs(&mut c, &raw, &sources, &lists, &accounts);

    let templates_dir = PathBuf::from(raw.templates.dir.clone().unwrap_or_else(|| "templates".into()));
    if !templates_dir.is_dir() {
        c.problem("templates.dir", format!("{} is not a folder", templates_dir.display()));
    }

    match (site, mail) {
        (Some(site), Some(mail)) if c.problems.is_empty() => Ok(Settings {
            file: file.to_path_buf(),
            site,
            store_url,
            mail,
            tokens,
            bounces,
            templates_dir,
            daemon,
            web,
            sources,
            lists,
            accounts,
            jobs,
        }),
        _ => Err(ConfigError { problems: c.problems }),
    }
}

fn check_site(c: &mut Checker, raw: &RawConfig) -> Option<Site> {
    let s = &raw.site;
    let name = c.required("site.name", &s.name);
    let base_url = c
        .required("site.base_url", &s.base_url)
        .and_then(|u| c.url("site.base_url", &u));
    let from = c
        .required("site.from", &s.from)
        .and_then(|f| c.mailbox("site.from", &f));
    let reply_to = match &s.reply_to {
        Some(r) => Some(c.mailbox("site.reply_to", r)?),
        None => None,
    };
    let postal_address = c.required("site.postal_address", &s.postal_address);
    if postal_address.as_deref().is_some_and(|a| a.trim().is_empty()) {
        c.problem(
            "site.postal_address",
            "must not be empty: bulk mail must carry a postal address",
        );
    }
    let base_url = base_url?;
    let unsubscribe_url = match &s.unsubscribe_url {
        Some(u) => {
            let url = c.url("site.unsubscribe_url", u)?;
            if url.scheme() != "https" {
                c.problem(
                    "site.unsubscribe_url",
                    "must be an https URL (mailbox providers require it)",
                );
            }
            url
        }
        None => base_url.join("unsubscribe").ok()?,
    };
    let domain = base_url.host_str()?.to_string();
    Some(Site {
        name: name?,
        base_url,
        from: from?,
        reply_to,
        postal_address: postal_address?,
        unsubscribe_url,
        domain,
    })
}

fn check_bounces(c: &mut Checker, raw: &RawConfig) -> BounceSettings {
    let b = &raw.bounces;
    let defaults = BounceSettings::default();
    let address = b
        .address
        .as_deref()
        .filter(|a| !a.is_empty())
        .and_then(|a| match a.parse::<lettre::Address>() {
            Ok(address) if !address.user().contains('+') && address.domain().is_ascii() => Some(address),
            Ok(_) => {
                c.problem(
                    "bounces.address",
                    format!("{a:?}: use a plain ASCII address without '+': Herald adds +TOKEN to it"),
                );
                None
            }
            Err(e) => {
                c.problem("bounces.address", format!("{a:?} is not a valid address: {e}"));
                None
            }
        });
    let days = |c: &mut Checker, key: &str, value: Option<i64>, default: Duration| {
        let default = (default.as_secs() / 86_400) as i64;
        Duration::from_secs(c.positive(key, value, default, 3650) as u64 * 86_400)
    };
    let complaint_alert_percent = match b.complaint_alert_percent {
        None => defaults.complaint_alert_percent,
        Some(p) if (0.0..=100.0).contains(&p) => p,
        Some(p) => {
            c.problem(
                "bounces.complaint_alert_percent",
                format!("must be between 0 and 100, not {p}"),
            );
            defaults.complaint_alert_percent
        }
    };
    BounceSettings {
        address,
        soft_limit: c.positive("bounces.soft_limit", b.soft_limit, defaults.soft_limit.into(), 1000) as u32,
        soft_window: days(c, "bounces.soft_window_days", b.soft_window_days, defaults.soft_window),
        match_window: days(
            c,
            "bounces.match_window_days",
            b.match_window_days,
            defaults.match_window,
        ),
        complaint_alert_percent,
        max_message_bytes: c.positive(
            "bounces.max_message_kb",
            b.max_message_kb,
            (defaults.max_message_bytes / 1024) as i64,
            1024 * 1024,
        ) as usize
            * 1024,
        webhooks: check_webhooks(c, b),
    }
}

/// The DER prefix of an ECDSA P-256 public key (SubjectPublicKeyInfo with
/// id-ecPublicKey and prime256v1), before its 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn check_webhooks(c: &mut Checker, b: &super::raw::RawBounces) -> WebhookSettings {
    let set = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let mailgun_signing_key = set(&b.mailgun_signing_key).map(Secret::new);
    if mailgun_signing_key.as_ref().is_some_and(|k| k.expose().len() < 16) {
        c.problem(
            "bounces.mailgun_signing_key",
            "is too short to be Mailgun's signing key",
        );
    }
    let postmark = match (set(&b.postmark_username), set(&b.postmark_password)) {
        (Some(user), Some(password)) if password.len() >= 12 && !user.contains(':') => {
            Some((user, Secret::new(password)))
        }
        (Some(_), Some(_)) => {
            c.problem(
                "bounces.postmark_password",
                "use a user name without ':' and a password of at least 12 characters",
            );
            None
        }
        (None, None) => None,
        (Some(_), None) => {
            c.problem(
                "bounces.postmark_password",
                "is required with bounces.postmark_username",
            );
            None
        }
        (None, Some(_)) => {
            c.problem(
                "bounces.postmark_username",
                "is required with bounces.postmark_password",
            );
            None
        }
    };
    let sendgrid_key = set(&b.sendgrid_verification_key).and_then(|key| {
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD.decode(key.trim()).unwrap_or_default();
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == 65 && point[0] == 4 => Some(point.to_vec()),
            _ => {
                c.problem(
                    "bounces.sendgrid_verification_key",
                    "is not an ECDSA P-256 public key in base64 (copy it from SendGrid's Signed Event Webhook settings)",
                );
                None
            }
        }
    });
    WebhookSettings {
        mailgun_signing_key,
        postmark,
        sendgrid_key,
    }
}

fn check_web(c: &mut Checker, raw: &RawConfig) -> WebSettings {
    let w = &raw.web;
    let listen = w.listen.as_deref().and_then(|addr| match addr.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            c.problem(
                "web.listen",
                format!("{addr:?} is not an address and port, e.g. 127.0.0.1:8080"),
            );
            None
        }
    });
    let metrics_listen = w.metrics_listen.as_deref().and_then(|addr| match addr.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            c.problem(
                "web.metrics_listen",
                format!("{addr:?} is not an address and port, e.g. 127.0.0.1:9090"),
            );
            None
        }
    });
    let metrics_token = w.metrics_token.clone().filter(|t| !t.is_empty());
    if let Some(token) = &metrics_token
        && token.len() < 16
    {
        c.problem(
            "web.metrics_token",
            format!(
                "is {} characters; use at least 16 (e.g. `openssl rand -hex 16`)",
                token.len()
            ),
        );
    }
    WebSettings {
        listen,
        metrics_listen,
        metrics_token: metrics_token.map(Secret::new),
        rate_limit_per_minute: c.positive("web.rate_limit_per_minute", w.rate_limit_per_minute, 30, 100_000) as u32,
        trust_forwarded_for: w.trust_forwarded_for.unwrap_or(false),
    }
}

fn check_daemon(c: &mut Checker, raw: &RawConfig) -> DaemonSettings {
    let d = &raw.daemon;
    let log_format = match d.log_format.as_deref().unwrap_or("text") {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            c.problem("daemon.log_format", format!("{other:?} is not one of text, json"));
            LogFormat::Text
        }
    };
    DaemonSettings {
        shutdown_grace: Duration::from_secs(
            c.positive("daemon.shutdown_grace_secs", d.shutdown_grace_secs, 30, 3600) as u64,
        ),
        log_format,
        fire_lease: Duration::from_secs(match d.fire_lease_secs {
            None => 30,
            Some(secs @ 3..=600) => secs as u64,
            Some(other) => {
                c.problem(
                    "daemon.fire_lease_secs",
                    format!("must be between 3 and 600, not {other}"),
                );
                30
            }
        }),
    }
}

fn check_name(c: &mut Checker, key: &str, name: &Option<String>, seen: &mut HashSet<String>) -> Option<String> {
    let name = c.required(&format!("{key}.name"), name)?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !valid {
        c.problem(
            &format!("{key}.name"),
            format!("{name:?} must be letters, digits, - and _ only"),
        );
        return None;
    }
    if !seen.insert(name.clone()) {
        c.problem(&format!("{key}.name"), format!("{name:?} is used twice"));
        return None;
    }
    Some(name)
}
