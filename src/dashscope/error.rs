//! The native error body `{"code","message","request_id"}`, parsed defensively: `msg` for
//! `message`, an OpenAI-style `{"error":{…}}` envelope, or no JSON at all.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub msg: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub error: Option<NestedError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NestedError {
    #[serde(default)]
    pub code: Option<serde_json::Value>,
    #[serde(default)]
    pub message: Option<String>,
}

impl ErrorBody {
    /// Best-effort parse; a body that is not JSON becomes the message (trimmed and bounded).
    pub fn parse(raw: &[u8]) -> ErrorBody {
        match serde_json::from_slice::<ErrorBody>(raw) {
            Ok(mut b) => {
                if b.message.is_none() {
                    b.message = b.msg.take();
                }
                if let Some(nested) = b.error.take() {
                    if b.message.is_none() {
                        b.message = nested.message;
                    }
                    if b.code.is_none() {
                        b.code = nested.code.map(|c| match c {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        });
                    }
                }
                b
            }
            Err(_) => {
                let text = String::from_utf8_lossy(raw);
                let text: String = text.trim().chars().take(300).collect();
                ErrorBody {
                    message: (!text.is_empty()).then_some(text),
                    ..ErrorBody::default()
                }
            }
        }
    }
}
