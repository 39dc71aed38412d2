//! Keeps the daemon's loops alive. A loop that panics (a bug in Herald or in
//! a dependency: the teaser fuzz target found one in twitter-text) is logged
//! and started again after a pause, instead of leaving the daemon running
//! without it: a dead drainer would stop every retry while `/healthz` still
//! looked fine. Rows the panicked loop had claimed come back, in doubt, when
//! their leases run out.

use std::future::Future;
use std::time::Duration;

use tracing::error;

use crate::shutdown::Shutdown;

/// The longest pause before a loop that keeps panicking is started again.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// Runs the loop `start` makes until it returns (at shutdown), starting it
/// again whenever it panics: after 1 s, doubling up to a minute.
pub async fn supervise<F, Fut>(name: &'static str, mut shutdown: Shutdown, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut pause = Duration::from_secs(1);
    loop {
        match tokio::spawn(start()).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                error!(task = name, panic = %message, restart_in_secs = pause.as_secs(), "a daemon loop panicked; starting it again");
            }
            Err(_) => return,
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.wait() => return,
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_panics_is_started_again_until_it_returns() {
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        let started = tokio::time::Instant::now();
        supervise("test", Shutdown::never(), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("boom {n}");
                }
            }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_secs(1 + 2), "paused 1 s, then 2 s");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_pause_before_a_restart() {
        let (trigger, shutdown) = crate::shutdown::channel();
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        trigger.trigger();
        supervise("test", shutdown, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { panic!("always") }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }
}
