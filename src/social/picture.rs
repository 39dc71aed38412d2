//! An article's picture, fetched for a post's card or thumbnail: at most
//! [`MAX_BYTES`], within the account's timeout, http(s) only, a picture by
//! its type, and from an internal address only when the account allows it.

use std::time::Duration;

use crate::source::fetch::{self, Caps, Wanted};

/// The most bytes of an article's picture fetched.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// The picture at `url`, or why not, in words for the log.
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    allow_private: bool,
) -> Result<Vec<u8>, String> {
    let caps = Caps {
        timeout,
        max_bytes: MAX_BYTES,
        allow_private,
    };
    fetch::fetch(http, url, caps, Wanted::Picture)
        .await
        .map_err(|e| e.to_string())
}
