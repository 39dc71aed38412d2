//! Shutdown as a type: every long task holds a [`Shutdown`] and stops taking
//! new work once it is triggered.

use tokio::sync::watch;

/// Triggers the shutdown of everything holding a [`Shutdown`] from the same pair.
pub struct ShutdownTrigger(watch::Sender<bool>);

#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    /// A handle that is never triggered, for one-shot commands.
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        Shutdown(rx)
    }

    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown is triggered.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|triggered| *triggered).await;
    }
}
