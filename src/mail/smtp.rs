//! SMTP through a connection pool of Herald's own around lettre's
//! `AsyncSmtpConnection`: sockets with `TCP_NODELAY` (lettre writes the body
//! and the final dot separately, and without it each message would wait on a
//! delayed ACK), at most `max_connections` sessions at once, connections reused
//! across messages, one envelope per recipient.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::{Delivery, classify_permanent};
use crate::config::{SmtpSettings, TlsMode};

/// An idle connection older than this is checked with NOOP before reuse.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);
/// An idle connection older than this is closed rather than reused.
const MAX_IDLE: Duration = Duration::from_secs(30);

struct Idle {
    conn: AsyncSmtpConnection,
    since: Instant,
}

pub struct SmtpTransport {
    host: String,
    port: u16,
    tls: TlsMode,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
    /// One permit per session that may be open at once.
    sessions: Semaphore,
    idle: Mutex<Vec<Idle>>,
    shown: String,
}

/// Why a message did not go: before a session was ready (nothing can have
/// been delivered), or during its transaction.
enum Failure {
    Connect(String, Option<lettre::transport::smtp::Error>),
    Transaction(lettre::transport::smtp::Error),
}

impl SmtpTransport {
    pub fn new(s: &SmtpSettings, max_connections: usize, timeout: Duration) -> Result<SmtpTransport, String> {
        if s.tls != TlsMode::None {
            // Fail at start, not at the first send, if TLS cannot be set up for this host.
            TlsParameters::new(s.host.clone()).map_err(|e| e.to_string())?;
        }
        let tls = match s.tls {
            TlsMode::None => "plain",
            TlsMode::StartTls => "STARTTLS",
            TlsMode::Implicit => "TLS",
        };
        let hello = match &s.helo_name {
            Some(helo) => ClientId::Domain(helo.clone()),
            None => ClientId::default(),
        };
        Ok(SmtpTransport {
            host: s.host.clone(),
            port: s.port,
            tls: s.tls,
            hello,
            credentials: match (&s.username, &s.password) {
                (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
                _ => None,
            },
            timeout,
            sessions: Semaphore::new(max_connections.max(1)),
            idle: Mutex::new(Vec::new()),
            shown: format!("{}:{} ({tls}, up to {max_connections} connections)", s.host, s.port),
        })
    }

    pub fn describe(&self) -> &str {
        &self.shown
    }

    fn tls_parameters(&self) -> Result<TlsParameters, Failure> {
        TlsParameters::new(self.host.clone()).map_err(|e| Failure::Connect(e.to_string(), None))
    }

    /// Opens a session: TCP with `TCP_NODELAY`, EHLO, STARTTLS or implicit TLS, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let smtp = |e: lettre::transport::smtp::Error| Failure::Connect(crate::error_chain(&e), Some(e));
        let mut conn = if self.tls == TlsMode::Implicit {
            // lettre opens the socket itself for implicit TLS, so this one keeps Nagle.
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                Some(self.tls_parameters()?),
                None,
            )
            .await
            .map_err(smtp)?
        } else {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| Failure::Connect(format!("cannot connect to {}:{}: {e}", self.host, self.port), None))?;
            tcp.set_nodelay(true)
                .map_err(|e| Failure::Connect(format!("cannot set TCP_NODELAY: {e}"), None))?;
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                .await
                .map_err(smtp)?;
            if self.tls == TlsMode::StartTls {
                conn.starttls(self.tls_parameters()?, &self.hello).await.map_err(smtp)?;
            }
            conn
        };
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(smtp)?;
        }
        Ok(conn)
    }

    /// An idle session that still answers, or a new one.
    async fn session(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let Some(Idle { mut conn, since }) = idle else {
                return self.connect().await;
            };
            let age = since.elapsed();
            if age < CHECK_AFTER_IDLE || (age < MAX_IDLE && conn.test_connected().await) {
                return Ok(conn);
            }
            conn.abort().await;
        }
    }

    async fn try_send(&self, message: &Message) -> Result<lettre::transport::smtp::response::Response, Failure> {
        let _session = self.sessions.acquire().await.expect("the semaphore is never closed");
        let mut conn = self.session().await?;
        let sent = conn.send(message.envelope(), &message.formatted()).await;
        // lettre closes a session on any error; a healthy one goes back to the pool.
        if sent.is_ok() && !conn.has_broken() {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(Idle {
                conn,
                since: Instant::now(),
            });
        }
        sent.map_err(Failure::Transaction)
    }

    pub async fn send(&self, message: &Message) -> Delivery {
        match self.try_send(message).await {
            Ok(response) => {
                let text: Vec<&str> = response.message().collect();
                Delivery::Accepted(format!("{} {}", response.code(), text.join(" ")))
            }
            Err(Failure::Connect(reply, error)) => match error {
                // A refusal at EHLO or AUTH: permanent ones (5.7.x) pause the channel.
                Some(e) if e.is_permanent() => classify_permanent(error_text(&e)),
                Some(e) if e.is_transient() => Delivery::Transient {
                    reply: error_text(&e),
                    in_doubt: false,
                },
                _ => Delivery::Transient { reply, in_doubt: false },
            },
            Err(Failure::Transaction(e)) => {
                let reply = error_text(&e);
                if e.is_permanent() {
                    classify_permanent(reply)
                } else if e.is_transient() {
                    Delivery::Transient { reply, in_doubt: false }
                } else {
                    // A dropped connection, a garbled reply or a timeout
                    // mid-transaction may have come after the server took the message.
                    Delivery::Transient { reply, in_doubt: true }
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
