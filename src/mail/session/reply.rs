//! What the server says: replies read line by line under caps, parsed
//! strictly, and the stage each belongs to; why a session step failed.

use std::fmt;
use std::io;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// A server reply: its code and its text lines joined by spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// 421: the server is closing the session (RFC 5321 section 3.8).
    pub(super) fn closes_session(&self) -> bool {
        self.code == 421
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// Where in a session a reply came or a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    /// The reply to the final dot.
    EndOfData,
    Reset,
    Noop,
    Quit,
}

impl Stage {
    /// True for the stages that belong to the session as a whole, before any
    /// recipient: a refusal there is the relay's or the operator's problem.
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Stage::Connect | Stage::Greeting | Stage::Ehlo | Stage::StartTls | Stage::Auth | Stage::MailFrom
        )
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "EHLO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH",
            Stage::MailFrom => "MAIL FROM",
            Stage::RcptTo => "RCPT TO",
            Stage::Data => "DATA",
            Stage::EndOfData => "end of data",
            Stage::Reset => "RSET",
            Stage::Noop => "NOOP",
            Stage::Quit => "QUIT",
        })
    }
}

/// Why a session step failed.
#[derive(Debug)]
pub enum SessionError {
    /// The server answered `stage` with a 4xx or 5xx refusal.
    Refused { stage: Stage, reply: Reply },
    /// The session cannot be used safely as configured (no STARTTLS, no
    /// usable AUTH, credentials over plain text, plaintext injected before
    /// TLS): nothing more is sent on it.
    Unusable { stage: Stage, reason: String },
    /// The connection failed, closed or timed out, or the server broke the
    /// protocol (a reply that is not SMTP, over the size caps, or a code that
    /// does not fit the command).
    Io { error: String },
}

impl SessionError {
    pub(super) fn io(stage: Stage, e: impl fmt::Display) -> SessionError {
        SessionError::Io {
            error: format!("network error at {stage}: {e}"),
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Refused { stage, reply } => write!(f, "{reply} (at {stage})"),
            SessionError::Unusable { reason, .. } => f.write_str(reason),
            SessionError::Io { error, .. } => f.write_str(error),
        }
    }
}

/// The longest reply line taken, CRLF included (as lettre's client).
pub const MAX_LINE: usize = 1000;

/// The longest whole (multi-line) reply taken.
pub const MAX_REPLY: usize = 100 * 1024;

/// Reads one line, up to and including its LF, into `line`; more than `cap`
/// bytes without one is an error. Bytes need not be UTF-8.
pub(super) async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<()> {
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        let (taken, done) = match memchr::memchr(b'\n', available) {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if line.len() + taken > cap {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a reply line is longer than {cap} bytes"),
            ));
        }
        line.extend_from_slice(&available[..taken]);
        reader.consume(taken);
        if done {
            return Ok(());
        }
    }
}

/// One reply line: three digits (the first 2 to 5), then a space, a hyphen
/// (more lines follow) or the end of the line; the text may be any bytes.
pub(super) fn parse_line(line: &[u8]) -> Option<(u16, bool, String)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let last = match line.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return None,
    };
    let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned();
    Some((code, last, text))
}
