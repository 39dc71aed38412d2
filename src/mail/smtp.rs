//! SMTP through lettre's async transport, one envelope per recipient.

use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Delivery, classify_permanent};
use crate::config::{SmtpSettings, TlsMode};

pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    shown: String,
}

impl SmtpTransport {
    pub fn new(s: &SmtpSettings, max_connections: usize, timeout: Duration) -> Result<SmtpTransport, String> {
        let builder = match s.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
            TlsMode::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host).map_err(|e| e.to_string())?
            }
            TlsMode::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host).map_err(|e| e.to_string())?,
        };
        let mut builder = builder.port(s.port).timeout(Some(timeout)).pool_config(
            PoolConfig::new()
                .max_size(max_connections as u32)
                .idle_timeout(Duration::from_secs(30)),
        );
        if let (Some(user), Some(password)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        if let Some(helo) = &s.helo_name {
            builder = builder.hello_name(ClientId::Domain(helo.clone()));
        }
        let tls = match s.tls {
            TlsMode::None => "plain",
            TlsMode::StartTls => "STARTTLS",
            TlsMode::Implicit => "TLS",
        };
        Ok(SmtpTransport {
            inner: builder.build(),
            shown: format!("{}:{} ({tls})", s.host, s.port),
        })
    }

    pub fn describe(&self) -> &str {
        &self.shown
    }

    pub async fn send(&self, message: &Message) -> Delivery {
        match self.inner.send(message.clone()).await {
            Ok(response) => {
                let text: Vec<&str> = response.message().collect();
                Delivery::Accepted(format!("{} {}", response.code(), text.join(" ")))
            }
            Err(e) => {
                let reply = error_text(&e);
                if e.is_permanent() {
                    classify_permanent(reply)
                } else if e.is_transient() {
                    Delivery::Transient { reply, in_doubt: false }
                } else {
                    // A failure while connecting cannot have delivered anything; one
                    // mid-session (a dropped connection, a garbled reply, a timeout)
                    // may have come after the server took the message.
                    let mid_session = e.is_timeout() || e.is_response() || reply.starts_with("network error");
                    Delivery::Transient {
                        reply,
                        in_doubt: mid_session,
                    }
                }
            }
        }
    }
}

/// The server's reply as it said it (`450 4.3.0 ...`) when there was one,
/// else the error and its causes.
fn error_text(error: &lettre::transport::smtp::Error) -> String {
    if let (Some(code), Some(message)) = (error.status(), std::error::Error::source(error)) {
        return format!("{code} {message}");
    }
    crate::error_chain(error)
}
