//! Model → route: the upstream, the DashScope model, the endpoint and whether to stream
//! upstream — one resolver for every route. It owns what the gateway learns from upstream
//! answers (a model found on the other endpoint, a model that refuses non-stream calls).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;

use crate::config::{Config, ModelEntry, Upstream};
use crate::dashscope::Endpoint;
use crate::error::ProxyError;
use crate::metrics;
use crate::state::AppState;
use crate::store::StateStore;
use crate::upstream::{Plan, Sent, Target};

/// Where one request goes.
pub struct Route<'a> {
    /// The model name the client sent (echoed back, used in metrics).
    pub model: String,
    /// The DashScope model to call (the alias target, or the client's name).
    pub target: String,
    /// The model's own settings, if configured.
    pub entry: Option<&'a ModelEntry>,
    pub upstream: &'a Upstream,
    /// The generation endpoint the table (or the memory) gives the model.
    pub endpoint: Endpoint,
    /// Always stream upstream (configured, by prefix, or learned), aggregating for
    /// non-stream clients.
    pub stream_only: bool,
}

/// [`resolve`], after bringing in what other replicas learned about the model (only with a
/// shared store; see [`Learned::refresh`]).
pub async fn resolve_shared<'a>(cfg: &'a Config, learned: &Learned, model: &str) -> Route<'a> {
    let target = cfg
        .models
        .get(model)
        .and_then(|e| e.target.as_deref())
        .unwrap_or(model);
    learned.refresh(target).await;
    resolve(cfg, learned, model)
}

/// Resolve a client's model name.
pub fn resolve<'a>(cfg: &'a Config, learned: &Learned, model: &str) -> Route<'a> {
    let entry = cfg.models.get(model);
    let target = entry
        .and_then(|e| e.target.clone())
        .unwrap_or_else(|| model.to_owned());
    let endpoint = learned
        .endpoint(&target)
        .unwrap_or_else(|| cfg.endpoint_for(&target, entry));
    let stream_only = cfg.is_stream_only(&target, entry) || learned.is_stream_only(&target);
    Route {
        model: model.to_owned(),
        upstream: cfg.upstream_for(entry),
        target,
        entry,
        endpoint,
        stream_only,
    }
}

impl<'a> Route<'a> {
    /// Someone must pay: a server key, or the client's own key in pass-through mode.
    pub fn check_key(&self, client_auth: Option<&HeaderValue>) -> Result<(), ProxyError> {
        if self.upstream.api_key.is_none() && client_auth.is_none() {
            return Err(ProxyError::Client {
                status: axum::http::StatusCode::UNAUTHORIZED,
                message: "no API key: send `Authorization: Bearer <DashScope key>` or start the gateway with DASHSCOPE_API_KEY".into(),
                param: None,
                code: "missing_api_key".into(),
            });
        }
        Ok(())
    }

    /// Stream upstream? When the client streams, when the request thinks (DashScope refuses
    /// thinking without streaming), or when the model only streams.
    pub fn stream_upstream(&self, client_stream: bool, thinking: bool) -> bool {
        client_stream || thinking || self.stream_only
    }

    /// The upstream call for this route.
    pub fn plan(
        &'a self,
        state: &'a AppState,
        target: Target,
        stream: bool,
        client_auth: Option<&'a HeaderValue>,
        passthrough: &'a [(&'static str, HeaderValue)],
    ) -> Plan<'a> {
        Plan {
            client: &state.client,
            cfg: &state.cfg,
            upstream: self.upstream,
            target,
            stream,
            model: &self.target,
            client_auth,
            passthrough,
        }
    }

    /// Remember what a call that opened had to switch to.
    pub fn learn(&self, learned: &Learned, plan: &Plan<'_>, sent: &Sent) {
        if sent.switched_endpoint(plan)
            && let Target::Generation(e) = sent.target
            && self.entry.and_then(|e| e.endpoint).is_none()
        {
            learned.set_endpoint(&self.target, e);
        }
        if sent.switched_to_stream(plan) {
            learned.set_stream_only(&self.target);
        }
    }
}

/// What the gateway learned from upstream answers, per model.
#[derive(Default)]
pub struct Learned {
    /// Models found on the other endpoint than the table said ("url error" fallback).
    endpoints: Arc<RwLock<HashMap<String, Endpoint>>>,
    /// Models that refused a non-stream call: always stream and aggregate them.
    stream_only: RwLock<HashSet<String>>,
    /// With a shared store: learned endpoints are written through to it, and a model this
    /// process knows nothing about is looked up there ([`Learned::refresh`]) at most once per
    /// [`LOOKUP_EVERY`].
    shared: Option<SharedMemory>,
}

struct SharedMemory {
    store: Arc<dyn StateStore>,
    asked: Mutex<HashMap<String, Instant>>,
}

impl SharedMemory {
    /// Not asked about `model` within [`LOOKUP_EVERY`] (and now marked as asked).
    fn should_ask(&self, model: &str) -> bool {
        let now = Instant::now();
        let Ok(mut asked) = self.asked.lock() else {
            return false;
        };
        if asked
            .get(model)
            .is_some_and(|t| now.duration_since(*t) < LOOKUP_EVERY)
        {
            return false;
        }
        if asked.len() >= MAX_ASKED {
            asked.retain(|_, t| now.duration_since(*t) < LOOKUP_EVERY);
            if asked.len() >= MAX_ASKED {
                return false;
            }
        }
        asked.insert(model.to_owned(), now);
        true
    }
}

/// How often a model unknown here is looked up in the shared store.
const LOOKUP_EVERY: Duration = Duration::from_secs(30);
/// Models whose lookup times are remembered (older ones are forgotten past this).
const MAX_ASKED: usize = 10_000;

impl Learned {
    /// A memory shared through `store` (Redis), on top of the in-process one.
    pub fn shared(store: Arc<dyn StateStore>) -> Learned {
        Learned {
            shared: Some(SharedMemory {
                store,
                asked: Mutex::new(HashMap::new()),
            }),
            ..Learned::default()
        }
    }

    pub fn endpoint(&self, model: &str) -> Option<Endpoint> {
        self.local_endpoint(model)
    }

    pub fn set_endpoint(&self, model: &str, e: Endpoint) {
        if let Ok(mut w) = self.endpoints.write() {
            w.insert(model.to_owned(), e);
        }
        if let Some(shared) = &self.shared
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (store, model) = (Arc::clone(&shared.store), model.to_owned());
            rt.spawn(async move {
                if let Err(err) = store.set_learned_endpoint(&model, e.label()).await {
                    metrics::record_store_error("write");
                    tracing::warn!(error = %err, model = %model, "could not share a learned endpoint");
                }
            });
        }
    }

    /// With a shared store: when this process knows nothing about `model`, ask the store what
    /// another replica learned (at most once per [`LOOKUP_EVERY`] per model, bounded by the
    /// store's timeout; a failure only means the table is used).
    pub async fn refresh(&self, model: &str) {
        let Some(shared) = &self.shared else { return };
        if self.local_endpoint(model).is_some() || !shared.should_ask(model) {
            return;
        }
        match shared.store.learned_endpoint(model).await {
            Ok(Some(label)) => {
                let e = match label.as_str() {
                    "text" => Endpoint::Text,
                    "multimodal" => Endpoint::Multimodal,
                    _ => return,
                };
                if let Ok(mut w) = self.endpoints.write() {
                    w.entry(model.to_owned()).or_insert(e);
                }
            }
            Ok(None) => {}
            Err(err) => {
                metrics::record_store_error("read");
                tracing::debug!(error = %err, "shared learned memory unavailable");
            }
        }
    }

    fn local_endpoint(&self, model: &str) -> Option<Endpoint> {
        self.endpoints.read().ok()?.get(model).copied()
    }

    pub fn is_stream_only(&self, model: &str) -> bool {
        self.stream_only
            .read()
            .map(|s| s.contains(model))
            .unwrap_or(false)
    }

    pub fn set_stream_only(&self, model: &str) {
        if let Ok(mut w) = self.stream_only.write() {
            w.insert(model.to_owned());
        }
    }
}
