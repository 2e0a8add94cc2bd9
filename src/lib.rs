//! # dashbridge
//!
//! An OpenAI-compatible gateway in front of Alibaba Cloud DashScope's native API.
//!
//! # Layout
//!
//! Data flows one way: edge → translate → upstream → translate → edge.
//!
//! - [`config`]: file + environment → [`Config`]; every bad setting reported at once.
//! - [`server`]: shared state, the router and its middleware, [`serve`] with drain.
//! - `routes`: the HTTP handlers; `chat` sequences the phases of a completion.
//! - [`openai`], [`dashscope`]: wire types of the API we serve and the API we call (serde only).
//! - [`translate`]: pure OpenAI ⇄ DashScope translation and the stream state machine.
//! - [`upstream`]: the DashScope HTTP client and SSE decoding (the only user of reqwest).
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
mod routes;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod translate;
pub mod upstream;

pub use config::Config;
pub use server::{AppState, router, serve};
