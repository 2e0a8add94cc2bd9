//! `POST /v1/rerank`, `/rerank` (Cohere v1 / LiteLLM / Jina shape) and `/v2/rerank` (Cohere
//! `ClientV2`): extract → resolve the model → validate and translate (too many documents is a
//! 400, nothing sent) → one call to the model's rerank service (native, or the compatible
//! `/reranks` API for `qwen3-rerank`) with the shared retry rule → results in score order.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use super::auth::Authorized;
use super::embeddings::in_band;
use super::extract::{OpenAiJson, Slot};
use super::observe::Observed;
use crate::dashscope::ErrorBody;
use crate::dashscope::rerank as ds;
use crate::error::ProxyError;
use crate::metrics;
use crate::openai::rerank::{self as oa, ApiVersion};
use crate::routing;
use crate::state::AppState;
use crate::translate::rerank as trr;
use crate::upstream::{self, Answer, Opened, Target};

impl Answer for ds::RerankResponse {
    fn in_band_error(&self) -> Option<ErrorBody> {
        in_band(&self.code, &self.message, &self.request_id)
    }
}

pub async fn v1(
    auth: Authorized,
    slot: Slot,
    observed: Observed,
    state: State<AppState>,
    headers: HeaderMap,
    req: OpenAiJson<oa::RerankRequest>,
) -> Result<Response, ProxyError> {
    rerank(ApiVersion::V1, auth, slot, observed, state, headers, req).await
}

pub async fn v2(
    auth: Authorized,
    slot: Slot,
    observed: Observed,
    state: State<AppState>,
    headers: HeaderMap,
    req: OpenAiJson<oa::RerankRequest>,
) -> Result<Response, ProxyError> {
    rerank(ApiVersion::V2, auth, slot, observed, state, headers, req).await
}

async fn rerank(
    version: ApiVersion,
    Authorized(auth): Authorized,
    _slot: Slot,
    observed: Observed,
    State(state): State<AppState>,
    headers: HeaderMap,
    OpenAiJson(req): OpenAiJson<oa::RerankRequest>,
) -> Result<Response, ProxyError> {
    let cfg = &state.cfg;
    let route = routing::resolve(cfg, &state.learned, req.model.as_deref().unwrap_or(""));
    observed.model(&route.model);
    let endpoint = cfg.rerank_endpoint(&route.target, route.entry);
    observed.endpoint(endpoint.label());
    let ctx = trr::Ctx {
        upstream_model: &route.target,
        max_documents: cfg.rerank_documents(&route.target, route.entry),
        endpoint,
        unknown: cfg.unknown_fields,
    };
    let plan = trr::to_dashscope(req, &ctx)?;
    route.check_key(auth.as_ref())?;
    super::log_warnings(&route.model, &plan.notes);
    let body = Bytes::from(
        plan.body()
            .map_err(|e| ProxyError::Internal(format!("serializing a rerank request: {e}")))?,
    );
    let call = route.plan(
        &state,
        Target::Path(endpoint.path()),
        false,
        auth.as_ref(),
        &[],
    );
    let (opened, _) = upstream::open::<ds::RerankResponse>(&call, |_, _| Ok(body.clone())).await?;
    let Opened::Json {
        answer, request_id, ..
    } = opened
    else {
        return Err(ProxyError::BadUpstream("a stream to a rerank call".into()));
    };
    let request_id = answer
        .request_id
        .clone()
        .or(answer.id.clone())
        .or(request_id);
    observed.request_id(request_id.as_deref());
    let fallback = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let out = trr::to_openai(answer, &plan, &route.model, version, fallback)
        .map_err(ProxyError::BadUpstream)?;
    metrics::record_tokens(&route.model, out.usage.total_tokens, 0);
    let mut resp = super::json_ok(&out, cfg.log_content)?;
    super::warning_header(&mut resp, &plan.notes);
    Ok(resp)
}
