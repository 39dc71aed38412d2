//! TLS for the session: the client configuration (webpki roots plus an
//! operator's CA file), the stream that is plain or TLS, and the handshake
//! under the step timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::{SessionError, Stage, Target};

/// Why the extra CA certificates cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("not a PEM certificate")]
    NotPem(#[source] tokio_rustls::rustls::pki_types::pem::Error),
    #[error("not a usable CA certificate")]
    Unusable(#[source] tokio_rustls::rustls::Error),
    #[error("holds no PEM certificate")]
    Empty,
    #[error("no TLS protocol version available")]
    Protocols(#[source] tokio_rustls::rustls::Error),
}

/// The TLS client configuration: the webpki roots, plus the PEM certificates
/// in `extra_roots` (a private relay's own CA).
pub fn tls_config(extra_roots: Option<&[u8]>) -> Result<tokio_rustls::rustls::ClientConfig, CaError> {
    let mut roots = tokio_rustls::rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_roots {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(CaError::NotPem)?;
            roots.add(cert).map_err(CaError::Unusable)?;
            added += 1;
        }
        if added == 0 {
            return Err(CaError::Empty);
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(CaError::Protocols)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

pub(super) enum Stream {
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

pub(super) async fn handshake(
    target: &Target,
    tcp: TcpStream,
    stage: Stage,
) -> Result<TlsStream<TcpStream>, SessionError> {
    let name = ServerName::try_from(target.host.clone()).map_err(|e| SessionError::Unusable {
        stage,
        reason: format!("{:?} is not a TLS server name: {e}", target.host),
    })?;
    let connecting = TlsConnector::from(target.tls.clone()).connect(name, tcp);
    match tokio::time::timeout(target.step_timeout, connecting).await {
        Ok(Ok(tls)) => Ok(tls),
        // A certificate the server cannot prove is the operator's to fix, not a network blip.
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => Err(SessionError::Unusable {
            stage,
            reason: format!("TLS with {} failed: {e}", target.host),
        }),
        Ok(Err(e)) => Err(SessionError::Io {
            error: format!("TLS with {} failed: {e}", target.host),
        }),
        Err(_) => Err(SessionError::Io {
            error: format!(
                "TLS with {} failed: no handshake within {}s",
                target.host,
                target.step_timeout.as_secs()
            ),
        }),
    }
}
