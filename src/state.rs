//! What the handlers share: the configuration, the upstream client, the concurrency limit, the
//! drain signal, the routing memory and the state store. Cheap to clone.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::ProxyError;
use crate::routing::Learned;
use crate::shutdown::Drain;
use crate::store::{self, StateStore};
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
    /// Stored responses, rate-limit windows and (with Redis) the shared learned memory.
    pub store: Arc<dyn StateStore>,
}

impl AppState {
    pub fn new(cfg: Config) -> Result<AppState, ProxyError> {
        let client = DashScopeClient::new(&cfg)
            .map_err(|e| ProxyError::Internal(format!("building the HTTP client: {e}")))?;
        let store = store::from_settings(&cfg.state)
            .map_err(|e| ProxyError::Internal(format!("building the state store: {e}")))?;
        // The learned memory is in-process; with a shared store it is also written to and
        // read from the store, so every replica benefits from what one learned.
        let learned = match cfg.state.url {
            Some(_) => Learned::shared(Arc::clone(&store)),
            None => Learned::default(),
        };
        Ok(AppState {
            limit: Arc::new(Semaphore::new(cfg.max_concurrency)),
            body_budget: Arc::new(Semaphore::new(
                cfg.body_budget_bytes.min(Semaphore::MAX_PERMITS),
            )),
            cfg: Arc::new(cfg),
            client,
            drain: Drain::default(),
            learned: Arc::new(learned),
            store,
        })
    }
}
