//! OpenAI ⇄ DashScope translation: pure functions and one state machine.
//!
//! No axum, no reqwest, no tokio, no clock, no randomness: ids and timestamps come in as
//! arguments, dropped or adjusted parameters come back as [`Notes`], so the handler decides how
//! loudly to warn and tests can assert on every decision.

pub mod aggregate;
pub mod error;
pub mod request;
pub mod response;
pub mod responses;
pub mod stream;

use std::fmt;

/// A client error found while translating: becomes a 400 naming `param`.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslateError {
    pub message: String,
    pub param: Option<String>,
    pub code: &'static str,
}

impl TranslateError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError {
            message: message.into(),
            param: Some(param.into()),
            code: "invalid_value",
        }
    }

    pub fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError {
            message: message.into(),
            param: Some(param.into()),
            code: "unsupported_parameter",
        }
    }

    pub fn missing(param: &str) -> Self {
        TranslateError {
            message: format!("missing required parameter: '{param}'"),
            param: Some(param.to_owned()),
            code: "missing_required_parameter",
        }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What translation changed or left out, in words a client can read (ASCII, one line each).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Notes(pub Vec<String>);

impl Notes {
    pub fn push(&mut self, note: impl Into<String>) {
        self.0.push(note.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `x-dashbridge-warning` header value: notes joined with "; ", non-ASCII replaced.
    pub fn header_value(&self) -> String {
        self.0
            .join("; ")
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }
}
