//! Amazon SES reports through Amazon SNS: the SNS message checked (its
//! signing certificate's address, the topic, the timestamp and the RSA
//! signature over SNS's canonical string), then the SES notification it
//! carries read into [`Event`]s. Pure: fetching the certificate and
//! confirming a subscription are the web layer's.
//!
//! Anyone with an AWS account can make SNS sign messages, so a signature
//! alone proves nothing about whose topic sent it: only the topics named in
//! `bounces.sns_topic_arns` are heard.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use url::Url;
use x509_cert::Certificate;
use x509_cert::der::DecodePem;

use super::classify::Finding;
use super::status::{Kind, Status};
use super::webhook::{Event, Refusal};

/// How old a signed SNS message may be: SNS retries a failed delivery for up
/// to an hour under the longest delivery policy; a replay inside the hour is
/// caught by the ledger.
const MAX_AGE_SECS: i64 = 3600;

/// The largest signing certificate read.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// What SNS posts: a notification, or a subscription (un)confirmation.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
}

/// Where SNS's certificates and subscription links may be: Amazon's own SNS
/// hosts over HTTPS, or (for tests and private endpoints) under one base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Amazon,
    Base(Url),
}

impl Origin {
    /// Whether `url` is one SNS would give: `https://sns.REGION.amazonaws.com/...`
    /// (or `.amazonaws.com.cn`), or under the configured base.
    pub fn allows(&self, url: &str) -> bool {
        let Ok(url) = Url::parse(url) else { return false };
        match self {
            Origin::Base(base) => {
                url.scheme() == base.scheme()
                    && url.host_str() == base.host_str()
                    && url.port_or_known_default() == base.port_or_known_default()
                    && url.path().starts_with(base.path())
            }
            Origin::Amazon => {
                let Some(host) = url.host_str() else { return false };
                let region = host.strip_prefix("sns.").and_then(|h| {
                    h.strip_suffix(".amazonaws.com")
                        .or_else(|| h.strip_suffix(".amazonaws.com.cn"))
                });
                url.scheme() == "https"
                    && url.port().is_none()
                    && region.is_some_and(|r| {
                        !r.is_empty()
                            && r.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    })
            }
        }
    }
}

impl Envelope {
    /// Reads the body and checks what can be checked before any fetch: the
    /// type, the topic, the age and the certificate's address.
    pub fn read(body: &[u8], topics: &[String], origin: &Origin, now: DateTime<Utc>) -> Result<Envelope, Refusal> {
        let envelope: Envelope = serde_json::from_slice(body).map_err(|_| Refusal::Unsigned)?;
        if !matches!(
            envelope.kind.as_str(),
            "Notification" | "SubscriptionConfirmation" | "UnsubscribeConfirmation"
        ) {
            return Err(Refusal::Malformed(format!(
                "unknown SNS message type {:?}",
                envelope.kind
            )));
        }
        if !topics.contains(&envelope.topic_arn) {
            return Err(Refusal::UnknownTopic(envelope.topic_arn.chars().take(200).collect()));
        }
        if !origin.allows(&envelope.signing_cert_url) {
            return Err(Refusal::BadSignature);
        }
        let at = DateTime::parse_from_rfc3339(&envelope.timestamp).map_err(|_| Refusal::Unsigned)?;
        if (now - at.with_timezone(&Utc)).num_seconds().abs() > MAX_AGE_SECS {
            return Err(Refusal::Stale);
        }
        Ok(envelope)
    }

    /// The text SNS signs: chosen fields as `name\nvalue\n`, in this order.
    pub fn canonical(&self) -> Result<String, Refusal> {
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.message), ("MessageId", &self.message_id)];
        if self.kind == "Notification" {
            if let Some(subject) = &self.subject {
                fields.push(("Subject", subject));
            }
        } else {
            let missing = || Refusal::Malformed("a subscription message without SubscribeURL and Token".into());
            fields.push(("SubscribeURL", self.subscribe_url.as_deref().ok_or_else(missing)?));
        }
        fields.push(("Timestamp", &self.timestamp));
        if self.kind != "Notification" {
            let missing = || Refusal::Malformed("a subscription message without Token".into());
            fields.push(("Token", self.token.as_deref().ok_or_else(missing)?));
        }
        fields.push(("TopicArn", &self.topic_arn));
        fields.push(("Type", &self.kind));
        Ok(fields
            .iter()
            .map(|(name, value)| format!("{name}\n{value}\n"))
            .collect())
    }

    /// Checks the signature with the signing certificate (PEM, as fetched
    /// from `SigningCertURL`), which must be valid now.
    pub fn verify(&self, certificate_pem: &[u8], now: DateTime<Utc>) -> Result<(), Refusal> {
        let bad = |what: &str| Refusal::Malformed(format!("the signing certificate {what}"));
        let certificate = Certificate::from_pem(certificate_pem).map_err(|_| bad("is not a PEM certificate"))?;
        let validity = &certificate.tbs_certificate.validity;
        let (from, until) = (
            validity.not_before.to_unix_duration().as_secs() as i64,
            validity.not_after.to_unix_duration().as_secs() as i64,
        );
        if !(from..=until).contains(&now.timestamp()) {
            return Err(bad("is not valid now"));
        }
        let spki = &certificate.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(bad("does not hold an RSA key"));
        }
        let key = spki.subject_public_key.raw_bytes();
        let algorithm: &dyn ring::signature::VerificationAlgorithm = match self.signature_version.as_str() {
            "1" => &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            other => {
                return Err(Refusal::Malformed(format!(
                    "unknown SignatureVersion {:?}",
                    other.chars().take(10).collect::<String>()
                )));
            }
        };
        let signature = STANDARD
            .decode(self.signature.trim())
            .map_err(|_| Refusal::BadSignature)?;
        ring::signature::UnparsedPublicKey::new(algorithm, key)
            .verify(self.canonical()?.as_bytes(), &signature)
            .map_err(|_| Refusal::BadSignature)?;
        Ok(())
    }

    /// The SES report a verified notification carries, as events; nothing
    /// for other notifications (deliveries, sends, opens).
    pub fn events(&self) -> Result<Vec<Event>, Refusal> {
        let json: Value = serde_json::from_str(&self.message)
            .map_err(|_| Refusal::Malformed("the Message is not SES's JSON".into()))?;
        Ok(ses_events(&json))
    }
}

/// rsaEncryption, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: x509_cert::spki::ObjectIdentifier =
    x509_cert::spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// Reads an SES bounce or complaint notification (`notificationType`) or
/// event (`eventType`: the same bodies, from a configuration set).
pub fn ses_events(json: &Value) -> Vec<Event> {
    let kind = json["notificationType"].as_str().or(json["eventType"].as_str());
    let message_id = message_id(&json["mail"]);
    let id = |feedback: &Value, address: &str| -> String {
        format!("ses:{}:{}", text(feedback), address.trim().to_ascii_lowercase())
            .chars()
            .take(250)
            .collect()
    };
    let event = |id: String, finding: Finding| Event {
        id,
        finding,
        message_id: message_id.clone(),
    };
    match kind {
        Some("Bounce") => {
            let bounce = &json["bounce"];
            let fixed = match text(&bounce["bounceType"]) {
                "Permanent" => Some(Kind::Hard),
                "Transient" | "Undetermined" => Some(Kind::Soft),
                _ => None,
            };
            recipients(&bounce["bouncedRecipients"])
                .map(|r| {
                    let address = text(&r["emailAddress"]);
                    let diagnostic = text(&r["diagnosticCode"]);
                    let code = Status::find(text(&r["status"])).or_else(|| Status::find(diagnostic));
                    let kind = fixed.unwrap_or_else(|| code.map_or(Kind::Soft, |c| c.kind(diagnostic)));
                    event(
                        id(&bounce["feedbackId"], address),
                        Finding {
                            address: Some(address.trim().to_string()).filter(|a| a.contains('@')),
                            kind,
                            status: code.map(|c| c.to_string()).unwrap_or_default(),
                            diagnostic: super::classify::clip(diagnostic),
                        },
                    )
                })
                .collect()
        }
        Some("Complaint") => {
            let complaint = &json["complaint"];
            // A recipient's "this is not spam" is no complaint.
            if text(&complaint["complaintFeedbackType"]) == "not-spam" {
                return Vec::new();
            }
            let diagnostic = match text(&complaint["complaintFeedbackType"]) {
                "" => "complaint reported through Amazon SES".to_string(),
                feedback => format!("complaint reported through Amazon SES: {feedback}"),
            };
            recipients(&complaint["complainedRecipients"])
                .map(|r| {
                    let address = text(&r["emailAddress"]);
                    event(
                        id(&complaint["feedbackId"], address),
                        Finding {
                            address: Some(address.trim().to_string()).filter(|a| a.contains('@')),
                            kind: Kind::Complaint,
                            status: String::new(),
                            diagnostic: super::classify::clip(&diagnostic),
                        },
                    )
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// At most this many recipients are read from one notification.
const MAX_RECIPIENTS: usize = 1000;

fn recipients(list: &Value) -> impl Iterator<Item = &Value> {
    list.as_array().into_iter().flatten().take(MAX_RECIPIENTS)
}

/// The message's own Message-ID (not SES's id for it): from the common
/// headers, else the header list.
fn message_id(mail: &Value) -> Option<String> {
    let common = mail["commonHeaders"]["messageId"].as_str();
    let listed = || {
        mail["headers"].as_array()?.iter().find_map(|h| {
            h["name"]
                .as_str()
                .filter(|n| n.eq_ignore_ascii_case("message-id"))
                .and(h["value"].as_str())
        })
    };
    let id = common
        .or_else(listed)?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: &str) -> Envelope {
        Envelope {
            kind: kind.into(),
            message_id: "m-1".into(),
            topic_arn: "arn:aws:sns:eu-west-1:123456789012:bounces".into(),
            message: "{}".into(),
            timestamp: "2026-12-07T08:00:00.000Z".into(),
            signature_version: "1".into(),
            signature: String::new(),
            signing_cert_url: "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123.pem".into(),
            subject: None,
            token: Some("tok".into()),
            subscribe_url: Some("https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription".into()),
        }
    }

    #[test]
    fn the_canonical_string_takes_each_types_fields_in_order() {
        assert_eq!(
            envelope("Notification").canonical().unwrap(),
            "Message\n{}\nMessageId\nm-1\nTimestamp\n2026-12-07T08:00:00.000Z\n\
             TopicArn\narn:aws:sns:eu-west-1:123456789012:bounces\nType\nNotification\n"
        );
        let mut with_subject = envelope("Notification");
        with_subject.subject = Some("Bounce".into());
        assert!(
            with_subject
                .canonical()
                .unwrap()
                .contains("MessageId\nm-1\nSubject\nBounce\nTimestamp\n")
        );
        assert_eq!(
            envelope("SubscriptionConfirmation").canonical().unwrap(),
            "Message\n{}\nMessageId\nm-1\n\
             SubscribeURL\nhttps://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription\n\
             Timestamp\n2026-12-07T08:00:00.000Z\nToken\ntok\n\
             TopicArn\narn:aws:sns:eu-west-1:123456789012:bounces\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn certificates_come_only_from_amazons_sns_hosts_or_the_configured_base() {
        let amazon = Origin::Amazon;
        for good in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem",
        ] {
            assert!(amazon.allows(good), "{good}");
        }
        for bad in [
            "http://sns.us-east-1.amazonaws.com/cert.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
            "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
            "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
            "https://s3.amazonaws.com/cert.pem",
            "https://sns..amazonaws.com/cert.pem",
            "https://user@sns.us-east-1.amazonaws.com@evil.example/cert.pem",
            "not a url",
        ] {
            assert!(!amazon.allows(bad), "{bad}");
        }
        let base = Origin::Base(Url::parse("http://127.0.0.1:9000/sns/").unwrap());
        assert!(base.allows("http://127.0.0.1:9000/sns/cert.pem"));
        assert!(!base.allows("http://127.0.0.1:9001/sns/cert.pem"));
        assert!(!base.allows("http://127.0.0.1:9000/other/cert.pem"));
    }

    #[test]
    fn only_configured_topics_and_fresh_messages_are_heard() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T08:10:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let body = |topic: &str, at: &str| {
            serde_json::json!({
                "Type": "Notification", "MessageId": "m-1", "TopicArn": topic, "Message": "{}",
                "Timestamp": at, "SignatureVersion": "1", "Signature": "AAAA",
                "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123.pem"
            })
            .to_string()
        };
        let topics = vec!["arn:aws:sns:eu-west-1:123456789012:bounces".to_string()];
        let ok = body(&topics[0], "2026-12-07T08:00:00.000Z");
        assert!(Envelope::read(ok.as_bytes(), &topics, &Origin::Amazon, now).is_ok());
        let other = body("arn:aws:sns:eu-west-1:999999999999:mine", "2026-12-07T08:00:00.000Z");
        assert!(matches!(
            Envelope::read(other.as_bytes(), &topics, &Origin::Amazon, now),
            Err(Refusal::UnknownTopic(_))
        ));
        let old = body(&topics[0], "2026-12-07T06:00:00.000Z");
        assert_eq!(
            Envelope::read(old.as_bytes(), &topics, &Origin::Amazon, now).unwrap_err(),
            Refusal::Stale
        );
        assert_eq!(
            Envelope::read(b"{}", &topics, &Origin::Amazon, now).unwrap_err(),
            Refusal::Unsigned
        );
    }

    #[test]
    fn ses_bounces_and_complaints_become_one_event_per_recipient() {
        let bounce = serde_json::json!({
            "notificationType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "fb-1",
                "bouncedRecipients": [
                    {"emailAddress": "gone@example.net", "status": "5.1.1", "action": "failed",
                     "diagnosticCode": "smtp; 550 5.1.1 user unknown"},
                    {"emailAddress": "Also.Gone@example.net"}]},
            "mail": {"messageId": "0100-ses", "commonHeaders": {"messageId": "<herald.4.9.abc@news.example.org>"}}
        });
        let events = ses_events(&bounce);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].id, "ses:fb-1:gone@example.net");
        assert_eq!(events[0].finding.kind, Kind::Hard);
        assert_eq!(events[0].finding.status, "5.1.1");
        assert_eq!(events[1].finding.kind, Kind::Hard);
        assert_eq!(events[0].message_id.as_deref(), Some("herald.4.9.abc@news.example.org"));
        let transient = serde_json::json!({"eventType": "Bounce",
            "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull", "feedbackId": "fb-2",
                "bouncedRecipients": [{"emailAddress": "full@example.net", "status": "4.2.2"}]},
            "mail": {"headers": [{"name": "Message-Id", "value": "<herald.1.2.x@news.example.org>"}]}});
        let events = ses_events(&transient);
        assert_eq!(events[0].finding.kind, Kind::Soft);
        assert_eq!(events[0].message_id.as_deref(), Some("herald.1.2.x@news.example.org"));
        let complaint = serde_json::json!({"notificationType": "Complaint",
            "complaint": {"feedbackId": "fb-3", "complaintFeedbackType": "abuse",
                "complainedRecipients": [{"emailAddress": "angry@example.net"}]}, "mail": {}});
        assert_eq!(ses_events(&complaint)[0].finding.kind, Kind::Complaint);
        let not_spam = serde_json::json!({"notificationType": "Complaint",
            "complaint": {"complaintFeedbackType": "not-spam", "complainedRecipients": [{"emailAddress": "a@b.c"}]}});
        assert!(ses_events(&not_spam).is_empty());
        assert!(ses_events(&serde_json::json!({"notificationType": "Delivery"})).is_empty());
    }
}
