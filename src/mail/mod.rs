//! Mail: each recipient's message ([`message`]: headers, parts, links,
//! `Message-ID`s) and the transports that carry it: a file transport that
//! writes one `.eml` per message (the embedded default and inspection) and
//! SMTP through Herald's own session and pool (lettre builds and signs the
//! messages). Every send returns a classified [`Delivery`] outcome; what is
//! done with it (retry, suppress, pause) is the sender's.

mod dkim;
mod file;
pub mod message;
mod session;
mod smtp;

use std::path::PathBuf;
use std::time::Duration;

use lettre::Message;

use crate::config::{MailSettings, TransportSettings};
use message::{BodyEncoding, MessageError};

pub use dkim::{Dkim, DkimError, SIGNED_HEADERS, generate as generate_dkim_key};
pub use file::FileTransport;
pub use session::{CaError, tls_config};
pub use smtp::SmtpTransport;

/// How the server (or the file system) answered one message. Only a reply
/// about the message's one recipient (RCPT, DATA or the end of data) decides
/// its row; a refusal of the session decides nothing about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted: the server's reply.
    Accepted(String),
    /// Try later: 4xx, a connection failure or a timeout. `in_doubt` when the
    /// message may have been accepted before the failure (timeout, dropped
    /// connection after the data was sent).
    Transient { reply: String, in_doubt: bool },
    /// 5.1.x for this recipient: the address does not exist. Suppress it.
    BadAddress(String),
    /// Any other permanent refusal of this recipient or this message.
    Rejected(String),
    /// The server refused the session itself (a 5xx at the greeting, EHLO,
    /// STARTTLS, AUTH or MAIL FROM) or it could not be used safely (no TLS,
    /// no usable AUTH, injected plaintext): the relay's or the operator's
    /// problem. Nothing was sent; the row stays queued as it was and the
    /// channel pauses. The text names the stage and the reply.
    SessionRefused(String),
    /// Not tried: the row's lease would run out before the message could be
    /// sent, so another instance may take it. Nothing was sent.
    Abandoned,
}

impl Delivery {
    /// The server's reply (or what happened instead), for people.
    pub fn reply(&self) -> &str {
        match self {
            Delivery::Accepted(reply)
            | Delivery::Transient { reply, .. }
            | Delivery::BadAddress(reply)
            | Delivery::Rejected(reply)
            | Delivery::SessionRefused(reply) => reply,
            Delivery::Abandoned => "not sent: the row's lease would run out first",
        }
    }
}

/// How a message is built once the transport knows how its body may be
/// encoded (8bit only where the session offers 8BITMIME).
pub type Build<'a> = &'a (dyn Fn(BodyEncoding) -> Result<Message, MessageError> + Sync);

/// The transport could not be set up from its settings.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot create the outbox {}", dir.display())]
    Outbox {
        dir: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("cannot read {}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    #[error("the CA file {}", path.display())]
    Ca {
        path: PathBuf,
        #[source]
        error: CaError,
    },
}

/// `herald check --smtp` could not open a session: what the server (or the
/// network) said, and at which stage.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

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
    pub fn build(settings: &MailSettings, dkim: Option<std::sync::Arc<Dkim>>) -> Result<MailTransport, TransportError> {
        let route = match &settings.transport {
            TransportSettings::File { dir } => Route::File(FileTransport::new(dir)?),
            TransportSettings::Smtp(smtp) => Route::Smtp(SmtpTransport::new(
                smtp,
                settings.max_connections,
                settings.send_timeout,
            )?),
        };
        Ok(MailTransport { route, dkim })
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

    /// Builds the message (`build`, with the encoding the session allows),
    /// signs it when a DKIM key is configured and sends it to its one
    /// recipient. `label` names the file for the file transport. Every SMTP
    /// step is bounded by `timeout`; nothing is sent after `deadline`.
    pub async fn send(
        &self,
        build: Build<'_>,
        label: &str,
        timeout: Duration,
        deadline: Option<tokio::time::Instant>,
    ) -> Delivery {
        match &self.route {
            Route::File(f) => {
                let message = match self.prepare(build, BodyEncoding::EightBit).await {
                    Ok(message) => message,
                    Err(delivery) => return delivery,
                };
                match tokio::time::timeout(timeout, f.send(&message, label)).await {
                    Ok(delivery) => delivery,
                    Err(_) => Delivery::Transient {
                        reply: format!("the outbox took longer than {}s", timeout.as_secs()),
                        in_doubt: true,
                    },
                }
            }
            Route::Smtp(s) => {
                s.send(async |encoding| self.prepare(build, encoding).await, deadline)
                    .await
            }
        }
    }

    /// Builds and signs one message.
    async fn prepare(&self, build: Build<'_>, encoding: BodyEncoding) -> Result<Message, Delivery> {
        let mut message = build(encoding).map_err(|e| Delivery::Rejected(e.to_string()))?;
        if let Some(dkim) = self.dkim.clone() {
            // An RSA signature takes about a millisecond of CPU: off the event loop.
            let signed = tokio::task::spawn_blocking(move || {
                dkim.sign(&mut message);
                message
            })
            .await;
            message = signed.map_err(|e| Delivery::Transient {
                reply: format!("DKIM signing failed: {e}"),
                in_doubt: false,
            })?;
        }
        Ok(message)
    }

    /// Ends idle SMTP sessions with QUIT.
    pub async fn close(&self) {
        if let Route::Smtp(s) = &self.route {
            s.close().await;
        }
    }

    /// Connects as a send would (greeting, EHLO, STARTTLS, AUTH), then says
    /// QUIT: what `herald check --smtp` reports. `None` for the file transport.
    pub async fn probe(&self) -> Option<Result<String, ProbeError>> {
        match &self.route {
            Route::File(_) => None,
            Route::Smtp(s) => Some(s.probe().await),
        }
    }
}

/// Whether `pem` holds CA certificates the SMTP client can trust.
pub fn check_ca(pem: &[u8]) -> Result<(), CaError> {
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

/// Classifies a permanent (5xx) reply about one recipient by its enhanced
/// code: 5.1.x says the address is bad; anything else (5.7.x policy
/// included) refuses this message, and counts toward its edition's error
/// budget.
pub fn classify_permanent(reply: String) -> Delivery {
    match enhanced_code(&reply) {
        Some((5, 1, _)) => Delivery::BadAddress(reply),
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
            classify_permanent("550 5.7.1 Recipient address rejected: Access denied".into()),
            Delivery::Rejected(_)
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
