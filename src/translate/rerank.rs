//! Cohere-style rerank ⇄ native text-rerank (or the compatible `/reranks` API). Pure.
//!
//! `documents` (strings, `{"text"}` objects, or objects read through `rank_fields`) → texts;
//! `top_n`, `return_documents`, `instruct` (or `instruction`) → parameters;
//! `max_chunks_per_doc` / `max_tokens_per_doc` are ignored with a note. The answer's results are
//! put in score order (ties by index), cut to `top_n`, and carry `document` only when asked for.

use serde_json::Value;

use super::request::UnknownPolicy;
use super::{TranslateError, Warnings};
use crate::dashscope::rerank::{self as ds, RerankEndpoint};
use crate::openai::rerank::{self as oa, ApiVersion, Document};

/// Documents per request when neither the configuration nor the built-in table knows the model.
pub const DEFAULT_DOCUMENT_LIMIT: usize = 500;

/// Built-in document limits by model-name prefix (documented per model).
pub const DEFAULT_DOCUMENT_LIMITS: &[(&str, usize)] = &[
    ("qwen3-vl-rerank", 100),
    ("qwen3-rerank", 500),
    ("gte-rerank", 500),
];

/// Models DashScope serves on `/compatible-api/v1/reranks` rather than the native path.
pub const DEFAULT_COMPATIBLE_PREFIXES: &[&str] = &["qwen3-rerank"];

#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub upstream_model: &'a str,
    pub max_documents: usize,
    pub endpoint: RerankEndpoint,
    pub unknown: UnknownPolicy,
}

#[derive(Debug)]
pub struct Plan {
    pub model: String,
    pub query: String,
    pub documents: Vec<String>,
    pub parameters: ds::RerankParameters,
    pub endpoint: RerankEndpoint,
    pub return_documents: bool,
    pub notes: Warnings,
}

impl Plan {
    /// The upstream body for the plan's endpoint.
    pub fn body(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self.endpoint {
            RerankEndpoint::Native => serde_json::to_vec(&ds::RerankRequest {
                model: &self.model,
                input: ds::RerankInput {
                    query: &self.query,
                    documents: &self.documents,
                },
                parameters: &self.parameters,
            }),
            RerankEndpoint::Compatible => serde_json::to_vec(&ds::CompatibleRerankRequest {
                model: &self.model,
                query: &self.query,
                documents: &self.documents,
                top_n: self.parameters.top_n,
                instruct: self.parameters.instruct.as_deref(),
                extra: &self.parameters.extra,
            }),
        }
    }
}

pub fn to_dashscope(req: oa::RerankRequest, ctx: &Ctx<'_>) -> Result<Plan, TranslateError> {
    let mut notes = Warnings::default();
    if req.model.as_deref().is_none_or(str::is_empty) {
        return Err(TranslateError::missing("model"));
    }
    let query = req.query.ok_or_else(|| TranslateError::missing("query"))?;
    if query.is_empty() {
        return Err(TranslateError::invalid(
            "query",
            "'query' must not be an empty string",
        ));
    }
    let docs = req
        .documents
        .ok_or_else(|| TranslateError::missing("documents"))?
        .0;
    if docs.is_empty() {
        return Err(TranslateError::invalid(
            "documents",
            "'documents' must not be an empty list",
        ));
    }
    if docs.len() > ctx.max_documents {
        return Err(TranslateError::invalid(
            "documents",
            format!(
                "too many documents: {} ({} takes at most {} in one request)",
                docs.len(),
                ctx.upstream_model,
                ctx.max_documents
            ),
        ));
    }
    let fields = req.rank_fields.unwrap_or_default();
    let documents = docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| document_text(d, i, &fields))
        .collect::<Result<Vec<_>, _>>()?;
    if req.top_n == Some(0) {
        return Err(TranslateError::invalid(
            "top_n",
            "'top_n' must be at least 1",
        ));
    }
    for (key, present) in [
        ("max_chunks_per_doc", req.max_chunks_per_doc.is_some()),
        ("max_tokens_per_doc", req.max_tokens_per_doc.is_some()),
    ] {
        if present {
            notes.push(format!(
                "{key} ignored (DashScope truncates long documents itself)"
            ));
        }
    }
    let return_documents = req.return_documents.unwrap_or(false);
    let mut parameters = ds::RerankParameters {
        top_n: req.top_n,
        return_documents: (ctx.endpoint == RerankEndpoint::Native && return_documents)
            .then_some(true),
        instruct: req.instruct.or(req.instruction),
        ..ds::RerankParameters::default()
    };
    for (key, value) in req.extra {
        super::unknown_field(ctx.unknown, key, value, &mut parameters.extra, &mut notes)?;
    }
    Ok(Plan {
        model: ctx.upstream_model.to_owned(),
        query,
        documents,
        parameters,
        endpoint: ctx.endpoint,
        return_documents,
        notes,
    })
}

fn document_text(d: Document, i: usize, fields: &[String]) -> Result<String, TranslateError> {
    let mut map = match d {
        Document::Text(s) => return Ok(s),
        Document::Object(map) => map,
    };
    if fields.is_empty() {
        return match map.remove("text") {
            Some(Value::String(s)) => Ok(s),
            _ => Err(TranslateError::invalid(
                format!("documents[{i}]"),
                format!(
                    "'documents[{i}]' needs a \"text\" string (or name its fields in 'rank_fields')"
                ),
            )),
        };
    }
    // Cohere's rank_fields: the named fields as "key: value" lines, in the order given.
    let lines: Vec<String> = fields
        .iter()
        .filter_map(|f| {
            map.get(f).map(|v| match v {
                Value::String(s) => format!("{f}: {s}"),
                other => format!("{f}: {other}"),
            })
        })
        .collect();
    if lines.is_empty() {
        return Err(TranslateError::invalid(
            format!("documents[{i}]"),
            format!("'documents[{i}]' has none of the fields named in 'rank_fields'"),
        ));
    }
    Ok(lines.join("\n"))
}

/// The native (or compatible) answer → the Cohere/Jina-shaped response. An index outside the
/// documents sent is an upstream error (the message becomes a 502).
pub fn to_openai(
    resp: ds::RerankResponse,
    plan: &Plan,
    client_model: &str,
    version: ApiVersion,
    fallback_id: &str,
) -> Result<oa::RerankResponse, String> {
    let id = resp
        .request_id
        .or(resp.id)
        .unwrap_or_else(|| fallback_id.to_owned());
    let raw = match (resp.output, resp.results) {
        (Some(o), _) => o.results,
        (None, Some(r)) => r,
        (None, None) => return Err("upstream answer has no results".to_owned()),
    };
    let mut results = Vec::with_capacity(raw.len());
    for r in raw {
        let Some(text) = plan.documents.get(r.index) else {
            return Err(format!(
                "upstream returned document index {} of {}",
                r.index,
                plan.documents.len()
            ));
        };
        let document = plan.return_documents.then(|| oa::DocumentText {
            text: r
                .document
                .and_then(|d| d.text)
                .unwrap_or_else(|| text.clone()),
        });
        let value = r.relevance_score.get().trim().parse::<f64>().map_err(|_| {
            format!(
                "upstream relevance_score {} is not a number",
                r.relevance_score
            )
        })?;
        results.push(oa::RerankResult {
            index: r.index,
            relevance_score: oa::Score {
                value,
                raw: r.relevance_score,
            },
            document,
        });
    }
    results.sort_by(|a, b| {
        b.relevance_score
            .value
            .total_cmp(&a.relevance_score.value)
            .then(a.index.cmp(&b.index))
    });
    if let Some(n) = plan.parameters.top_n {
        results.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let total = resp.usage.and_then(|u| u.total_tokens).unwrap_or(0);
    Ok(oa::RerankResponse {
        id,
        model: client_model.to_owned(),
        results,
        meta: oa::Meta {
            api_version: oa::ApiVersionInfo {
                version: match version {
                    ApiVersion::V1 => "1",
                    ApiVersion::V2 => "2",
                },
            },
            billed_units: oa::BilledUnits {
                search_units: 1,
                total_tokens: total,
            },
        },
        usage: oa::Usage {
            total_tokens: total,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> oa::RerankRequest {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("bad test request {json}: {e}"))
    }

    fn ctx(endpoint: RerankEndpoint) -> Ctx<'static> {
        Ctx {
            upstream_model: "gte-rerank-v2",
            max_documents: 3,
            endpoint,
            unknown: UnknownPolicy::Forward,
        }
    }

    fn err(json: &str) -> Option<String> {
        to_dashscope(req(json), &ctx(RerankEndpoint::Native))
            .err()
            .and_then(|e| e.param)
    }

    #[test]
    fn native_and_compatible_bodies() {
        let json = r#"{"model":"r","query":"q","documents":["a",{"text":"b"}],"top_n":1,"return_documents":true,"instruction":"Rank"}"#;
        let plan =
            to_dashscope(req(json), &ctx(RerankEndpoint::Native)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8(plan.body().unwrap_or_default()).unwrap_or_default(),
            r#"{"model":"gte-rerank-v2","input":{"query":"q","documents":["a","b"]},"parameters":{"top_n":1,"return_documents":true,"instruct":"Rank"}}"#
        );
        let plan = to_dashscope(req(json), &ctx(RerankEndpoint::Compatible))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8(plan.body().unwrap_or_default()).unwrap_or_default(),
            r#"{"model":"gte-rerank-v2","query":"q","documents":["a","b"],"top_n":1,"instruct":"Rank"}"#
        );
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(
            err(r#"{"query":"q","documents":["a"]}"#).as_deref(),
            Some("model")
        );
        assert_eq!(
            err(r#"{"model":"r","documents":["a"]}"#).as_deref(),
            Some("query")
        );
        assert_eq!(
            err(r#"{"model":"r","query":"","documents":["a"]}"#).as_deref(),
            Some("query")
        );
        assert_eq!(
            err(r#"{"model":"r","query":"q"}"#).as_deref(),
            Some("documents")
        );
        assert_eq!(
            err(r#"{"model":"r","query":"q","documents":[]}"#).as_deref(),
            Some("documents")
        );
        assert_eq!(
            err(r#"{"model":"r","query":"q","documents":["a","b","c","d"]}"#).as_deref(),
            Some("documents")
        );
        assert_eq!(
            err(r#"{"model":"r","query":"q","documents":["a",{"title":"t"}]}"#).as_deref(),
            Some("documents[1]")
        );
        assert_eq!(
            err(r#"{"model":"r","query":"q","documents":["a"],"top_n":0}"#).as_deref(),
            Some("top_n")
        );
    }

    #[test]
    fn rank_fields_join_named_fields() {
        let plan = to_dashscope(
            req(r#"{"model":"r","query":"q","documents":[{"title":"T","body":"B","n":3}],"rank_fields":["body","n"],"max_chunks_per_doc":5}"#),
            &ctx(RerankEndpoint::Native),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.documents, vec!["body: B\nn: 3".to_owned()]);
        assert_eq!(
            plan.notes.list(),
            vec![
                "max_chunks_per_doc ignored (DashScope truncates long documents itself)".to_owned()
            ]
        );
    }

    #[test]
    fn answer_in_score_order_with_documents_on_request() {
        let json = r#"{"model":"r","query":"q","documents":["aa","b","ccc"],"top_n":2,"return_documents":true}"#;
        let plan =
            to_dashscope(req(json), &ctx(RerankEndpoint::Native)).unwrap_or_else(|e| panic!("{e}"));
        let resp: ds::RerankResponse = serde_json::from_str(
            r#"{"output":{"results":[{"index":0,"relevance_score":0.5},{"index":2,"relevance_score":0.75,"document":{"text":"ccc"}}]},"usage":{"total_tokens":9},"request_id":"rid-1"}"#,
        )
        .unwrap_or_default();
        let out =
            to_openai(resp, &plan, "alias", ApiVersion::V2, "gw").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&out).unwrap_or_default(),
            r#"{"id":"rid-1","model":"alias","results":[{"index":2,"relevance_score":0.75,"document":{"text":"ccc"}},{"index":0,"relevance_score":0.5,"document":{"text":"aa"}}],"meta":{"api_version":{"version":"2"},"billed_units":{"search_units":1,"total_tokens":9}},"usage":{"total_tokens":9}}"#
        );
        // The compatible API's shape; documents dropped when not asked for.
        let plan = to_dashscope(
            req(r#"{"model":"r","query":"q","documents":["aa","b"]}"#),
            &ctx(RerankEndpoint::Compatible),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let resp: ds::RerankResponse = serde_json::from_str(
            r#"{"id":"c-1","object":"list","model":"qwen3-rerank","results":[{"document":{"text":"b"},"index":1,"relevance_score":0.25}],"usage":{"total_tokens":4}}"#,
        )
        .unwrap_or_default();
        let out = to_openai(resp, &plan, "qwen3-rerank", ApiVersion::V1, "gw")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.id, "c-1");
        assert_eq!(
            serde_json::to_string(&out.results).unwrap_or_default(),
            r#"[{"index":1,"relevance_score":0.25}]"#
        );
        let bad: ds::RerankResponse =
            serde_json::from_str(r#"{"output":{"results":[{"index":7,"relevance_score":0.1}]}}"#)
                .unwrap_or_default();
        assert!(to_openai(bad, &plan, "m", ApiVersion::V1, "gw").is_err());
    }
}
