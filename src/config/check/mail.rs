//! `[mail]`: the transport, its limits and timeouts, DKIM.

use super::*;

pub(super) fn check_mail(c: &mut Checker, raw: &RawConfig, site: Option<&Site>) -> Option<MailSettings> {
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
            if tls == TlsMode::None && s.password.is_some() && !crate::config::is_loopback(&host) {
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

pub(super) fn check_dkim(c: &mut Checker, d: &RawDkim, site: Option<&Site>) -> Option<DkimSettings> {
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
