//! Wire types of the API we call (DashScope native generation, embedding, rerank). Serde only.

pub mod embedding;
pub mod error;
pub mod request;
pub mod rerank;
pub mod response;

pub use error::ErrorBody;
pub use request::GenerationRequest;
pub use response::GenerationResponse;

/// The two generation paths; a model is bound to exactly one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Text,
    Multimodal,
}

impl Endpoint {
    pub const fn path(self) -> &'static str {
        match self {
            Endpoint::Text => "/api/v1/services/aigc/text-generation/generation",
            Endpoint::Multimodal => "/api/v1/services/aigc/multimodal-generation/generation",
        }
    }

    pub const fn other(self) -> Endpoint {
        match self {
            Endpoint::Text => Endpoint::Multimodal,
            Endpoint::Multimodal => Endpoint::Text,
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Endpoint::Text => "text",
            Endpoint::Multimodal => "multimodal",
        }
    }
}
