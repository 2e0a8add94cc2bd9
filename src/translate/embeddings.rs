//! OpenAI embeddings ⇄ native text embedding: validation, token-array decoding, chunking and
//! ordered reassembly. Pure: the handler sends the chunks and hands the answers back in order.
//!
//! - `input` (string, strings, token array, token arrays) → `input.texts`; token arrays are
//!   decoded with `cl100k_base` (what LangChain's `OpenAIEmbeddings` uses for any non-OpenAI
//!   model name). An unknown token id is a 400; a chunk that ends inside a UTF-8 sequence (LangChain
//!   cuts long texts every 8191 tokens) keeps a U+FFFD in its place.
//! - `dimensions` → `parameters.dimension`, checked against the model's list; on a model with
//!   one fixed size, that size is accepted and not sent.
//! - `encoding_format`: `float` (or absent) → the upstream's numbers as they came; `base64` →
//!   little-endian float32, standard base64, encoded while the native answer is read
//!   ([`F32Base64`]; the usual answer is read by [`native_floats`], each number once).
//! - `text_type` / `input_type`, `output_type`, `instruct` → `parameters`; `user` is ignored.

use std::ops::Range;
use std::sync::OnceLock;

use serde::de::{SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::request::UnknownPolicy;
use super::{TranslateError, Warnings};
use crate::dashscope::embedding as ds;
use crate::openai::embeddings::{self as oa, EmbeddingInput, MAX_INPUTS};

pub mod native_floats;

/// Rows per native call when neither the configuration nor the built-in table knows the model.
pub const DEFAULT_ROW_LIMIT: usize = 10;

/// Built-in row limits by model-name prefix (the native service's documented batch sizes).
pub const DEFAULT_ROW_LIMITS: &[(&str, usize)] = &[
    ("text-embedding-v1", 25),
    ("text-embedding-v2", 25),
    ("text-embedding-v3", 10),
    ("text-embedding-v4", 10),
];

const V4_DIMS: &[u64] = &[2048, 1536, 1024, 768, 512, 256, 128, 64];
const V3_DIMS: &[u64] = &[1024, 768, 512, 256, 128, 64];
const FIXED_1536: &[u64] = &[1536];

/// The sizes a known model accepts for `dimensions`; `None`: not known, passed unvalidated.
pub fn known_dimensions(model: &str) -> Option<&'static [u64]> {
    if model.starts_with("text-embedding-v4") {
        Some(V4_DIMS)
    } else if model.starts_with("text-embedding-v3") {
        Some(V3_DIMS)
    } else if model.starts_with("text-embedding-v1") || model.starts_with("text-embedding-v2") {
        Some(FIXED_1536)
    } else {
        None
    }
}

/// How vectors go back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Float,
    Base64,
}

/// What the handler needs from configuration for one model.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub upstream_model: &'a str,
    /// Rows per native call (≥ 1).
    pub row_limit: usize,
    /// Accepted `dimensions`; `None` passes any value through.
    pub dimensions: Option<&'a [u64]>,
    pub unknown: UnknownPolicy,
}

/// A validated request: every text, the shared parameters and how to cut them into calls.
#[derive(Debug)]
pub struct Plan {
    pub model: String,
    pub texts: Vec<String>,
    pub parameters: ds::EmbeddingParameters,
    pub encoding: Encoding,
    pub row_limit: usize,
    pub notes: Warnings,
}

impl Plan {
    /// The index ranges of the native calls, in input order.
    pub fn chunks(&self) -> Vec<Range<usize>> {
        let step = self.row_limit.max(1);
        (0..self.texts.len())
            .step_by(step)
            .map(|start| start..(start + step).min(self.texts.len()))
            .collect()
    }

    /// The native body of one chunk (borrows the texts).
    pub fn body(&self, range: Range<usize>) -> ds::EmbeddingRequest<'_> {
        ds::EmbeddingRequest {
            model: &self.model,
            input: ds::EmbeddingInput {
                texts: &self.texts[range],
            },
            parameters: &self.parameters,
        }
    }
}

/// Validate and translate. Nothing here is sent anywhere; an error names the field.
pub fn to_dashscope(req: oa::EmbeddingRequest, ctx: &Ctx<'_>) -> Result<Plan, TranslateError> {
    let mut notes = Warnings::default();
    if req.model.as_deref().is_none_or(str::is_empty) {
        return Err(TranslateError::missing("model"));
    }
    let input = req.input.ok_or_else(|| TranslateError::missing("input"))?;
    let texts = texts(input, &mut notes)?;

    let encoding = match req.encoding_format.as_deref() {
        None | Some("float") => Encoding::Float,
        Some("base64") => Encoding::Base64,
        Some(other) => {
            return Err(TranslateError::invalid(
                "encoding_format",
                format!(
                    "Invalid value for 'encoding_format': '{other}' (expected 'float' or 'base64')"
                ),
            ));
        }
    };

    let mut parameters = ds::EmbeddingParameters::default();
    if let Some(d) = req.dimensions {
        parameters.dimension = dimension(d, ctx)?;
    }
    parameters.text_type = match (req.text_type, req.input_type) {
        (Some(t), _) => Some(t),
        (None, Some(i)) => Some(input_type(&i)?.to_owned()),
        (None, None) => None,
    };
    parameters.output_type = req.output_type;
    parameters.instruct = req.instruct;
    if req.user.is_some() {
        notes.push("user ignored (DashScope embeddings have no such field)");
    }
    for (key, value) in req.extra {
        super::unknown_field(ctx.unknown, key, value, &mut parameters.extra, &mut notes)?;
    }
    Ok(Plan {
        model: ctx.upstream_model.to_owned(),
        texts,
        parameters,
        encoding,
        row_limit: ctx.row_limit.max(1),
        notes,
    })
}

fn texts(input: EmbeddingInput, notes: &mut Warnings) -> Result<Vec<String>, TranslateError> {
    let empty_list = || TranslateError::invalid("input", "'input' must not be an empty list");
    let texts = match input {
        EmbeddingInput::Text(s) if s.is_empty() => {
            return Err(TranslateError::invalid(
                "input",
                "'input' must not be an empty string",
            ));
        }
        EmbeddingInput::Text(s) => vec![s],
        EmbeddingInput::Texts(v) if v.is_empty() => return Err(empty_list()),
        EmbeddingInput::Texts(v) => {
            if let Some(i) = v.iter().position(String::is_empty) {
                return Err(TranslateError::invalid(
                    format!("input[{i}]"),
                    format!("'input[{i}]' must not be an empty string"),
                ));
            }
            v
        }
        EmbeddingInput::Tokens(t) => {
            notes.push("token-array input decoded to text with cl100k_base");
            vec![decode(&t, "input")?]
        }
        EmbeddingInput::TokenLists(v) if v.is_empty() => return Err(empty_list()),
        EmbeddingInput::TokenLists(v) => {
            notes.push("token-array input decoded to text with cl100k_base");
            v.iter()
                .enumerate()
                .map(|(i, t)| decode(t, &format!("input[{i}]")))
                .collect::<Result<_, _>>()?
        }
    };
    if texts.len() > MAX_INPUTS {
        return Err(TranslateError::invalid(
            "input",
            format!(
                "too many inputs: {} (at most {MAX_INPUTS} in one request)",
                texts.len()
            ),
        ));
    }
    Ok(texts)
}

fn cl100k() -> Option<&'static tiktoken_rs::CoreBPE> {
    static BPE: OnceLock<Option<tiktoken_rs::CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok()).as_ref()
}

/// Token ids → text with `cl100k_base` (ranks compiled into the binary; no network).
pub fn decode(tokens: &[u32], param: &str) -> Result<String, TranslateError> {
    if tokens.is_empty() {
        return Err(TranslateError::invalid(
            param,
            format!("'{param}' must not be an empty token array"),
        ));
    }
    let bpe = cl100k().ok_or_else(|| {
        TranslateError::unsupported(
            param,
            "token-array input is unavailable: the cl100k_base tables failed to load",
        )
    })?;
    let bytes = bpe.decode_bytes(tokens).map_err(|e| {
        TranslateError::invalid(
            param,
            format!(
                "'{param}' holds token id {} which is not in cl100k_base",
                e.token
            ),
        )
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    if text.is_empty() {
        return Err(TranslateError::invalid(
            param,
            format!("'{param}' decodes to an empty string"),
        ));
    }
    Ok(text)
}

fn dimension(d: u64, ctx: &Ctx<'_>) -> Result<Option<u64>, TranslateError> {
    let Some(allowed) = ctx.dimensions else {
        if d == 0 {
            return Err(TranslateError::invalid(
                "dimensions",
                "Invalid value for 'dimensions': must be greater than 0",
            ));
        }
        return Ok(Some(d));
    };
    if !allowed.contains(&d) {
        let list: Vec<String> = allowed.iter().map(u64::to_string).collect();
        return Err(TranslateError::invalid(
            "dimensions",
            format!(
                "Invalid value for 'dimensions': {} supports {} (got {d})",
                ctx.upstream_model,
                list.join(", ")
            ),
        ));
    }
    // A model with one fixed size takes no `dimension` parameter.
    Ok((allowed.len() > 1).then_some(d))
}

fn input_type(v: &str) -> Result<&'static str, TranslateError> {
    match v {
        "query" | "search_query" => Ok("query"),
        "document" | "passage" | "search_document" => Ok("document"),
        other => Err(TranslateError::invalid(
            "input_type",
            format!(
                "Invalid value for 'input_type': '{other}' (expected query, search_query, document, passage or search_document)"
            ),
        )),
    }
}

// ---- the answer -------------------------------------------------------------------------------

/// One native answer with the range of inputs its call carried.
pub struct ChunkAnswer<V = Box<RawValue>> {
    pub range: Range<usize>,
    pub resp: ds::EmbeddingResponse<V>,
}

/// How a native vector, read by the response parser, becomes the client's vector. The handler
/// parses the native answer as `EmbeddingResponse<Box<RawValue>>` for `float` and as
/// `EmbeddingResponse<F32Base64>` for `base64`.
pub trait IntoVector: serde::de::DeserializeOwned {
    /// The vector as the client asked for it.
    fn into_vector(self) -> Result<oa::Vector, String>;
    /// The vector of an item without one (sparse-only output): `[]`, or `""` in base64.
    fn empty() -> oa::Vector;
    /// The native answer in `raw` (a whole 2xx body).
    fn read_answer(raw: &[u8]) -> serde_json::Result<ds::EmbeddingResponse<Self>> {
        serde_json::from_slice(raw)
    }
}

/// `float`: the upstream's array, byte for byte.
impl IntoVector for Box<RawValue> {
    fn into_vector(self) -> Result<oa::Vector, String> {
        if self.get().trim_start().starts_with('[') {
            Ok(oa::Vector(self))
        } else {
            Err("upstream embedding is not an array".to_owned())
        }
    }
    fn empty() -> oa::Vector {
        raw_vector("[]")
    }
}

/// `base64`: little-endian float32 bytes, standard base64, as a JSON string. Encoded while the
/// native body is read: each number is read once, straight into its four bytes — by
/// [`native_floats::read`] for the usual answer, by serde (float64, then rounded) for any other.
#[derive(Debug)]
pub struct F32Base64(Box<RawValue>);

impl IntoVector for F32Base64 {
    fn into_vector(self) -> Result<oa::Vector, String> {
        Ok(oa::Vector(self.0))
    }
    fn empty() -> oa::Vector {
        raw_vector("\"\"")
    }
    fn read_answer(raw: &[u8]) -> serde_json::Result<ds::EmbeddingResponse<Self>> {
        native_floats::read(raw).map_or_else(|| serde_json::from_slice(raw), Ok)
    }
}

impl native_floats::FromF32Le for F32Base64 {
    fn from_f32_le(bytes: &[u8]) -> Result<Self, String> {
        let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4 + 2);
        text.push('"');
        base64_simd::STANDARD.encode_append(bytes, &mut text);
        text.push('"');
        RawValue::from_string(text)
            .map(F32Base64)
            .map_err(|e| e.to_string())
    }
}

/// `[]` or `""` (always valid JSON: the `null` fallback is never taken).
fn raw_vector(json: &str) -> oa::Vector {
    oa::Vector(RawValue::from_string(json.to_owned()).unwrap_or_default())
}

impl<'de> serde::Deserialize<'de> for F32Base64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = F32Base64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<F32Base64, A::Error> {
                // 2,048 floats (the largest `dimension`) without growing.
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(2048).min(8192) * 4);
                while let Some(x) = seq.next_element::<f64>()? {
                    bytes.extend_from_slice(&(x as f32).to_le_bytes());
                }
                use native_floats::FromF32Le as _;
                F32Base64::from_f32_le(&bytes).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_seq(V)
    }
}

/// Reassemble the chunks' answers into one OpenAI response, `index` 0..n-1 in input order.
/// An upstream answer that does not account for every text exactly once is an error (the
/// message says what was wrong; it becomes a 502).
pub fn to_openai<V: IntoVector>(
    client_model: &str,
    n: usize,
    answers: Vec<ChunkAnswer<V>>,
) -> Result<oa::EmbeddingResponse, String> {
    let mut slots: Vec<Option<oa::Embedding>> = std::iter::repeat_with(|| None).take(n).collect();
    let mut total: u64 = 0;
    for answer in answers {
        let ChunkAnswer { range, resp } = answer;
        total = total.saturating_add(resp.usage.and_then(|u| u.total_tokens).unwrap_or(0));
        let items = resp.output.map(|o| o.embeddings).unwrap_or_default();
        if items.len() != range.len() {
            return Err(format!(
                "upstream returned {} embeddings for {} texts",
                items.len(),
                range.len()
            ));
        }
        for (pos, item) in items.into_iter().enumerate() {
            let local = item.text_index.unwrap_or(pos);
            let index = range.start + local;
            if local >= range.len() || slots[index].is_some() {
                return Err(format!(
                    "upstream returned text_index {local} twice or out of range"
                ));
            }
            let embedding = match item.embedding {
                Some(v) => v.into_vector()?,
                None => V::empty(),
            };
            slots[index] = Some(oa::Embedding {
                object: "embedding",
                index,
                embedding,
                sparse_embedding: item.sparse_embedding,
            });
        }
    }
    let data = slots
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "upstream left some texts without an embedding".to_owned())?;
    Ok(oa::EmbeddingResponse {
        object: "list",
        model: client_model.to_owned(),
        data,
        usage: oa::EmbeddingUsage {
            prompt_tokens: total,
            total_tokens: total,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    fn req(json: &str) -> oa::EmbeddingRequest {
        match serde_json::from_str(json) {
            Ok(r) => r,
            Err(e) => panic!("bad test request {json}: {e}"),
        }
    }

    fn ctx(model: &str) -> Ctx<'_> {
        Ctx {
            upstream_model: model,
            row_limit: 10,
            dimensions: known_dimensions(model),
            unknown: UnknownPolicy::Forward,
        }
    }

    fn err(json: &str, model: &str) -> TranslateError {
        match to_dashscope(req(json), &ctx(model)) {
            Err(e) => e,
            Ok(p) => panic!("expected an error for {json}, got {p:?}"),
        }
    }

    #[test]
    fn chunks_cover_inputs_in_order() {
        let texts: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
        let json = serde_json::json!({"model": "text-embedding-v4", "input": texts}).to_string();
        let plan =
            to_dashscope(req(&json), &ctx("text-embedding-v4")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.chunks(), vec![0..10, 10..20, 20..25]);
        let body = serde_json::to_string(&plan.body(20..25)).unwrap_or_default();
        assert_eq!(
            body,
            r#"{"model":"text-embedding-v4","input":{"texts":["t20","t21","t22","t23","t24"]}}"#
        );
    }

    #[test]
    fn bad_inputs_name_the_parameter() {
        let m = "text-embedding-v4";
        assert_eq!(
            err(r#"{"model":"m","input":""}"#, m).param.as_deref(),
            Some("input")
        );
        assert_eq!(
            err(r#"{"model":"m","input":[]}"#, m).param.as_deref(),
            Some("input")
        );
        assert_eq!(
            err(r#"{"model":"m","input":["a","","c"]}"#, m)
                .param
                .as_deref(),
            Some("input[1]")
        );
        assert_eq!(err(r#"{"input":"a"}"#, m).param.as_deref(), Some("model"));
        assert_eq!(err(r#"{"model":"m"}"#, m).param.as_deref(), Some("input"));
        assert_eq!(
            err(r#"{"model":"m","input":"a","encoding_format":"int8"}"#, m)
                .param
                .as_deref(),
            Some("encoding_format")
        );
        assert_eq!(
            err(
                r#"{"model":"m","input":"a","dimensions":1536}"#,
                "text-embedding-v3"
            )
            .param
            .as_deref(),
            Some("dimensions")
        );
        assert_eq!(
            err(r#"{"model":"m","input":"a","input_type":"weird"}"#, m)
                .param
                .as_deref(),
            Some("input_type")
        );
        assert_eq!(
            err(r#"{"model":"m","input":[[9000000]]}"#, m)
                .param
                .as_deref(),
            Some("input[0]")
        );
        assert_eq!(
            err(r#"{"model":"m","input":[[]]}"#, m).param.as_deref(),
            Some("input[0]")
        );
    }

    #[test]
    fn mixed_or_oversized_input_is_a_parse_error() {
        for json in [
            r#"{"input":["a",1]}"#,
            r#"{"input":[1,[2]]}"#,
            r#"{"input":[-1]}"#,
        ] {
            assert!(
                serde_json::from_str::<oa::EmbeddingRequest>(json).is_err(),
                "{json}"
            );
        }
        let many = serde_json::json!({"input": vec!["x"; MAX_INPUTS + 1]}).to_string();
        let e = serde_json::from_str::<oa::EmbeddingRequest>(&many)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("too many inputs")));
    }

    #[test]
    fn token_arrays_decode_with_cl100k() {
        // "hello world", "Qwen" and a line of Du Fu in cl100k_base (as Python's tiktoken encodes them).
        let plan = to_dashscope(
            req(r#"{"model":"m","input":[[15339,1917],[48,17378],[72406,236,17486,98,36827,45736,163,234,123,28308,116,20648,222]]}"#),
            &ctx("m"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plan.texts,
            vec![
                "hello world".to_owned(),
                "Qwen".to_owned(),
                "风急天高猿啸哀".to_owned()
            ]
        );
        // A chunk cut inside a character keeps a replacement character there.
        let cut = to_dashscope(
            req(r#"{"model":"m","input":[[72406,236,17486]]}"#),
            &ctx("m"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cut.texts, vec!["风\u{fffd}".to_owned()]);
        assert_eq!(
            plan.notes.list(),
            vec!["token-array input decoded to text with cl100k_base".to_owned()]
        );
        let one = to_dashscope(req(r#"{"model":"m","input":[15339]}"#), &ctx("m"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.texts, vec!["hello".to_owned()]);
    }

    #[test]
    fn parameters_and_extras() {
        let plan = to_dashscope(
            req(r#"{"model":"m","input":"a","dimensions":256,"input_type":"search_query","output_type":"dense&sparse","instruct":"Find","user":"u1","foo":1}"#),
            &ctx("text-embedding-v4"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&plan.body(0..1)).unwrap_or_default(),
            r#"{"model":"text-embedding-v4","input":{"texts":["a"]},"parameters":{"dimension":256,"text_type":"query","output_type":"dense&sparse","instruct":"Find","foo":1}}"#
        );
        assert_eq!(
            plan.notes.list(),
            vec!["user ignored (DashScope embeddings have no such field)".to_owned()]
        );
        // text_type wins over input_type; a fixed size is accepted and not sent.
        let plan = to_dashscope(
            req(r#"{"model":"m","input":"a","dimensions":1536,"text_type":"document","input_type":"query"}"#),
            &ctx("text-embedding-v2"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.parameters.dimension, None);
        assert_eq!(plan.parameters.text_type.as_deref(), Some("document"));
        // Unknown models are not validated.
        let plan = to_dashscope(
            req(r#"{"model":"m","input":"a","dimensions":333}"#),
            &ctx("my-embed"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.parameters.dimension, Some(333));
    }

    #[test]
    fn base64_is_little_endian_f32() {
        let b64 = |json: &str| -> Result<String, String> {
            let v: F32Base64 = serde_json::from_str(json).map_err(|e| e.to_string())?;
            let out = serde_json::to_string(&v.into_vector()?).map_err(|e| e.to_string())?;
            serde_json::from_str(&out).map_err(|e| e.to_string())
        };
        let mut expected = Vec::new();
        for x in [1.0f32, -2.5, 0.000_976_562_5, 3.0] {
            expected.extend_from_slice(&x.to_le_bytes());
        }
        assert_eq!(
            b64("[1.0,-2.5,0.0009765625,3]"),
            Ok(STANDARD.encode(&expected))
        );
        // Float64 texts (DashScope's long digits too) to their float32, every base64 tail length.
        let x = [0.1f64, -0.3, 1e-7, 123456.789, -0.006929283495992422, 3.0];
        for n in 1..=x.len() {
            let text = serde_json::to_string(&x[..n]).unwrap_or_default();
            let bytes: Vec<u8> = x[..n]
                .iter()
                .flat_map(|v| (*v as f32).to_le_bytes())
                .collect();
            assert_eq!(b64(&text), Ok(STANDARD.encode(&bytes)));
        }
        assert_eq!(b64("[]"), Ok(String::new()));
        assert!(b64("[\"x\"]").is_err());
        assert!(b64("[\"1.5\"]").is_err());
        assert!(b64("[null]").is_err());
        assert!(b64("[[1]]").is_err());
        assert!(b64("{}").is_err());
    }

    #[test]
    fn reassembly_uses_text_index_and_sums_usage() {
        let a: ds::EmbeddingResponse = serde_json::from_str(
            r#"{"output":{"embeddings":[{"text_index":1,"embedding":[2]},{"text_index":0,"embedding":[1]}]},"usage":{"total_tokens":3},"request_id":"r1"}"#,
        ).unwrap_or_default();
        let b: ds::EmbeddingResponse = serde_json::from_str(
            r#"{"output":{"embeddings":[{"index":0,"embedding":[3],"sparse_embedding":[{"index":5,"value":0.5}]}]},"usage":{"total_tokens":4}}"#,
        ).unwrap_or_default();
        let out = to_openai(
            "alias",
            3,
            vec![
                ChunkAnswer {
                    range: 0..2,
                    resp: a,
                },
                ChunkAnswer {
                    range: 2..3,
                    resp: b,
                },
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&out).unwrap_or_default(),
            r#"{"object":"list","model":"alias","data":[{"object":"embedding","index":0,"embedding":[1]},{"object":"embedding","index":1,"embedding":[2]},{"object":"embedding","index":2,"embedding":[3],"sparse_embedding":[{"index":5,"value":0.5}]}],"usage":{"prompt_tokens":7,"total_tokens":7}}"#
        );
        let short: ds::EmbeddingResponse =
            serde_json::from_str(r#"{"output":{"embeddings":[{"text_index":0,"embedding":[1]}]}}"#)
                .unwrap_or_default();
        assert!(
            to_openai(
                "m",
                2,
                vec![ChunkAnswer {
                    range: 0..2,
                    resp: short
                }]
            )
            .is_err()
        );
    }
}
