//! One SMTP client session (RFC 5321) on a `TCP_NODELAY` socket: greeting,
//! EHLO, STARTTLS or implicit TLS, AUTH PLAIN or LOGIN, then any number of
//! transactions. With PIPELINING (RFC 2920) a transaction's MAIL, RCPT and
//! DATA go out in one write and the message and its final dot in another, so
//! a message costs two round trips. Dot-stuffing is done a line at a time,
//! not a byte at a time.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// A server reply: its code and its text lines joined by spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Why a session step failed.
#[derive(Debug)]
pub enum SessionError {
    /// The server answered with a refusal.
    Refused(Reply),
    /// The connection failed, closed, or the server spoke nonsense.
    Io(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Refused(reply) => reply.fmt(f),
            SessionError::Io(e) => f.write_str(e),
        }
    }
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        SessionError::Io(format!("network error: {e}"))
    }
}

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
}

/// The TLS client configuration: the webpki roots, plus the PEM certificates
/// in `extra_roots` (a private relay's own CA).
pub fn tls_config(extra_roots: Option<&[u8]>) -> Result<tokio_rustls::rustls::ClientConfig, String> {
    let mut roots = tokio_rustls::rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_roots {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("holds no PEM certificate".into());
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Between a failed upgrade and the drop.
    Gone,
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

/// What the server offered in its EHLO reply.
#[derive(Debug, Default, Clone)]
pub struct Offers {
    pub pipelining: bool,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub starttls: bool,
    pub auth_plain: bool,
    pub auth_login: bool,
}

impl Offers {
    /// Reads the EHLO reply's lines (the first is the greeting, the rest keywords).
    fn parse(lines: &[String]) -> Offers {
        let mut offers = Offers::default();
        for line in lines.iter().skip(1) {
            let upper = line.to_ascii_uppercase();
            let mut words = upper.split_whitespace();
            match words.next() {
                Some("PIPELINING") => offers.pipelining = true,
                Some("8BITMIME") => offers.eight_bit = true,
                Some("SMTPUTF8") => offers.smtputf8 = true,
                Some("STARTTLS") => offers.starttls = true,
                Some("AUTH") => {
                    for mechanism in words {
                        match mechanism {
                            "PLAIN" => offers.auth_plain = true,
                            "LOGIN" => offers.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        offers
    }
}

/// An open session, ready for transactions.
pub struct Session {
    stream: BufReader<Stream>,
    pub offers: Offers,
    /// The request being written, reused between messages.
    out: Vec<u8>,
}

/// How a transaction ended.
#[derive(Debug)]
pub enum Sent {
    /// The server took the message: its final reply.
    Accepted(Reply),
    /// The server refused it at `stage` (MAIL, RCPT, DATA or the end of data)
    /// and the session is still usable.
    Refused(Reply),
}

/// A transaction failed on the wire; `after_data` tells whether the message
/// had (at least partly) been sent, so the server may have taken it.
#[derive(Debug)]
pub struct Broken {
    pub error: String,
    pub after_data: bool,
}

impl Session {
    /// Connects, reads the greeting, says EHLO, secures and authenticates the session.
    pub async fn open(target: &Target) -> Result<Session, SessionError> {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| SessionError::Io(format!("cannot connect to {}:{}: {e}", target.host, target.port)))?;
        tcp.set_nodelay(true)?;
        let stream = match target.security {
            Security::Implicit => Stream::Tls(Box::new(handshake(target, tcp).await?)),
            _ => Stream::Plain(tcp),
        };
        let mut session = Session {
            stream: BufReader::new(stream),
            offers: Offers::default(),
            out: Vec::with_capacity(64 * 1024),
        };
        session.expect_positive().await?;
        session.ehlo(&target.hello).await?;
        if target.security == Security::StartTls {
            if !session.offers.starttls {
                return Err(SessionError::Io(format!(
                    "{} does not offer STARTTLS (set mail.smtp.tls to \"tls\" or \"none\")",
                    target.host
                )));
            }
            session.command("STARTTLS").await?;
            let Stream::Plain(tcp) = std::mem::replace(session.stream.get_mut(), Stream::Gone) else {
                return Err(SessionError::Io("STARTTLS on a secured session".into()));
            };
            *session.stream.get_mut() = Stream::Tls(Box::new(handshake(target, tcp).await?));
            session.ehlo(&target.hello).await?;
        }
        if let Some((user, password)) = &target.credentials {
            session.authenticate(user, password).await?;
        }
        Ok(session)
    }

    async fn ehlo(&mut self, hello: &str) -> Result<(), SessionError> {
        self.write_line(&format!("EHLO {hello}")).await?;
        let (reply, lines) = self.read_reply_lines().await?;
        if !reply.is_positive() {
            return Err(SessionError::Refused(reply));
        }
        self.offers = Offers::parse(&lines);
        Ok(())
    }

    async fn authenticate(&mut self, user: &str, password: &str) -> Result<(), SessionError> {
        if self.offers.auth_plain || !self.offers.auth_login {
            let token = BASE64.encode(format!("\0{user}\0{password}"));
            self.command(&format!("AUTH PLAIN {token}")).await?;
        } else {
            self.command("AUTH LOGIN").await?;
            self.command(&BASE64.encode(user)).await?;
            self.command(&BASE64.encode(password)).await?;
        }
        Ok(())
    }

    /// Sends a command and expects a positive reply.
    async fn command(&mut self, line: &str) -> Result<Reply, SessionError> {
        self.write_line(line).await?;
        self.expect_positive().await
    }

    async fn write_line(&mut self, line: &str) -> Result<(), SessionError> {
        let stream = self.stream.get_mut();
        stream.write_all(line.as_bytes()).await?;
        stream.write_all(b"\r\n").await?;
        stream.flush().await?;
        Ok(())
    }

    async fn expect_positive(&mut self) -> Result<Reply, SessionError> {
        let reply = self.read_reply().await?;
        if reply.is_positive() {
            Ok(reply)
        } else {
            Err(SessionError::Refused(reply))
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, SessionError> {
        Ok(self.read_reply_lines().await?.0)
    }

    /// Reads one (possibly multi-line) reply.
    async fn read_reply_lines(&mut self) -> Result<(Reply, Vec<String>), SessionError> {
        let mut lines = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(SessionError::Io(
                    "network error: the server closed the connection".into(),
                ));
            }
            let text = line.trim_end_matches(['\r', '\n']);
            let code = text.get(..3).and_then(|c| c.parse::<u16>().ok());
            let (Some(code), separator) = (code, text.as_bytes().get(3).copied()) else {
                return Err(SessionError::Io(format!("the server's reply is not SMTP: {text:?}")));
            };
            lines.push(text.get(4..).unwrap_or("").to_string());
            if separator != Some(b'-') {
                let text = lines.join(" ");
                return Ok((Reply { code, text }, lines));
            }
        }
    }

    /// One transaction: MAIL FROM, RCPT TO, DATA, the message, the dot.
    /// `message` is the whole formatted message with CRLF line ends.
    pub async fn send(&mut self, from: &str, to: &str, message: &[u8]) -> Result<Sent, Broken> {
        let broken = |after_data: bool| {
            move |e: SessionError| Broken {
                error: e.to_string(),
                after_data,
            }
        };
        let eight_bit = !message.is_ascii();
        let utf8 = !from.is_ascii() || !to.is_ascii();
        if utf8 && !self.offers.smtputf8 {
            return Ok(Sent::Refused(Reply {
                code: 553,
                text: "5.6.7 the address is not ASCII and the server does not offer SMTPUTF8".into(),
            }));
        }
        let mut mail = format!("MAIL FROM:<{from}>");
        if eight_bit && self.offers.eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        let commands = [mail, format!("RCPT TO:<{to}>"), "DATA".to_string()];
        let mut refusal = None;
        let mut data_open = false;
        if self.offers.pipelining {
            self.out.clear();
            for command in &commands {
                self.out.extend_from_slice(command.as_bytes());
                self.out.extend_from_slice(b"\r\n");
            }
            let stream = self.stream.get_mut();
            let written = async {
                stream.write_all(&self.out).await?;
                stream.flush().await
            };
            written.await.map_err(|e| broken(false)(e.into()))?;
            for (i, _) in commands.iter().enumerate() {
                let reply = self.read_reply().await.map_err(broken(false))?;
                let expected = if i == 2 { reply.code == 354 } else { reply.is_positive() };
                if i == 2 {
                    data_open = reply.code == 354;
                }
                if !expected && refusal.is_none() {
                    refusal = Some(reply);
                }
            }
        } else {
            for (i, command) in commands.iter().enumerate() {
                self.write_line(command).await.map_err(broken(false))?;
                let reply = self.read_reply().await.map_err(broken(false))?;
                let expected = if i == 2 { reply.code == 354 } else { reply.is_positive() };
                if !expected {
                    refusal = Some(reply);
                    break;
                }
                data_open = i == 2;
            }
        }
        if let Some(refused) = refusal {
            if data_open {
                // A server that refused a command but opened DATA anyway: close it empty.
                self.write_line(".").await.map_err(broken(false))?;
                self.read_reply().await.map_err(broken(false))?;
            }
            self.reset().await.map_err(broken(false))?;
            return Ok(Sent::Refused(refused));
        }
        self.out.clear();
        stuff_dots(message, &mut self.out);
        if !self.out.ends_with(b"\r\n") {
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b".\r\n");
        let stream = self.stream.get_mut();
        let written = async {
            stream.write_all(&self.out).await?;
            stream.flush().await
        };
        written.await.map_err(|e| broken(true)(e.into()))?;
        let reply = self.read_reply().await.map_err(broken(true))?;
        if self.out.capacity() > 1024 * 1024 {
            self.out = Vec::with_capacity(64 * 1024);
        }
        Ok(if reply.code == 250 {
            Sent::Accepted(reply)
        } else {
            Sent::Refused(reply)
        })
    }

    /// RSET after a refused transaction, so the session can take the next one.
    async fn reset(&mut self) -> Result<(), SessionError> {
        self.command("RSET").await.map(|_| ())
    }

    /// NOOP: whether an idle session still answers.
    pub async fn is_alive(&mut self) -> bool {
        self.command("NOOP").await.is_ok()
    }

    /// QUIT, without waiting long for the answer.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.command("QUIT")).await;
    }
}

async fn handshake(target: &Target, tcp: TcpStream) -> Result<TlsStream<TcpStream>, SessionError> {
    let name = ServerName::try_from(target.host.clone())
        .map_err(|e| SessionError::Io(format!("{:?} is not a TLS server name: {e}", target.host)))?;
    TlsConnector::from(target.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| SessionError::Io(format!("TLS with {} failed: {e}", target.host)))
}

/// Copies `message` to `out` with a dot added before every line that starts
/// with one (RFC 5321 section 4.5.2), a line at a time.
fn stuff_dots(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + 16);
    let mut rest = message;
    if rest.first() == Some(&b'.') {
        out.push(b'.');
    }
    while let Some(at) = memchr::memmem::find(rest, b"\n.") {
        out.extend_from_slice(&rest[..=at]);
        out.push(b'.');
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_at_line_starts_are_doubled() {
        let mut out = Vec::new();
        stuff_dots(b".first\r\nmiddle.\r\n.\r\n..two\r\nend", &mut out);
        assert_eq!(out, b"..first\r\nmiddle.\r\n..\r\n...two\r\nend");
        out.clear();
        stuff_dots(b"no dots here\r\n", &mut out);
        assert_eq!(out, b"no dots here\r\n");
    }

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
}
