//! The second stage of loading: turns a [`RawConfig`] into [`Settings`],
//! collecting every problem instead of stopping at the first.

mod accounts;
mod bounces;
mod jobs;
mod mail;
mod sources;

use accounts::check_accounts;
use bounces::check_bounces;
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
        hsts: w.hsts.unwrap_or(false),
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
