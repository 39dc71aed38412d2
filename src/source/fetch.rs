//! Fetching what an article links to (its picture, its page) by a URL a feed
//! or a file gave, and so untrusted: http(s) only, never an internal address
//! (unless the operator allows it), redirects by the sources' rules, a
//! timeout on the whole fetch, a byte cap while reading, and the content
//! type asked for.

use std::time::Duration;

use futures::StreamExt;
use url::Url;

use super::address::is_internal;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0:?} is not an http(s) URL")]
    NotHttp(String),
    #[error("{0} is an internal address (loopback, private or link-local); refused")]
    Internal(String),
    #[error("fetching {url} failed: {error}")]
    Http { url: String, error: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is larger than {max} bytes")]
    TooLarge { url: String, max: usize },
    #[error("{url} is not {wanted} (Content-Type {content_type:?})")]
    Unwanted {
        url: String,
        wanted: &'static str,
        content_type: String,
    },
}

/// What a fetch is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// A picture (`image/*`), refused whole when over the cap.
    Picture,
    /// An HTML page, of which the first `max_bytes` are enough (its head).
    Page,
}

impl Wanted {
    fn accepts(self, content_type: &str) -> bool {
        let content_type = content_type.to_ascii_lowercase();
        content_type.is_empty()
            || match self {
                Wanted::Picture => content_type.starts_with("image/"),
                Wanted::Page => content_type.starts_with("text/html") || content_type.starts_with("application/xhtml"),
            }
    }

    fn name(self) -> &'static str {
        match self {
            Wanted::Picture => "a picture",
            Wanted::Page => "an HTML page",
        }
    }
}

/// The bounds of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// For the whole fetch, redirects and body included.
    pub timeout: Duration,
    pub max_bytes: usize,
    /// Fetch from internal addresses too.
    pub allow_private: bool,
}

/// The bytes at `url`: at most `caps.max_bytes` of them (a picture over the
/// cap is refused, a page cut there).
pub async fn fetch(client: &reqwest::Client, url: &str, caps: Caps, wanted: Wanted) -> Result<Vec<u8>, FetchError> {
    let Caps {
        timeout,
        max_bytes,
        allow_private,
    } = caps;
    let parsed = Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| FetchError::NotHttp(url.to_string()))?;
    if !allow_private && is_internal(&parsed) {
        return Err(FetchError::Internal(url.to_string()));
    }
    let http = |error: reqwest::Error| FetchError::Http {
        url: url.to_string(),
        error: crate::error_chain(&error),
    };
    let work = async {
        // The shared client follows redirects but stops at one to an internal
        // address, which then shows here as a status that is not success.
        let response = client.get(parsed.clone()).send().await.map_err(http)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !wanted.accepts(&content_type) {
            return Err(FetchError::Unwanted {
                url: url.to_string(),
                wanted: wanted.name(),
                content_type,
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            max: max_bytes,
        };
        if wanted == Wanted::Picture && response.content_length().is_some_and(|n| n > max_bytes as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(http)?;
            if bytes.len() + chunk.len() > max_bytes {
                if wanted == Wanted::Picture {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk[..max_bytes - bytes.len()]);
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| {
        Err(FetchError::Http {
            url: url.to_string(),
            error: format!("no complete answer within {} s", timeout.as_secs()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn internal_and_non_http_addresses_are_refused_unasked() {
        crate::install_crypto();
        let client = reqwest::Client::new();
        for (url, internal) in [
            ("http://127.0.0.1:9/a.png", true),
            ("https://169.254.169.254/latest/meta-data", true),
            ("http://localhost/a.png", true),
            ("ftp://example.org/a.png", false),
            ("file:///etc/passwd", false),
        ] {
            let caps = Caps {
                timeout: Duration::from_secs(1),
                max_bytes: 1024,
                allow_private: false,
            };
            let refused = fetch(&client, url, caps, Wanted::Picture).await;
            match (refused, internal) {
                (Err(FetchError::Internal(_)), true) | (Err(FetchError::NotHttp(_)), false) => {}
                (other, _) => panic!("{url}: {other:?}"),
            }
        }
    }
}
