//! The state the gateway keeps: stored responses, per-key rate-limit windows and the learned
//! endpoint memory, behind one trait with two backends — [`memory`] (embedded, the default)
//! and [`redis`] (shared by replicas, `DASHBRIDGE_STATE_URL`).
//!
//! Every value is written inside an [`Envelope`] with a version number, so a newer gateway can
//! read what an older one wrote. Owners are SHA-256 hashes of bearer keys, never keys.

pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::StateSettings;

/// The version this gateway writes; it reads every version up to it.
pub const ENVELOPE_VERSION: u32 = 1;

/// Rate-limit windows are 60 s: at most `rpm` requests / `tpm` tokens in any such window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// A stored response (`store: true`): what `previous_response_id`, retrieve, delete and
/// `input_items` need. Items are kept as the Responses route's JSON; fields this gateway does
/// not know (written by a newer one) are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// `resp_…`.
    pub id: String,
    /// [`owner_hash`] of the bearer key that created it.
    pub owner: String,
    /// The model name the client used.
    pub model: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The request's input items, in order (the chain before it is not repeated here).
    #[serde(default)]
    pub input: Vec<Value>,
    /// The response's output items.
    #[serde(default)]
    pub output: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Value>,
    /// The turn this one continued, for walking the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// The response object as `GET /v1/responses/{id}` returns it. (A named field: the largest
    /// part of a record is parsed straight into its value, never buffered by `flatten`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<StoredJson>,
    /// Fields this version does not know (written by a newer gateway), kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A JSON value kept as its text: written once when a response is saved, read back and served
/// as it is (no tree is built either way).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StoredJson(pub Box<serde_json::value::RawValue>);

impl StoredJson {
    pub fn to_json<T: Serialize>(value: &T) -> Result<StoredJson, StoreError> {
        serde_json::value::to_raw_value(value)
            .map(StoredJson)
            .map_err(|e| StoreError::Corrupt(format!("encoding: {e}")))
    }
}

impl PartialEq for StoredJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// The versioned wrapper around every stored value.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub v: u32,
    pub data: T,
}

/// Encode a value at [`ENVELOPE_VERSION`].
pub fn encode<T: Serialize>(data: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&Envelope {
        v: ENVELOPE_VERSION,
        data,
    })
    .map_err(|e| StoreError::Corrupt(format!("encoding: {e}")))
}

/// Decode an envelope of any version this gateway knows (1 ..= [`ENVELOPE_VERSION`]).
/// Version 1 is the current shape, read in one pass; later versions add a migration arm here.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    #[derive(Deserialize)]
    struct Head {
        v: u32,
    }
    let v1 = match serde_json::from_slice::<Envelope<T>>(bytes) {
        Ok(e) if e.v == 1 => return Ok(e.data),
        other => other.err(),
    };
    // Not a readable version 1: say what it is.
    let head: Head = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("no envelope version: {e}")))?;
    match (head.v, v1) {
        (1, Some(e)) => Err(StoreError::Corrupt(format!("envelope v1: {e}"))),
        (v, _) => Err(StoreError::Corrupt(format!(
            "envelope version {v} is newer than this gateway reads ({ENVELOPE_VERSION})"
        ))),
    }
}

/// SHA-256 of a bearer key, lowercase hex: the owner of stored responses and the identity of
/// a key in shared state. The key itself is never stored.
pub fn owner_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Who made the request, in request extensions for every `/v1` handler
/// (set by the limits middleware; read it with `Extension<Caller>`).
#[derive(Debug, Clone)]
pub struct Caller {
    /// SHA-256 of the bearer key (the matched client key, or in pass-through mode the
    /// caller's own key): the owner of stored responses. `None`: no bearer key was sent.
    pub owner: Option<String>,
    /// Printable name of a configured client key (never the key).
    pub label: Option<String>,
}

/// A key's limits (`[keys."name"]`). `None`: unlimited on that axis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

impl KeyLimits {
    pub fn is_limited(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }
}

/// The state of one axis of a key's window after an admission decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    /// What is left in the current window (after counting this request, if admitted).
    pub remaining: u64,
    /// Until the window is back to its initial state (every counted item has left it).
    pub reset: Duration,
    /// Denied: until the window admits again (the oldest item leaves it).
    pub retry_after: Option<Duration>,
}

/// The answer to "may this key make one more request now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub requests: Option<Quota>,
    pub tokens: Option<Quota>,
}

impl Admission {
    pub fn allowed(&self) -> bool {
        self.retry_after().is_none()
    }

    /// The longest wait any denied axis asks for.
    pub fn retry_after(&self) -> Option<Duration> {
        [self.requests, self.tokens]
            .into_iter()
            .flatten()
            .filter_map(|q| q.retry_after)
            .max()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer within the bound.
    #[error("the state store did not answer within {0:?}")]
    Timeout(Duration),
    /// The store could not be reached or refused the command.
    #[error("the state store is unavailable: {0}")]
    Unavailable(String),
    /// A stored value cannot be read (or written).
    #[error("a stored value is unreadable: {0}")]
    Corrupt(String),
}

/// The gateway's state. Every call is bounded in time by the backend; none hangs.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// `"memory"` or `"redis"` (logs, `/readyz`).
    fn backend(&self) -> &'static str;

    /// Reachable now? (`/readyz`.)
    async fn ping(&self) -> Result<(), StoreError>;

    /// The record `id` if it exists, has not expired and belongs to `owner`; `None` otherwise
    /// (another key's record is indistinguishable from a missing one).
    async fn get_response(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<ResponseRecord>, StoreError> {
        self.get_response_bytes(owner, id)
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// The stored envelope of `owner`'s record `id`, undecoded: a reader that needs only part
    /// of a record (the chain walk) decodes just that part.
    async fn get_response_bytes(&self, owner: &str, id: &str) -> Result<Option<Bytes>, StoreError>;

    /// Store (or replace) a record under its owner, expiring after the configured TTL.
    async fn put_response(&self, record: &ResponseRecord) -> Result<(), StoreError>;

    /// Delete `owner`'s record `id`; `false` when there was none.
    async fn delete_response(&self, owner: &str, id: &str) -> Result<bool, StoreError>;

    /// Count one request for `key` (an [`owner_hash`]) if its limits allow it, atomically.
    /// A denied request is not counted.
    async fn admit(&self, key: &str, limits: KeyLimits) -> Result<Admission, StoreError>;

    /// Add the tokens a finished call used to `key`'s token window.
    async fn add_tokens(&self, key: &str, tokens: u64) -> Result<(), StoreError>;

    /// The endpoint (`"text"` / `"multimodal"`) learned for a model, if any.
    async fn learned_endpoint(&self, model: &str) -> Result<Option<String>, StoreError>;

    async fn set_learned_endpoint(&self, model: &str, endpoint: &str) -> Result<(), StoreError>;
}

/// The `x-dashbridge-warning` value when a write-only state operation failed (`store: true`
/// with Redis down): the response is still served.
pub const WRITE_FAILED_WARNING: &str =
    "the response was not stored: the state store is unavailable";

/// Count and log a failed write-only state operation; returns [`WRITE_FAILED_WARNING`] for the
/// response's warning header. (A failed *read* becomes a 503 through
/// `From<StoreError> for ProxyError`.)
pub fn write_failed(e: &StoreError) -> &'static str {
    crate::metrics::record_store_error("write");
    tracing::warn!(error = %e, "state write failed; serving without storing");
    WRITE_FAILED_WARNING
}

/// The configured backend: Redis when a state URL is set, else the embedded store.
pub fn from_settings(s: &StateSettings) -> Result<Arc<dyn StateStore>, StoreError> {
    match &s.url {
        Some(url) => Ok(Arc::new(redis::RedisStore::new(url.expose(), s)?)),
        None => Ok(Arc::new(memory::MemoryStore::new(s))),
    }
}

/// OpenAI's duration format for `x-ratelimit-reset-*`: `1m30s`, `6s`, `250ms`.
pub fn format_reset(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    // Round up to whole seconds so a client waiting that long is admitted.
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let (m, s) = (secs / 60, secs % 60);
    match (m, s) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// Whole seconds for `Retry-After`, rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_keeps_unknown_fields() {
        let raw = br#"{"v":1,"data":{"id":"resp_1","owner":"ab","model":"qwen-plus","created_at":7,"input":[{"type":"message"}],"output":[],"future_field":{"x":1}}}"#;
        let rec: ResponseRecord = decode(raw).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            rec.extra.get("future_field"),
            Some(&serde_json::json!({"x": 1}))
        );
        let again = encode(&rec).unwrap_or_else(|e| panic!("{e}"));
        let back: ResponseRecord = decode(&again).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, rec);
    }

    #[test]
    fn unknown_envelope_version_is_reported() {
        let e = decode::<ResponseRecord>(br#"{"v":99,"data":{}}"#).err();
        assert!(matches!(e, Some(StoreError::Corrupt(m)) if m.contains("version 99")));
    }

    #[test]
    fn a_damaged_record_is_reported_as_such() {
        let e = decode::<ResponseRecord>(br#"{"v":1,"data":{"id":7}}"#).err();
        assert!(
            matches!(e, Some(StoreError::Corrupt(m)) if m.starts_with("envelope v1: invalid type"))
        );
        let e = decode::<ResponseRecord>(b"not json").err();
        assert!(matches!(e, Some(StoreError::Corrupt(m)) if m.starts_with("no envelope version")));
    }

    #[test]
    fn reset_format_matches_openai() {
        assert_eq!(format_reset(Duration::ZERO), "0s");
        assert_eq!(format_reset(Duration::from_millis(250)), "250ms");
        assert_eq!(format_reset(Duration::from_millis(6001)), "7s");
        assert_eq!(format_reset(Duration::from_secs(60)), "1m");
        assert_eq!(format_reset(Duration::from_secs(90)), "1m30s");
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
    }

    #[test]
    fn owner_hash_is_sha256_hex() {
        assert_eq!(
            owner_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
