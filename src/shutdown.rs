//! Shutdown signals and the drain state shared by the server and the streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// Resolves on SIGTERM (what Kubernetes and Docker send) or SIGINT (Ctrl-C).
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutdown requested"),
                    _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "shutdown requested"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Draining state: `/readyz` reads it; streams wait on `expired()` to end in-band when the
/// grace period runs out. Checked once per stream frame, so it is two atomics and a `Notify`
/// (no lock, no allocation).
#[derive(Clone, Default)]
pub struct Drain {
    inner: Arc<DrainInner>,
}

#[derive(Default)]
struct DrainInner {
    draining: AtomicBool,
    expired: AtomicBool,
    notify: Notify,
}

impl Drain {
    pub fn start(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// The grace period is over: every remaining stream ends now.
    pub fn expire(&self) {
        self.inner.expired.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Resolves when the grace period is over.
    pub async fn expired(&self) {
        let notified = self.inner.notify.notified();
        tokio::pin!(notified);
        // Register before checking the flag, so an `expire()` in between is not missed.
        notified.as_mut().enable();
        if self.inner.expired.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}
