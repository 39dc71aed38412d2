//! The network half of Amazon SES's webhook: SNS signing certificates
//! fetched (from allowed addresses only, size- and time-capped, kept in
//! memory by URL) and subscriptions confirmed. What is checked, and how, is
//! `bounce::sns`'s.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::bounce::sns::{Envelope, MAX_CERTIFICATE_BYTES, Origin};
use crate::bounce::webhook::{Event, Refusal};
use crate::config::WebhookSettings;

/// How long a fetch of a certificate or a confirmation link may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Certificates kept; SNS rotates them rarely, so this many is plenty.
const MAX_CACHED: usize = 16;

/// What a verified SNS message asks of the web layer.
pub(super) enum Verified {
    /// SES events to record.
    Events(Vec<Event>),
    /// A subscription confirmed, or an unsubscription noted: nothing to record.
    Handled(&'static str),
}

/// Fetched signing certificates, by URL, and the client that fetches them.
#[derive(Default)]
pub struct Certificates {
    client: OnceLock<reqwest::Client>,
    cache: Mutex<HashMap<String, Vec<u8>>>,
}

/// Why a verified message could not be acted on (the caller answers 503, and
/// SNS retries).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Unreachable(String);

impl Certificates {
    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client builds once TLS is installed")
        })
    }

    /// Reads a body of at most `cap` bytes from `url`.
    async fn get(&self, url: &str, cap: usize) -> Result<Vec<u8>, String> {
        let mut response = self.client().get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > cap {
                return Err(format!("is over {cap} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn certificate(&self, url: &str) -> Result<Vec<u8>, String> {
        if let Some(pem) = self.cache.lock().expect("certificate cache").get(url) {
            return Ok(pem.clone());
        }
        let pem = self.get(url, MAX_CERTIFICATE_BYTES).await?;
        let mut cache = self.cache.lock().expect("certificate cache");
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(url.to_string(), pem.clone());
        Ok(pem)
    }

    /// Checks an SNS request and does what it asks: the events of a
    /// notification are returned; a subscription is confirmed by fetching
    /// its SubscribeURL.
    pub(super) async fn receive(
        &self,
        hooks: &WebhookSettings,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Result<Verified, Unreachable>, Refusal> {
        let origin = match &hooks.sns_certificate_base {
            Some(base) => Origin::Base(base.clone()),
            None => Origin::Amazon,
        };
        let envelope = Envelope::read(body, &hooks.sns_topic_arns, &origin, now)?;
        let pem = match self.certificate(&envelope.signing_cert_url).await {
            Ok(pem) => pem,
            Err(e) => {
                return Ok(Err(Unreachable(format!(
                    "the SNS signing certificate {} could not be fetched: it {e}",
                    envelope.signing_cert_url
                ))));
            }
        };
        envelope.verify(&pem, now)?;
        match envelope.kind.as_str() {
            "Notification" => Ok(Ok(Verified::Events(envelope.events()?))),
            "SubscriptionConfirmation" => {
                let url = envelope.subscribe_url.as_deref().unwrap_or_default();
                if !origin.allows(url) {
                    return Err(Refusal::Malformed("the SubscribeURL is not an SNS address".into()));
                }
                if let Err(e) = self.get(url, MAX_CERTIFICATE_BYTES).await {
                    return Ok(Err(Unreachable(format!(
                        "the SNS subscription could not be confirmed: it {e}"
                    ))));
                }
                tracing::info!(topic = %envelope.topic_arn, "Amazon SNS subscription confirmed: SES reports will arrive here");
                Ok(Ok(Verified::Handled("subscription confirmed\n")))
            }
            _ => {
                tracing::warn!(topic = %envelope.topic_arn, "Amazon SNS unsubscribed this endpoint: SES reports stop arriving");
                Ok(Ok(Verified::Handled("unsubscription noted\n")))
            }
        }
    }
}
