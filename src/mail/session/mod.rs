//! One SMTP client session (RFC 5321) on a `TCP_NODELAY` socket: greeting,
//! EHLO, STARTTLS or implicit TLS, AUTH PLAIN or LOGIN, then any number of
//! transactions. With PIPELINING (RFC 2920) a transaction's MAIL, RCPT and
//! DATA go out in one write and the message and its final dot in another, so
//! a message costs two round trips. Dot-stuffing is done a line at a time,
//! not a byte at a time.
//!
//! The server is not trusted: every connect, write and reply has a timeout;
//! reply lines and whole replies are capped ([`MAX_LINE`], [`MAX_REPLY`]);
//! a reply must be well-formed SMTP with one code on all its lines, and any
//! bytes in it are taken (shown lossily when not UTF-8); plaintext sent
//! after the STARTTLS reply drops the session; a password goes only over TLS
//! (or to this machine) with a mechanism the server offered. Every failure
//! names its [`Stage`], so the caller can tell a refusal of the session from
//! a refusal of one recipient. A 421, a broken reply or a failed connection
//! makes the session unusable: it is dropped, never reused.

mod offers;
mod reply;
mod tls;
mod transaction;

pub use offers::Offers;

pub use reply::{MAX_LINE, MAX_REPLY, Reply, SessionError, Stage};
use reply::{parse_line, read_line_capped};
pub use tls::{CaError, tls_config};
use tls::{Stream, handshake};

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How the session is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Plain,
    StartTls,
    Implicit,
}

/// What a session needs to open.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub hello: String,
    pub credentials: Option<(String, String)>,
    pub tls: Arc<tokio_rustls::rustls::ClientConfig>,
    /// The bound on every step: connecting, each write, each reply.
    pub step_timeout: Duration,
}

/// An open session, ready for transactions.
pub struct Session {
    stream: BufReader<Stream>,
    pub offers: Offers,
    timeout: Duration,
    /// False once the server said 421, broke the protocol or the connection
    /// failed: the session is dropped, never reused.
    usable: bool,
    /// Whether the current transaction's message began to go out.
    data_sent: bool,
    /// The request being written, reused between messages.
    out: Vec<u8>,
    /// A reply being read, reused between replies.
    line: Vec<u8>,
}

/// How a transaction ended, when the server answered every step.
#[derive(Debug)]
pub enum Sent {
    /// The server took the message: its final reply.
    Accepted(Reply),
    /// The server refused it at `stage` with a 4xx or 5xx reply.
    Refused { stage: Stage, reply: Reply },
    /// Not tried: the deadline came before DATA (the row's lease ran out).
    Abandoned,
}

/// A transaction failed on the wire; `after_data` tells whether the message
/// had (at least partly) been sent, so the server may have taken it.
#[derive(Debug)]
pub struct Broken {
    pub error: SessionError,
    pub after_data: bool,
}

impl Session {
    /// Connects, reads the greeting, says EHLO, secures and authenticates the
    /// session; every step within `target.step_timeout`.
    pub async fn open(target: &Target) -> Result<Session, SessionError> {
        let timeout = target.step_timeout;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((target.host.as_str(), target.port)))
            .await
            .map_err(|_| SessionError::Io {
                error: format!(
                    "cannot connect to {}:{}: no answer within {}s",
                    target.host,
                    target.port,
                    timeout.as_secs()
                ),
            })?
            .map_err(|e| SessionError::Io {
                error: format!("cannot connect to {}:{}: {e}", target.host, target.port),
            })?;
        tcp.set_nodelay(true).map_err(|e| SessionError::io(Stage::Connect, e))?;
        let stream = match target.security {
            Security::Implicit => Stream::Tls(Box::new(handshake(target, tcp, Stage::Connect).await?)),
            _ => Stream::Plain(tcp),
        };
        let mut session = Session {
            stream: BufReader::new(stream),
            offers: Offers::default(),
            timeout,
            usable: true,
            data_sent: false,
            out: Vec::with_capacity(64 * 1024),
            line: Vec::with_capacity(512),
        };
        session.expect(Stage::Greeting, &[220]).await?;
        session.ehlo(&target.hello).await?;
        if target.security == Security::StartTls {
            if !session.offers.starttls {
                return Err(SessionError::Unusable {
                    stage: Stage::StartTls,
                    reason: format!(
                        "{} does not offer STARTTLS (set mail.smtp.tls to \"tls\" or \"none\")",
                        target.host
                    ),
                });
            }
            session.command(Stage::StartTls, "STARTTLS", &[220]).await?;
            // Anything already read past the 220 came in plaintext and must
            // not be taken as if it came over TLS (CVE-2011-0411).
            let injected = session.stream.buffer().len();
            if injected > 0 {
                return Err(SessionError::Unusable {
                    stage: Stage::StartTls,
                    reason: format!(
                        "{} sent {injected} bytes after its STARTTLS reply, before TLS began (injected plaintext?): \
                         the session was dropped",
                        target.host
                    ),
                });
            }
            let Stream::Plain(tcp) = std::mem::replace(session.stream.get_mut(), Stream::Gone) else {
                return Err(SessionError::Unusable {
                    stage: Stage::StartTls,
                    reason: "STARTTLS on a secured session".into(),
                });
            };
            *session.stream.get_mut() = Stream::Tls(Box::new(handshake(target, tcp, Stage::StartTls).await?));
            session.ehlo(&target.hello).await?;
        }
        if let Some((user, password)) = &target.credentials {
            if !session.is_tls() && !crate::config::is_loopback(&target.host) {
                return Err(SessionError::Unusable {
                    stage: Stage::Auth,
                    reason: format!(
                        "credentials are set but the session with {} is not encrypted: the password is not sent \
                         (set mail.smtp.tls to \"starttls\" or \"tls\")",
                        target.host
                    ),
                });
            }
            session.authenticate(&target.host, user, password).await?;
        }
        Ok(session)
    }

    fn is_tls(&self) -> bool {
        matches!(self.stream.get_ref(), Stream::Tls(_))
    }

    /// Whether the session may take another transaction.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    async fn ehlo(&mut self, hello: &str) -> Result<(), SessionError> {
        self.write(Stage::Ehlo, format!("EHLO {hello}\r\n").as_bytes()).await?;
        let (reply, lines) = self.read_reply_lines(Stage::Ehlo).await?;
        self.check(Stage::Ehlo, reply, &[250])?;
        self.offers = Offers::parse(&lines);
        Ok(())
    }

    /// AUTH with a mechanism the server offered, PLAIN before LOGIN.
    async fn authenticate(&mut self, host: &str, user: &str, password: &str) -> Result<(), SessionError> {
        if self.offers.auth_plain {
            let token = BASE64.encode(format!("\0{user}\0{password}"));
            self.command(Stage::Auth, &format!("AUTH PLAIN {token}"), &[235])
                .await?;
        } else if self.offers.auth_login {
            self.command(Stage::Auth, "AUTH LOGIN", &[334]).await?;
            self.command(Stage::Auth, &BASE64.encode(user), &[334]).await?;
            self.command(Stage::Auth, &BASE64.encode(password), &[235]).await?;
        } else {
            let offered = match &self.offers.auth {
                Some(line) => format!("it offers only {line:?}"),
                None => "it offers no AUTH".into(),
            };
            return Err(SessionError::Unusable {
                stage: Stage::Auth,
                reason: format!(
                    "credentials are set but {host} offers no AUTH mechanism Herald uses (PLAIN, LOGIN): {offered}; \
                     nothing was sent unauthenticated"
                ),
            });
        }
        Ok(())
    }

    /// Sends a command and expects one of `codes`.
    async fn command(&mut self, stage: Stage, line: &str, codes: &[u16]) -> Result<Reply, SessionError> {
        self.out.clear();
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        let out = std::mem::take(&mut self.out);
        let written = self.write(stage, &out).await;
        self.out = out;
        written?;
        self.expect(stage, codes).await
    }

    /// Writes `bytes` and flushes, within the step timeout.
    async fn write(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), SessionError> {
        let stream = self.stream.get_mut();
        let written = tokio::time::timeout(self.timeout, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.broken(SessionError::io(stage, e))),
            Err(_) => Err(self.broken(SessionError::Io {
                error: format!("no progress writing {stage} within {}s", self.timeout.as_secs()),
            })),
        }
    }

    /// Marks the session unusable and passes `error` on.
    fn broken(&mut self, error: SessionError) -> SessionError {
        self.usable = false;
        error
    }

    /// Reads a reply and expects one of `codes`.
    async fn expect(&mut self, stage: Stage, codes: &[u16]) -> Result<Reply, SessionError> {
        let reply = self.read_reply(stage).await?;
        self.check(stage, reply, codes)
    }

    /// A reply with one of `codes` is taken; a 4xx or 5xx is a refusal; any
    /// other code does not fit the command and breaks the session.
    fn check(&mut self, stage: Stage, reply: Reply, codes: &[u16]) -> Result<Reply, SessionError> {
        if reply.closes_session() {
            self.usable = false;
        }
        if codes.contains(&reply.code) {
            Ok(reply)
        } else if reply.is_transient() || reply.is_permanent() {
            Err(SessionError::Refused { stage, reply })
        } else {
            Err(self.broken(SessionError::Io {
                error: format!("the server's reply to {stage} does not fit the command: {reply}"),
            }))
        }
    }

    async fn read_reply(&mut self, stage: Stage) -> Result<Reply, SessionError> {
        Ok(self.read_reply_lines(stage).await?.0)
    }

    /// Reads one (possibly multi-line) reply within the step timeout.
    async fn read_reply_lines(&mut self, stage: Stage) -> Result<(Reply, Vec<String>), SessionError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.read_reply_untimed(stage)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(self.broken(e)),
            Err(_) => Err(self.broken(SessionError::Io {
                error: format!("no answer within {}s (at {stage})", timeout.as_secs()),
            })),
        }
    }

    async fn read_reply_untimed(&mut self, stage: Stage) -> Result<(Reply, Vec<String>), SessionError> {
        let mut lines = Vec::new();
        let mut code = None;
        let mut total = 0;
        loop {
            self.line.clear();
            read_line_capped(&mut self.stream, &mut self.line, MAX_LINE)
                .await
                .map_err(|e| SessionError::io(stage, e))?;
            total += self.line.len();
            if total > MAX_REPLY {
                return Err(SessionError::Io {
                    error: format!("the server's reply to {stage} is longer than {MAX_REPLY} bytes"),
                });
            }
            let (line_code, last, text) = parse_line(&self.line).ok_or_else(|| SessionError::Io {
                error: format!(
                    "the server's reply to {stage} is not SMTP: {:?}",
                    String::from_utf8_lossy(&self.line[..self.line.len().min(80)])
                ),
            })?;
            if *code.get_or_insert(line_code) != line_code {
                return Err(SessionError::Io {
                    error: format!(
                        "the server's reply to {stage} changes its code from {} to {line_code} mid-reply",
                        code.unwrap_or_default()
                    ),
                });
            }
            lines.push(text);
            if last {
                let text = lines.join(" ");
                return Ok((Reply { code: line_code, text }, lines));
            }
        }
    }

    /// NOOP: whether an idle session still answers.
    pub async fn is_alive(&mut self) -> bool {
        self.command(Stage::Noop, "NOOP", &[250]).await.is_ok()
    }

    /// QUIT, without waiting long for the answer.
    pub async fn quit(mut self) {
        if self.usable {
            self.timeout = self.timeout.min(Duration::from_secs(2));
            let _ = self.command(Stage::Quit, "QUIT", &[221]).await;
        }
        let _ = self.stream.get_mut().shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use tokio::io::AsyncBufReadExt;

    use super::*;

    #[test]
    fn ehlo_offers_are_read() {
        let lines: Vec<String> = [
            "mx.example.org",
            "PIPELINING",
            "8BITMIME",
            "AUTH LOGIN PLAIN",
            "STARTTLS",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let offers = Offers::parse(&lines);
        assert!(offers.pipelining && offers.eight_bit && offers.auth_plain && offers.auth_login && offers.starttls);
        assert!(!offers.smtputf8);
    }

    #[test]
    fn reply_lines_must_be_three_digits_then_a_separator() {
        assert_eq!(
            parse_line(b"250-mx.example.org\r\n"),
            Some((250, false, "mx.example.org".into()))
        );
        assert_eq!(parse_line(b"250 ok\r\n"), Some((250, true, "ok".into())));
        assert_eq!(parse_line(b"221\r\n"), Some((221, true, String::new())));
        assert_eq!(parse_line(b"+12 ok\r\n"), None, "a sign is not a digit");
        assert_eq!(parse_line(b"25 ok\r\n"), None);
        assert_eq!(parse_line(b"650 ok\r\n"), None, "no such class");
        assert_eq!(parse_line(b"250_ok\r\n"), None);
        let (code, last, text) = parse_line(b"550 5.1.1 <x@example.de>: Empf\xe4nger unbekannt\r\n").unwrap();
        assert_eq!((code, last), (550, true));
        assert_eq!(text, "5.1.1 <x@example.de>: Empf\u{fffd}nger unbekannt");
    }

    #[tokio::test]
    async fn a_line_over_the_cap_is_refused_without_reading_it_all() {
        let endless = vec![b'x'; 10 * MAX_LINE];
        let mut reader = BufReader::with_capacity(64, &endless[..]);
        let mut line = Vec::new();
        let error = read_line_capped(&mut reader, &mut line, MAX_LINE).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(line.len() <= MAX_LINE);
        let mut reader = BufReader::with_capacity(4, &b"250 ok\r\n354 go\r\n"[..]);
        line.clear();
        read_line_capped(&mut reader, &mut line, MAX_LINE).await.unwrap();
        assert_eq!(line, b"250 ok\r\n");
    }

    /// A loopback server that answers MAIL, DATA and the final dot each
    /// after `delay`, everything else at once; returns its port and the
    /// commands it heard.
    async fn slow_server(delay: Duration) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = heard.clone();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 test ESMTP\r\n").await.unwrap();
            let mut in_data = false;
            while let Ok(Some(line)) = lines.next_line().await {
                if in_data {
                    if line == "." {
                        in_data = false;
                        tokio::time::sleep(delay).await;
                        let _ = write.write_all(b"250 2.0.0 kept\r\n").await;
                    }
                    continue;
                }
                log.lock().unwrap().push(line.clone());
                let verb = line.split(' ').next().unwrap_or("");
                if verb == "MAIL" || verb == "DATA" {
                    tokio::time::sleep(delay).await;
                }
                let reply: &[u8] = match verb {
                    "EHLO" => b"250-test\r\n250 PIPELINING\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go on\r\n"
                    }
                    "QUIT" => b"221 bye\r\n",
                    _ => b"250 ok\r\n",
                };
                let _ = write.write_all(reply).await;
            }
        });
        (port, heard)
    }

    fn target(port: u16, step_timeout: Duration) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port,
            security: Security::Plain,
            hello: "herald.test".into(),
            credentials: None,
            tls: Arc::new(tls_config(None).unwrap()),
            step_timeout,
        }
    }

    /// One small message, sent before `deadline`.
    async fn send_by(session: &mut Session, deadline: tokio::time::Instant) -> Result<Sent, Broken> {
        let message = b"Subject: x\r\n\r\nhi\r\n";
        session
            .send("news@example.org", "ana@example.org", message, Some(deadline))
            .await
    }

    #[tokio::test]
    async fn nothing_is_sent_when_the_lease_leaves_too_little_time() {
        let (port, heard) = slow_server(Duration::ZERO).await;
        let mut session = Session::open(&target(port, Duration::from_secs(2))).await.unwrap();
        // Three seconds left: less than two steps of two seconds.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        let sent = send_by(&mut session, deadline).await.unwrap();
        assert!(matches!(sent, Sent::Abandoned), "{sent:?}");
        assert!(session.is_usable());
        // With time enough the same session sends.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let sent = send_by(&mut session, deadline).await.unwrap();
        assert!(matches!(sent, Sent::Accepted(_)), "{sent:?}");
        let mails = heard.lock().unwrap().iter().filter(|l| l.starts_with("MAIL")).count();
        assert_eq!(mails, 1, "the abandoned transaction sent no MAIL");
    }

    #[tokio::test]
    async fn a_transaction_past_the_lease_is_cut_off_in_doubt() {
        // Each slow reply is within the two-second step timeout, but MAIL,
        // DATA and the dot together outlast the lease (4.1 s from the start).
        let step = Duration::from_secs(2);
        let (port, _) = slow_server(Duration::from_millis(1900)).await;
        let mut session = Session::open(&target(port, step)).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(4100);
        let broken = send_by(&mut session, deadline).await.unwrap_err();
        assert!(
            broken.error.to_string().contains("outlasted the row's lease"),
            "{}",
            broken.error
        );
        assert!(broken.after_data, "the message went out before the cut: in doubt");
        assert!(!session.is_usable(), "a cut-off session is not reused");
    }
}
