//! Translation policies chosen by configuration and read by the translator.
//!
//! They live here, not in `translate`, so that `config` does not depend on the translator.

/// What to do with a top-level field we do not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownPolicy {
    Forward,
    Drop,
    Reject,
}

/// What to do with an OpenAI field that has no native meaning (`frequency_penalty`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsupportedPolicy {
    Warn,
    Reject,
}

/// Thinking budgets used for `reasoning_effort` on models without a native `reasoning_effort`.
#[derive(Debug, Clone, PartialEq)]
pub struct EffortBudgets {
    pub low: u64,
    pub medium: u64,
    pub high: u64,
}

impl Default for EffortBudgets {
    fn default() -> Self {
        EffortBudgets {
            low: 1024,
            medium: 4096,
            high: 16384,
        }
    }
}
