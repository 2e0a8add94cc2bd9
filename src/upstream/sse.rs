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
    strip_bom(bound_events(bytes, MAX_EVENT_BYTES))
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
                Err(EventStreamError::Transport(e)) => Some(Err(e)),
                Err(EventStreamError::Utf8(e)) => {
                    Some(Err(Failure::protocol(format!("stream is not UTF-8: {e}"))))
                }
                Err(EventStreamError::Parser(e)) => {
                    Some(Err(Failure::protocol(format!("malformed SSE: {e}"))))
                }
            }
        })
}

/// The most bytes one SSE event may take. Bounds what a stream holds when an upstream never
/// ends an event (no blank line): past it the stream fails instead of growing.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// Count the bytes since the last blank line (the end of an event) and fail once an event
/// grows past `limit`. Typical chunks end with "\n\n", found from the end in O(1).
pub fn bound_events<S, E>(
    bytes: S,
    limit: usize,
) -> impl Stream<Item = Result<Bytes, Failure>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: Into<Failure> + Send,
{
    // (bytes of the unfinished event, whether the previous chunk ended a line, failed)
    bytes.scan(
        (0usize, false, false),
        move |(pending, ended_line, failed), item| {
            if *failed {
                return std::future::ready(None);
            }
            let out = match item {
                Err(e) => Err(e.into()),
                Ok(chunk) => {
                    *pending = match last_event_end(&chunk, *ended_line) {
                        Some(end) => chunk.len() - end,
                        None => pending.saturating_add(chunk.len()),
                    };
                    if !chunk.is_empty() {
                        *ended_line = chunk.ends_with(b"\n");
                    }
                    if *pending > limit {
                        *failed = true;
                        Err(Failure::protocol(format!(
                            "an upstream SSE event exceeded {limit} bytes"
                        )))
                    } else {
                        Ok(chunk)
                    }
                }
            };
            std::future::ready(Some(out))
        },
    )
}

/// The index just past the last blank line ("\n\n" or "\n\r\n") in `chunk`, if any.
fn last_event_end(chunk: &[u8], ended_line_before: bool) -> Option<usize> {
    let mut upto = chunk.len();
    while let Some(p) = chunk[..upto].iter().rposition(|&b| b == b'\n') {
        let line_start = if p > 0 && chunk[p - 1] == b'\r' {
            p - 1
        } else {
            p
        };
        let blank = if line_start == 0 {
            ended_line_before
        } else {
            chunk[line_start - 1] == b'\n'
        };
        if blank {
            return Some(p + 1);
        }
        upto = p;
    }
    None
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

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::upstream::failure::Kind;

    fn decode(chunks: Vec<&'static [u8]>, limit: usize) -> Vec<Result<Bytes, Failure>> {
        let src = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, Failure>(Bytes::from_static(c))),
        );
        bound_events(src, limit)
            .collect::<Vec<_>>()
            .now_or_never()
            .unwrap()
    }

    #[test]
    fn an_event_that_never_ends_is_cut_at_the_limit() {
        let out = decode(
            vec![b"data:aaaa\n", b"data:bbbb\n", b"data:cccc\n", b"more"],
            25,
        );
        assert_eq!(out.len(), 3, "stops after the failure");
        assert!(out[0].is_ok() && out[1].is_ok());
        match &out[2] {
            Err(Failure {
                kind: Kind::Protocol(m),
                ..
            }) => assert_eq!(m, "an upstream SSE event exceeded 25 bytes"),
            other => panic!("expected a protocol failure, got {other:?}"),
        }
    }

    #[test]
    fn finished_events_reset_the_count_even_split_across_reads() {
        // 20-byte events, limit 25: only the unfinished tail counts.
        let out = decode(
            vec![
                b"data:aaaaaaaaaaaaa\n",
                b"\ndata:bbbbbbbbbbbbb\r\n",
                b"\r\ndata:cc\n\n",
            ],
            25,
        );
        assert!(out.iter().all(Result::is_ok), "{out:?}");
        assert_eq!(last_event_end(b"x\n\ny", false), Some(3));
        assert_eq!(last_event_end(b"\ny", true), Some(1));
        assert_eq!(last_event_end(b"x\r\n\r\n", false), Some(5));
        assert_eq!(last_event_end(b"x\ny\n", false), None);
    }
}
