//! Provider webhooks: each request authenticated the provider's way, then
//! read into [`Event`]s, one finding each. Pure: the web layer hands in the
//! headers and body, and the time.
//!
//! - Mailgun: `signature.signature` is the HMAC-SHA256 of `timestamp` and
//!   `token` under the signing key; the timestamp must be within five minutes.
//! - Postmark: HTTP basic auth, with the user name and password set in the
//!   webhook URL (Postmark signs nothing).
//! - SendGrid: the Signed Event Webhook's ECDSA P-256 signature over the
//!   timestamp header followed by the body; the timestamp within five minutes.
//!
//! A replay (an event id already in the ledger) is the caller's to refuse.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::classify::Finding;
use super::status::{Kind, Status, find_basic_code};

/// How far a signed timestamp may be from now.
const MAX_SKEW_SECS: i64 = 300;

/// One provider event about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The provider's own id for the event, prefixed with the provider.
    pub id: String,
    pub finding: Finding,
    /// The message's `Message-ID`, brackets off, when the provider gives it.
    pub message_id: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request is not signed (or not authenticated) as the provider signs it")]
    Unsigned,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the signed timestamp is too far from now (a delayed or replayed request)")]
    Stale,
    #[error("the SNS topic {0} is not one of bounces.sns_topic_arns")]
    UnknownTopic(String),
    #[error("the body is not what the provider sends: {0}")]
    Malformed(String),
}

fn fresh(timestamp: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
    let at: i64 = timestamp.trim().parse().map_err(|_| Refusal::Unsigned)?;
    if (now.timestamp() - at).abs() > MAX_SKEW_SECS {
        return Err(Refusal::Stale);
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn brackets_off(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    (!id.is_empty()).then(|| id.to_string())
}

/// A finding from a provider's words: the enhanced code if any, else the
/// basic one, read as a relay's report would be.
fn finding(address: &str, kind: Option<Kind>, status: &str, diagnostic: &str) -> Finding {
    let code = Status::find(status).or_else(|| Status::find(diagnostic));
    let kind = kind.unwrap_or_else(|| match code {
        Some(code) => code.kind(diagnostic),
        None => match find_basic_code(diagnostic) {
            Some(c) if c >= 500 => super::status::words_kind(diagnostic).unwrap_or(Kind::Soft),
            _ => Kind::Soft,
        },
    });
    Finding {
        address: Some(address.trim().to_string()).filter(|a| a.contains('@')),
        kind,
        status: code.map(|c| c.to_string()).unwrap_or_default(),
        diagnostic: super::classify::clip(diagnostic),
    }
}

pub mod mailgun {
    use super::*;

    /// Checks a Mailgun webhook body's signature and reads its event.
    pub fn read(key: &str, body: &[u8], now: DateTime<Utc>) -> Result<Vec<Event>, Refusal> {
        let json: Value = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let sig = &json["signature"];
        let (Some(timestamp), Some(token), Some(signature)) = (
            sig["timestamp"].as_str(),
            sig["token"].as_str(),
            sig["signature"].as_str(),
        ) else {
            return Err(Refusal::Unsigned);
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        let given = crate::token::unhex(signature).ok_or(Refusal::BadSignature)?;
        mac.verify_slice(&given).map_err(|_| Refusal::BadSignature)?;
        fresh(timestamp, now)?;
        let data = &json["event-data"];
        let address = text(&data["recipient"]);
        let kind = match (data["event"].as_str(), data["severity"].as_str()) {
            (Some("failed"), Some("permanent")) => None,
            (Some("failed"), _) => Some(Kind::Soft),
            (Some("complained"), _) => Some(Kind::Complaint),
            _ => return Ok(Vec::new()),
        };
        let status = &data["delivery-status"];
        let diagnostic = [
            text(&status["code"]),
            text(&status["message"]),
            text(&status["description"]),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        let enhanced = text(&status["enhanced-code"]);
        let mut finding = finding(&address, kind, &enhanced, &diagnostic);
        if kind.is_none() && finding.kind == Kind::Soft && Status::find(&enhanced).is_none() {
            // Mailgun says permanent; without a code that says otherwise, so is the failure.
            finding.kind = Kind::Hard;
        }
        Ok(vec![Event {
            id: format!("mailgun:{}", text(&data["id"]).chars().take(100).collect::<String>()),
            finding,
            message_id: data["message"]["headers"]["message-id"].as_str().and_then(brackets_off),
        }])
    }
}

pub mod postmark {
    use super::*;

    /// Checks the request's basic auth against the configured user and password.
    pub fn authenticate(authorization: Option<&str>, user: &str, password: &str) -> Result<(), Refusal> {
        let given = authorization
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| STANDARD.decode(b.trim()).ok())
            .ok_or(Refusal::Unsigned)?;
        let expected = format!("{user}:{password}");
        let mut diff = (given.len() != expected.len()) as u8;
        for (a, b) in given.iter().zip(expected.as_bytes()) {
            diff |= a ^ b;
        }
        if diff != 0 {
            return Err(Refusal::BadSignature);
        }
        Ok(())
    }

    /// Reads a Postmark bounce or spam complaint webhook body.
    pub fn read(body: &[u8]) -> Result<Vec<Event>, Refusal> {
        let json: Value = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
        let kind = match (json["RecordType"].as_str(), json["Type"].as_str()) {
            (Some("SpamComplaint"), _) | (_, Some("SpamComplaint")) => Some(Kind::Complaint),
            (Some("Bounce"), Some("HardBounce" | "BadEmailAddress" | "ManuallyDeactivated")) => Some(Kind::Hard),
            (
                Some("Bounce"),
                Some(
                    "SoftBounce"
                    | "Transient"
                    | "DnsError"
                    | "Blocked"
                    | "SMTPApiError"
                    | "ChallengeVerification"
                    | "ContentRelated"
                    | "SpamNotification",
                ),
            ) => Some(Kind::Soft),
            // Auto-responders, subscribe requests, opens and the rest: not failures.
            _ => return Ok(Vec::new()),
        };
        let diagnostic = [text(&json["Details"]), text(&json["Description"])]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(vec![Event {
            id: format!("postmark:{}", text(&json["ID"]).chars().take(100).collect::<String>()),
            finding: finding(&text(&json["Email"]), kind, "", &diagnostic),
            message_id: None,
        }])
    }
}

pub mod sendgrid {
    use super::*;

    /// Checks the Signed Event Webhook's signature (`point`: the
    /// verification key's uncompressed P-256 point) and reads the events.
    pub fn read(
        point: &[u8],
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<Event>, Refusal> {
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(Refusal::Unsigned);
        };
        let signature = STANDARD.decode(signature.trim()).map_err(|_| Refusal::BadSignature)?;
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
            .verify(&signed, &signature)
            .map_err(|_| Refusal::BadSignature)?;
        fresh(timestamp, now)?;
        let events: Vec<Value> = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
        Ok(events
            .iter()
            .filter_map(|e| {
                let kind = match (e["event"].as_str()?, e["type"].as_str()) {
                    ("bounce", Some("blocked")) | ("deferred", _) => Some(Kind::Soft),
                    ("bounce", _) => None,
                    ("spamreport", _) => Some(Kind::Complaint),
                    _ => return None,
                };
                let reason = text(&e["reason"]);
                let mut finding = finding(&text(&e["email"]), kind, &text(&e["status"]), &reason);
                if kind.is_none() && finding.status.is_empty() {
                    finding.kind = Kind::Hard;
                }
                Some(Event {
                    id: format!(
                        "sendgrid:{}",
                        text(&e["sg_event_id"]).chars().take(100).collect::<String>()
                    ),
                    finding,
                    message_id: e["smtp-id"].as_str().and_then(brackets_off),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_600_000, 0).unwrap()
    }

    fn mailgun_body(key: &str, timestamp: i64, event: &str) -> Vec<u8> {
        let token = "5f1e0c1b2a39";
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        let sig: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        serde_json::json!({
            "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": sig},
            "event-data": {"id": "ev1", "event": event, "severity": "permanent", "recipient": "a@example.org",
                "delivery-status": {"code": 550, "enhanced-code": "5.1.1", "message": "no such user"},
                "message": {"headers": {"message-id": "herald.1.2.n@news.example.org"}}}
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn mailgun_events_verify_and_stale_or_forged_ones_are_refused() {
        let key = "key-0123456789abcdef";
        let events = mailgun::read(key, &mailgun_body(key, now().timestamp(), "failed"), now()).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].finding.kind, Kind::Hard);
        assert_eq!(events[0].finding.status, "5.1.1");
        assert_eq!(events[0].message_id.as_deref(), Some("herald.1.2.n@news.example.org"));
        let complaint = mailgun::read(key, &mailgun_body(key, now().timestamp(), "complained"), now()).unwrap();
        assert_eq!(complaint[0].finding.kind, Kind::Complaint);
        assert_eq!(
            mailgun::read(
                "another-key-0123456",
                &mailgun_body(key, now().timestamp(), "failed"),
                now()
            ),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            mailgun::read(key, &mailgun_body(key, now().timestamp() - 600, "failed"), now()),
            Err(Refusal::Stale)
        );
        assert_eq!(mailgun::read(key, b"{}", now()), Err(Refusal::Unsigned));
        assert!(matches!(
            mailgun::read(key, b"not json", now()),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn postmark_needs_its_basic_auth_and_reads_bounces_and_complaints() {
        let auth = format!("Basic {}", STANDARD.encode("herald:long-enough-pass"));
        assert_eq!(
            postmark::authenticate(Some(&auth), "herald", "long-enough-pass"),
            Ok(())
        );
        assert_eq!(
            postmark::authenticate(Some(&auth), "herald", "long-enough-pasS"),
            Err(Refusal::BadSignature)
        );
        assert_eq!(postmark::authenticate(None, "herald", "x"), Err(Refusal::Unsigned));
        let hard = br#"{"RecordType":"Bounce","ID":42,"Type":"HardBounce","Email":"a@example.org","Details":"smtp;550 5.1.1 The email account does not exist"}"#;
        let events = postmark::read(hard).unwrap();
        assert_eq!(
            (events[0].id.as_str(), events[0].finding.kind),
            ("postmark:42", Kind::Hard)
        );
        let spam = br#"{"RecordType":"SpamComplaint","ID":43,"Type":"SpamComplaint","Email":"a@example.org"}"#;
        assert_eq!(postmark::read(spam).unwrap()[0].finding.kind, Kind::Complaint);
        let auto = br#"{"RecordType":"Bounce","ID":44,"Type":"AutoResponder","Email":"a@example.org"}"#;
        assert!(postmark::read(auto).unwrap().is_empty());
    }
}
