//! Fetching an article's picture by its URL, which a feed or a file gave and
//! so is untrusted: http(s) only, never an internal address (unless the
//! operator allows it), redirects by the sources' rules, a timeout on the
//! whole fetch, a byte cap while reading, and an image content type.

use std::time::Duration;

use futures::StreamExt;
use url::Url;

use super::address::is_internal;

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
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
    #[error("{url} is not a picture (Content-Type {content_type:?})")]
    NotAPicture { url: String, content_type: String },
}

/// The bytes of the picture at `url`, at most `max_bytes` of them.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_bytes: usize,
    allow_private: bool,
) -> Result<Vec<u8>, PictureError> {
    let parsed = Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| PictureError::NotHttp(url.to_string()))?;
    if !allow_private && is_internal(&parsed) {
        return Err(PictureError::Internal(url.to_string()));
    }
    let http = |error: reqwest::Error| PictureError::Http {
        url: url.to_string(),
        error: crate::error_chain(&error),
    };
    let work = async {
        // The shared client follows redirects but stops at one to an internal
        // address, which then shows here as a status that is not success.
        let response = client.get(parsed.clone()).send().await.map_err(http)?;
        if !response.status().is_success() {
            return Err(PictureError::Status {
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
        if !content_type.is_empty() && !content_type.starts_with("image/") {
            return Err(PictureError::NotAPicture {
                url: url.to_string(),
                content_type,
            });
        }
        let too_large = || PictureError::TooLarge {
            url: url.to_string(),
            max: max_bytes,
        };
        if response.content_length().is_some_and(|n| n > max_bytes as u64) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(http)?;
            if bytes.len() + chunk.len() > max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| {
        Err(PictureError::Http {
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
            let refused = fetch(&client, url, Duration::from_secs(1), 1024, false).await;
            match (refused, internal) {
                (Err(PictureError::Internal(_)), true) | (Err(PictureError::NotHttp(_)), false) => {}
                (other, _) => panic!("{url}: {other:?}"),
            }
        }
    }
}
