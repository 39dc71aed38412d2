//! This process's name among the Herald instances that share a store: it
//! claims scheduled fires, deliveries and posts under it.

use std::sync::OnceLock;

static ID: OnceLock<String> = OnceLock::new();

/// A name unique to this process: the host, the process id and a random
/// suffix (a pid comes back after a restart), e.g. `mail-1.4242.3f9a2c1b`.
pub fn id() -> &'static str {
    ID.get_or_init(|| {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{}.{}.{}", host(), std::process::id(), &suffix[..8])
    })
}

/// The machine's host name, or `localhost` when it cannot be read.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
