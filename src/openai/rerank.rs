//! The rerank request and response in the Cohere shape (what Cohere's SDKs, LiteLLM's proxy and
//! "OpenAI-compatible rerank" clients speak), with Jina's `usage` added to the response.
//!
//! `documents` is read by a visitor that stops at [`MAX_DOCUMENTS`] + 1 elements, so a hostile
//! body cannot grow memory beyond that; the per-model limit is checked by the translator.

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::lenient::lenient_struct;

/// The most documents any request may carry, whatever the model (the wire's hard bound).
pub const MAX_DOCUMENTS: usize = 10_000;

lenient_struct! {
    pub struct RerankRequest {
        model: String,
        query: String,
        documents: Documents,
        top_n: u64,
        return_documents: bool,
        /// DashScope's task instruction (qwen3-rerank); `instruction` is accepted too.
        instruct: String,
        instruction: String,
        rank_fields: Vec<String>,
        max_chunks_per_doc: Value,
        max_tokens_per_doc: Value,
    }
}

/// A document: a string, or an object (`{"text"}`, or fields chosen by `rank_fields`).
#[derive(Debug, PartialEq)]
pub enum Document {
    Text(String),
    Object(Map<String, Value>),
}

#[derive(Debug, Default, PartialEq)]
pub struct Documents(pub Vec<Document>);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Document;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an object with a \"text\" field")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Document, E> {
                Ok(Document::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Document, E> {
                Ok(Document::Text(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
                let mut out = Map::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.insert(k, v);
                }
                Ok(Document::Object(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Documents {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Documents;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of documents")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Documents, A::Error> {
                let mut out = Vec::new();
                while let Some(doc) = seq.next_element::<Document>()? {
                    if out.len() == MAX_DOCUMENTS {
                        return Err(de::Error::custom(format!(
                            "too many documents: at most {MAX_DOCUMENTS} are accepted"
                        )));
                    }
                    out.push(doc);
                }
                Ok(Documents(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Which response shape the client's path asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `/v1/rerank` and `/rerank` (Cohere v1, LiteLLM, Jina-style clients).
    V1,
    /// `/v2/rerank` (Cohere `ClientV2`, LiteLLM's `cohere/` provider).
    V2,
}

/// The response body.
#[derive(Debug, Serialize)]
pub struct RerankResponse {
    pub id: String,
    pub model: String,
    pub results: Vec<RerankResult>,
    pub meta: Meta,
    pub usage: Usage,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RerankResult {
    pub index: usize,
    pub relevance_score: Score,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentText>,
}

/// A relevance score: written exactly as DashScope sent it, compared by value.
#[derive(Debug, Clone)]
pub struct Score {
    pub value: f64,
    pub raw: Box<RawValue>,
}

impl Serialize for Score {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Score) -> bool {
        self.value == other.value
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DocumentText {
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct Meta {
    pub api_version: ApiVersionInfo,
    pub billed_units: BilledUnits,
}

#[derive(Debug, Serialize)]
pub struct ApiVersionInfo {
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct BilledUnits {
    pub search_units: u64,
    pub total_tokens: u64,
}

#[derive(Debug, Serialize)]
pub struct Usage {
    pub total_tokens: u64,
}
