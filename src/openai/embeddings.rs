//! The OpenAI `POST /v1/embeddings` request and response, as clients send and read them.
//!
//! `input` is read by a hand-written visitor into one of four typed shapes (no buffering of the
//! whole value, no per-element enum): a hostile body of millions of tiny inputs stops at
//! [`MAX_INPUTS`] + 1 elements. Vectors in the response are written as they came (raw JSON
//! floats) or as a base64 string; nothing here builds a `serde_json::Value` tree.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::lenient::lenient_struct;

/// OpenAI's limit on the number of inputs in one request.
pub const MAX_INPUTS: usize = 2048;

lenient_struct! {
    pub struct EmbeddingRequest {
        model: String,
        input: EmbeddingInput,
        dimensions: u64,
        encoding_format: String,
        user: Value,
        /// DashScope extras (sent through the SDKs' `extra_body`).
        text_type: String,
        input_type: String,
        output_type: String,
        instruct: String,
    }
}

/// `input` in its four shapes.
#[derive(Debug, PartialEq)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

/// One element of an `input` array: a string, a token, or a token array.
enum Item {
    Text(String),
    Token(u32),
    Tokens(Vec<u32>),
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Item;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, a token id or an array of token ids")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                Ok(Item::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Item, E> {
                Ok(Item::Text(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
                u32::try_from(v)
                    .map(Item::Token)
                    .map_err(|_| E::custom(format!("token id {v} is out of range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
                u32::try_from(v)
                    .map(Item::Token)
                    .map_err(|_| E::custom(format!("token id {v} is out of range")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Item, A::Error> {
                let mut tokens = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(8192));
                while let Some(t) = seq.next_element::<u32>()? {
                    tokens.push(t);
                }
                Ok(Item::Tokens(tokens))
            }
        }
        d.deserialize_any(V)
    }
}

const SHAPES: &str =
    "a string, an array of strings, an array of token ids or an array of token arrays";

impl<'de> Deserialize<'de> for EmbeddingInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EmbeddingInput;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(SHAPES)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EmbeddingInput, E> {
                Ok(EmbeddingInput::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<EmbeddingInput, E> {
                Ok(EmbeddingInput::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EmbeddingInput, A::Error> {
                let mixed = || de::Error::custom(format!("input must be {SHAPES}, not a mix"));
                let Some(first) = seq.next_element::<Item>()? else {
                    return Ok(EmbeddingInput::Texts(Vec::new()));
                };
                match first {
                    Item::Text(s) => {
                        let mut out = vec![s];
                        while let Some(item) = seq.next_element::<Item>()? {
                            let Item::Text(s) = item else {
                                return Err(mixed());
                            };
                            out.push(s);
                            if out.len() > MAX_INPUTS {
                                return Err(too_many());
                            }
                        }
                        Ok(EmbeddingInput::Texts(out))
                    }
                    Item::Token(t) => {
                        let mut out = vec![t];
                        while let Some(item) = seq.next_element::<Item>()? {
                            let Item::Token(t) = item else {
                                return Err(mixed());
                            };
                            out.push(t);
                        }
                        Ok(EmbeddingInput::Tokens(out))
                    }
                    Item::Tokens(t) => {
                        let mut out = vec![t];
                        while let Some(item) = seq.next_element::<Item>()? {
                            let Item::Tokens(t) = item else {
                                return Err(mixed());
                            };
                            out.push(t);
                            if out.len() > MAX_INPUTS {
                                return Err(too_many());
                            }
                        }
                        Ok(EmbeddingInput::TokenLists(out))
                    }
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn too_many<E: de::Error>() -> E {
    E::custom(format!(
        "too many inputs: at most {MAX_INPUTS} are allowed in one request"
    ))
}

/// The response body.
#[derive(Debug, Serialize)]
pub struct EmbeddingResponse {
    pub object: &'static str,
    pub model: String,
    pub data: Vec<Embedding>,
    pub usage: EmbeddingUsage,
}

#[derive(Debug, Serialize)]
pub struct Embedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: Vector,
    /// Extension: DashScope's sparse vector (`output_type` sparse or dense&sparse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse_embedding: Option<Box<RawValue>>,
}

/// One vector, as the client asked for it, ready to be written: the upstream's JSON array of
/// numbers as it came (`float`), or a JSON string of little-endian float32 bytes in standard
/// base64 (`base64`).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Vector(pub Box<RawValue>);

#[derive(Debug, Serialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}
