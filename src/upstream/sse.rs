//! Upstream bytes → SSE frames, with the transport failures named.
//!
//! A zero-copy decoder of the SSE wire format (WHATWG "event stream"): lines are found with
//! `memchr` and cut out of each read as [`Bytes`] slices (a reference count, no copy); only a
//! line split across two reads is copied, and a `data` spread over several lines is joined
//! into one new buffer. It handles `\r\n`, `\n` and bare `\r` line ends, `data:` with or
//! without the space, comments (keep-alives, `:HTTP_STATUS/200`), a leading byte-order mark,
//! and any split of the body into reads. What DashScope needs on top: frames that are noise
//! (`[DONE]`, `event:done`, empty data) are skipped, an event may take at most
//! [`MAX_EVENT_BYTES`], bytes that are not UTF-8 fail the stream, and every failure is a
//! [`Failure`].

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;

use super::Failure;

/// One native SSE event: its `event:` name (`result`, `error`, …; `message` when the event
/// names none) and its `data` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: Text,
    pub data: Text,
}

impl Frame {
    /// `event:error` (the payload also says so with a `code`, checked by the caller).
    pub fn is_error_event(&self) -> bool {
        self.event.as_bytes() == b"error"
    }
}

/// UTF-8 text cut out of the upstream body: a shared slice of the read it came from. Only the
/// decoder makes one, from bytes it has checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Text(Bytes);

impl Text {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text as `&str`. Checks the UTF-8 again (the crate has no `unsafe`), so the hot path
    /// reads [`Text::as_bytes`].
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// For readers that want `&str` (tests, tools); see [`Text::as_str`] for its cost.
impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.as_str().to_owned()
    }
}

/// The most bytes one SSE event may take. Bounds what a stream holds when an upstream never
/// ends an event (no blank line): past it the stream fails instead of growing.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// Decode a byte stream into frames. Generic over the byte source so it can be tested (and
/// fuzzed) with any split of a recorded stream. Every frame a read completes is handed on
/// before the source is polled again; a transport error is passed on as it comes.
pub fn frames<S, E>(bytes: S) -> impl Stream<Item = Result<Frame, Failure>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: Into<Failure> + Send,
{
    Frames {
        source: Box::pin(bytes),
        decoder: Decoder::new(MAX_EVENT_BYTES),
        ended: false,
    }
}

struct Frames<S> {
    source: Pin<Box<S>>,
    decoder: Decoder,
    /// The source ended or the decoder failed: nothing more comes.
    ended: bool,
}

impl<S, E> Stream for Frames<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<Failure>,
{
    type Item = Result<Frame, Failure>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            match this.decoder.next_frame() {
                Ok(Some(frame)) => return Poll::Ready(Some(Ok(frame))),
                Err(failure) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(failure)));
                }
                Ok(None) => {}
            }
            match this.source.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => this.decoder.push(chunk),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                // An event without its blank line at the end is dropped, as the spec says.
                Poll::Ready(None) => {
                    this.ended = true;
                    if let Err(failure) = this.decoder.finish() {
                        return Poll::Ready(Some(Err(failure)));
                    }
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The decoder proper, fed one read at a time ([`Decoder::push`]) and drained of the frames
/// that read completes ([`Decoder::next_frame`]). No I/O.
struct Decoder {
    /// The part of the last read not decoded yet.
    rest: Bytes,
    /// A line split across reads (or the start of the body while it may be a BOM).
    partial: BytesMut,
    /// Still at the start of the body: leading byte-order marks are dropped.
    at_start: bool,
    /// The last line ended with `\r`: a `\n` first in the next bytes belongs to that end.
    after_cr: bool,
    /// Bytes of the event being read (its lines, one byte per line end), against `limit`.
    event_bytes: usize,
    limit: usize,
    /// The `event:` field of the event being read.
    event: Option<Bytes>,
    data: Data,
}

/// The `data:` lines of the event being read.
enum Data {
    None,
    /// One line: a slice of the read.
    One(Bytes),
    /// Several: joined with `\n`.
    Joined(BytesMut),
}

impl Decoder {
    fn new(limit: usize) -> Self {
        Decoder {
            rest: Bytes::new(),
            partial: BytesMut::new(),
            at_start: true,
            after_cr: false,
            event_bytes: 0,
            limit,
            event: None,
            data: Data::None,
        }
    }

    /// Take one read. Call only once [`Decoder::next_frame`] has returned `Ok(None)`.
    fn push(&mut self, chunk: Bytes) {
        if !self.at_start {
            self.rest = chunk;
            return;
        }
        if self.partial.is_empty() && chunk.first().is_some_and(|b| *b != BOM[0]) {
            self.at_start = false;
            self.rest = chunk;
            return;
        }
        // The body starts with (part of) a BOM: hold it until the marks are behind us.
        self.partial.extend_from_slice(&chunk);
        while self.partial.starts_with(BOM) {
            self.partial.advance(BOM.len());
        }
        if !BOM.starts_with(&self.partial) {
            self.at_start = false;
            self.rest = self.partial.split().freeze();
        }
    }

    /// The next frame the reads so far complete, `Ok(None)` when another read is needed.
    fn next_frame(&mut self) -> Result<Option<Frame>, Failure> {
        while let Some(line) = self.next_line()? {
            if line.is_empty() {
                self.event_bytes = 0;
                if let Some(frame) = self.dispatch() {
                    return Ok(Some(frame));
                }
                continue;
            }
            self.event_bytes = self.event_bytes.saturating_add(line.len() + 1);
            self.check_bound()?;
            // `is_ascii` first: the common case, checked several times faster.
            if !line.is_ascii() && std::str::from_utf8(&line).is_err() {
                return Err(not_utf8());
            }
            self.field(line);
        }
        Ok(None)
    }

    /// The next whole line of the reads so far, without its line end.
    fn next_line(&mut self) -> Result<Option<Bytes>, Failure> {
        if self.after_cr && !self.rest.is_empty() {
            self.after_cr = false;
            if self.rest[0] == b'\n' {
                self.rest.advance(1);
            }
        }
        match memchr::memchr2(b'\n', b'\r', &self.rest) {
            Some(end) => {
                self.after_cr = self.rest[end] == b'\r';
                let mut line = self.rest.split_to(end + 1);
                line.truncate(end);
                if self.partial.is_empty() {
                    Ok(Some(line))
                } else {
                    self.partial.extend_from_slice(&line);
                    Ok(Some(self.partial.split().freeze()))
                }
            }
            None => {
                if !self.at_start {
                    self.partial.extend_from_slice(&self.rest);
                    self.rest = Bytes::new();
                    let pending = self.event_bytes.saturating_add(self.partial.len());
                    if pending > self.limit {
                        return Err(too_long(self.limit));
                    }
                }
                Ok(None)
            }
        }
    }

    /// The body ended: an unfinished last line is dropped, but must still be UTF-8.
    fn finish(&self) -> Result<(), Failure> {
        if self.at_start || std::str::from_utf8(&self.partial).is_ok() {
            Ok(())
        } else {
            Err(not_utf8())
        }
    }

    fn check_bound(&self) -> Result<(), Failure> {
        if self.event_bytes > self.limit {
            Err(too_long(self.limit))
        } else {
            Ok(())
        }
    }

    /// One non-blank line: a comment (ignored) or a field.
    fn field(&mut self, mut line: Bytes) {
        if line[0] == b':' {
            return;
        }
        // The name ends at the first colon; the value starts after it and one space.
        let (name_end, value_start) = match memchr::memchr(b':', &line) {
            Some(colon) if line.get(colon + 1) == Some(&b' ') => (colon, colon + 2),
            Some(colon) => (colon, colon + 1),
            None => (line.len(), line.len()),
        };
        let is_data = match &line[..name_end] {
            b"data" => true,
            b"event" => false,
            // `id` and `retry` matter to a browser reconnecting, not to a proxied call.
            _ => return,
        };
        line.advance(value_start);
        if is_data {
            self.add_data(line);
        } else {
            self.event = Some(line);
        }
    }

    fn add_data(&mut self, value: Bytes) {
        self.data = match std::mem::replace(&mut self.data, Data::None) {
            Data::None => Data::One(value),
            Data::One(first) => {
                let mut joined = BytesMut::with_capacity(first.len() + 1 + value.len());
                joined.extend_from_slice(&first);
                joined.extend_from_slice(b"\n");
                joined.extend_from_slice(&value);
                Data::Joined(joined)
            }
            Data::Joined(mut joined) => {
                joined.extend_from_slice(b"\n");
                joined.extend_from_slice(&value);
                Data::Joined(joined)
            }
        };
    }

    /// A blank line ends the event: its frame, unless it is noise.
    fn dispatch(&mut self) -> Option<Frame> {
        let event = self.event.take().filter(|e| !e.is_empty());
        let data = match std::mem::replace(&mut self.data, Data::None) {
            Data::None => return None,
            Data::One(d) => d,
            Data::Joined(d) => d.freeze(),
        };
        if data.is_empty() || &data[..] == b"[DONE]" || event.as_deref() == Some(b"done") {
            return None;
        }
        // Both are UTF-8: every line was checked before its field was taken (`next_frame`),
        // and a joined `data` is such lines joined with '\n'.
        let event = event.unwrap_or_else(|| Bytes::from_static(b"message"));
        Some(Frame {
            event: Text(event),
            data: Text(data),
        })
    }
}

fn too_long(limit: usize) -> Failure {
    Failure::protocol(format!("an upstream SSE event exceeded {limit} bytes"))
}

fn not_utf8() -> Failure {
    Failure::protocol("the upstream SSE stream is not UTF-8")
}

#[cfg(test)]
mod tests {
    use futures_util::{FutureExt, StreamExt};

    use super::*;
    use crate::upstream::failure::Kind;

    /// Every item of `reads` through a decoder bounded at `limit`, errors as their message.
    fn decode_with(reads: &[&[u8]], limit: usize) -> Vec<Result<(String, String), String>> {
        let source = futures_util::stream::iter(
            reads
                .iter()
                .map(|r| Ok::<_, Failure>(Bytes::copy_from_slice(r))),
        );
        let stream = Frames {
            source: Box::pin(source),
            decoder: Decoder::new(limit),
            ended: false,
        };
        stream
            .map(|r| match r {
                Ok(f) => Ok((f.event.to_string(), f.data.to_string())),
                Err(Failure {
                    kind: Kind::Protocol(m),
                    ..
                }) => Err(m),
                Err(other) => Err(format!("{other:?}")),
            })
            .collect::<Vec<_>>()
            .now_or_never()
            .unwrap_or_default()
    }

    /// The body whole, in every two-read split and one byte per read: all must agree.
    fn decode(body: &[u8]) -> Vec<Result<(String, String), String>> {
        let whole = decode_with(&[body], MAX_EVENT_BYTES);
        for cut in 0..=body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(decode_with(&[a, b], MAX_EVENT_BYTES), whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode_with(&bytes, MAX_EVENT_BYTES), whole, "byte by byte");
        whole
    }

    fn frame(event: &str, data: &str) -> Result<(String, String), String> {
        Ok((event.to_owned(), data.to_owned()))
    }

    #[test]
    fn every_line_end_ends_lines() {
        let want = vec![frame("result", "a"), frame("result", "b")];
        assert_eq!(
            decode(b"event:result\ndata:a\n\nevent:result\ndata:b\n\n"),
            want
        );
        assert_eq!(
            decode(b"event:result\r\ndata:a\r\n\r\nevent:result\r\ndata:b\r\n\r\n"),
            want
        );
        assert_eq!(
            decode(b"event:result\rdata:a\r\revent:result\rdata:b\r\r"),
            want
        );
        assert_eq!(
            decode(b"event:result\r\ndata:a\r\revent:result\ndata:b\r\n\n"),
            want
        );
    }

    #[test]
    fn a_leading_bom_is_dropped_even_split_or_repeated() {
        let want = vec![frame("message", "x")];
        assert_eq!(decode(b"\xEF\xBB\xBFdata:x\n\n"), want);
        assert_eq!(decode(b"\xEF\xBB\xBF\xEF\xBB\xBF:c\ndata:x\n\n"), want);
        assert_eq!(
            decode_with(&[b"\xEF", b"", b"\xBB", b"\xBF", b"data:x\n\n"], 64),
            want
        );
        // Only at the start: later it is part of a field name (ignored).
        assert_eq!(decode(b"data:x\n\n\xEF\xBB\xBFdata:y\n\n"), want);
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored() {
        assert_eq!(
            decode(b":\n: keep-alive\n\nid:1\nevent:result\n:HTTP_STATUS/200\nretry:5\nfoo\ndata:{}\n\n"),
            vec![frame("result", "{}")]
        );
    }

    #[test]
    fn data_lines_are_joined_with_newlines() {
        assert_eq!(
            decode(b"data:a\ndata: b\ndata\ndata:\ndata:  c\n\n"),
            vec![frame("message", "a\nb\n\n\n c")]
        );
        assert_eq!(decode(b"data: x\n\n"), vec![frame("message", "x")]);
        assert_eq!(decode(b"data:a:b\n\n"), vec![frame("message", "a:b")]);
    }

    #[test]
    fn event_and_id_fields_as_the_spec_says() {
        assert_eq!(
            decode(b"event:error\nid:7\ndata:{}\n\nevent:\ndata:y\n\ndata:z\n\n"),
            vec![
                frame("error", "{}"),
                frame("message", "y"),
                frame("message", "z")
            ]
        );
        // The last `event:` wins; the name does not outlive its event.
        assert_eq!(
            decode(b"event:a\nevent:b\ndata:1\n\ndata:2\n\n"),
            vec![frame("b", "1"), frame("message", "2")]
        );
    }

    #[test]
    fn noise_frames_are_skipped() {
        assert_eq!(
            decode(b"data:\n\ndata:[DONE]\n\nevent:done\ndata:{}\n\nevent:x\n\ndata:ok\n\n"),
            vec![frame("message", "ok")]
        );
    }

    #[test]
    fn an_unfinished_event_at_the_end_is_dropped() {
        assert_eq!(decode(b"data:a\n\ndata:b\n"), vec![frame("message", "a")]);
        assert_eq!(decode(b"data:a\n\ndata:b"), vec![frame("message", "a")]);
    }

    #[test]
    fn a_frame_is_ready_as_soon_as_its_blank_line_is_read() {
        let mut d = Decoder::new(MAX_EVENT_BYTES);
        d.push(Bytes::from_static(b"data:a\n"));
        assert!(matches!(d.next_frame(), Ok(None)));
        d.push(Bytes::from_static(b"\r"));
        let f = d.next_frame().ok().flatten().map(|f| f.data.to_string());
        assert_eq!(
            f.as_deref(),
            Some("a"),
            "a bare CR ends the event without waiting"
        );
        assert!(matches!(d.next_frame(), Ok(None)));
        d.push(Bytes::from_static(b"\ndata:b\n\ndata:c\n\n"));
        let mut got = Vec::new();
        while let Ok(Some(f)) = d.next_frame() {
            got.push(f.data.to_string());
        }
        assert_eq!(
            got,
            ["b", "c"],
            "the LF of that CRLF is not a second blank line"
        );
    }

    #[test]
    fn one_line_data_is_not_copied() {
        let read = Bytes::from_static(b"event:result\ndata:{\"a\":1}\n\n");
        let mut d = Decoder::new(MAX_EVENT_BYTES);
        d.push(read.clone());
        let f = d.next_frame().ok().flatten();
        let data = f.map(|f| f.data.as_bytes().as_ptr());
        assert_eq!(
            data,
            Some(read[18..].as_ptr()),
            "a slice of the read itself"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_fail_the_stream() {
        let want = vec![
            frame("message", "ok"),
            Err("the upstream SSE stream is not UTF-8".to_owned()),
        ];
        assert_eq!(decode(b"data:ok\n\ndata:\xff bad\n\ndata:after\n\n"), want);
        assert_eq!(decode(b"data:ok\n\n:\xC3\n\ndata:after\n\n"), want);
        assert_eq!(
            decode(b"data:ok\n\ndata:\xff"),
            want,
            "also in an unfinished last line"
        );
        assert_eq!(decode(b"\xEF\xBB"), vec![], "a cut BOM is not text yet");
        assert_eq!(
            decode("data:ok\n\ndata:€ 🦀\n\n".as_bytes()),
            vec![frame("message", "ok"), frame("message", "€ 🦀")]
        );
    }

    #[test]
    fn an_event_that_never_ends_is_cut_at_the_limit() {
        let failure = Err("an upstream SSE event exceeded 25 bytes".to_owned());
        // Complete lines: 10 + 10 + 10 bytes (each line end counts one).
        let reads: &[&[u8]] = &[
            b"data:ok\n\n",
            b"data:aaaa\n",
            b"data:bbbb\n",
            b"data:cccc\n",
            b"\n",
        ];
        assert_eq!(
            decode_with(reads, 25),
            vec![frame("message", "ok"), failure.clone()]
        );
        // A line that never ends fails as soon as it is too long, not at its end.
        let reads: &[&[u8]] = &[b"data:", b"aaaaaaaaaa", b"aaaaaaaaaa", b"aaaaaaaaaa"];
        assert_eq!(decode_with(reads, 25), vec![failure.clone()]);
        // Nothing comes after the failure.
        let reads: &[&[u8]] = &[b"data:aaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\ndata:b\n\n"];
        assert_eq!(decode_with(reads, 25), vec![failure]);
    }

    #[test]
    fn finished_events_reset_the_count_whatever_the_split() {
        // 20-byte events, limit 25: only the event being read counts.
        let body = b"data:aaaaaaaaaaaaaa\n\ndata:bbbbbbbbbbbbbb\r\n\r\ndata:cccccccccccccc\r\r";
        let want = vec![
            frame("message", "aaaaaaaaaaaaaa"),
            frame("message", "bbbbbbbbbbbbbb"),
            frame("message", "cccccccccccccc"),
        ];
        assert_eq!(decode_with(&[body], 25), want);
        for cut in 0..=body.len() {
            let (a, b) = body.split_at(cut);
            assert_eq!(decode_with(&[a, b], 25), want, "cut at {cut}");
        }
    }

    #[test]
    fn transport_errors_are_passed_on() {
        let source = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"data:a\n\ndata:")),
            Err(Failure::protocol("boom")),
            Ok(Bytes::from_static(b"b\n\n")),
        ]);
        let got: Vec<_> = frames(source)
            .map(|r| {
                r.map(|f| f.data.to_string())
                    .map_err(|e| format!("{:?}", e.kind))
            })
            .collect::<Vec<_>>()
            .now_or_never()
            .unwrap_or_default();
        assert_eq!(
            got,
            vec![
                Ok("a".to_owned()),
                Err("Protocol(\"boom\")".to_owned()),
                Ok("b".to_owned())
            ]
        );
    }
}
