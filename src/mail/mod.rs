//! Mail transports: a file transport that writes one `.eml` per message (the
//! embedded default and `--dry-run`-style inspection) and SMTP through lettre.
//! Every send returns a classified [`Delivery`] outcome for the retry logic.

mod dkim;
mod file;
mod session;
mod smtp;

use std::time::Duration;

use lettre::Message;

use crate::config::{MailSettings, TransportSettings};

pub use dkim::{Dkim, SIGNED_HEADERS};
pub use file::FileTransport;
pub use smtp::SmtpTransport;

/// How the server (or the file system) answered one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted: the server's reply.
    Accepted(String),
    /// Try later: 4xx, a connection failure or a timeout. `in_doubt` when the
    /// message may have been accepted before the failure (timeout, dropped
    /// connection after the data was sent).
    Transient { reply: String, in_doubt: bool },
    /// 5.1.x: the address does not exist. Suppress it.
    BadAddress(String),
    /// 5.7.x: policy or authentication. The fault is ours: pause the channel.
    Policy(String),
    /// Any other permanent refusal of this message.
    Rejected(String),
}

/// Where messages go, and the DKIM key that signs them on the way.
pub struct MailTransport {
    route: Route,
    dkim: Option<std::sync::Arc<Dkim>>,
}

enum Route {
    File(FileTransport),
    Smtp(SmtpTransport),
}

impl MailTransport {
    pub fn build(settings: &MailSettings) -> Result<MailTransport, String> {
        let route = match &settings.transport {
            TransportSettings::File { dir } => Route::File(FileTransport::new(dir)?),
            TransportSettings::Smtp(smtp) => Route::Smtp(SmtpTransport::new(smtp, settings.max_connections)?),
        };
        Ok(MailTransport {
            route,
            dkim: settings.dkim.clone(),
        })
    }

    /// Where messages go, for people.
    pub fn describe(&self) -> String {
        let route = match &self.route {
            Route::File(f) => format!("file transport, outbox {}", f.dir().display()),
            Route::Smtp(s) => format!("SMTP {}", s.describe()),
        };
        match &self.dkim {
            Some(dkim) => format!("{route}, signed with {}", dkim.describe()),
            None => route,
        }
    }

    /// How messages for this transport should encode their text parts:
    /// 8bit unless the SMTP server does not offer 8BITMIME (or cannot be asked yet).
    pub async fn body_encoding(&self) -> crate::message::BodyEncoding {
        match &self.route {
            Route::File(_) => crate::message::BodyEncoding::EightBit,
            Route::Smtp(s) => s.body_encoding().await,
        }
    }

    /// Signs (when a DKIM key is configured) and sends one message to its one
    /// recipient within `timeout`. `label` names the file for the file transport.
    pub async fn send(&self, mut message: Message, label: &str, timeout: Duration) -> Delivery {
        if let Some(dkim) = self.dkim.clone() {
            // An RSA signature takes about a millisecond of CPU: off the event loop.
            let signed = tokio::task::spawn_blocking(move || {
                dkim.sign(&mut message);
                message
            })
            .await;
            message = match signed {
                Ok(message) => message,
                Err(e) => {
                    return Delivery::Transient {
                        reply: format!("DKIM signing failed: {e}"),
                        in_doubt: false,
                    };
                }
            };
        }
        let attempt = async {
            match &self.route {
                Route::File(f) => f.send(&message, label).await,
                Route::Smtp(s) => s.send(&message).await,
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(delivery) => delivery,
            Err(_) => Delivery::Transient {
                reply: format!("no answer within {}s", timeout.as_secs()),
                in_doubt: true,
            },
        }
    }
}

/// Whether `pem` holds CA certificates the SMTP client can trust.
pub fn check_ca(pem: &[u8]) -> Result<(), String> {
    session::tls_config(Some(pem)).map(|_| ())
}

/// Finds an enhanced status code (RFC 3463, like `5.1.1`) in a reply text.
pub fn enhanced_code(reply: &str) -> Option<(u8, u16, u16)> {
    reply
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
        .find_map(|word| {
            let mut parts = word.split('.');
            let class: u8 = parts.next()?.parse().ok()?;
            let subject: u16 = parts.next()?.parse().ok()?;
            let detail: u16 = parts.next()?.parse().ok()?;
            (parts.next().is_none() && matches!(class, 2 | 4 | 5)).then_some((class, subject, detail))
        })
}

/// Classifies a permanent (5xx) reply by its enhanced code.
pub fn classify_permanent(reply: String) -> Delivery {
    match enhanced_code(&reply) {
        Some((5, 1, _)) => Delivery::BadAddress(reply),
        Some((5, 7, _)) => Delivery::Policy(reply),
        _ => Delivery::Rejected(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes_classify() {
        assert_eq!(
            enhanced_code("550 5.1.1 <x@y>: Recipient address rejected"),
            Some((5, 1, 1))
        );
        assert!(matches!(
            classify_permanent("550 5.1.1 no such user".into()),
            Delivery::BadAddress(_)
        ));
        assert!(matches!(
            classify_permanent("550 5.7.26 unauthenticated mail".into()),
            Delivery::Policy(_)
        ));
        assert!(matches!(
            classify_permanent("554 5.0.0 Error: command failed".into()),
            Delivery::Rejected(_)
        ));
        assert!(matches!(
            classify_permanent("550 rejected".into()),
            Delivery::Rejected(_)
        ));
    }
}
