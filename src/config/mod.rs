//! Configuration: read the TOML file and the `HERALD_` environment overrides
//! ([`raw`]), then check everything at once into [`Settings`] ([`check`]).
//! A problem names the file (or environment variable) and the key.

mod check;
mod cron;
pub mod dotenv;
pub mod raw;
mod settings;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use check::check;
pub use cron::{CronError, parse_cron};
pub use settings::*;

/// Where the configuration is read from when neither `--config` nor `HERALD_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/herald.toml";

/// Account secrets come from variables with this prefix, never from files.
pub const SECRET_PREFIX: &str = "HERALD_SECRET_";

/// Environment variables with the `HERALD_` prefix that are not configuration keys.
const NON_CONFIG_VARS: &[&str] = &[
    "HERALD_CONFIG",
    "HERALD_LOG",
    "HERALD_LOG_FORMAT",
    "HERALD_FAILPOINTS",
    "HERALD_FAILPOINT_DIR",
];

/// One thing wrong with the configuration, with where it came from and which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: {}: {}", self.origin, self.key, self.message)
        }
    }
}

/// Every problem found in one load.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

/// Tells which file or environment variable a key came from.
#[derive(Debug, Clone)]
pub struct Origins {
    file: String,
    env: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

impl Origins {
    pub fn of(&self, key: &str) -> String {
        let var = env_var_for(key);
        if self.env.contains_key(&var) {
            format!("environment {var}")
        } else {
            self.file.clone()
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// The secret `field` of account `account`, from `HERALD_SECRET_<ACCOUNT>_<FIELD>`.
    /// `None` when it is unset or empty.
    pub fn secret(&self, account: &str, field: &str) -> Option<String> {
        self.secrets
            .get(&secret_var(account, field))
            .filter(|value| !value.is_empty())
            .cloned()
    }
}

/// `mail.smtp.port` is overridden by `HERALD_MAIL__SMTP__PORT`.
pub fn env_var_for(key: &str) -> String {
    format!("HERALD_{}", key.to_uppercase().replace('.', "__"))
}

/// The variable that holds secret `field` of account `account`.
pub fn secret_var(account: &str, field: &str) -> String {
    format!(
        "{SECRET_PREFIX}{}_{}",
        account.to_uppercase().replace('-', "_"),
        field.to_uppercase()
    )
}

/// Reads and checks the configuration at `path`, with the given environment
/// (normally `std::env::vars()`, after `.env` has been read).
pub fn load(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Settings, ConfigError> {
    let file = path.display().to_string();
    let (secrets, env): (BTreeMap<String, String>, BTreeMap<String, String>) = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("HERALD_") && !NON_CONFIG_VARS.contains(&k.as_str()))
        .partition(|(k, _)| k.starts_with(SECRET_PREFIX));
    let origins = Origins {
        file: file.clone(),
        env: env.clone(),
        secrets,
    };
    let fail = |message: String| ConfigError {
        problems: vec![Problem {
            origin: file.clone(),
            key: String::new(),
            message,
        }],
    };
    if !path.is_file() {
        return Err(fail("configuration file not found".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let built = ::config::Config::builder()
        .add_source(::config::File::from_str(&text, ::config::FileFormat::Toml))
        .add_source(
            ::config::Environment::with_prefix("HERALD")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .ignore_empty(true)
                .source(Some(env.into_iter().collect())),
        )
        .build()
        .map_err(|e| fail(e.to_string()))?;
    // Unknown keys are collected, not fatal at once, so one run reports them
    // all beside every other problem, each from where it came.
    let mut unknown = Vec::new();
    let raw: raw::RawConfig =
        serde_ignored::deserialize(built, |key| unknown.push(unknown_key(&key))).map_err(|e| fail(e.to_string()))?;
    let mut problems: Vec<Problem> = unknown
        .into_iter()
        .map(|key| Problem {
            origin: origins.of(&key),
            message: "unknown key: not a setting Herald has (README, Configuration, lists each section's keys)".into(),
            key,
        })
        .collect();
    match check(raw, &origins, path) {
        Ok(settings) if problems.is_empty() => Ok(settings),
        Ok(_) => Err(ConfigError { problems }),
        Err(e) => {
            problems.extend(e.problems);
            Err(ConfigError { problems })
        }
    }
}

/// A key serde_ignored reports, written as Herald writes keys: `jobs.0.colour`
/// becomes `jobs[0].colour`.
fn unknown_key(path: &serde_ignored::Path<'_>) -> String {
    let mut key = String::new();
    for part in path.to_string().split('.') {
        if part.chars().all(|c| c.is_ascii_digit()) && !key.is_empty() {
            key.push_str(&format!("[{part}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
    }
    key
}

/// Whether `host` names this machine: the only place a password may go
/// without TLS.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_debug_hides_the_password() {
        let s = SmtpSettings {
            host: "smtp.example.org".into(),
            port: 587,
            tls: TlsMode::StartTls,
            username: Some("herald".into()),
            password: Some("hunter2-pass".into()),
            helo_name: None,
            ca_file: None,
        };
        let shown = format!("{:?}", TransportSettings::Smtp(s));
        assert!(
            shown.contains("smtp.example.org") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn env_var_names() {
        assert_eq!(
            env_var_for("mail.smtp.max_connections"),
            "HERALD_MAIL__SMTP__MAX_CONNECTIONS"
        );
    }

    #[test]
    fn loopback_hosts_are_told_apart() {
        for host in ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["smtp.example.org", "10.0.0.1", "localhost.example.org"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
