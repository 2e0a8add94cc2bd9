//! # dashbridge
//!
//! An OpenAI-compatible gateway in front of Alibaba Cloud DashScope's native API.
//!
//! # Layout
//!
//! Data flows one way: edge → translate → upstream → translate → edge.
//!
//! - [`config`]: file + environment → [`Config`]; every bad setting reported at once.
//! - [`policy`]: the translation policies `config` sets and `translate` reads.
//! - [`server`]: the router and its middleware, [`serve`] with drain.
//! - [`state`]: [`AppState`], what every handler shares.
//! - `routes`: the HTTP handlers (`chat` sequences the phases of a completion) and what every
//!   API route shares: the JSON body extractor, the SSE driver, the request metric/log.
//! - [`routing`]: model → upstream, DashScope model, endpoint, stream decision; the learned
//!   memory.
//! - [`openai`], [`dashscope`]: wire types of the API we serve and the API we call (serde only).
//! - [`translate`]: pure OpenAI ⇄ DashScope translation and the stream state machine.
//! - [`upstream`]: the DashScope HTTP client and SSE decoding (the only user of reqwest);
//!   `upstream::call` (retries, switches, first-frame check) and `upstream::failure` (the one
//!   failure taxonomy and its mapping to [`error::ProxyError`]).
//! - [`store`]: the state the gateway keeps (stored responses, rate-limit windows, learned
//!   endpoints) behind one trait: embedded by default, Redis when replicas share it.
//! - [`error`]: the one error type that becomes an OpenAI-shaped HTTP error.
//! - [`metrics`], [`telemetry`], [`shutdown`]: observability and lifecycle.

pub mod config;
pub mod dashscope;
pub mod error;
pub mod lenient;
pub mod metrics;
pub mod openai;
pub mod policy;
mod routes;
pub mod routing;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod upstream;

pub use config::Config;
pub use server::{AppState, router, serve};
