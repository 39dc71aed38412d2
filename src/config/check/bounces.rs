//! `[bounces]`: VERP, how reports are matched and acted on, the provider
//! webhooks' credentials and the IMAP mailbox the daemon polls.

use super::*;
use crate::config::ImapSettings;

pub(super) fn check_bounces(c: &mut Checker, raw: &RawConfig) -> BounceSettings {
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
        imap: check_imap(c, &b.imap),
    }
}

/// The DER prefix of an ECDSA P-256 public key (SubjectPublicKeyInfo with
/// id-ecPublicKey and prime256v1), before its 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn check_webhooks(c: &mut Checker, b: &crate::config::raw::RawBounces) -> WebhookSettings {
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
    let sns_topic_arns = b
        .sns_topic_arns
        .iter()
        .filter(|arn| {
            let ok = is_topic_arn(arn);
            if !ok {
                c.problem(
                    "bounces.sns_topic_arns",
                    format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
                );
            }
            ok
        })
        .cloned()
        .collect();
    let sns_certificate_base = set(&b.sns_certificate_base).and_then(|base| match url::Url::parse(&base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() && base.ends_with('/') => Some(url),
        _ => {
            c.problem(
                "bounces.sns_certificate_base",
                format!("{base:?} is not an http(s) URL ending in '/'"),
            );
            None
        }
    });
    WebhookSettings {
        mailgun_signing_key,
        postmark,
        sendgrid_key,
        sns_topic_arns,
        sns_certificate_base,
    }
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME`, as SNS names a topic.
fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let name = |s: &str| {
        !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && word(parts[3])
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && name(parts[5])
}

fn check_imap(c: &mut Checker, raw: &crate::config::raw::RawImap) -> Option<ImapSettings> {
    let host = raw.host.clone().filter(|h| !h.trim().is_empty())?;
    let username = c.required("bounces.imap.username", &raw.username).unwrap_or_default();
    let password = c.required("bounces.imap.password", &raw.password).unwrap_or_default();
    let folder = raw
        .folder
        .clone()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "INBOX".into());
    let move_to = match raw.move_to.as_deref() {
        None => Some("Processed".to_string()),
        Some("") => None,
        Some(name) if name == folder => {
            c.problem(
                "bounces.imap.move_to",
                format!("{name:?} is the folder read (bounces.imap.folder)"),
            );
            None
        }
        Some(name) => Some(name.to_string()),
    };
    for (key, name) in [
        ("bounces.imap.folder", Some(&folder)),
        ("bounces.imap.move_to", move_to.as_ref()),
    ] {
        if name.is_some_and(|n| n.chars().any(|ch| ch.is_control() || ch == '"' || ch == '\\')) {
            c.problem(key, "must not hold control characters, quotes or backslashes");
        }
    }
    Some(ImapSettings {
        host,
        port: c.positive("bounces.imap.port", raw.port, 993, 65535) as u16,
        username,
        password: Secret::new(password),
        folder,
        move_to,
        poll_interval: Duration::from_secs(
            c.positive("bounces.imap.poll_seconds", raw.poll_seconds, 300, 86_400) as u64
        ),
        timeout: Duration::from_secs(c.positive("bounces.imap.timeout_secs", raw.timeout_secs, 30, 600) as u64),
        max_messages: c.positive("bounces.imap.max_messages", raw.max_messages, 500, 100_000) as usize,
        ca_file: raw.ca_file.as_ref().filter(|f| !f.is_empty()).map(PathBuf::from),
    })
}
