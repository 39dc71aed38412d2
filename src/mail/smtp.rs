//! SMTP through Herald's own connection pool of [`Session`]s: at most
//! `max_connections` sessions at once, each reused across messages, one
//! envelope per recipient, every reply classified into a [`Delivery`].

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use lettre::Message;
use tokio::sync::Semaphore;

use super::session::{Broken, Reply, Security, Sent, Session, SessionError, Target};
use super::{Delivery, classify_permanent};
use crate::config::{SmtpSettings, TlsMode};
use crate::message::BodyEncoding;

/// An idle session older than this is checked with NOOP before reuse.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
/// An idle session older than this is closed rather than reused.
const MAX_IDLE: Duration = Duration::from_secs(30);

struct Idle {
    session: Session,
    since: Instant,
}

pub struct SmtpTransport {
    target: Target,
    /// One permit per session that may be open at once.
    sessions: Semaphore,
    idle: Mutex<Vec<Idle>>,
    /// Whether the server offers 8BITMIME, once a session has told.
    eight_bit: OnceLock<bool>,
    shown: String,
}

impl SmtpTransport {
    pub fn new(s: &SmtpSettings, max_connections: usize) -> Result<SmtpTransport, String> {
        let ca = match &s.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?),
            None => None,
        };
        let tls = super::session::tls_config(ca.as_deref())?;
        let security = match s.tls {
            TlsMode::None => Security::Plain,
            TlsMode::StartTls => Security::StartTls,
            TlsMode::Implicit => Security::Implicit,
        };
        let hello = match &s.helo_name {
            Some(helo) => helo.clone(),
            None => lettre::transport::smtp::extension::ClientId::default().to_string(),
        };
        let shown_tls = match s.tls {
            TlsMode::None => "plain",
            TlsMode::StartTls => "STARTTLS",
            TlsMode::Implicit => "TLS",
        };
        Ok(SmtpTransport {
            target: Target {
                host: s.host.clone(),
                port: s.port,
                security,
                hello,
                credentials: match (&s.username, &s.password) {
                    (Some(user), Some(password)) => Some((user.clone(), password.clone())),
                    _ => None,
                },
                tls: Arc::new(tls),
            },
            sessions: Semaphore::new(max_connections.max(1)),
            idle: Mutex::new(Vec::new()),
            eight_bit: OnceLock::new(),
            shown: format!(
                "{}:{} ({shown_tls}, up to {max_connections} connections)",
                s.host, s.port
            ),
        })
    }

    pub fn describe(&self) -> &str {
        &self.shown
    }

    /// 8bit bodies when the server offers 8BITMIME (asked once, on a session
    /// that then joins the pool), else the encodings any server takes.
    pub async fn body_encoding(&self) -> BodyEncoding {
        let offered = match self.eight_bit.get() {
            Some(offered) => *offered,
            None => match self.session().await {
                Ok(session) => {
                    let offered = session.offers.eight_bit;
                    let _ = self.eight_bit.set(offered);
                    self.park(session);
                    offered
                }
                // Unknown for now: the safe choice; the send will report the failure.
                Err(_) => false,
            },
        };
        if offered {
            BodyEncoding::EightBit
        } else {
            BodyEncoding::Safe
        }
    }

    fn park(&self, session: Session) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(Idle {
            session,
            since: Instant::now(),
        });
    }

    /// An idle session that still answers, or a new one.
    async fn session(&self) -> Result<Session, SessionError> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(Idle { mut session, since }) = idle else {
                return Session::open(&self.target).await;
            };
            let age = since.elapsed();
            if age < CHECK_AFTER_IDLE || (age < MAX_IDLE && session.is_alive().await) {
                return Ok(session);
            }
            tokio::spawn(session.quit());
        }
    }

    pub async fn send(&self, message: &Message) -> Delivery {
        let _permit = self.sessions.acquire().await.expect("the semaphore is never closed");
        let mut session = match self.session().await {
            Ok(session) => session,
            // Nothing was sent: a refusal at the greeting, EHLO or AUTH is
            // classified (5.7.x pauses the channel); anything else is retried.
            Err(SessionError::Refused(reply)) => return refused(reply),
            Err(SessionError::Io(reply)) => return Delivery::Transient { reply, in_doubt: false },
        };
        let envelope = message.envelope();
        let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
        let Some(to) = envelope.to().first().map(|a| a.to_string()) else {
            self.park(session);
            return Delivery::Rejected("the message has no recipient".into());
        };
        match session.send(&from, &to, &message.formatted()).await {
            Ok(Sent::Accepted(reply)) => {
                self.park(session);
                Delivery::Accepted(reply.to_string())
            }
            Ok(Sent::Refused(reply)) => {
                self.park(session);
                refused(reply)
            }
            // A dropped connection or a garbled reply once the message was
            // (partly) sent may have come after the server took it.
            Err(Broken { error, after_data }) => Delivery::Transient {
                reply: error,
                in_doubt: after_data,
            },
        }
    }
}

fn refused(reply: Reply) -> Delivery {
    if reply.is_transient() {
        Delivery::Transient {
            reply: reply.to_string(),
            in_doubt: false,
        }
    } else {
        classify_permanent(reply.to_string())
    }
}
