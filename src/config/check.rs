//! The second stage of loading: turns a [`RawConfig`] into [`Settings`],
//! collecting every problem instead of stopping at the first.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono_tz::Tz;
use url::Url;

use super::cron::parse_cron;
use super::raw::{RawConfig, RawDkim, RawJob, RawSource};
use super::{
    AccountKind, AccountSettings, CatchUp, ConfigError, DaemonSettings, DkimAlgorithm, DkimSettings, ErrorBudget,
    JobKind, JobSettings, ListSettings, LogFormat, MailSettings, Origins, Problem, Settings, Site, SmtpSettings,
    SourceKind, SourceSettings, TlsMode, TokenSettings, TransportSettings, WebSettings,
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

fn check_mail(c: &mut Checker, raw: &RawConfig, site: Option<&Site>) -> Option<MailSettings> {
    let m = &raw.mail;
    let transport = match m.transport.as_deref().unwrap_or("file") {
        "file" => TransportSettings::File {
            dir: PathBuf::from(m.file.dir.clone().unwrap_or_else(|| "data/outbox".into())),
        },
        "smtp" => {
            let s = &m.smtp;
            let host = c.required("mail.smtp.host", &s.host).unwrap_or_default();
            let tls = match s.tls.as_deref().unwrap_or("starttls") {
                "none" => TlsMode::None,
                "starttls" => TlsMode::StartTls,
                "tls" => TlsMode::Implicit,
                other => {
                    c.problem("mail.smtp.tls", format!("{other:?} is not one of none, starttls, tls"));
                    TlsMode::StartTls
                }
            };
            let default_port = match tls {
                TlsMode::Implicit => 465,
                TlsMode::StartTls => 587,
                TlsMode::None => 25,
            };
            let port = c.positive("mail.smtp.port", s.port, default_port, 65535) as u16;
            if s.username.is_some() != s.password.is_some() {
                c.problem(
                    "mail.smtp.username",
                    "username and password go together: set both or neither",
                );
            }
            if tls == TlsMode::None && s.password.is_some() && !super::is_loopback(&host) {
                c.problem(
                    "mail.smtp.tls",
                    format!(
                        "\"none\" with a password would send it in cleartext to {host}: use \"starttls\" or \"tls\" \
                         (\"none\" with credentials is only for a relay on this machine)"
                    ),
                );
            }
            TransportSettings::Smtp(SmtpSettings {
                host,
                port,
                tls,
                username: s.username.clone(),
                password: s.password.clone(),
                helo_name: s.helo_name.clone(),
                ca_file: s.ca_file.as_ref().map(PathBuf::from),
            })
        }
        other => {
            c.problem("mail.transport", format!("{other:?} is not one of file, smtp"));
            return None;
        }
    };
    let rate_limit = match m.rate_limit {
        None => None,
        Some(0.0) => None,
        Some(r) if r > 0.0 && r.is_finite() => Some(r),
        Some(r) => {
            c.problem(
                "mail.rate_limit",
                format!("must be a positive number of messages per second (0 = unlimited), not {r}"),
            );
            None
        }
    };
    Some(MailSettings {
        transport,
        max_connections: c.positive("mail.max_connections", m.max_connections, 32, 1024) as usize,
        rate_limit,
        send_timeout: Duration::from_secs(c.positive("mail.send_timeout_secs", m.send_timeout_secs, 60, 3600) as u64),
        retry_initial: Duration::from_secs(
            c.positive("mail.retry_initial_secs", m.retry_initial_secs, 300, 86400) as u64
        ),
        retry_max_age: Duration::from_secs(
            3600 * c.positive("mail.retry_max_age_hours", m.retry_max_age_hours, 72, 24 * 30) as u64,
        ),
        error_budget: ErrorBudget {
            percent: c.positive("mail.error_budget_percent", m.error_budget_percent, 10, 100) as u64,
            min_attempts: c.positive(
                "mail.error_budget_min_attempts",
                m.error_budget_min_attempts,
                100,
                1_000_000,
            ) as u64,
        },
        breaker_after: c.positive("mail.breaker_after_failures", m.breaker_after_failures, 20, 100_000) as u64,
        dkim: m.dkim.as_ref().and_then(|d| check_dkim(c, d, site)),
    })
}

fn check_dkim(c: &mut Checker, d: &RawDkim, site: Option<&Site>) -> Option<DkimSettings> {
    let selector = c.required("mail.dkim.selector", &d.selector);
    let file = c.required("mail.dkim.private_key_file", &d.private_key_file);
    let algorithm = match d.algorithm.as_deref().unwrap_or("rsa") {
        "rsa" => Some(DkimAlgorithm::Rsa),
        "ed25519" => Some(DkimAlgorithm::Ed25519),
        other => {
            c.problem("mail.dkim.algorithm", format!("{other:?} is not one of rsa, ed25519"));
            None
        }
    };
    let domain = d
        .domain
        .clone()
        .or_else(|| site.map(|s| s.from.email.domain().to_string()))?;
    Some(DkimSettings {
        selector: selector?,
        domain,
        algorithm: algorithm?,
        private_key_file: PathBuf::from(file?),
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

fn check_sources(c: &mut Checker, raw: &RawConfig, site_base: Option<&Url>) -> Vec<SourceSettings> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let key = item_key("sources", i, &s.name);
        let name = check_name(c, &key, &s.name, &mut seen);
        let kind = check_source_kind(c, &key, s, site_base);
        let poll_interval = Duration::from_secs(c.positive(
            &format!("{key}.poll_interval_secs"),
            s.poll_interval_secs,
            900,
            7 * 86400,
        ) as u64);
        if let (Some(name), Some(kind)) = (name, kind) {
            out.push(SourceSettings {
                name,
                kind,
                poll_interval,
            });
        }
    }
    out
}

fn check_source_kind(c: &mut Checker, key: &str, s: &RawSource, site_base: Option<&Url>) -> Option<SourceKind> {
    match s.kind.as_deref() {
        Some("folder") => {
            let path = PathBuf::from(c.required(&format!("{key}.path"), &s.path)?);
            if !path.is_dir() {
                c.problem(&format!("{key}.path"), format!("{} is not a folder", path.display()));
            }
            let base_url = match &s.base_url {
                Some(u) => c.url(&format!("{key}.base_url"), u)?,
                None => site_base?.clone(),
            };
            Some(SourceKind::Folder { path, base_url })
        }
        Some("feed") => {
            let url = c.required(&format!("{key}.url"), &s.url)?;
            let url = c.url(&format!("{key}.url"), &url)?;
            Some(SourceKind::Feed {
                url,
                timeout: Duration::from_secs(c.positive(&format!("{key}.timeout_secs"), s.timeout_secs, 20, 600) as u64),
                max_bytes: c.positive(&format!("{key}.max_bytes"), s.max_bytes, 10 * 1024 * 1024, 1 << 30) as u64,
                max_items: c.positive(&format!("{key}.max_items"), s.max_items, 1000, 100_000) as usize,
                trust_ids: s.trust_ids.unwrap_or(true),
                allow_private_redirects: s.allow_private_redirects.unwrap_or(false),
            })
        }
        Some(other) => {
            c.problem(&format!("{key}.type"), format!("{other:?} is not one of folder, feed"));
            None
        }
        None => {
            c.problem(&format!("{key}.type"), "is required (folder or feed)");
            None
        }
    }
}

fn check_lists(c: &mut Checker, raw: &RawConfig) -> Vec<ListSettings> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, l) in raw.lists.iter().enumerate() {
        let key = item_key("lists", i, &l.name);
        let Some(name) = check_name(c, &key, &l.name, &mut seen) else {
            continue;
        };
        let seed = l.seed.as_ref().map(PathBuf::from);
        if let Some(seed) = &seed
            && !seed.is_file()
        {
            c.problem(&format!("{key}.seed"), format!("{} is not a file", seed.display()));
        }
        let title = l.title.clone().unwrap_or_else(|| name.clone());
        let consent = match &l.consent {
            Some(text) if text.trim().is_empty() => {
                c.problem(
                    &format!("{key}.consent"),
                    "must not be empty (leave it out for the default wording)",
                );
                String::new()
            }
            Some(text) => text.trim().to_string(),
            None => format!(
                "I would like to receive {title} by email. I can leave at any time with the link at the foot of every email."
            ),
        };
        out.push(ListSettings {
            title,
            name,
            seed,
            signup: l.signup.unwrap_or(true),
            consent,
        });
    }
    out
}

fn check_jobs(
    c: &mut Checker,
    raw: &RawConfig,
    sources: &[SourceSettings],
    lists: &[ListSettings],
    accounts: &[AccountSettings],
) -> Vec<JobSettings> {
    let mut seen = HashSet::new();
    let mut cadences_taken = HashSet::new();
    let mut out: Vec<JobSettings> = Vec::new();
    for (i, j) in raw.jobs.iter().enumerate() {
        let key = item_key("jobs", i, &j.name);
        let name = check_name(c, &key, &j.name, &mut seen);
        if let Some(job) = check_job(c, &key, j, sources, lists, accounts)
            && let Some(name) = name
        {
            let cadence = job.cadence.clone();
            let cadence = if cadence.is_empty() { name.clone() } else { cadence };
            if job.kind == JobKind::Digest && !cadences_taken.insert((job.list.clone(), cadence.clone())) {
                c.problem(
                    &format!("{key}.cadence"),
                    format!(
                        "list {:?} already has a digest job with cadence {cadence:?}; each digest job of a list needs its own cadence",
                        job.list
                    ),
                );
            }
            out.push(JobSettings { name, cadence, ..job });
        }
    }
    // A list's first digest job is its default; each job knows the others' cadences.
    let digest: Vec<(String, String, String)> = out
        .iter()
        .filter(|j| j.kind == JobKind::Digest)
        .map(|j| (j.name.clone(), j.list.clone(), j.cadence.clone()))
        .collect();
    for job in out.iter_mut().filter(|j| j.kind == JobKind::Digest) {
        let same_list = || digest.iter().filter(|(_, list, _)| *list == job.list);
        job.list_default = same_list().next().is_some_and(|(name, _, _)| *name == job.name);
        job.sibling_cadences = same_list()
            .filter(|(name, _, _)| *name != job.name)
            .map(|(_, _, cadence)| cadence.clone())
            .collect();
        job.siblings = same_list()
            .filter(|(name, _, _)| *name != job.name)
            .map(|(name, _, _)| name.clone())
            .collect();
    }
    out
}

fn check_job(
    c: &mut Checker,
    key: &str,
    j: &RawJob,
    sources: &[SourceSettings],
    lists: &[ListSettings],
    accounts: &[AccountSettings],
) -> Option<JobSettings> {
    let k = |field: &str| format!("{key}.{field}");
    let kind = match j.kind.as_deref() {
        Some("digest") => JobKind::Digest,
        Some("social") => JobKind::Social,
        Some(other) => {
            c.problem(
                &k("kind"),
                format!("{other:?} is not a job kind this version knows (digest, social)"),
            );
            return None;
        }
        None => {
            c.problem(&k("kind"), "is required (digest or social)");
            return None;
        }
    };
    let list = match kind {
        JobKind::Digest => {
            let list = c.required(&k("list"), &j.list);
            if let Some(list) = &list
                && !lists.iter().any(|l| &l.name == list)
            {
                c.problem(&k("list"), format!("no list named {list:?} in [[lists]]"));
            }
            list
        }
        JobKind::Social => {
            if j.list.is_some() {
                c.problem(&k("list"), "a social job posts to accounts, not to a list");
            }
            Some(String::new())
        }
    };
    let job_accounts = match (kind, &j.accounts) {
        (JobKind::Social, Some(names)) if !names.is_empty() => {
            for name in names {
                if !accounts.iter().any(|a| &a.name == name) {
                    c.problem(&k("accounts"), format!("no account named {name:?} in [[accounts]]"));
                }
            }
            names.clone()
        }
        (JobKind::Social, _) => {
            c.problem(&k("accounts"), "a social job needs at least one account");
            Vec::new()
        }
        (JobKind::Digest, Some(_)) => {
            c.problem(
                &k("accounts"),
                "a digest job sends to a list; accounts belong to social jobs",
            );
            Vec::new()
        }
        (JobKind::Digest, None) => Vec::new(),
    };
    let job_sources = match &j.sources {
        Some(names) => {
            for name in names {
                if !sources.iter().any(|s| &s.name == name) {
                    c.problem(&k("sources"), format!("no source named {name:?} in [[sources]]"));
                }
            }
            if names.is_empty() {
                c.problem(
                    &k("sources"),
                    "must name at least one source (or be left out to take all)",
                );
            }
            names.clone()
        }
        None => sources.iter().map(|s| s.name.clone()).collect(),
    };
    let schedule = c.required(&k("schedule"), &j.schedule);
    let cron = schedule.as_deref().and_then(|line| match parse_cron(line) {
        Ok(cron) => Some(cron),
        Err(e) => {
            c.problem(&k("schedule"), format!("{line:?} is not a valid cron line: {e}"));
            None
        }
    });
    let timezone = c
        .required(&k("timezone"), &j.timezone)
        .and_then(|tz| match Tz::from_str(&tz) {
            Ok(tz) => Some(tz),
            Err(_) => {
                c.problem(
                    &k("timezone"),
                    format!("{tz:?} is not an IANA time zone (e.g. Europe/London)"),
                );
                None
            }
        });
    let max_articles = c.positive(&k("max_articles"), j.max_articles, 20, 500) as usize;
    let lookback_hours = c.positive(&k("lookback_hours"), j.lookback_hours, 24, 24 * 366);
    let catch_up = match j.catch_up.as_deref().unwrap_or("latest") {
        "latest" => CatchUp::Latest,
        "skip" => CatchUp::Skip,
        other => {
            c.problem(&k("catch_up"), format!("{other:?} is not one of latest, skip"));
            CatchUp::Skip
        }
    };
    let catch_up_window_hours = c.positive(&k("catch_up_window_hours"), j.catch_up_window_hours, 6, 24 * 31);
    Some(JobSettings {
        name: String::new(),
        kind,
        accounts: job_accounts,
        list: list?,
        sources: job_sources,
        schedule: schedule?,
        cron: cron?,
        timezone: timezone?,
        template: j.template.clone().unwrap_or_else(|| "digest".into()),
        subject: j.subject.clone().unwrap_or_else(|| {
            "{{site.name}}: {{edition.count}} new {{#if edition.single}}story{{else}}stories{{/if}}".into()
        }),
        max_articles,
        send_when_empty: j.send_when_empty.unwrap_or(false),
        lookback: chrono::Duration::hours(lookback_hours),
        catch_up,
        catch_up_window: chrono::Duration::hours(catch_up_window_hours),
        cadence: match (kind, &j.cadence) {
            (JobKind::Digest, Some(cadence)) if cadence.trim().is_empty() => {
                c.problem(&k("cadence"), "must not be empty (leave it out to use the job's name)");
                String::new()
            }
            (JobKind::Digest, Some(cadence)) => cadence.trim().to_string(),
            (JobKind::Social, Some(_)) => {
                c.problem(&k("cadence"), "a social job has no subscribers to choose a cadence");
                String::new()
            }
            (_, None) => String::new(),
        },
        list_default: false,
        sibling_cadences: Vec::new(),
        siblings: Vec::new(),
    })
}

/// The API base URL each platform has unless `base_url` says otherwise.
fn default_base_url(kind: &str) -> Option<&'static str> {
    match kind {
        "x" => Some("https://api.x.com"),
        "bluesky" => Some("https://bsky.social"),
        "telegram" => Some("https://api.telegram.org"),
        _ => None,
    }
}

fn check_accounts(c: &mut Checker, raw: &RawConfig) -> Vec<AccountSettings> {
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
            other => {
                c.problem(
                    &k("type"),
                    format!("{other:?} is not one of x, mastodon, bluesky, slack, discord, telegram, webhook"),
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
            AccountKind::Bluesky { app_password, .. } => {
                let handle = c.required(&k("handle"), &a.handle).unwrap_or_default();
                AccountKind::Bluesky { handle, app_password }
            }
            AccountKind::Telegram { bot_token, .. } => {
                let chat_id = c.required(&k("chat_id"), &a.chat_id).unwrap_or_default();
                AccountKind::Telegram { bot_token, chat_id }
            }
            other => other,
        };
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
        out.push(AccountSettings {
            base_url,
            template,
            max_hashtags: c.positive(&k("max_hashtags"), a.max_hashtags.or(Some(3)).filter(|n| *n > 0), 3, 30) as usize,
            min_spacing: Duration::from_secs(a.min_spacing_secs.unwrap_or(60).max(0) as u64),
            daily_cap: c.positive(&k("daily_cap"), a.daily_cap, default_cap, 10_000) as u32,
            backfill: a.backfill.unwrap_or(false),
            lookback: chrono::Duration::hours(c.positive(&k("lookback_hours"), a.lookback_hours, 24, 24 * 366)),
            timeout: Duration::from_secs(c.positive(&k("timeout_secs"), a.timeout_secs, 20, 600) as u64),
            name,
            kind,
        });
    }
    out
}
