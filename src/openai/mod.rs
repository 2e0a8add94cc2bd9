//! Wire types of the API we serve (OpenAI chat completions, embeddings; Cohere-style rerank).
//! Serde only, no logic.

pub mod embeddings;
mod error;
pub mod request;
pub mod rerank;
mod response;
pub mod responses;

pub use error::{ErrorBody, ErrorObject};
pub use request::{
    ChatCompletionRequest, Content, InputAudio, MediaObject, MediaUrl, Message, Part, Role, Stop,
    StreamOptions,
};
pub use response::*;
