//! Model → route: the upstream, the DashScope model, the endpoint and whether to stream
//! upstream — one resolver for every route. It owns what the gateway learns from upstream
//! answers (a model found on the other endpoint, a model that refuses non-stream calls).

use std::collections::HashMap;
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
    let entry = cfg.models.get(model);
    let target = entry.and_then(|e| e.target.as_deref()).unwrap_or(model);
    learned.refresh(cfg.upstream_for(entry), target).await;
    resolve(cfg, learned, model)
}

/// Resolve a client's model name. Precedence for the endpoint and the stream decision: an
/// explicit per-model setting, then what was learned (for this upstream and model, while
/// fresh), then the prefix tables.
pub fn resolve<'a>(cfg: &'a Config, learned: &Learned, model: &str) -> Route<'a> {
    let entry = cfg.models.get(model);
    let target = entry
        .and_then(|e| e.target.clone())
        .unwrap_or_else(|| model.to_owned());
    let upstream = cfg.upstream_for(entry);
    let endpoint = explicit_endpoint(cfg, entry, &target)
        .or_else(|| learned.endpoint(upstream, &target))
        .unwrap_or_else(|| cfg.endpoint_for(&target, entry));
    let stream_only = match entry.and_then(|e| e.stream_only) {
        Some(explicit) => explicit,
        None => cfg.is_stream_only(&target, None) || learned.is_stream_only(upstream, &target),
    };
    Route {
        model: model.to_owned(),
        upstream,
        target,
        entry,
        endpoint,
        stream_only,
    }
}

/// The endpoint configured for the model: on its own entry, or on an entry for its target.
fn explicit_endpoint(cfg: &Config, entry: Option<&ModelEntry>, target: &str) -> Option<Endpoint> {
    entry
        .and_then(|e| e.endpoint)
        .or_else(|| cfg.models.get(target).and_then(|e| e.endpoint))
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

    /// Remember what a call that opened had to switch to (never over an explicit setting).
    pub fn learn(&self, cfg: &Config, learned: &Learned, plan: &Plan<'_>, sent: &Sent) {
        if sent.switched_endpoint(plan)
            && let Target::Generation(e) = sent.target
            && explicit_endpoint(cfg, self.entry, &self.target).is_none()
        {
            learned.set_endpoint(self.upstream, &self.target, e);
        }
        if sent.switched_to_stream(plan) && self.entry.and_then(|e| e.stream_only).is_none() {
            learned.set_stream_only(self.upstream, &self.target);
        }
    }
}

/// How long a learned fact is trusted before the tables are asked again (a model can move
/// between endpoints, or start accepting non-stream calls).
pub const LEARNED_TTL: Duration = Duration::from_secs(60 * 60);

/// The most facts kept; past it, expired ones are dropped and new ones are not learned.
const MAX_LEARNED: usize = 4096;

/// (upstream base URL, DashScope model).
type Key = (String, String);

/// What the gateway learned from upstream answers, per (upstream, model), for [`LEARNED_TTL`].
/// Only a switched call that then answered successfully teaches it something.
pub struct Learned {
    ttl: Duration,
    /// Models found on the other endpoint than the table said ("url error" fallback).
    endpoints: RwLock<HashMap<Key, (Endpoint, Instant)>>,
    /// Models that refused a non-stream call: stream and aggregate them (per process).
    stream_only: RwLock<HashMap<Key, Instant>>,
    /// With a shared store: learned endpoints are written through to it, and a model this
    /// process knows nothing about is looked up there ([`Learned::refresh`]) at most once per
    /// [`LOOKUP_EVERY`].
    shared: Option<SharedMemory>,
}

struct SharedMemory {
    store: Arc<dyn StateStore>,
    asked: Mutex<HashMap<Key, Instant>>,
}

impl SharedMemory {
    /// Not asked about `k` within [`LOOKUP_EVERY`] (and now marked as asked).
    fn should_ask(&self, k: &Key) -> bool {
        let now = Instant::now();
        let Ok(mut asked) = self.asked.lock() else {
            return false;
        };
        if asked
            .get(k)
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
        asked.insert(k.clone(), now);
        true
    }
}

/// How often a model unknown here is looked up in the shared store.
const LOOKUP_EVERY: Duration = Duration::from_secs(30);
/// Models whose lookup times are remembered (older ones are forgotten past this).
const MAX_ASKED: usize = 10_000;

/// The store's name for a fact: the upstream's base URL and the model.
fn shared_key((base_url, model): &Key) -> String {
    format!("{base_url} {model}")
}

impl Default for Learned {
    fn default() -> Self {
        Learned::with_ttl(LEARNED_TTL)
    }
}

fn key(upstream: &Upstream, model: &str) -> Key {
    (upstream.base_url.clone(), model.to_owned())
}

fn insert<V>(map: &RwLock<HashMap<Key, V>>, k: Key, v: V, fresh: impl Fn(&V) -> bool) {
    if let Ok(mut w) = map.write() {
        if w.len() >= MAX_LEARNED && !w.contains_key(&k) {
            w.retain(|_, v| fresh(v));
            if w.len() >= MAX_LEARNED {
                return;
            }
        }
        w.insert(k, v);
    }
}

impl Learned {
    pub fn with_ttl(ttl: Duration) -> Self {
        Learned {
            ttl,
            endpoints: RwLock::default(),
            stream_only: RwLock::default(),
            shared: None,
        }
    }

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

    /// With a shared store: when this process knows nothing fresh about the model, ask the
    /// store what another replica learned (at most once per [`LOOKUP_EVERY`] per model,
    /// bounded by the store's timeout; a failure only means the table is used).
    pub async fn refresh(&self, upstream: &Upstream, model: &str) {
        let Some(shared) = &self.shared else { return };
        let k = key(upstream, model);
        if self.endpoint(upstream, model).is_some() || !shared.should_ask(&k) {
            return;
        }
        match shared.store.learned_endpoint(&shared_key(&k)).await {
            Ok(Some(label)) => {
                let e = match label.as_str() {
                    "text" => Endpoint::Text,
                    "multimodal" => Endpoint::Multimodal,
                    _ => return,
                };
                insert(&self.endpoints, k, (e, Instant::now()), |(_, at)| {
                    self.fresh(*at)
                });
            }
            Ok(None) => {}
            Err(err) => {
                metrics::record_store_error("read");
                tracing::debug!(error = %err, "shared learned memory unavailable");
            }
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }

    pub fn endpoint(&self, upstream: &Upstream, model: &str) -> Option<Endpoint> {
        let r = self.endpoints.read().ok()?;
        let (e, at) = r.get(&key(upstream, model))?;
        self.fresh(*at).then_some(*e)
    }

    pub fn set_endpoint(&self, upstream: &Upstream, model: &str, e: Endpoint) {
        let k = key(upstream, model);
        if let Some(shared) = &self.shared
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (store, name) = (Arc::clone(&shared.store), shared_key(&k));
            rt.spawn(async move {
                if let Err(err) = store.set_learned_endpoint(&name, e.label()).await {
                    metrics::record_store_error("write");
                    tracing::warn!(error = %err, "could not share a learned endpoint");
                }
            });
        }
        insert(&self.endpoints, k, (e, Instant::now()), |(_, at)| {
            self.fresh(*at)
        });
    }

    pub fn is_stream_only(&self, upstream: &Upstream, model: &str) -> bool {
        self.stream_only
            .read()
            .ok()
            .and_then(|r| r.get(&key(upstream, model)).copied())
            .is_some_and(|at| self.fresh(at))
    }

    pub fn set_stream_only(&self, upstream: &Upstream, model: &str) {
        insert(
            &self.stream_only,
            key(upstream, model),
            Instant::now(),
            |at| self.fresh(*at),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(base_url: &str) -> Upstream {
        Upstream {
            base_url: base_url.to_owned(),
            api_key: None,
            workspace: None,
        }
    }

    #[test]
    fn facts_are_per_upstream_and_model() {
        let learned = Learned::default();
        let (a, b) = (upstream("http://a"), upstream("http://b"));
        learned.set_endpoint(&a, "m", Endpoint::Multimodal);
        learned.set_stream_only(&a, "m");
        assert_eq!(learned.endpoint(&a, "m"), Some(Endpoint::Multimodal));
        assert!(learned.is_stream_only(&a, "m"));
        assert_eq!(learned.endpoint(&b, "m"), None);
        assert!(!learned.is_stream_only(&b, "m"));
        assert_eq!(learned.endpoint(&a, "other"), None);
    }

    #[test]
    fn facts_expire() {
        let learned = Learned::with_ttl(Duration::from_millis(30));
        let a = upstream("http://a");
        learned.set_endpoint(&a, "m", Endpoint::Multimodal);
        learned.set_stream_only(&a, "m");
        assert_eq!(learned.endpoint(&a, "m"), Some(Endpoint::Multimodal));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(learned.endpoint(&a, "m"), None);
        assert!(!learned.is_stream_only(&a, "m"));
    }
}
