//! SMTP through Herald's own connection pool of [`Session`]s: at most
//! `max_connections` sessions at once, each reused across messages until it
//! breaks or says 421, one envelope per recipient, every reply classified
//! into a [`Delivery`] by the stage it answered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::Message;
use tokio::sync::Semaphore;

use super::session::{Broken, Reply, Security, Sent, Session, SessionError, Stage, Target};
use super::{Delivery, ProbeError, TransportError, classify_permanent};
use crate::config::{SmtpSettings, TlsMode};
use crate::mail::message::BodyEncoding;

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
    shown: String,
}

impl SmtpTransport {
    pub fn new(
        s: &SmtpSettings,
        max_connections: usize,
        step_timeout: Duration,
    ) -> Result<SmtpTransport, TransportError> {
        let ca = match &s.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|error| TransportError::ReadCa {
                path: path.clone(),
                error,
            })?),
            None => None,
        };
        let tls = super::session::tls_config(ca.as_deref()).map_err(|error| TransportError::Ca {
            path: s.ca_file.clone().unwrap_or_default(),
            error,
        })?;
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
                step_timeout,
            },
            sessions: Semaphore::new(max_connections.max(1)),
            idle: Mutex::new(Vec::new()),
            shown: format!(
                "{}:{} ({shown_tls}, up to {max_connections} connections)",
                s.host, s.port
            ),
        })
    }

    pub fn describe(&self) -> &str {
        &self.shown
    }

    fn park(&self, session: Session) {
        if !session.is_usable() {
            return;
        }
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

    /// Ends every idle session with QUIT.
    pub async fn close(&self) {
        let idle: Vec<Idle> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        futures::future::join_all(idle.into_iter().map(|idle| idle.session.quit())).await;
    }

    /// Opens a session (greeting, EHLO, STARTTLS, AUTH) and ends it with QUIT.
    pub async fn probe(&self) -> Result<String, ProbeError> {
        let session = Session::open(&self.target)
            .await
            .map_err(|e| ProbeError(session_failed(e).reply().to_string()))?;
        let offers = &session.offers;
        let mut said = vec!["connected".to_string()];
        if self.target.security != Security::Plain {
            said.push("TLS".into());
        }
        if self.target.credentials.is_some() {
            said.push("authenticated".into());
        }
        let extensions: Vec<&str> = [
            (offers.pipelining, "PIPELINING"),
            (offers.eight_bit, "8BITMIME"),
            (offers.smtputf8, "SMTPUTF8"),
        ]
        .iter()
        .filter_map(|(on, name)| on.then_some(*name))
        .collect();
        said.push(format!("offers {}", extensions.join(" ")).trim_end().to_string());
        session.quit().await;
        Ok(said.join(", "))
    }

    /// One message on a pooled session: `prepare` builds and signs it with
    /// the body encoding this session allows (8bit only where it offers
    /// 8BITMIME). A session that said 421 or broke is dropped, not reused.
    pub async fn send(
        &self,
        prepare: impl AsyncFnOnce(BodyEncoding) -> Result<Message, Delivery>,
        deadline: Option<tokio::time::Instant>,
    ) -> Delivery {
        let _permit = self.sessions.acquire().await.expect("the semaphore is never closed");
        let mut session = match self.session().await {
            Ok(session) => session,
            Err(e) => return session_failed(e),
        };
        let encoding = if session.offers.eight_bit {
            BodyEncoding::EightBit
        } else {
            BodyEncoding::Safe
        };
        let message = match prepare(encoding).await {
            Ok(message) => message,
            Err(delivery) => {
                self.park(session);
                return delivery;
            }
        };
        let envelope = message.envelope();
        let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
        let Some(to) = envelope.to().first().map(|a| a.to_string()) else {
            self.park(session);
            return Delivery::Rejected("the message has no recipient".into());
        };
        let sent = session.send(&from, &to, &message.formatted(), deadline).await;
        self.park(session);
        match sent {
            Ok(Sent::Accepted(reply)) => Delivery::Accepted(reply.to_string()),
            Ok(Sent::Refused { stage, reply }) => refused(stage, reply),
            Ok(Sent::Abandoned) => Delivery::Abandoned,
            // A dropped connection or a garbled reply once the message was
            // (partly) sent may have come after the server took it.
            Err(Broken { error, after_data }) => Delivery::Transient {
                reply: error.to_string(),
                in_doubt: after_data,
            },
        }
    }
}

/// A session that could not be opened: nothing was sent. A 5xx or an unsafe
/// session is the operator's to fix (the channel pauses); a 4xx or a network
/// failure is retried.
fn session_failed(error: SessionError) -> Delivery {
    match &error {
        SessionError::Refused { stage, reply } if reply.is_permanent() => {
            Delivery::SessionRefused(format!("the server refused the session at {stage}: {reply}"))
        }
        SessionError::Unusable { stage, reason } => {
            Delivery::SessionRefused(format!("the session failed at {stage}: {reason}"))
        }
        _ => Delivery::Transient {
            reply: error.to_string(),
            in_doubt: false,
        },
    }
}

/// A refusal inside a transaction: at MAIL FROM it refuses the session (our
/// sender address); at RCPT, DATA or the end of data it is about this
/// recipient and this message alone.
fn refused(stage: Stage, reply: Reply) -> Delivery {
    if reply.is_transient() {
        Delivery::Transient {
            reply: format!("{reply} (at {stage})"),
            in_doubt: false,
        }
    } else if stage.is_session() {
        Delivery::SessionRefused(format!("the server refused the session at {stage}: {reply}"))
    } else {
        classify_permanent(reply.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            text: text.into(),
        }
    }

    #[test]
    fn refusals_are_classified_by_where_they_came() {
        let at_rcpt = refused(
            Stage::RcptTo,
            reply(550, "5.7.1 Recipient address rejected: Access denied"),
        );
        assert!(matches!(at_rcpt, Delivery::Rejected(_)), "{at_rcpt:?}");
        let unknown = refused(Stage::RcptTo, reply(550, "5.1.1 no such user"));
        assert!(matches!(unknown, Delivery::BadAddress(_)), "{unknown:?}");
        let at_mail = refused(Stage::MailFrom, reply(550, "5.7.26 unauthenticated sender"));
        assert_eq!(
            at_mail,
            Delivery::SessionRefused(
                "the server refused the session at MAIL FROM: 550 5.7.26 unauthenticated sender".into()
            )
        );
        let content = refused(Stage::EndOfData, reply(554, "5.6.0 content rejected"));
        assert!(matches!(content, Delivery::Rejected(_)), "{content:?}");
        let later = refused(Stage::EndOfData, reply(451, "4.3.0 try later"));
        assert!(
            matches!(later, Delivery::Transient { in_doubt: false, .. }),
            "{later:?}"
        );

        // Refusals before any recipient: a 5xx pauses (naming the stage), a 4xx is retried.
        let opening = [
            (
                Stage::Greeting,
                554,
                "5.7.1 no service for you",
                Some("at greeting: 554"),
            ),
            (Stage::Greeting, 421, "4.3.2 busy", None),
            (Stage::Auth, 535, "5.7.8 bad credentials", Some("at AUTH: 535")),
        ];
        for (stage, code, text, pauses) in opening {
            let delivery = session_failed(SessionError::Refused {
                stage,
                reply: reply(code, text),
            });
            match pauses {
                Some(named) => assert!(
                    matches!(delivery, Delivery::SessionRefused(ref r) if r.contains(named)),
                    "{delivery:?}"
                ),
                None => assert!(
                    matches!(delivery, Delivery::Transient { in_doubt: false, .. }),
                    "{delivery:?}"
                ),
            }
        }
    }
}
