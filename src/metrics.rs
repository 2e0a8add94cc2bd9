//! The observability vocabulary: metric names and label keys in one place, `record_*` helpers,
//! and the Prometheus recorder behind `GET /metrics`.

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "dashbridge_requests_total";
pub const UPSTREAM_LATENCY: &str = "dashbridge_upstream_latency_seconds";
pub const TTFT: &str = "dashbridge_time_to_first_token_seconds";
pub const INFLIGHT_STREAMS: &str = "dashbridge_inflight_streams";
pub const RETRIES: &str = "dashbridge_upstream_retries_total";
pub const ENDPOINT_FALLBACKS: &str = "dashbridge_endpoint_fallbacks_total";
pub const TOKENS: &str = "dashbridge_tokens_total";
pub const STORE_ERRORS: &str = "dashbridge_store_errors_total";
pub const RATE_LIMITED: &str = "dashbridge_rate_limited_total";

/// Distinct model label values kept; later names are reported as "other" so a client cannot
/// grow the metric set without bound.
const MAX_MODEL_LABELS: usize = 200;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
static MODELS: OnceLock<RwLock<HashSet<String>>> = OnceLock::new();

/// Install the process-wide recorder once; later calls return the same handle.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0,
                ])
                .ok()?
                .install_recorder()
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// Every 5 s, fold buffered histogram samples into their buckets. `install_recorder` runs no
/// upkeep itself: without this every observation stays buffered until the next `/metrics`
/// scrape, so memory grows with traffic when nobody scrapes (found by `scripts/soak.sh`).
pub fn spawn_upkeep() {
    if let Some(handle) = install() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

pub fn render() -> String {
    install().map(|h| h.render()).unwrap_or_default()
}

/// A bounded-cardinality label for a client-chosen model name.
pub fn model_label(model: &str) -> String {
    let set = MODELS.get_or_init(|| RwLock::new(HashSet::new()));
    if let Ok(read) = set.read()
        && read.contains(model)
    {
        return model.to_owned();
    }
    match set.write() {
        Ok(mut w) if w.len() < MAX_MODEL_LABELS || w.contains(model) => {
            w.insert(model.to_owned());
            model.to_owned()
        }
        _ => "other".to_owned(),
    }
}

pub fn record_request(
    route: &'static str,
    model: &str,
    endpoint: &'static str,
    status: u16,
    error_code: &str,
) {
    counter!(REQUESTS,
        "route" => route,
        "model" => model_label(model),
        "endpoint" => endpoint,
        "status" => status.to_string(),
        "error_code" => error_code.to_owned(),
    )
    .increment(1);
}

pub fn record_upstream_latency(endpoint: &'static str, d: Duration) {
    histogram!(UPSTREAM_LATENCY, "endpoint" => endpoint).record(d.as_secs_f64());
}

pub fn record_ttft(endpoint: &'static str, d: Duration) {
    histogram!(TTFT, "endpoint" => endpoint).record(d.as_secs_f64());
}

pub fn record_retry(reason: &'static str) {
    counter!(RETRIES, "reason" => reason).increment(1);
}

pub fn record_endpoint_fallback(model: &str) {
    counter!(ENDPOINT_FALLBACKS, "model" => model_label(model)).increment(1);
}

pub fn record_tokens(model: &str, prompt: u64, completion: u64) {
    let m = model_label(model);
    counter!(TOKENS, "model" => m.clone(), "direction" => "in").increment(prompt);
    counter!(TOKENS, "model" => m, "direction" => "out").increment(completion);
}

/// A state-store command failed (`op`: read, write, limit, ping).
pub fn record_store_error(op: &'static str) {
    counter!(STORE_ERRORS, "op" => op).increment(1);
}

/// A request refused by a key's limit. `key` is the key's printable label (a configured name,
/// or `key-` + hash digits for a bare key): bounded by the configured keys.
pub fn record_rate_limited(key: &str, axis: &'static str) {
    counter!(RATE_LIMITED, "key" => key.to_owned(), "axis" => axis).increment(1);
}

/// Counts a stream as in flight until dropped (finished, failed or abandoned by the client).
pub struct InflightStream;

impl InflightStream {
    pub fn start() -> Self {
        gauge!(INFLIGHT_STREAMS).increment(1.0);
        InflightStream
    }
}

impl Drop for InflightStream {
    fn drop(&mut self) {
        gauge!(INFLIGHT_STREAMS).decrement(1.0);
    }
}
