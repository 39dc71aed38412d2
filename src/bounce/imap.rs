//! `[bounces.imap]`: a mailbox of reports read over IMAP with implicit TLS
//! (async-imap over tokio-rustls). One poll logs in, reads the folder's
//! messages (sizes first: larger than `bounces.max_message_kb` are skipped
//! unread), takes each into the [`Intake`], records them, and only then
//! moves them to `move_to` (or flags them `\Seen`). A poll that dies
//! half-way loses nothing: what was read is recorded, the messages stay,
//! and the next poll reads them again as reports it has seen.
//!
//! Every step waits at most `timeout_secs`, and the bytes the server may
//! send are capped per command ([`Capped`]): a message's fetch may bring its
//! announced size and a little more, nothing else more than 16 MiB.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::types::Uid;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tracing::{info, warn};

use super::{Intake, Tally};
use crate::config::ImapSettings;
use crate::store::StoreError;

/// What the server may send for any command but a message's fetch.
const COMMAND_BYTES: usize = 16 * 1024 * 1024;
/// Allowed beyond a message's announced size (the FETCH response around it).
const FETCH_SLACK: usize = 64 * 1024;
/// Message bytes fetched per command at most.
const FETCH_BATCH_BYTES: usize = 2 * 1024 * 1024;

/// What one poll did.
#[derive(Debug, Default)]
pub struct Polled {
    pub tally: Tally,
    /// Messages moved (or flagged seen) after they were recorded.
    pub done: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to the IMAP server {server}: {error}")]
    Connect { server: String, error: std::io::Error },
    #[error("TLS with the IMAP server {server} failed: {error}")]
    Tls { server: String, error: String },
    #[error("the IMAP server {server} did not answer within {timeout:?} while {step}")]
    Timeout {
        server: String,
        step: &'static str,
        timeout: Duration,
    },
    #[error("the IMAP server {server} refused the login of {user:?}: {reason}")]
    Login {
        server: String,
        user: String,
        reason: String,
    },
    #[error("the IMAP server {server} failed while {step}: {error}")]
    Protocol {
        server: String,
        step: &'static str,
        error: String,
    },
    #[error("bounces.imap.ca_file {path}: {error}")]
    Ca { path: String, error: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stream that refuses to read more than its budget: set before each
/// command, so a server cannot make the client buffer without end.
#[derive(Debug)]
struct Capped<S> {
    inner: S,
    budget: Arc<AtomicUsize>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = buf.filled().len() - before;
            let left = this.budget.load(Ordering::Relaxed);
            if read > left {
                return Poll::Ready(Err(std::io::Error::other(
                    "the server sent more than this command may bring",
                )));
            }
            this.budget.store(left - read, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Session = async_imap::Session<Capped<tokio_rustls::client::TlsStream<TcpStream>>>;

/// One connection's steps, each bounded in time and bytes.
struct Connection {
    server: String,
    timeout: Duration,
    budget: Arc<AtomicUsize>,
}

impl Connection {
    /// Runs one step with `bytes` the server may send, within the timeout.
    async fn step<T, E: std::fmt::Display>(
        &self,
        step: &'static str,
        bytes: usize,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, ImapError> {
        self.budget.store(bytes, Ordering::Relaxed);
        match tokio::time::timeout(self.timeout, work).await {
            Err(_) => Err(ImapError::Timeout {
                server: self.server.clone(),
                step,
                timeout: self.timeout,
            }),
            Ok(Err(e)) => Err(ImapError::Protocol {
                server: self.server.clone(),
                step,
                error: e.to_string(),
            }),
            Ok(Ok(value)) => Ok(value),
        }
    }

    async fn open(imap: &ImapSettings) -> Result<(Connection, Session), ImapError> {
        let server = format!("{}:{}", imap.host, imap.port);
        let timeout = |step| ImapError::Timeout {
            server: server.clone(),
            step,
            timeout: imap.timeout,
        };
        let ca = match &imap.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| ImapError::Ca {
                path: path.display().to_string(),
                error: e.to_string(),
            })?),
            None => None,
        };
        let tls = crate::mail::tls_config(ca.as_deref()).map_err(|e| ImapError::Ca {
            path: imap
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            error: e.to_string(),
        })?;
        let name = ServerName::try_from(imap.host.clone()).map_err(|e| ImapError::Tls {
            server: server.clone(),
            error: e.to_string(),
        })?;
        let tcp = tokio::time::timeout(imap.timeout, TcpStream::connect((imap.host.as_str(), imap.port)))
            .await
            .map_err(|_| timeout("connecting"))?
            .map_err(|error| ImapError::Connect {
                server: server.clone(),
                error,
            })?;
        let stream = tokio::time::timeout(
            imap.timeout,
            tokio_rustls::TlsConnector::from(Arc::new(tls)).connect(name, tcp),
        )
        .await
        .map_err(|_| timeout("negotiating TLS"))?
        .map_err(|e| ImapError::Tls {
            server: server.clone(),
            error: e.to_string(),
        })?;
        let connection = Connection {
            server: server.clone(),
            timeout: imap.timeout,
            budget: Arc::new(AtomicUsize::new(COMMAND_BYTES)),
        };
        let mut client = async_imap::Client::new(Capped {
            inner: stream,
            budget: connection.budget.clone(),
        });
        let greeting = connection
            .step("reading the greeting", COMMAND_BYTES, client.read_response())
            .await?;
        if greeting.is_none() {
            return Err(ImapError::Protocol {
                server,
                step: "reading the greeting",
                error: "the connection closed".into(),
            });
        }
        let login = tokio::time::timeout(imap.timeout, client.login(&imap.username, imap.password.expose()))
            .await
            .map_err(|_| timeout("logging in"))?;
        let session = login.map_err(|(e, _)| ImapError::Login {
            server,
            user: imap.username.clone(),
            reason: e.to_string(),
        })?;
        Ok((connection, session))
    }
}

/// One poll of the mailbox: reads, records (finishing `intake`), then moves.
pub async fn poll(imap: &ImapSettings, mut intake: Intake<'_>, now: DateTime<Utc>) -> Result<Polled, ImapError> {
    let (connection, mut session) = Connection::open(imap).await?;
    let read = read(imap, &connection, &mut session, &mut intake, now).await;
    // Whatever was read is recorded, even when the rest failed.
    let tally = intake.finish(now).await?;
    let uids = read?;
    let done = uids.len();
    if !uids.is_empty() {
        let set = uid_set(&uids);
        match &imap.move_to {
            Some(folder) => move_to(&connection, &mut session, &set, folder).await?,
            None => {
                let flagged = session.uid_store(&set, "+FLAGS.SILENT (\\Seen)");
                connection
                    .step("flagging messages seen", COMMAND_BYTES, async {
                        flagged.await?.try_collect::<Vec<_>>().await
                    })
                    .await?;
            }
        }
    }
    connection.step("logging out", COMMAND_BYTES, session.logout()).await?;
    info!(server = %connection.server, messages = done, "bounce mailbox polled");
    Ok(Polled { tally, done })
}

/// Reads the folder's messages into `intake`; returns the UIDs read (and
/// skipped), to be moved once recorded.
async fn read(
    imap: &ImapSettings,
    connection: &Connection,
    session: &mut Session,
    intake: &mut Intake<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Uid>, ImapError> {
    connection
        .step("selecting the folder", COMMAND_BYTES, session.select(&imap.folder))
        .await?;
    let query = if imap.move_to.is_some() { "ALL" } else { "UNSEEN" };
    let mut uids: Vec<Uid> = connection
        .step("searching the folder", COMMAND_BYTES, session.uid_search(query))
        .await?
        .into_iter()
        .collect();
    uids.sort_unstable();
    if uids.len() > imap.max_messages {
        info!(
            waiting = uids.len() - imap.max_messages,
            "more reports than bounces.imap.max_messages: the rest wait for the next poll"
        );
        uids.truncate(imap.max_messages);
    }
    if uids.is_empty() {
        return Ok(uids);
    }
    let sizes: Vec<(Uid, usize)> = connection
        .step("reading message sizes", COMMAND_BYTES, async {
            // Each response is dropped as soon as its two numbers are read.
            session
                .uid_fetch(uid_set(&uids), "(UID RFC822.SIZE)")
                .await?
                .try_filter_map(|f| async move { Ok(f.uid.zip(f.size).map(|(uid, size)| (uid, size as usize))) })
                .try_collect()
                .await
        })
        .await?;
    let cap = intake.max_message_bytes();
    let mut done = Vec::with_capacity(sizes.len());
    let mut batch: Vec<(Uid, usize)> = Vec::new();
    for (uid, size) in sizes {
        if size > cap {
            warn!(
                uid,
                bytes = size,
                "report skipped unread: larger than bounces.max_message_kb"
            );
            intake.skipped();
            done.push(uid);
            continue;
        }
        if !batch.is_empty() && batch.iter().map(|(_, s)| s).sum::<usize>() + size > FETCH_BATCH_BYTES {
            done.extend(fetch(connection, session, intake, &std::mem::take(&mut batch), now).await?);
        }
        batch.push((uid, size));
    }
    if !batch.is_empty() {
        done.extend(fetch(connection, session, intake, &batch, now).await?);
    }
    Ok(done)
}

/// Fetches a batch of messages and takes each into `intake`.
async fn fetch(
    connection: &Connection,
    session: &mut Session,
    intake: &mut Intake<'_>,
    batch: &[(Uid, usize)],
    now: DateTime<Utc>,
) -> Result<Vec<Uid>, ImapError> {
    let uids: Vec<Uid> = batch.iter().map(|(uid, _)| *uid).collect();
    let bytes = batch.iter().map(|(_, size)| size + FETCH_SLACK).sum();
    let fetched: Vec<_> = connection
        .step("fetching messages", bytes, async {
            session
                .uid_fetch(uid_set(&uids), "(UID BODY.PEEK[])")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    let mut taken = Vec::with_capacity(fetched.len());
    for message in &fetched {
        let (Some(uid), Some(body)) = (message.uid, message.body()) else {
            continue;
        };
        intake.take(body, "imap", None, now).await?;
        taken.push(uid);
    }
    Ok(taken)
}

/// Moves the messages to `folder` (made when missing): with MOVE when the
/// server has it, else copied, flagged deleted and expunged.
async fn move_to(connection: &Connection, session: &mut Session, set: &str, folder: &str) -> Result<(), ImapError> {
    // CREATE fails when the folder exists; that is fine.
    let _ = connection
        .step("creating the folder", COMMAND_BYTES, session.create(folder))
        .await;
    let capabilities = connection
        .step("reading capabilities", COMMAND_BYTES, session.capabilities())
        .await?;
    if capabilities.has_str("MOVE") {
        return connection
            .step("moving messages", COMMAND_BYTES, session.uid_mv(set, folder))
            .await;
    }
    connection
        .step("copying messages", COMMAND_BYTES, session.uid_copy(set, folder))
        .await?;
    connection
        .step("flagging messages deleted", COMMAND_BYTES, async {
            session
                .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    connection
        .step("expunging", COMMAND_BYTES, async {
            session.expunge().await?.try_collect::<Vec<_>>().await
        })
        .await?;
    Ok(())
}

/// `1,5,9`: a UID set.
fn uid_set(uids: &[Uid]) -> String {
    uids.iter().map(Uid::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_capped_stream_refuses_bytes_past_its_budget() {
        let budget = Arc::new(AtomicUsize::new(10));
        let (mut server, client) = tokio::io::duplex(64);
        let mut capped = Capped {
            inner: client,
            budget: budget.clone(),
        };
        tokio::io::AsyncWriteExt::write_all(&mut server, b"0123456789abcdef")
            .await
            .unwrap();
        let mut buf = vec![0; 6];
        capped.read_exact(&mut buf).await.unwrap();
        assert_eq!(budget.load(Ordering::Relaxed), 4);
        let mut rest = vec![0; 10];
        assert!(
            capped.read(&mut rest).await.is_err(),
            "10 more bytes are over the budget"
        );
        budget.store(100, Ordering::Relaxed);
        assert_eq!(uid_set(&[3, 7, 11]), "3,7,11");
    }
}
