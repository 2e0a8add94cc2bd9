//! Logging: human-readable text by default, JSON lines for containers; `RUST_LOG` filters.
//!
//! One span per request (see [`crate::server::router`]) carries the request id, model,
//! endpoint, upstream request id and status; a "request finished" line gives the duration.
//! Prompt and completion text are not logged (`log.content` is parsed but nothing logs content
//! yet), and keys never are: `Authorization` is a
//! sensitive header and every configured secret prints as `[redacted]`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,hyper=warn,reqwest=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in collected logs.
        .with_ansi(std::io::stderr().is_terminal());
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = match format {
        // The current span (request id, model, status...) is enough; the full span list would
        // repeat it on every line.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
