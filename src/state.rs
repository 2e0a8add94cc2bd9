//! What the handlers share: the configuration, the upstream client, the concurrency limit, the
//! drain signal and the routing memory. Cheap to clone.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::ProxyError;
use crate::routing::Learned;
use crate::shutdown::Drain;
use crate::upstream::DashScopeClient;

#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub client: DashScopeClient,
    /// Requests in flight (streams included) at once.
    pub limit: Arc<Semaphore>,
    /// Request-body bytes held in memory at once (`body_budget_bytes` permits, one per byte).
    pub body_budget: Arc<Semaphore>,
    pub drain: Drain,
    /// What the gateway learned about models from upstream answers.
    pub learned: Arc<Learned>,
}

impl AppState {
    pub fn new(cfg: Config) -> Result<AppState, ProxyError> {
        let client = DashScopeClient::new(&cfg)
            .map_err(|e| ProxyError::Internal(format!("building the HTTP client: {e}")))?;
        Ok(AppState {
            limit: Arc::new(Semaphore::new(cfg.max_concurrency)),
            body_budget: Arc::new(Semaphore::new(
                cfg.body_budget_bytes.min(Semaphore::MAX_PERMITS),
            )),
            cfg: Arc::new(cfg),
            client,
            drain: Drain::default(),
            learned: Arc::new(Learned::default()),
        })
    }
}
