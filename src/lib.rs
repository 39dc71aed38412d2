//! Herald turns newly published articles into email digests. See
//! ARCHITECTURE.md for the map of the modules and the invariants they keep.
#![forbid(unsafe_code)]

pub mod app;
pub mod article;
pub mod bounce;
pub mod clean;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod digest;
pub mod failpoint;
pub mod health;
pub mod import;
pub mod ingest;
pub mod instance;
pub mod mail;
pub mod render;
pub mod retry;
pub mod schedule;
pub mod sender;
pub mod shutdown;
pub mod social;
pub mod source;
pub mod store;
pub mod token;
pub mod web;
pub mod welcome;

/// Installs the one TLS crypto provider (ring) that reqwest, lettre and sqlx
/// share. Call once at start; later calls do nothing.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An error and its causes on one line, each cause once.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}
