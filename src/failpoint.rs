//! Failpoints for the crash tests: named places in a run where a test can
//! hold the process, so that a kill lands exactly there. Not an operator
//! setting, and not documented as one.
//!
//! `HERALD_FAILPOINTS=fire-claimed,edition-uncommitted` names the points that
//! are active and `HERALD_FAILPOINT_DIR` a folder. At an active point the
//! process writes `DIR/NAME.reached.PID`, then waits until `DIR/NAME.release`
//! exists. Without both variables every point is a no-op that costs one
//! look at a value read once.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// After a fire is claimed (or taken over), before its run starts.
pub const FIRE_CLAIMED: &str = "fire-claimed";
/// Inside the transaction that creates an edition, just before it commits.
pub const EDITION_UNCOMMITTED: &str = "edition-uncommitted";
/// Just after an edition's transaction committed, before its rows are sent.
pub const EDITION_COMMITTED: &str = "edition-committed";

struct Active {
    names: Vec<String>,
    dir: PathBuf,
}

fn active() -> Option<&'static Active> {
    static ACTIVE: OnceLock<Option<Active>> = OnceLock::new();
    ACTIVE
        .get_or_init(|| {
            let names = std::env::var("HERALD_FAILPOINTS").ok()?;
            let dir = std::env::var_os("HERALD_FAILPOINT_DIR")?;
            Some(Active {
                names: names.split(',').map(|n| n.trim().to_string()).collect(),
                dir: PathBuf::from(dir),
            })
        })
        .as_ref()
}

/// Holds the run at the point `name` while a test wants it held.
pub async fn pause(name: &str) {
    let Some(active) = active().filter(|a| a.names.iter().any(|n| n == name)) else {
        return;
    };
    let reached = active.dir.join(format!("{name}.reached.{}", std::process::id()));
    let _ = std::fs::write(&reached, b"");
    let release = active.dir.join(format!("{name}.release"));
    while !Path::new(&release).exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
