//! Experiment (issue 13's lever "a zero-copy SSE decoder on `bytes` + `memchr`"): a minimal
//! SSE decoder measured against the production one (`eventsource-stream`) by the
//! `sse_decode_zc` scenario. Not used by the gateway.
//!
//! Lines are found with `memchr` and cut out of the read as `Bytes` slices (a reference count,
//! no copy); only a line split across two reads is copied (into `tail`). A frame's `data` is
//! the slice itself when the event has one `data:` line, and a joined copy otherwise. It keeps
//! the production filter (empty data, `[DONE]`, `event:done` skipped) and checks the data is
//! UTF-8. Not handled (the production decoder does): a bare `\r` as a line end, a leading BOM,
//! the per-event size bound.

use bytes::{Buf, Bytes, BytesMut};

/// One event: its `event:` name (empty: the default) and its `data`.
pub struct Frame {
    pub event: Bytes,
    pub data: Bytes,
}

#[derive(Default)]
pub struct Decoder {
    /// The unfinished line carried over from the previous read.
    tail: BytesMut,
    event: Bytes,
    data: Option<Bytes>,
    /// Set once a second `data:` line arrives: the lines joined with '\n'.
    joined: Option<BytesMut>,
}

impl Decoder {
    /// Decode one read; finished events go to `out`.
    pub fn feed(&mut self, chunk: Bytes, out: &mut impl FnMut(Frame)) {
        let mut cur = if self.tail.is_empty() {
            chunk
        } else {
            self.tail.extend_from_slice(&chunk);
            self.tail.split().freeze()
        };
        while let Some(p) = memchr::memchr(b'\n', &cur) {
            let mut line = cur.split_to(p);
            cur.advance(1);
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            self.line(line, out);
        }
        self.tail.extend_from_slice(&cur);
    }

    fn line(&mut self, mut line: Bytes, out: &mut impl FnMut(Frame)) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match memchr::memchr(b':', &line) {
            Some(c) => {
                let field = line.split_to(c);
                line.advance(1);
                if line.first() == Some(&b' ') {
                    line.advance(1);
                }
                (field, line)
            }
            None => (line, Bytes::new()),
        };
        match &field[..] {
            b"data" => match (&mut self.joined, self.data.take()) {
                (Some(j), _) => {
                    j.extend_from_slice(b"\n");
                    j.extend_from_slice(&value);
                }
                (None, None) => self.data = Some(value),
                (None, Some(first)) => {
                    let mut j = BytesMut::with_capacity(first.len() + 1 + value.len());
                    j.extend_from_slice(&first);
                    j.extend_from_slice(b"\n");
                    j.extend_from_slice(&value);
                    self.joined = Some(j);
                }
            },
            b"event" => self.event = value,
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut impl FnMut(Frame)) {
        let event = std::mem::take(&mut self.event);
        let data = match (self.joined.take(), self.data.take()) {
            (Some(j), _) => j.freeze(),
            (None, Some(d)) => d,
            (None, None) => return,
        };
        if data.is_empty() || &data[..] == b"[DONE]" || &event[..] == b"done" {
            return;
        }
        if std::str::from_utf8(&data).is_err() {
            panic!("stream is not UTF-8");
        }
        out(Frame { event, data });
    }
}

/// The `sse_decode_zc` scenario: every read through the decoder; the total data length.
pub fn decode_all(wire: &[Bytes]) -> usize {
    let mut d = Decoder::default();
    let mut n = 0usize;
    let mut data = 0usize;
    for chunk in wire {
        d.feed(chunk.clone(), &mut |f: Frame| {
            n += 1;
            data += std::hint::black_box(&f).data.len();
            let _ = &f.event;
        });
    }
    assert_eq!(n, super::DECODER_EVENTS, "every event decoded");
    data
}
