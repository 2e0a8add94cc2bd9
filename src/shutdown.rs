//! Shutdown signals and the drain state shared by the server and the streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

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

/// Draining state: `/readyz` reads it; streams watch `deadline` to end in-band when the grace
/// period runs out.
#[derive(Clone)]
pub struct Drain {
    draining: Arc<AtomicBool>,
    deadline_tx: Arc<watch::Sender<bool>>,
    deadline_rx: watch::Receiver<bool>,
}

impl Default for Drain {
    fn default() -> Self {
        let (tx, rx) = watch::channel(false);
        Drain {
            draining: Arc::new(AtomicBool::new(false)),
            deadline_tx: Arc::new(tx),
            deadline_rx: rx,
        }
    }
}

impl Drain {
    pub fn start(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The grace period is over: every remaining stream ends now.
    pub fn expire(&self) {
        let _ = self.deadline_tx.send(true);
    }

    /// Resolves when the grace period is over.
    pub async fn expired(&self) {
        let mut rx = self.deadline_rx.clone();
        let _ = rx.wait_for(|expired| *expired).await;
    }
}
