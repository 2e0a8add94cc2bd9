//! Configuration: the only module that knows file keys and environment variable names.
//!
//! Layering: built-in defaults ← `config/dashbridge.toml` (or `--config` / `DASHBRIDGE_CONFIG`)
//! ← `DASHBRIDGE_*` / `DASHSCOPE_*` environment variables. Everything is parsed before
//! deciding: every bad setting is reported at once, before the port is bound. Secrets come
//! from the environment only and print as `[redacted]`.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::dashscope::Endpoint;
use crate::dashscope::rerank::RerankEndpoint;
use crate::policy::{EffortBudgets, RequiredToolChoice, UnknownPolicy, UnsupportedPolicy};
use crate::store::{KeyLimits, owner_hash};
use crate::translate::{embeddings as temb, rerank as trr};

/// Where environment variables come from: the process in production, a map in tests.
pub trait EnvSource {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl EnvSource for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned().filter(|v| !v.is_empty())
    }
}

/// A secret value: never printed, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// One DashScope upstream: a base URL, the key it accepts and an optional workspace.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub base_url: String,
    /// `None`: forward the client's own `Authorization` (pass-through mode).
    pub api_key: Option<Secret>,
    pub workspace: Option<String>,
}

/// Per-model settings (`[models."name"]`): aliases, endpoint, parameters, upstream.
#[derive(Debug, Clone, Default)]
pub struct ModelEntry {
    /// The DashScope model name to call (an alias when it differs from the client's name).
    pub target: Option<String>,
    pub endpoint: Option<Endpoint>,
    pub defaults: Map<String, Value>,
    pub overrides: Map<String, Value>,
    /// Name of an `[upstreams.NAME]` entry.
    pub upstream: Option<String>,
    pub preserve_thinking: bool,
    pub native_reasoning_effort: bool,
    /// Always stream upstream (and aggregate for non-stream clients).
    pub stream_only: Option<bool>,
    /// Embeddings: texts per native call.
    pub max_rows: Option<usize>,
    /// Embeddings: accepted `dimensions` (replaces the built-in list).
    pub dimensions: Option<Vec<u64>>,
    /// Rerank: documents per request.
    pub max_documents: Option<usize>,
    /// Rerank: the native service or the compatible `/reranks` API.
    pub rerank_endpoint: Option<RerankEndpoint>,
}

/// One client key (`DASHBRIDGE_API_KEYS` / the keys file).
#[derive(Clone)]
pub struct ClientKey {
    /// The name `[keys."name"]` uses: given (`alice:sk-1`), or the key itself for a bare key.
    pub name: String,
    /// What logs and metrics show: the name, or `key-` + 12 hex digits of the key's SHA-256
    /// for a bare key (whose name is a secret).
    pub label: String,
    pub secret: Secret,
    /// SHA-256 of the key: the owner of what it stores and its identity in shared state.
    pub owner: String,
}

impl ClientKey {
    pub fn new(name: Option<&str>, key: &str) -> ClientKey {
        let owner = owner_hash(key);
        let label = match name {
            Some(n) => n.to_owned(),
            None => format!("key-{}", &owner[..12]),
        };
        ClientKey {
            name: name.unwrap_or(key).to_owned(),
            label,
            secret: Secret::new(key),
            owner,
        }
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({})", self.label)
    }
}

/// Where the gateway keeps state (`[state]`).
#[derive(Debug, Clone)]
pub struct StateSettings {
    /// `redis://` / `rediss://`; `None`: the embedded store. May hold a password: a secret.
    pub url: Option<Secret>,
    /// Stored responses and learned endpoints expire after this.
    pub ttl: Duration,
    /// Bound on every store command (connect included).
    pub timeout: Duration,
    /// Embedded store bounds.
    pub max_entries: u64,
    pub max_bytes: u64,
    /// Redis connections (multiplexed) in the pool.
    pub pool_size: usize,
    /// Redis key namespace.
    pub prefix: String,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            url: None,
            ttl: Duration::from_secs(30 * 24 * 3600),
            timeout: Duration::from_millis(500),
            max_entries: 10_000,
            max_bytes: 256 * 1024 * 1024,
            pool_size: 4,
            prefix: "dashbridge".into(),
        }
    }
}

/// What a rate-limited key's request gets when the store cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub upstream: Upstream,
    pub upstreams: HashMap<String, Upstream>,
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    /// Extra trusted roots for every upstream (`upstream.ca_file`), on top of the system's.
    pub upstream_ca: Option<UpstreamCa>,
    /// The HTTP version spoken to the upstream (`upstream.http`).
    pub upstream_http: UpstreamHttp,
    pub retries: u32,
    pub retry_base: Duration,
    /// Longest `Retry-After` we wait for; a longer one is passed to the client instead.
    pub retry_after_cap: Duration,
    pub max_body_bytes: usize,
    /// Request-body bytes held in memory at once, over all requests (a semaphore of bytes).
    pub body_budget_bytes: usize,
    pub max_concurrency: usize,
    pub max_connections: usize,
    pub request_read_timeout: Duration,
    pub shutdown_grace: Duration,
    pub client_keys: Vec<ClientKey>,
    /// `[keys."name"]` limits, by key name (or a bare key's label).
    pub key_limits: HashMap<String, KeyLimits>,
    pub state: StateSettings,
    pub on_store_error: OnStoreError,
    /// Serve without client keys on a non-loopback address although a server key is held.
    pub allow_anonymous: bool,
    pub log_format: LogFormat,
    pub log_content: bool,
    /// One INFO "request finished" line per request (status, duration).
    pub access_log: bool,
    pub unknown_fields: UnknownPolicy,
    pub unsupported_fields: UnsupportedPolicy,
    pub budgets: EffortBudgets,
    /// Responses API: mirror reasoning text as a `summary_text` part (with its
    /// `reasoning_summary_*` events), for clients that show only summaries.
    pub responses_reasoning_summary: bool,
    pub models: HashMap<String, ModelEntry>,
    /// Name prefixes → endpoint, longest match wins; exact names live in `models`.
    pub routes: Vec<(String, Endpoint)>,
    /// Name prefixes of models that only stream (or think by default).
    pub stream_only: Vec<String>,
    /// Name prefixes of models that take `max_completion_tokens` natively.
    pub max_completion_tokens: Vec<String>,
    /// Name prefixes of models that think unless told `enable_thinking: false`.
    pub thinking_by_default: Vec<String>,
    /// `tool_choice: "required"`: emulated (default) or refused with a 400.
    pub required_tool_choice: RequiredToolChoice,
    /// Extra names for `GET /v1/models` beyond the configured models.
    pub listed_models: Vec<String>,
    /// Embeddings: name prefix → texts per native call (longest match wins).
    pub embedding_rows: Vec<(String, usize)>,
    /// Embeddings: native calls in flight at once for one request.
    pub embedding_concurrency: usize,
    /// Rerank: name prefix → documents per request (longest match wins).
    pub rerank_documents: Vec<(String, usize)>,
    /// Rerank: name prefixes served on the compatible `/reranks` API.
    pub rerank_compatible_prefixes: Vec<String>,
}

/// `upstream.http` / `DASHBRIDGE_UPSTREAM_HTTP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamHttp {
    /// HTTP/1.1 only (default): one pooled connection per call in flight, so concurrent streams
    /// never queue behind a server's per-connection stream limit, and a broken connection takes
    /// one call with it, not all of them.
    Http1,
    /// HTTP/2 when the server offers it over TLS (ALPN), else HTTP/1.1: every call shares one
    /// connection per upstream; calls beyond the server's `SETTINGS_MAX_CONCURRENT_STREAMS`
    /// wait for a free stream (the client opens no second connection).
    Auto,
}

/// The certificates of `upstream.ca_file` / `DASHBRIDGE_UPSTREAM_CA_FILE` (a TLS-intercepting
/// proxy's CA, a private endpoint's CA), each checked at load to be usable as a trusted root.
#[derive(Clone)]
pub struct UpstreamCa {
    pub path: String,
    /// DER, in file order.
    pub certs: Vec<Vec<u8>>,
}

impl fmt::Debug for UpstreamCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} certificate(s))", self.path, self.certs.len())
    }
}

/// Read and check the upstream CA file: PEM, at least one certificate, each a valid root.
fn upstream_ca(path: &str, errs: &mut Vec<String>) -> Option<UpstreamCa> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let name = "DASHBRIDGE_UPSTREAM_CA_FILE / upstream.ca_file";
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            errs.push(format!("{name} {path}: {e}"));
            return None;
        }
    };
    let certs = match CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>() {
        Ok(c) => c,
        Err(e) => {
            errs.push(format!("{name} {path}: not a PEM certificate file ({e})"));
            return None;
        }
    };
    if certs.is_empty() {
        errs.push(format!(
            "{name} {path}: no certificate in it (expected PEM blocks -----BEGIN CERTIFICATE-----)"
        ));
        return None;
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        if let Err(e) = roots.add(cert.clone()) {
            errs.push(format!(
                "{name} {path}: certificate {} cannot be a trusted root: {e}",
                i + 1
            ));
            return None;
        }
    }
    Some(UpstreamCa {
        path: path.to_owned(),
        certs: certs.into_iter().map(|c| c.to_vec()).collect(),
    })
}

/// Largest request-bytes budget (what a `tokio` semaphore can count).
pub const MAX_BUDGET: usize = usize::MAX >> 4;

pub const DEFAULT_UPSTREAM: &str = "https://dashscope.aliyuncs.com";

/// Region shortcuts (wire-format §1.2): the shared host of each region.
pub fn region_base_url(region: &str) -> Option<&'static str> {
    Some(match region.to_ascii_lowercase().as_str() {
        "beijing" | "cn-beijing" | "china" => "https://dashscope.aliyuncs.com",
        "singapore" | "ap-southeast-1" | "intl" | "international" => {
            "https://dashscope-intl.aliyuncs.com"
        }
        "us" | "virginia" | "us-east-1" => "https://dashscope-us.aliyuncs.com",
        "hongkong" | "hong-kong" | "cn-hongkong" => "https://cn-hongkong.dashscope.aliyuncs.com",
        "finance" | "cn-beijing-finance" => "https://dashscope-finance.aliyuncs.com",
        _ => return None,
    })
}

/// Shipped routing defaults (wire-format §1.3): prefixes that live on the multimodal path.
pub const DEFAULT_MULTIMODAL_PREFIXES: &[&str] = &[
    "qwen-vl",
    "qwen2-vl",
    "qwen2.5-vl",
    "qwen3-vl",
    "qvq",
    "qwen-omni",
    "qwen2.5-omni",
    "qwen3-omni",
    "qwen-audio",
    "qwen2-audio",
    "qwen3.5-plus",
    "qwen3.5-flash",
    "qwen3.6-plus",
    "qwen3.6-flash",
    "qwen3.7-plus",
    "qwen3.7-flash",
    "qwen3.8-",
];

/// Prefixes of models that refuse non-stream calls or think by default.
pub const DEFAULT_STREAM_ONLY_PREFIXES: &[&str] = &[
    "qwq",
    "qvq",
    "qwen-omni",
    "qwen2.5-omni",
    "qwen3-omni",
    "qwen3.5-",
    "qwen3.6-",
    "qwen3.7-",
    "qwen3.8-",
];

/// Prefixes of models that take `max_completion_tokens` (thinking + answer) natively
/// (wire-format §3.4: Qwen3.5-Plus/Flash and later).
pub const DEFAULT_MAX_COMPLETION_TOKENS_PREFIXES: &[&str] = &[
    "qwen3.5-plus",
    "qwen3.5-flash",
    "qwen3.6-",
    "qwen3.7-",
    "qwen3.8-",
];

/// Prefixes of hybrid models that think by default (wire-format §3.4 `enable_thinking`).
pub const DEFAULT_THINKING_BY_DEFAULT_PREFIXES: &[&str] = &[
    "qwen3.5-plus",
    "qwen3.5-flash",
    "qwen3.6-",
    "qwen3.7-",
    "qwen3.8-",
];

/// Models listed by `GET /v1/models` when none are configured.
pub const DEFAULT_LISTED_MODELS: &[&str] = &[
    "qwen-plus",
    "qwen-max",
    "qwen-flash",
    "qwen-turbo",
    "qwen3-max",
    "qwen3.5-plus",
    "qwen3.5-flash",
    "qwen3-vl-plus",
    "qwen3-vl-flash",
    "qwen-vl-max",
    "qwq-plus",
    "qvq-max",
];

// ---- the file -------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    #[serde(default)]
    upstream: FileUpstream,
    #[serde(default)]
    upstreams: HashMap<String, FileNamedUpstream>,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    translate: FileTranslate,
    #[serde(default)]
    routing: FileRouting,
    #[serde(default)]
    responses: FileResponses,
    #[serde(default)]
    embeddings: FileEmbeddings,
    #[serde(default)]
    rerank: FileRerank,
    #[serde(default)]
    models: HashMap<String, FileModel>,
    #[serde(default)]
    state: FileState,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    keys: HashMap<String, FileKeyLimits>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileState {
    url: Option<String>,
    ttl_secs: Option<f64>,
    timeout_ms: Option<u64>,
    max_entries: Option<u64>,
    max_bytes: Option<u64>,
    pool_size: Option<usize>,
    prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    on_store_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKeyLimits {
    rpm: Option<u64>,
    tpm: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileResponses {
    reasoning_summary: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEmbeddings {
    concurrency: Option<usize>,
    /// Name prefix → texts per native call, added to (or replacing) the built-in table.
    #[serde(default)]
    max_rows: HashMap<String, usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRerank {
    /// Name prefix → documents per request, added to (or replacing) the built-in table.
    #[serde(default)]
    max_documents: HashMap<String, usize>,
    compatible_prefixes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUpstream {
    base_url: Option<String>,
    region: Option<String>,
    workspace: Option<String>,
    timeout_secs: Option<f64>,
    connect_timeout_secs: Option<f64>,
    retries: Option<u32>,
    retry_base_ms: Option<u64>,
    retry_after_cap_secs: Option<f64>,
    ca_file: Option<String>,
    http: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNamedUpstream {
    base_url: Option<String>,
    region: Option<String>,
    /// Name of the environment variable holding this upstream's key (never the key itself).
    api_key_env: Option<String>,
    workspace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    max_body_bytes: Option<usize>,
    body_budget_bytes: Option<usize>,
    max_concurrency: Option<usize>,
    max_connections: Option<usize>,
    request_read_timeout_secs: Option<f64>,
    shutdown_grace_secs: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    /// A file with one client key per line (blank lines and `#` comments ignored).
    api_keys_file: Option<String>,
    /// Knowingly serve without client keys on a non-loopback address with a server-held key.
    allow_anonymous: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<String>,
    content: Option<bool>,
    access: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTranslate {
    unknown_fields: Option<String>,
    tool_choice_required: Option<String>,
    unsupported_fields: Option<String>,
    reasoning_effort_budgets: Option<FileBudgets>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBudgets {
    low: Option<u64>,
    medium: Option<u64>,
    high: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRouting {
    /// `false`: the prefix lists below replace the shipped ones instead of extending them.
    shipped_defaults: Option<bool>,
    multimodal_prefixes: Option<Vec<String>>,
    text_prefixes: Option<Vec<String>>,
    stream_only_prefixes: Option<Vec<String>>,
    max_completion_tokens_prefixes: Option<Vec<String>>,
    thinking_by_default_prefixes: Option<Vec<String>>,
    list_models: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileModel {
    target: Option<String>,
    endpoint: Option<String>,
    #[serde(default)]
    defaults: Map<String, Value>,
    #[serde(default)]
    overrides: Map<String, Value>,
    upstream: Option<String>,
    #[serde(default)]
    preserve_thinking: bool,
    #[serde(default)]
    native_reasoning_effort: bool,
    stream_only: Option<bool>,
    max_rows: Option<usize>,
    dimensions: Option<Vec<u64>>,
    max_documents: Option<usize>,
    rerank_endpoint: Option<String>,
}

// ---- loading --------------------------------------------------------------------------------

/// Every problem found, one line each, naming the setting.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Defaults only (no file, no environment): what tests start from.
    pub fn defaults() -> Config {
        let empty: HashMap<String, String> = HashMap::new();
        // The built-in defaults are valid by construction: nothing to report.
        build(FileConfig::default(), &empty, &mut Vec::new())
    }

    /// Load the file at `path` (if any), then apply environment overrides from `env`.
    pub fn load(path: Option<&Path>, env: &dyn EnvSource) -> Result<Config, ConfigErrors> {
        let mut errs = Vec::new();
        let path_owned = path
            .map(Path::to_path_buf)
            .or_else(|| env.get("DASHBRIDGE_CONFIG").map(Into::into));
        let file = match &path_owned {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(text) => {
                    let de = toml::Deserializer::parse(&text);
                    match de {
                        Ok(de) => match serde_path_to_error::deserialize::<_, FileConfig>(de) {
                            Ok(f) => f,
                            Err(e) => {
                                errs.push(format!(
                                    "{}: {} at '{}'",
                                    p.display(),
                                    e.inner(),
                                    e.path()
                                ));
                                FileConfig::default()
                            }
                        },
                        Err(e) => {
                            errs.push(format!("{}: {e}", p.display()));
                            FileConfig::default()
                        }
                    }
                }
                Err(e) => {
                    errs.push(format!("config file {}: {e}", p.display()));
                    FileConfig::default()
                }
            },
            None => FileConfig::default(),
        };
        let cfg = build(file, env, &mut errs);
        if errs.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errs))
        }
    }

    /// The upstream a model uses: its own `[upstreams.NAME]` or the default.
    pub fn upstream_for(&self, entry: Option<&ModelEntry>) -> &Upstream {
        entry
            .and_then(|e| e.upstream.as_deref())
            .and_then(|name| self.upstreams.get(name))
            .unwrap_or(&self.upstream)
    }

    /// The endpoint the table gives a (resolved) model name: exact entry, then the longest
    /// matching prefix, else text.
    pub fn endpoint_for(&self, model: &str, entry: Option<&ModelEntry>) -> Endpoint {
        if let Some(e) = entry.and_then(|e| e.endpoint) {
            return e;
        }
        if let Some(e) = self.models.get(model).and_then(|e| e.endpoint) {
            return e;
        }
        self.routes
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, e)| *e)
            .unwrap_or(Endpoint::Text)
    }

    /// The model takes `max_completion_tokens` natively (prefix table).
    pub fn takes_max_completion_tokens(&self, model: &str) -> bool {
        self.max_completion_tokens
            .iter()
            .any(|p| model.starts_with(p.as_str()))
    }

    /// The model thinks unless told not to (prefix table).
    pub fn thinks_by_default(&self, model: &str) -> bool {
        self.thinking_by_default
            .iter()
            .any(|p| model.starts_with(p.as_str()))
    }

    pub fn is_stream_only(&self, model: &str, entry: Option<&ModelEntry>) -> bool {
        if let Some(s) = entry.and_then(|e| e.stream_only) {
            return s;
        }
        self.stream_only
            .iter()
            .any(|p| model.starts_with(p.as_str()))
    }

    /// Serving a server-held key to anyone who reaches a non-loopback address (only possible
    /// with `allow_anonymous`): worth a warning at start-up.
    pub fn anonymous_relay(&self) -> bool {
        let key_held =
            self.upstream.api_key.is_some() || self.upstreams.values().any(|u| u.api_key.is_some());
        key_held && self.client_keys.is_empty() && !self.listen.ip().is_loopback()
    }

    /// Embeddings: texts per native call for a (resolved) model name.
    pub fn embedding_rows(&self, model: &str, entry: Option<&ModelEntry>) -> usize {
        entry
            .and_then(|e| e.max_rows)
            .or_else(|| self.models.get(model).and_then(|e| e.max_rows))
            .or_else(|| longest_prefix(&self.embedding_rows, model))
            .unwrap_or(temb::DEFAULT_ROW_LIMIT)
    }

    /// Embeddings: the accepted `dimensions`; `None` passes any value.
    pub fn embedding_dimensions<'a>(
        &'a self,
        model: &str,
        entry: Option<&'a ModelEntry>,
    ) -> Option<&'a [u64]> {
        entry
            .and_then(|e| e.dimensions.as_deref())
            .or_else(|| self.models.get(model).and_then(|e| e.dimensions.as_deref()))
            .or_else(|| temb::known_dimensions(model))
    }

    /// Rerank: documents per request.
    pub fn rerank_documents(&self, model: &str, entry: Option<&ModelEntry>) -> usize {
        entry
            .and_then(|e| e.max_documents)
            .or_else(|| self.models.get(model).and_then(|e| e.max_documents))
            .or_else(|| longest_prefix(&self.rerank_documents, model))
            .unwrap_or(trr::DEFAULT_DOCUMENT_LIMIT)
    }

    /// Rerank: which service a model is called on.
    pub fn rerank_endpoint(&self, model: &str, entry: Option<&ModelEntry>) -> RerankEndpoint {
        entry
            .and_then(|e| e.rerank_endpoint)
            .or_else(|| self.models.get(model).and_then(|e| e.rerank_endpoint))
            .unwrap_or_else(|| {
                if self
                    .rerank_compatible_prefixes
                    .iter()
                    .any(|p| model.starts_with(p.as_str()))
                {
                    RerankEndpoint::Compatible
                } else {
                    RerankEndpoint::Native
                }
            })
    }

    /// A printable summary of the effective configuration (secrets redacted).
    pub fn summary(&self) -> String {
        format!("{self:#?}")
    }
}

fn longest_prefix(table: &[(String, usize)], model: &str) -> Option<usize> {
    table
        .iter()
        .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, n)| *n)
}

/// A built-in prefix table with the file's entries merged over it.
fn prefix_table(
    defaults: &[(&str, usize)],
    file: HashMap<String, usize>,
    name: &str,
    errs: &mut Vec<String>,
) -> Vec<(String, usize)> {
    let mut table: Vec<(String, usize)> = defaults
        .iter()
        .filter(|(p, _)| !file.contains_key(*p))
        .map(|(p, n)| ((*p).to_owned(), *n))
        .collect();
    for (prefix, n) in file {
        if n == 0 {
            errs.push(format!("{name}.\"{prefix}\" must be greater than 0"));
        }
        table.push((prefix, n));
    }
    table
}

fn parse_endpoint(s: &str) -> Option<Endpoint> {
    match s {
        "text" => Some(Endpoint::Text),
        "multimodal" => Some(Endpoint::Multimodal),
        _ => None,
    }
}

fn check_base_url(name: &str, url: &str, errs: &mut Vec<String>) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) || trimmed.len() < 10 {
        errs.push(format!("{name}: '{url}' is not an http(s) URL"));
    }
    trimmed.to_owned()
}

fn env_parse<T: std::str::FromStr>(
    env: &dyn EnvSource,
    name: &str,
    errs: &mut Vec<String>,
) -> Option<T> {
    let raw = env.get(name)?;
    match raw.trim().parse::<T>() {
        Ok(v) => Some(v),
        Err(_) => {
            errs.push(format!("{name}: '{raw}' is not a valid value"));
            None
        }
    }
}

/// Longest duration setting accepted (a larger one is surely a unit mistake).
const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// A duration given in seconds, fractions allowed (`2.5`); `positive` refuses 0.
fn secs(name: &str, v: f64, positive: bool, errs: &mut Vec<String>) -> Duration {
    if !(0.0..=MAX_SECS).contains(&v) {
        errs.push(format!(
            "{name}: {v} is not a number of seconds from 0 to {MAX_SECS} (fractions allowed, e.g. 2.5)"
        ));
        return Duration::from_secs(1);
    }
    let d = Duration::from_secs_f64(v);
    if positive && d.is_zero() {
        errs.push(format!("{name} must be greater than 0"));
    }
    d
}

/// A value sent in an HTTP header (a key after `Bearer `, a workspace id): trimmed, and refused
/// naming `name` (never the value) when empty or holding anything but printable ASCII without
/// spaces, which no header can carry (a pasted line break, a non-breaking space, …).
fn header_token(name: &str, raw: &str, errs: &mut Vec<String>) -> Option<String> {
    let v = raw.trim();
    if v.is_empty() {
        errs.push(format!("{name} is blank (only whitespace)"));
        return None;
    }
    if let Some((i, c)) = v.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
        let what = if c.is_whitespace() {
            "whitespace"
        } else if c.is_ascii_control() {
            "a control character"
        } else {
            "a non-ASCII character"
        };
        errs.push(format!(
            "{name} contains {what} at byte {i}: it is sent in an HTTP header and must be \
             printable ASCII without spaces"
        ));
        return None;
    }
    Some(v.to_owned())
}

/// The rule for a named upstream's key (`upstreams.NAME.api_key_env`). DashScope keys are
/// regional, so a named upstream never falls back to `DASHSCOPE_API_KEY` silently: with a
/// server-held key it must name its variable (`api_key_env = "DASHSCOPE_API_KEY"` reuses the
/// default key knowingly); in pass-through mode it forwards the client's key like the default.
fn named_upstream_key(
    name: &str,
    api_key_env: Option<String>,
    default_key: Option<&Secret>,
    env: &dyn EnvSource,
    errs: &mut Vec<String>,
) -> Option<Secret> {
    let Some(var) = api_key_env else {
        if default_key.is_some() {
            errs.push(format!(
                "upstreams.{name}: no api_key_env; DashScope keys are regional and \
                 DASHSCOPE_API_KEY is not reused for another upstream silently: set \
                 api_key_env = \"VAR\" (api_key_env = \"DASHSCOPE_API_KEY\" to reuse it knowingly)"
            ));
        }
        return None;
    };
    let var = var.trim();
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        errs.push(format!(
            "upstreams.{name}.api_key_env: '{var}' is not an environment variable name"
        ));
        return None;
    }
    match env.get(var) {
        Some(k) => header_token(&format!("{var} (upstreams.{name}.api_key_env)"), &k, errs)
            .map(Secret::new),
        None => {
            errs.push(format!(
                "upstreams.{name}.api_key_env: environment variable {var} is not set"
            ));
            None
        }
    }
}

/// Client keys: `DASHBRIDGE_API_KEYS` (comma-separated) plus `auth.api_keys_file` (one per
/// line, `#` comments), each trimmed and checked like any header value.
fn client_keys(
    env: &dyn EnvSource,
    file: Option<String>,
    errs: &mut Vec<String>,
) -> Vec<ClientKey> {
    let mut keys = Vec::new();
    // `name:key` or a bare key; the key part must fit an HTTP header.
    let mut add = |name: Option<&str>, key: &str, what: String, errs: &mut Vec<String>| {
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        if let Some(k) = header_token(&what, key, errs) {
            keys.push(ClientKey::new(name, &k));
        }
    };
    if let Some(v) = env.get("DASHBRIDGE_API_KEYS") {
        for (i, entry) in v
            .split(',')
            .enumerate()
            .filter(|(_, k)| !k.trim().is_empty())
        {
            let what = format!("DASHBRIDGE_API_KEYS (key {})", i + 1);
            match entry.trim().split_once(':') {
                Some((name, key)) if !name.trim().is_empty() => add(Some(name), key, what, errs),
                _ => add(None, entry, what, errs),
            }
        }
    }
    if let Some(path) = env.get("DASHBRIDGE_API_KEYS_FILE").or(file) {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let l = line.trim();
                    if l.is_empty() || l.starts_with('#') {
                        continue;
                    }
                    let what = format!("auth.api_keys_file {path} (line {})", n + 1);
                    match l.split_once(char::is_whitespace) {
                        Some((name, key)) => add(Some(name), key, what, errs),
                        None => add(None, l, what, errs),
                    }
                }
            }
            Err(e) => errs.push(format!(
                "auth.api_keys_file / DASHBRIDGE_API_KEYS_FILE {path}: {e}"
            )),
        }
    }
    keys
}

/// A prefix list: the shipped one extended by the file's, or the file's alone when
/// `routing.shipped_defaults = false`.
fn prefixes(shipped: &[&str], keep_shipped: bool, extra: Option<Vec<String>>) -> Vec<String> {
    let base = shipped
        .iter()
        .filter(|_| keep_shipped)
        .map(|s| (*s).to_owned());
    base.chain(extra.unwrap_or_default()).collect()
}

fn build(file: FileConfig, env: &dyn EnvSource, errs: &mut Vec<String>) -> Config {
    // listen
    let listen_raw = env
        .get("DASHBRIDGE_LISTEN")
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let listen = listen_raw.trim().parse().unwrap_or_else(|_| {
        errs.push(format!(
            "DASHBRIDGE_LISTEN / listen: '{listen_raw}' is not an address like 127.0.0.1:8080"
        ));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });

    // default upstream
    let region = env.get("DASHBRIDGE_REGION").or(file.upstream.region);
    let base_url = match (
        env.get("DASHBRIDGE_UPSTREAM"),
        file.upstream.base_url,
        region,
    ) {
        (Some(u), _, _) => check_base_url("DASHBRIDGE_UPSTREAM", &u, errs),
        (None, Some(u), _) => check_base_url("upstream.base_url", &u, errs),
        (None, None, Some(r)) => match region_base_url(&r) {
            Some(u) => u.to_owned(),
            None => {
                errs.push(format!(
                    "DASHBRIDGE_REGION / upstream.region: unknown region '{r}' (beijing, singapore, us, hongkong, finance)"
                ));
                DEFAULT_UPSTREAM.to_owned()
            }
        },
        (None, None, None) => DEFAULT_UPSTREAM.to_owned(),
    };
    let workspace = match env.get("DASHSCOPE_WORKSPACE") {
        Some(w) => header_token("DASHSCOPE_WORKSPACE", &w, errs),
        None => file
            .upstream
            .workspace
            .and_then(|w| header_token("upstream.workspace", &w, errs)),
    };
    let upstream = Upstream {
        base_url,
        api_key: env
            .get("DASHSCOPE_API_KEY")
            .and_then(|k| header_token("DASHSCOPE_API_KEY", &k, errs))
            .map(Secret::new),
        workspace,
    };

    let mut upstreams = HashMap::new();
    for (name, u) in file.upstreams {
        let base_url = match (u.base_url, u.region) {
            (Some(b), _) => check_base_url(&format!("upstreams.{name}.base_url"), &b, errs),
            (None, Some(r)) => match region_base_url(&r) {
                Some(b) => b.to_owned(),
                None => {
                    errs.push(format!("upstreams.{name}.region: unknown region '{r}'"));
                    DEFAULT_UPSTREAM.to_owned()
                }
            },
            (None, None) => upstream.base_url.clone(),
        };
        let api_key =
            named_upstream_key(&name, u.api_key_env, upstream.api_key.as_ref(), env, errs);
        let workspace = u
            .workspace
            .and_then(|w| header_token(&format!("upstreams.{name}.workspace"), &w, errs));
        upstreams.insert(
            name,
            Upstream {
                base_url,
                api_key,
                workspace,
            },
        );
    }

    let timeout = env_parse(env, "DASHBRIDGE_UPSTREAM_TIMEOUT_SECS", errs)
        .or(file.upstream.timeout_secs)
        .unwrap_or(300.0);
    let connect = env_parse(env, "DASHBRIDGE_CONNECT_TIMEOUT_SECS", errs)
        .or(file.upstream.connect_timeout_secs)
        .unwrap_or(5.0);
    let retries = env_parse(env, "DASHBRIDGE_UPSTREAM_RETRIES", errs)
        .or(file.upstream.retries)
        .unwrap_or(2);
    if retries > 10 {
        errs.push(format!(
            "DASHBRIDGE_UPSTREAM_RETRIES / upstream.retries: {retries} is more than 10"
        ));
    }
    let retry_base_ms = env_parse(env, "DASHBRIDGE_RETRY_BASE_MS", errs)
        .or(file.upstream.retry_base_ms)
        .unwrap_or(250);
    let retry_after_cap = file.upstream.retry_after_cap_secs.unwrap_or(30.0);
    let upstream_ca = env
        .get("DASHBRIDGE_UPSTREAM_CA_FILE")
        .or(file.upstream.ca_file)
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| upstream_ca(p.trim(), errs));
    let upstream_http = match env
        .get("DASHBRIDGE_UPSTREAM_HTTP")
        .or(file.upstream.http)
        .as_deref()
        .map(str::trim)
    {
        None | Some("" | "http1") => UpstreamHttp::Http1,
        Some("auto") => UpstreamHttp::Auto,
        Some(other) => {
            errs.push(format!(
                "DASHBRIDGE_UPSTREAM_HTTP / upstream.http: {other:?} is not \"http1\" or \"auto\""
            ));
            UpstreamHttp::Http1
        }
    };

    let max_body_bytes = env_parse(env, "DASHBRIDGE_MAX_BODY_BYTES", errs)
        .or(file.server.max_body_bytes)
        .unwrap_or(20 * 1024 * 1024);
    if max_body_bytes < 1024 {
        errs.push("DASHBRIDGE_MAX_BODY_BYTES / server.max_body_bytes must be at least 1024".into());
    }
    let body_budget_bytes = env_parse(env, "DASHBRIDGE_BODY_BUDGET_BYTES", errs)
        .or(file.server.body_budget_bytes)
        .unwrap_or(128 * 1024 * 1024)
        .min(MAX_BUDGET);
    if body_budget_bytes < max_body_bytes {
        errs.push(format!(
            "DASHBRIDGE_BODY_BUDGET_BYTES / server.body_budget_bytes ({body_budget_bytes}) must be \
             at least DASHBRIDGE_MAX_BODY_BYTES / server.max_body_bytes ({max_body_bytes}), or \
             no request of the largest allowed size could ever be read"
        ));
    }
    let max_concurrency = env_parse(env, "DASHBRIDGE_MAX_CONCURRENCY", errs)
        .or(file.server.max_concurrency)
        .unwrap_or(4096);
    if max_concurrency == 0 {
        errs.push(
            "DASHBRIDGE_MAX_CONCURRENCY / server.max_concurrency must be greater than 0".into(),
        );
    }
    let max_connections = env_parse(env, "DASHBRIDGE_MAX_CONNECTIONS", errs)
        .or(file.server.max_connections)
        .unwrap_or(16384);
    if max_connections == 0 {
        errs.push(
            "DASHBRIDGE_MAX_CONNECTIONS / server.max_connections must be greater than 0".into(),
        );
    }
    let read_timeout = env_parse(env, "DASHBRIDGE_REQUEST_READ_TIMEOUT_SECS", errs)
        .or(file.server.request_read_timeout_secs)
        .unwrap_or(30.0);
    let grace = env_parse(env, "DASHBRIDGE_SHUTDOWN_GRACE_SECS", errs)
        .or(file.server.shutdown_grace_secs)
        .unwrap_or(30.0);

    let client_keys = client_keys(env, file.auth.api_keys_file, errs);
    let mut seen = std::collections::HashSet::new();
    for k in &client_keys {
        if !seen.insert(k.name.as_str()) {
            errs.push(format!(
                "DASHBRIDGE_API_KEYS / keys file: the name '{}' is given to two keys",
                k.label
            ));
        }
    }
    let (key_limits, state, on_store_error) =
        build_state(file.keys, file.state, file.limits, &client_keys, env, errs);
    let allow_anonymous = env_parse(env, "DASHBRIDGE_ALLOW_ANONYMOUS", errs)
        .or(file.auth.allow_anonymous)
        .unwrap_or(false);
    let server_key_held =
        upstream.api_key.is_some() || upstreams.values().any(|u| u.api_key.is_some());
    if server_key_held && client_keys.is_empty() && !listen.ip().is_loopback() && !allow_anonymous {
        errs.push(format!(
            "open relay refused: the gateway holds a DashScope key (DASHSCOPE_API_KEY or an \
             api_key_env), no client keys are set and it would listen on {listen}, which is not \
             a loopback address, so anyone who reaches the port spends that key. Fix: set \
             DASHBRIDGE_API_KEYS (or auth.api_keys_file), or listen on 127.0.0.1 \
             (DASHBRIDGE_LISTEN), or set DASHBRIDGE_ALLOW_ANONYMOUS=true to serve anonymously \
             on purpose"
        ));
    }
    if !client_keys.is_empty() && env.get("DASHSCOPE_API_KEY").is_none() {
        errs.push(
            "DASHBRIDGE_API_KEYS / auth.api_keys_file need DASHSCOPE_API_KEY: with client keys the \
             gateway must hold the DashScope key (a client's gateway key is never forwarded)"
                .into(),
        );
    }
    let log_format = match env
        .get("DASHBRIDGE_LOG_FORMAT")
        .or(file.log.format)
        .as_deref()
    {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            errs.push(format!(
                "DASHBRIDGE_LOG_FORMAT / log.format: '{other}' is not text or json"
            ));
            LogFormat::Text
        }
    };
    let log_content = env_parse(env, "DASHBRIDGE_LOG_CONTENT", errs)
        .or(file.log.content)
        .unwrap_or(false);
    let access_log = env_parse(env, "DASHBRIDGE_ACCESS_LOG", errs)
        .or(file.log.access)
        .unwrap_or(true);

    let unknown_fields = match env
        .get("DASHBRIDGE_UNKNOWN_FIELDS")
        .or(file.translate.unknown_fields)
        .as_deref()
    {
        None | Some("forward") => UnknownPolicy::Forward,
        Some("drop") => UnknownPolicy::Drop,
        Some("reject") => UnknownPolicy::Reject,
        Some(o) => {
            errs.push(format!(
                "DASHBRIDGE_UNKNOWN_FIELDS / translate.unknown_fields: '{o}' is not forward, drop or reject"
            ));
            UnknownPolicy::Forward
        }
    };
    let unsupported_fields = match env
        .get("DASHBRIDGE_UNSUPPORTED_FIELDS")
        .or(file.translate.unsupported_fields)
        .as_deref()
    {
        None | Some("warn") => UnsupportedPolicy::Warn,
        Some("reject") => UnsupportedPolicy::Reject,
        Some(o) => {
            errs.push(format!(
                "DASHBRIDGE_UNSUPPORTED_FIELDS / translate.unsupported_fields: '{o}' is not warn or reject"
            ));
            UnsupportedPolicy::Warn
        }
    };
    let responses_reasoning_summary =
        env_parse(env, "DASHBRIDGE_RESPONSES_REASONING_SUMMARY", errs)
            .or(file.responses.reasoning_summary)
            .unwrap_or(true);
    let required_tool_choice = match env
        .get("DASHBRIDGE_TOOL_CHOICE_REQUIRED")
        .or(file.translate.tool_choice_required)
        .as_deref()
    {
        None | Some("emulate") => RequiredToolChoice::Emulate,
        Some("reject") => RequiredToolChoice::Reject,
        Some(o) => {
            errs.push(format!(
                "DASHBRIDGE_TOOL_CHOICE_REQUIRED / translate.tool_choice_required: '{o}' is not emulate or reject"
            ));
            RequiredToolChoice::Emulate
        }
    };
    let fb = file.translate.reasoning_effort_budgets.unwrap_or_default();
    let d = EffortBudgets::default();
    let budgets = EffortBudgets {
        low: fb.low.unwrap_or(d.low),
        medium: fb.medium.unwrap_or(d.medium),
        high: fb.high.unwrap_or(d.high),
    };

    let shipped = file.routing.shipped_defaults.unwrap_or(true);
    let mut routes: Vec<(String, Endpoint)> = prefixes(
        DEFAULT_MULTIMODAL_PREFIXES,
        shipped,
        file.routing.multimodal_prefixes,
    )
    .into_iter()
    .map(|p| (p, Endpoint::Multimodal))
    .collect();
    routes.extend(
        prefixes(&[], shipped, file.routing.text_prefixes)
            .into_iter()
            .map(|p| (p, Endpoint::Text)),
    );
    let stream_only = prefixes(
        DEFAULT_STREAM_ONLY_PREFIXES,
        shipped,
        file.routing.stream_only_prefixes,
    );

    let max_completion_tokens = prefixes(
        DEFAULT_MAX_COMPLETION_TOKENS_PREFIXES,
        shipped,
        file.routing.max_completion_tokens_prefixes,
    );
    let thinking_by_default = prefixes(
        DEFAULT_THINKING_BY_DEFAULT_PREFIXES,
        shipped,
        file.routing.thinking_by_default_prefixes,
    );

    let mut models = HashMap::new();
    for (name, m) in file.models {
        let endpoint = match m.endpoint.as_deref() {
            None => None,
            Some(e) => {
                let parsed = parse_endpoint(e);
                if parsed.is_none() {
                    errs.push(format!(
                        "models.\"{name}\".endpoint: '{e}' is not text or multimodal"
                    ));
                }
                parsed
            }
        };
        let rerank_endpoint = match m.rerank_endpoint.as_deref() {
            None => None,
            Some("native") => Some(RerankEndpoint::Native),
            Some("compatible") => Some(RerankEndpoint::Compatible),
            Some(e) => {
                errs.push(format!(
                    "models.\"{name}\".rerank_endpoint: '{e}' is not native or compatible"
                ));
                None
            }
        };
        if m.max_rows == Some(0) || m.max_documents == Some(0) {
            errs.push(format!(
                "models.\"{name}\": max_rows and max_documents must be greater than 0"
            ));
        }
        if let Some(u) = &m.upstream
            && !upstreams.contains_key(u)
        {
            errs.push(format!(
                "models.\"{name}\".upstream: no [upstreams.{u}] is configured"
            ));
        }
        models.insert(
            name,
            ModelEntry {
                target: m.target,
                endpoint,
                defaults: m.defaults,
                overrides: m.overrides,
                upstream: m.upstream,
                preserve_thinking: m.preserve_thinking,
                native_reasoning_effort: m.native_reasoning_effort,
                stream_only: m.stream_only,
                max_rows: m.max_rows,
                dimensions: m.dimensions,
                max_documents: m.max_documents,
                rerank_endpoint,
            },
        );
    }
    let listed_models = file.routing.list_models.unwrap_or_else(|| {
        if models.is_empty() {
            DEFAULT_LISTED_MODELS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            Vec::new()
        }
    });

    let embedding_rows = prefix_table(
        temb::DEFAULT_ROW_LIMITS,
        file.embeddings.max_rows,
        "embeddings.max_rows",
        errs,
    );
    let embedding_concurrency = env_parse(env, "DASHBRIDGE_EMBEDDING_CONCURRENCY", errs)
        .or(file.embeddings.concurrency)
        .unwrap_or(4);
    if embedding_concurrency == 0 {
        errs.push(
            "DASHBRIDGE_EMBEDDING_CONCURRENCY / embeddings.concurrency must be greater than 0"
                .into(),
        );
    }
    let rerank_documents = prefix_table(
        trr::DEFAULT_DOCUMENT_LIMITS,
        file.rerank.max_documents,
        "rerank.max_documents",
        errs,
    );
    let rerank_compatible_prefixes = file.rerank.compatible_prefixes.unwrap_or_else(|| {
        trr::DEFAULT_COMPATIBLE_PREFIXES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    });

    Config {
        listen,
        upstream,
        upstreams,
        upstream_timeout: secs(
            "DASHBRIDGE_UPSTREAM_TIMEOUT_SECS / upstream.timeout_secs",
            timeout,
            true,
            errs,
        ),
        connect_timeout: secs(
            "DASHBRIDGE_CONNECT_TIMEOUT_SECS / upstream.connect_timeout_secs",
            connect,
            true,
            errs,
        ),
        upstream_ca,
        upstream_http,
        retries,
        retry_base: Duration::from_millis(retry_base_ms),
        retry_after_cap: secs(
            "upstream.retry_after_cap_secs",
            retry_after_cap,
            false,
            errs,
        ),
        max_body_bytes,
        body_budget_bytes,
        max_concurrency,
        max_connections,
        request_read_timeout: secs(
            "DASHBRIDGE_REQUEST_READ_TIMEOUT_SECS / server.request_read_timeout_secs",
            read_timeout,
            true,
            errs,
        ),
        shutdown_grace: secs(
            "DASHBRIDGE_SHUTDOWN_GRACE_SECS / server.shutdown_grace_secs",
            grace,
            false,
            errs,
        ),
        client_keys,
        allow_anonymous,
        key_limits,
        state,
        on_store_error,
        log_format,
        log_content,
        access_log,
        unknown_fields,
        unsupported_fields,
        budgets,
        responses_reasoning_summary,
        models,
        routes,
        stream_only,
        max_completion_tokens,
        thinking_by_default,
        required_tool_choice,
        listed_models,
        embedding_rows,
        embedding_concurrency,
        rerank_documents,
        rerank_compatible_prefixes,
    }
}

type StateParts = (HashMap<String, KeyLimits>, StateSettings, OnStoreError);

/// `[keys]`, `[state]` and `[limits]`, with their environment overrides.
fn build_state(
    keys: HashMap<String, FileKeyLimits>,
    file: FileState,
    limits: FileLimits,
    client_keys: &[ClientKey],
    env: &dyn EnvSource,
    errs: &mut Vec<String>,
) -> StateParts {
    let mut key_limits = HashMap::new();
    for (name, l) in keys {
        if !client_keys
            .iter()
            .any(|k| k.name == name || k.label == name)
        {
            errs.push(format!(
                "keys.\"{name}\": no client key has this name (DASHBRIDGE_API_KEYS=name:key, or `name key` lines in the keys file)"
            ));
        }
        for (field, v) in [("rpm", l.rpm), ("tpm", l.tpm)] {
            if v == Some(0) {
                errs.push(format!("keys.\"{name}\".{field} must be greater than 0"));
            }
        }
        key_limits.insert(
            name,
            KeyLimits {
                rpm: l.rpm,
                tpm: l.tpm,
            },
        );
    }
    let d = StateSettings::default();
    let url = env.get("DASHBRIDGE_STATE_URL").or(file.url);
    if let Some(u) = &url
        && !(u.starts_with("redis://") || u.starts_with("rediss://"))
    {
        errs.push("DASHBRIDGE_STATE_URL / state.url: must start with redis:// or rediss://".into());
    }
    let ttl: f64 = env_parse(env, "DASHBRIDGE_STATE_TTL_SECS", errs)
        .or(file.ttl_secs)
        .unwrap_or(d.ttl.as_secs_f64());
    let timeout_ms: u64 = env_parse(env, "DASHBRIDGE_STATE_TIMEOUT_MS", errs)
        .or(file.timeout_ms)
        .unwrap_or(d.timeout.as_millis() as u64);
    if timeout_ms == 0 {
        errs.push("DASHBRIDGE_STATE_TIMEOUT_MS / state.timeout_ms must be greater than 0".into());
    }
    let max_entries = env_parse(env, "DASHBRIDGE_STATE_MAX_ENTRIES", errs)
        .or(file.max_entries)
        .unwrap_or(d.max_entries);
    let max_bytes = env_parse(env, "DASHBRIDGE_STATE_MAX_BYTES", errs)
        .or(file.max_bytes)
        .unwrap_or(d.max_bytes);
    if max_entries == 0 || max_bytes == 0 {
        errs.push("state.max_entries and state.max_bytes must be greater than 0".into());
    }
    let state = StateSettings {
        url: url.map(Secret::new),
        ttl: secs(
            "DASHBRIDGE_STATE_TTL_SECS / state.ttl_secs",
            ttl,
            true,
            errs,
        ),
        timeout: Duration::from_millis(timeout_ms),
        max_entries,
        max_bytes,
        pool_size: file.pool_size.unwrap_or(d.pool_size).max(1),
        prefix: file.prefix.unwrap_or(d.prefix),
    };
    let on_store_error = match env
        .get("DASHBRIDGE_LIMITS_ON_STORE_ERROR")
        .or(limits.on_store_error)
        .as_deref()
    {
        None | Some("allow") => OnStoreError::Allow,
        Some("deny") => OnStoreError::Deny,
        Some(o) => {
            errs.push(format!(
                "DASHBRIDGE_LIMITS_ON_STORE_ERROR / limits.on_store_error: '{o}' is not allow or deny"
            ));
            OnStoreError::Allow
        }
    };
    (key_limits, state, on_store_error)
}
