//! Sources of articles: a folder of article files or a feed over HTTP. Each
//! poll returns cleaned articles plus the items it had to skip, with reasons.

mod address;
pub mod article_file;
pub mod feed;
pub mod fetch;
mod folder;
pub mod page_image;

pub use article_file::parse_published;

use chrono::{DateTime, Utc};

use crate::article::Article;
use crate::config::{SourceKind, SourceSettings};

/// Conditional-GET validators a feed gave last time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What one poll of one source found.
#[derive(Debug, Default)]
pub struct Polled {
    pub articles: Vec<Article>,
    /// Items that could not be read, each with where it was and why.
    pub skipped: Vec<String>,
    /// `None` when the source said nothing changed (HTTP 304).
    pub validators: Option<Validators>,
    pub not_modified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read folder {path}: {error}")]
    Folder { path: String, error: std::io::Error },
    #[error("fetching {url} failed: {error}")]
    Http { url: String, error: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error(
        "{url} redirects to {to}, an internal address (loopback, private or link-local); refused. \
         Set the source's allow_private_redirects = true if that is intended"
    )]
    PrivateRedirect { url: String, to: String },
    #[error("{url} redirects more than {max} times")]
    TooManyRedirects { url: String, max: usize },
    #[error("{url} is larger than max_bytes ({max} bytes); raise the source's max_bytes if it is genuine")]
    TooLarge { url: String, max: u64 },
    #[error("{url} is not a feed Herald can read (RSS, Atom or JSON Feed): {error}")]
    Parse { url: String, error: String },
}

/// Polls one source. `previous` holds the validators stored from the last poll.
pub async fn poll(
    source: &SourceSettings,
    client: &reqwest::Client,
    previous: &Validators,
    now: DateTime<Utc>,
) -> Result<Polled, SourceError> {
    match &source.kind {
        SourceKind::Folder { path, base_url } => folder::poll(&source.name, path, base_url, now).await,
        SourceKind::Feed {
            url,
            timeout,
            max_bytes,
            max_items,
            trust_ids,
            allow_private_redirects,
            ..
        } => {
            let limits = feed::Limits {
                timeout: *timeout,
                max_bytes: *max_bytes,
                max_items: *max_items,
                trust_ids: *trust_ids,
                allow_private_redirects: *allow_private_redirects,
            };
            feed::poll(&source.name, client, url, &limits, previous, now).await
        }
    }
}

/// Redirects followed at most, automatic and by the feed poller together.
pub const MAX_REDIRECTS: usize = 5;

/// The HTTP client sources (and social clients) share. It follows up to
/// five redirects, but never on its own to an internal address: such a
/// redirect comes back as it is, for the caller to refuse or, when allowed,
/// follow.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!(
            "Herald/",
            env!("CARGO_PKG_VERSION"),
            " (newsletter dispatcher)"
        ))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if address::is_internal(attempt.url()) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .expect("the HTTP client builds once TLS is installed")
}
