//! OpenAI ⇄ DashScope translation: pure functions and one state machine.
//!
//! No axum, no reqwest, no tokio, no clock, no randomness: ids and timestamps come in as
//! arguments, dropped or adjusted parameters come back as [`Warnings`], so the handler decides how
//! loudly to warn and tests can assert on every decision.

pub mod aggregate;
pub mod embeddings;
pub mod error;
pub mod request;
pub mod rerank;
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

/// The most bytes of `x-dashbridge-warning`: a stock nginx refuses (502) upstream headers
/// larger than its 4–8 KiB buffer, and the header shares that buffer with the others.
pub const WARNING_HEADER_MAX: usize = 1024;

/// What translation changed or left out, in words a client can read (ASCII, one line each).
///
/// Repeated warnings of one kind are aggregated ("`image_url.detail` ignored on 120 parts"),
/// so a request with many parts yields one line per kind, not one per part.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Warnings {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// Aggregation key and the text for several occurrences ("… on N {unit}").
    summary: String,
    unit: &'static str,
    /// The text for exactly one occurrence.
    first: String,
    count: usize,
}

impl Warnings {
    /// One warning; an identical one pushed again is counted, not repeated.
    pub fn push(&mut self, note: impl Into<String>) {
        let note = note.into();
        self.push_each(note.clone(), "times", note);
    }

    /// One occurrence of a warning that may repeat per part/message: `one` is shown when it
    /// happens once, "`summary` on N `unit`" when it happens N > 1 times.
    pub fn push_each(&mut self, summary: impl Into<String>, unit: &'static str, one: String) {
        let summary = summary.into();
        match self.entries.iter_mut().find(|e| e.summary == summary) {
            Some(e) => e.count += 1,
            None => self.entries.push(Entry {
                summary,
                unit,
                first: one,
                count: 1,
            }),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add another translation's warnings, aggregating kinds both have.
    pub fn extend(&mut self, other: Warnings) {
        for e in other.entries {
            match self.entries.iter_mut().find(|m| m.summary == e.summary) {
                Some(m) => m.count += e.count,
                None => self.entries.push(e),
            }
        }
    }

    /// Every warning, aggregated, in the order first seen.
    pub fn list(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| {
                if e.count == 1 {
                    e.first.clone()
                } else {
                    format!("{} on {} {}", e.summary, e.count, e.unit)
                }
            })
            .collect()
    }

    /// The one log line for the request: every warning joined with "; ".
    pub fn log_line(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.list().join("; "))
    }

    /// The `x-dashbridge-warning` header value: warnings joined with "; ", non-ASCII
    /// replaced, at most [`WARNING_HEADER_MAX`] bytes (whole warnings only, then
    /// "(+N more)").
    pub fn header_value(&self) -> Option<String> {
        let list: Vec<String> = self.list().iter().map(|w| ascii(w)).collect();
        let mut out = String::new();
        for (i, w) in list.iter().enumerate() {
            let rest = list.len() - i - 1;
            let sep = if out.is_empty() { "" } else { "; " };
            let more = |n: usize| format!("{sep}(+{n} more)");
            // Room for this warning and, if others follow, the "(+N more)" tail.
            let tail = if rest > 0 { more(rest).len() + 2 } else { 0 };
            if out.len() + sep.len() + w.len() + tail <= WARNING_HEADER_MAX {
                out.push_str(sep);
                out.push_str(w);
                continue;
            }
            let skipped = list.len() - i;
            if out.is_empty() {
                // A single warning longer than the cap: cut it.
                let suffix = format!(" ... (+{} more)", skipped - 1);
                let keep = WARNING_HEADER_MAX.saturating_sub(suffix.len());
                out.push_str(w.get(..keep).unwrap_or(w));
                out.push_str(&suffix);
            } else {
                out.push_str(&more(skipped));
            }
            break;
        }
        (!out.is_empty()).then_some(out)
    }
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A top-level client field no translator knows, by the configured policy: forwarded into the
/// native `parameters`, dropped with a warning, or a 400 naming it. (Chat, embeddings, rerank.)
pub(crate) fn unknown_field(
    policy: crate::policy::UnknownPolicy,
    key: String,
    value: serde_json::Value,
    parameters: &mut serde_json::Map<String, serde_json::Value>,
    notes: &mut Warnings,
) -> Result<(), TranslateError> {
    use crate::policy::UnknownPolicy;
    match policy {
        UnknownPolicy::Forward => {
            parameters.insert(key, value);
        }
        UnknownPolicy::Drop => notes.push(format!("unknown field {key} dropped")),
        UnknownPolicy::Reject => {
            let message = format!("unknown parameter: '{key}'");
            return Err(TranslateError::unsupported(key, message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_warnings_are_aggregated_per_kind() {
        let mut w = Warnings::default();
        for i in 0..120 {
            w.push_each(
                "image_url.detail ignored (no native equivalent)",
                "parts",
                format!("messages[0].content[{i}].image_url.detail ignored (no native equivalent)"),
            );
        }
        w.push("top_p 0 clamped");
        w.push("top_p 0 clamped");
        assert_eq!(
            w.list(),
            vec![
                "image_url.detail ignored (no native equivalent) on 120 parts".to_owned(),
                "top_p 0 clamped on 2 times".to_owned(),
            ]
        );
        assert_eq!(
            w.header_value().as_deref(),
            Some(
                "image_url.detail ignored (no native equivalent) on 120 parts; top_p 0 clamped on 2 times"
            )
        );
    }

    #[test]
    fn a_single_occurrence_keeps_its_place() {
        let mut w = Warnings::default();
        w.push_each("x ignored", "parts", "messages[3].x ignored".into());
        assert_eq!(w.list(), vec!["messages[3].x ignored".to_owned()]);
        assert_eq!(Warnings::default().header_value(), None);
        assert_eq!(Warnings::default().log_line(), None);
    }

    #[test]
    fn the_header_is_capped_at_one_kib_with_whole_warnings() {
        let mut w = Warnings::default();
        for i in 0..200 {
            w.push(format!("warning number {i} about something ünicode"));
        }
        let h = w.header_value().unwrap();
        assert!(h.len() <= WARNING_HEADER_MAX, "{}", h.len());
        assert!(h.is_ascii());
        assert!(h.starts_with("warning number 0 about something ?nicode; "));
        let shown = h.matches("warning number").count();
        assert!(h.ends_with(&format!("; (+{} more)", 200 - shown)), "{h}");
        // One huge warning is cut, not dropped.
        let mut w = Warnings::default();
        w.push("y".repeat(5000));
        let h = w.header_value().unwrap();
        assert!(h.len() <= WARNING_HEADER_MAX);
        assert!(h.ends_with(" ... (+0 more)"));
        // The log line is not capped.
        assert!(w.log_line().unwrap().len() == 5000);
    }
}
