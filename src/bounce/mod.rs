//! Bounces and complaints: reports of failures that relays send after they
//! accepted a message (DSNs, RFC 3464), feedback-loop complaints (ARF, RFC
//! 5965) and auto-replies. Each is read by [`classify`] (pure: bytes in,
//! findings out), tied to the delivery it is about by [`intake`] (the VERP
//! token of [`verp`], the returned Message-ID, or the address), and
//! recorded and acted on in the store's ledger. [`mailbox`] reads the
//! places reports wait in, [`imap`] polls a mailbox of them, [`webhook`]
//! and [`sns`] read providers' events.

pub mod classify;
mod fields;
pub mod imap;
pub mod intake;
pub mod mailbox;
pub mod sns;
pub mod status;
pub mod verp;
pub mod webhook;

pub use classify::{Finding, Report, Verdict, classify};
pub use intake::{Intake, Tally};
pub use status::Kind;
