//! Any bytes as a fetched feed document (RSS, Atom, JSON Feed or neither):
//! an error or articles, never a panic; every article has a one-line title.
//! The same bytes as an article's page: the picture it names, if any, is an
//! http(s) URL.
#![no_main]

use std::time::Duration;

use herald::source::feed::{Limits, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let url = url::Url::parse("https://feeds.example.org/feed.xml").expect("a valid URL");
    let limits = Limits {
        timeout: Duration::from_secs(5),
        max_bytes: 1 << 20,
        max_items: 100,
        trust_ids: data.first().is_some_and(|b| b & 1 == 1),
        allow_private_redirects: false,
    };
    if let Some(picture) = herald::source::page_image::page_image(&String::from_utf8_lossy(data), &url) {
        assert!(picture.starts_with("http://") || picture.starts_with("https://"), "{picture}");
    }
    let fetched = chrono::DateTime::from_timestamp(1_764_000_000, 0).expect("a valid time");
    if let Ok(polled) = parse("fuzz", &url, data, &limits, fetched) {
        assert!(polled.articles.len() <= limits.max_items);
        for article in &polled.articles {
            assert!(
                !article.title.contains('\n') && !article.title.contains('\r'),
                "{:?}",
                article.title
            );
        }
    }
});
