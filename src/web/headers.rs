//! The headers every answer carries, whatever route (or none) made it: a
//! Content-Security-Policy that allows the pages' own styles and forms and
//! nothing else, no framing, no referrer (page URLs carry signed tokens), no
//! content sniffing, and HSTS when `web.hsts` says the site is https only.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// What a page may load and where its forms may go.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `router` with the headers on every answer.
pub fn secured(router: Router, hsts: bool) -> Router {
    let mut headers: Vec<(HeaderName, &'static str)> = vec![
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    if hsts {
        headers.push((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"));
    }
    headers.into_iter().fold(router, |router, (name, value)| {
        let value = HeaderValue::from_static(value);
        // A page that needs another policy (an archived edition shows its
        // pictures) sets its own; every other header is the same everywhere.
        if name == header::CONTENT_SECURITY_POLICY {
            router.layer(SetResponseHeaderLayer::if_not_present(name, value))
        } else {
            router.layer(SetResponseHeaderLayer::overriding(name, value))
        }
    })
}
