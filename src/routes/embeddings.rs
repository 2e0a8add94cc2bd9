//! `POST /v1/embeddings`: extract → resolve the model → validate and translate (nothing is
//! sent for a bad field) → one native call per chunk of the model's row limit, at most
//! `embeddings.concurrency` in flight, each with the shared retry rule → reassemble in input
//! order → respond. The first chunk to fail fails the request with its error at once (the other
//! calls are dropped, which cancels them); there is never a partial 200.

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::value::RawValue;

use super::auth::Authorized;
use super::extract::{OpenAiJson, Slot};
use super::observe::Observed;
use crate::dashscope::ErrorBody;
use crate::dashscope::embedding as ds;
use crate::error::ProxyError;
use crate::metrics;
use crate::openai::embeddings as oa;
use crate::routing;
use crate::state::AppState;
use crate::translate::embeddings::{self as temb, ChunkAnswer, Encoding};
use crate::upstream::{self, Answer, Opened, Target};

/// The endpoint label in metrics and logs.
const LABEL: &str = "embedding";

impl<V: temb::IntoVector + Send + 'static> Answer for ds::EmbeddingResponse<V> {
    fn in_band_error(&self) -> Option<ErrorBody> {
        in_band(&self.code, &self.message, &self.request_id)
    }
    fn parse(raw: &[u8]) -> serde_json::Result<Self> {
        V::read_answer(raw)
    }
}

/// The error a 2xx body carries instead of an answer (a non-empty `code`).
pub(super) fn in_band(
    code: &Option<String>,
    message: &Option<String>,
    request_id: &Option<String>,
) -> Option<ErrorBody> {
    code.as_deref()
        .is_some_and(|c| !c.is_empty())
        .then(|| ErrorBody {
            code: code.clone(),
            message: message.clone(),
            request_id: request_id.clone(),
            ..ErrorBody::default()
        })
}

pub async fn create(
    Authorized(auth): Authorized,
    _slot: Slot,
    observed: Observed,
    State(state): State<AppState>,
    OpenAiJson(req): OpenAiJson<oa::EmbeddingRequest>,
) -> Result<Response, ProxyError> {
    let cfg = &state.cfg;
    let route = routing::resolve(cfg, &state.learned, req.model.as_deref().unwrap_or(""));
    observed.model(&route.model);
    observed.endpoint(LABEL);
    let ctx = temb::Ctx {
        upstream_model: &route.target,
        row_limit: cfg.embedding_rows(&route.target, route.entry),
        dimensions: cfg.embedding_dimensions(&route.target, route.entry),
        unknown: cfg.unknown_fields,
    };
    let plan = translate(req, &ctx).await?;
    route.check_key(auth.as_ref())?;
    super::log_warnings(&route.model, &plan.notes);
    let call = route.plan(&state, Target::Path(ds::PATH), false, auth.as_ref(), &[]);
    let (out, request_id) = match plan.encoding {
        Encoding::Float => answer::<Box<RawValue>>(&route.model, &plan, &call, cfg).await?,
        Encoding::Base64 => answer::<temb::F32Base64>(&route.model, &plan, &call, cfg).await?,
    };
    observed.request_id(request_id.as_deref());
    metrics::record_tokens(&route.model, out.usage.prompt_tokens, 0);
    let mut resp = super::json_ok(&out, cfg.log_content)?;
    super::warning_header(&mut resp, &plan.notes);
    Ok(resp)
}

/// Every chunk's answer, its vectors read as `V` (the client's `encoding_format`), reassembled.
async fn answer<V: temb::IntoVector + Send + 'static>(
    client_model: &str,
    plan: &temb::Plan,
    call: &upstream::Plan<'_>,
    cfg: &crate::config::Config,
) -> Result<(oa::EmbeddingResponse, Option<String>), ProxyError> {
    let (answers, request_id) = call_chunks::<V>(plan, call, cfg.embedding_concurrency).await?;
    let out = temb::to_openai(client_model, plan.texts.len(), answers)
        .map_err(ProxyError::BadUpstream)?;
    Ok((out, request_id))
}

/// One native call per chunk, at most `concurrency` in flight. Completion is unordered, so the
/// first failure ends the request at once (dropping the calls still in flight, which cancels
/// them); the answers come back in input order, with the first chunk's request id.
async fn call_chunks<V: temb::IntoVector + Send + 'static>(
    plan: &temb::Plan,
    call: &upstream::Plan<'_>,
    concurrency: usize,
) -> Result<(Vec<ChunkAnswer<V>>, Option<String>), ProxyError> {
    let chunks = plan.chunks();
    tracing::debug!(inputs = plan.texts.len(), calls = chunks.len(), "embedding");
    let mut answers: Vec<(ChunkAnswer<V>, Option<String>)> = futures_util::stream::iter(chunks)
        .map(|range| {
            let body = serde_json::to_vec(&plan.body(range.clone()));
            async move {
                let body = Bytes::from(body.map_err(|e| {
                    ProxyError::Internal(format!("serializing an embedding request: {e}"))
                })?);
                let (opened, _) =
                    upstream::open::<ds::EmbeddingResponse<V>>(call, |_, _| Ok(body.clone()))
                        .await?;
                let Opened::Json {
                    answer, request_id, ..
                } = opened
                else {
                    return Err(ProxyError::BadUpstream(
                        "a stream to an embedding call".into(),
                    ));
                };
                let request_id = answer.request_id.clone().or(request_id);
                let resp = answer;
                Ok((ChunkAnswer { range, resp }, request_id))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    answers.sort_unstable_by_key(|(a, _)| a.range.start);
    let request_id = answers.first().and_then(|(_, id)| id.clone());
    Ok((answers.into_iter().map(|(a, _)| a).collect(), request_id))
}

/// Validate and translate. Token arrays are decoded on a blocking thread: loading the
/// `cl100k_base` tables (first use) and decoding long arrays take milliseconds to seconds, which
/// must not stall the runtime's workers.
async fn translate(
    req: oa::EmbeddingRequest,
    ctx: &temb::Ctx<'_>,
) -> Result<temb::Plan, ProxyError> {
    use oa::EmbeddingInput::{TokenLists, Tokens};
    if !matches!(req.input, Some(Tokens(_) | TokenLists(_))) {
        return Ok(temb::to_dashscope(req, ctx)?);
    }
    let model = ctx.upstream_model.to_owned();
    let dimensions = ctx.dimensions.map(<[u64]>::to_vec);
    let (row_limit, unknown) = (ctx.row_limit, ctx.unknown);
    let plan = tokio::task::spawn_blocking(move || {
        let ctx = temb::Ctx {
            upstream_model: &model,
            row_limit,
            dimensions: dimensions.as_deref(),
            unknown,
        };
        temb::to_dashscope(req, &ctx)
    })
    .await
    .map_err(|e| ProxyError::Internal(format!("decoding token arrays: {e}")))?;
    Ok(plan?)
}
