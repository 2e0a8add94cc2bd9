//! One failure taxonomy for a DashScope call — the phase it happened in and what it was — and
//! the one mapping to the error a client sees (`From<Failure> for ProxyError`).
//!
//! The phase decides what is safe: only a failure before the request can have reached the
//! model ([`Phase::Connect`]) or a refusal the upstream answered instead of generating
//! (429/503) may be retried; anything after a response head arrived never is.

use axum::http::HeaderValue;

use crate::dashscope::ErrorBody;
use crate::error::ProxyError;
use crate::translate::error::{Mapped, classify};

/// When, in one call, a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the request was written: connect refused, DNS or TLS failure, a pooled
    /// connection found dead before the request went out. No generation can have started.
    Connect,
    /// The request was (or may have been) written; no response head yet.
    Head,
    /// A response head arrived; reading the answer or a stream's first frame.
    Body,
    /// After a stream's first frame was handed on.
    Stream,
}

/// What went wrong.
#[derive(Debug, Clone)]
pub enum Kind {
    /// The connection could not be made, or broke.
    Transport(String),
    /// No byte within the upstream timeout.
    Timeout,
    /// A non-2xx answer, its body parsed.
    Status {
        status: u16,
        body: Box<ErrorBody>,
        retry_after: Option<HeaderValue>,
    },
    /// An error inside a 2xx answer: a body `code`, or an `event:error` frame.
    InBand(Box<ErrorBody>),
    /// A body we cannot read (not JSON, wrong content type, malformed SSE, no output).
    Protocol(String),
}

/// A failed DashScope call: the phase and the kind.
#[derive(Debug, Clone)]
pub struct Failure {
    pub phase: Phase,
    pub kind: Kind,
}

impl Failure {
    pub fn new(phase: Phase, kind: Kind) -> Self {
        Failure { phase, kind }
    }

    /// A body that cannot be read (phase: the body).
    pub fn protocol(why: impl Into<String>) -> Self {
        Failure::new(Phase::Body, Kind::Protocol(why.into()))
    }

    /// The same failure, seen in a later phase (a stream's frames after the first).
    pub fn in_phase(mut self, phase: Phase) -> Self {
        self.phase = phase;
        self
    }

    /// The upstream's classification of a status or in-band error, if this is one.
    pub fn mapped(&self) -> Option<Mapped> {
        match &self.kind {
            Kind::Status { status, body, .. } => Some(classify(Some(*status), body)),
            Kind::InBand(body) => Some(classify_in_band(body)),
            _ => None,
        }
    }

    /// A retryable refusal: a 429 or 503 answer (or the same refusal inside a 200 before any
    /// frame), which DashScope sends instead of generating — never `RequestTimeOut`, which
    /// may come after the model started, and never a spent quota.
    pub fn is_refusal(&self) -> bool {
        let (status, body) = match &self.kind {
            Kind::Status { status, body, .. } => (*status, body),
            Kind::InBand(body) => (classify_in_band(body).status, body),
            _ => return false,
        };
        let Some(mapped) = self.mapped() else {
            return false;
        };
        matches!(status, 429 | 503)
            && mapped.retryable
            && body.code.as_deref() != Some("RequestTimeOut")
    }
}

impl From<reqwest::Error> for Failure {
    /// A transport error from sending (connect, head) — bodies map theirs with [`Failure::body`].
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Failure::new(Phase::Head, Kind::Timeout)
        } else if e.is_connect() {
            Failure::new(Phase::Connect, Kind::Transport(describe(&e)))
        } else if e.is_body() || e.is_decode() {
            Failure::new(Phase::Body, Kind::Transport(describe(&e)))
        } else {
            Failure::new(Phase::Head, Kind::Transport(describe(&e)))
        }
    }
}

impl Failure {
    /// A transport error while reading a response body.
    pub fn body(e: reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            Kind::Timeout
        } else {
            Kind::Transport(describe(&e))
        };
        Failure::new(Phase::Body, kind)
    }
}

/// An error inside a 2xx answer has no HTTP status: its code decides, and without a code it is
/// the server's failure (a 500), not the client's.
fn classify_in_band(body: &ErrorBody) -> Mapped {
    let has_code = body.code.as_deref().is_some_and(|c| !c.is_empty());
    classify((!has_code).then_some(500), body)
}

/// The error's causes, without reqwest's own top line (which repeats the URL). A certificate
/// the upstream presented and we do not trust gets one sentence saying so and what to set.
fn describe(e: &reqwest::Error) -> String {
    if let Some(why) = untrusted_certificate(e) {
        return format!(
            "the upstream's TLS certificate is not trusted ({why}); if a proxy or a private \
             endpoint signs it with its own CA, set DASHBRIDGE_UPSTREAM_CA_FILE / upstream.ca_file"
        );
    }
    let mut out: Vec<String> = Vec::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !out.iter().any(|o| o.contains(&text)) {
            out.push(text);
        }
        src = s.source();
    }
    if out.is_empty() {
        if e.is_timeout() {
            "timed out".into()
        } else {
            "request failed".into()
        }
    } else {
        out.join(": ")
    }
}

/// rustls's verdict on the server certificate, if that is what failed (it arrives wrapped in
/// `io::Error`s, which hide their inner error from `source()`).
fn untrusted_certificate(e: &reqwest::Error) -> Option<String> {
    fn rustls_in<'a>(mut e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        loop {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            e = e.downcast_ref::<std::io::Error>()?.get_ref()?;
        }
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(rustls::Error::InvalidCertificate(why)) = rustls_in(s) {
            return Some(format!("{why:?}"));
        }
        src = s.source();
    }
    None
}

/// The one mapping from an upstream failure to the error a client sees (as an HTTP error
/// before the response head, or as the in-band error event of a stream).
impl From<Failure> for ProxyError {
    fn from(f: Failure) -> Self {
        let after_head = matches!(f.phase, Phase::Body | Phase::Stream);
        match f.kind {
            Kind::Transport(why) if f.phase == Phase::Stream => ProxyError::BadUpstream(format!(
                "the upstream connection dropped mid-stream: {why}"
            )),
            Kind::Transport(why) if after_head => ProxyError::BadUpstream(format!(
                "the upstream connection dropped before the answer was complete: {why}"
            )),
            Kind::Transport(why) => ProxyError::Unreachable(why),
            Kind::Timeout if f.phase == Phase::Stream => ProxyError::BadUpstream(
                "the upstream stream stalled (no data within the upstream timeout)".into(),
            ),
            Kind::Timeout => ProxyError::Timeout,
            Kind::Protocol(why) => ProxyError::BadUpstream(why),
            Kind::Status {
                status,
                body,
                retry_after,
            } => ProxyError::Upstream {
                mapped: Box::new(classify(Some(status), &body)),
                retry_after,
            },
            Kind::InBand(body) => ProxyError::Upstream {
                mapped: Box::new(classify_in_band(&body)),
                retry_after: None,
            },
        }
    }
}
