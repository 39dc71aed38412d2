//! Herald turns newly published articles into email digests. See
//! ARCHITECTURE.md for the map of the modules and the invariants they keep.
#![forbid(unsafe_code)]

pub mod article;
pub mod clean;
pub mod cli;
pub mod clock;
pub mod config;
pub mod digest;
pub mod import;
pub mod ingest;
pub mod mail;
pub mod message;
pub mod render;
pub mod sender;
pub mod source;
pub mod store;
pub mod token;

/// Installs the one TLS crypto provider (ring) that reqwest, lettre and sqlx
/// share. Call once at start; later calls do nothing.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
