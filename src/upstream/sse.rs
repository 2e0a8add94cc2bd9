//! Upstream bytes → SSE frames, with the transport failures named.
//!
//! Parsing is `eventsource-stream`'s (it handles `data:` with or without a space, `\r\n`,
//! comments such as `:HTTP_STATUS/200` and keep-alives, and events split across reads). This
//! module only adds what DashScope needs: frames that are noise (`[DONE]`, `event:done`,
//! empty data) are skipped, and errors become [`Failure`]s.

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};

use super::Failure;

/// One native SSE event: its `event:` name (`result`, `error`, …) and its `data` payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub event: String,
    pub data: String,
}

impl Frame {
    /// `event:error` (the payload also says so with a `code`, checked by the caller).
    pub fn is_error_event(&self) -> bool {
        self.event == "error"
    }
}

/// Decode a byte stream into frames. Generic over the byte source so it can be tested (and
/// fuzzed) with any split of a recorded stream.
pub fn frames<S, E>(bytes: S) -> impl Stream<Item = Result<Frame, Failure>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: Into<Failure> + Send,
{
    strip_bom(bytes)
        .eventsource()
        .filter_map(|item| async move {
            match item {
                Ok(ev) => {
                    let data = ev.data;
                    if data.is_empty() || data == "[DONE]" || ev.event == "done" {
                        None
                    } else {
                        Some(Ok(Frame {
                            event: ev.event,
                            data,
                        }))
                    }
                }
                Err(EventStreamError::Transport(e)) => Some(Err(e.into())),
                Err(EventStreamError::Utf8(e)) => {
                    Some(Err(Failure::Protocol(format!("stream is not UTF-8: {e}"))))
                }
                Err(EventStreamError::Parser(e)) => {
                    Some(Err(Failure::Protocol(format!("malformed SSE: {e}"))))
                }
            }
        })
}

/// Drop the byte-order marks a body starts with, even when one is split across reads.
/// `eventsource-stream` 0.2.3 panics on a leading BOM (it slices the 3-byte mark at byte 1);
/// found by fuzzing (`fuzz/corpus/sse/bom-comments-done.sse`).
fn strip_bom<S, E>(bytes: S) -> impl Stream<Item = Result<Bytes, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: Send,
{
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    // `Some(held)` until the first byte that is not part of a leading BOM.
    bytes.scan(Some(Vec::new()), |start, item| {
        let out = match (start.take(), item) {
            (Some(mut held), Ok(chunk)) => {
                held.extend_from_slice(&chunk);
                while held.starts_with(BOM) {
                    held.drain(..BOM.len());
                }
                if BOM.starts_with(&held) {
                    *start = Some(held);
                    Ok(Bytes::new())
                } else {
                    Ok(Bytes::from(held))
                }
            }
            (held, Err(e)) => {
                *start = held;
                Err(e)
            }
            (None, Ok(chunk)) => Ok(chunk),
        };
        std::future::ready(Some(out))
    })
}
