//! Wire types of the API we serve (OpenAI chat completions). Serde only, no logic.

mod error;
pub mod request;
mod response;
pub mod responses;

pub use error::{ErrorBody, ErrorObject};
pub use request::{
    ChatCompletionRequest, Content, InputAudio, MediaObject, MediaUrl, Message, Part, Role, Stop,
    StreamOptions,
};
pub use response::*;
