//! The SSE driver every streaming route uses: already-rendered events in, an SSE response
//! out, with keep-alives, the time-to-first-token metric, shutdown (past the drain deadline a
//! stream ends with an in-band error) and cancellation (a client that goes away drops the
//! event stream, and with it the upstream response).
//!
//! An `Err` item ends the stream with one error event (no `[DONE]`: a client must see a
//! failure, not a silent truncation).

use std::convert::Infallible;
use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use crate::error::ProxyError;
use crate::metrics::{self, InflightStream};
use crate::shutdown::Drain;

/// How often an idle stream gets a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One SSE event: an optional `event:` name and its `data`.
pub struct Rendered {
    pub event: Option<&'static str>,
    pub data: String,
}

impl Rendered {
    pub fn data(data: impl Into<String>) -> Self {
        Rendered {
            event: None,
            data: data.into(),
        }
    }
}

/// The stream's surroundings.
pub struct Driver {
    pub drain: Drain,
    /// The endpoint label for the time-to-first-token metric.
    pub endpoint: &'static str,
    /// When the upstream call started.
    pub started: Instant,
    pub log_content: bool,
    /// How a failure is written into the stream (chat: the OpenAI error body as `data`).
    pub error_event: fn(&ProxyError) -> Rendered,
    /// Held until the stream ends: the concurrency slot, for instance.
    pub hold: Option<Box<dyn Send + Sync>>,
}

/// The chat completions error event: `data: {"error": {…}}`.
pub fn openai_error_event(e: &ProxyError) -> Rendered {
    Rendered::data(serde_json::to_string(&e.body()).unwrap_or_default())
}

type Events = Pin<Box<dyn Stream<Item = Result<Rendered, ProxyError>> + Send>>;

struct Running {
    events: Events,
    driver: Driver,
    first_seen: bool,
    done: bool,
    _hold: Box<dyn Send + Sync>,
    _inflight: InflightStream,
}

impl Running {
    async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let polled = tokio::select! {
            biased;
            ev = self.events.next() => ev,
            () = self.driver.drain.expired() => Some(Err(ProxyError::ShuttingDown)),
        };
        let rendered = match polled? {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "stream ended with an error");
                self.done = true;
                (self.driver.error_event)(&e)
            }
        };
        if !self.first_seen && !self.done {
            self.first_seen = true;
            metrics::record_ttft(self.driver.endpoint, self.driver.started.elapsed());
        }
        if self.driver.log_content {
            tracing::info!(chunk = %rendered.data, "content");
        }
        let ev = Event::default().data(rendered.data);
        Some(match rendered.event {
            Some(name) => ev.event(name),
            None => ev,
        })
    }
}

/// Serve `events` as `text/event-stream`.
pub fn respond<S>(events: S, driver: Driver) -> Response
where
    S: Stream<Item = Result<Rendered, ProxyError>> + Send + 'static,
{
    let mut driver = driver;
    let hold = driver.hold.take();
    let running = Running {
        events: Box::pin(events),
        _hold: Box::new(hold),
        driver,
        first_seen: false,
        done: false,
        _inflight: InflightStream::start(),
    };
    let stream = futures_util::stream::unfold(running, |mut r| async move {
        r.next().await.map(|ev| (Ok::<Event, Infallible>(ev), r))
    });
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
