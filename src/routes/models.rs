//! `GET /v1/models`: the configured models and aliases (or a default list), OpenAI-shaped.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::auth::Authorized;
use crate::error::ProxyError;
use crate::openai::{Model, ModelList};
use crate::state::AppState;

/// A fixed timestamp: the list is configuration, not a catalogue with release dates.
const CREATED: u64 = 1_700_000_000;

fn model_ids(state: &AppState) -> Vec<String> {
    let mut ids: Vec<String> = state.cfg.models.keys().cloned().collect();
    for m in &state.cfg.listed_models {
        if !ids.contains(m) {
            ids.push(m.clone());
        }
    }
    ids.sort();
    ids
}

fn model(id: String, state: &AppState) -> Model {
    let owned_by = match state.cfg.models.get(&id).and_then(|e| e.target.as_ref()) {
        Some(target) if *target != id => format!("dashscope:{target}"),
        _ => "dashscope".to_owned(),
    };
    Model {
        id,
        object: "model",
        created: CREATED,
        owned_by,
    }
}

pub async fn list(_auth: Authorized, State(state): State<AppState>) -> Json<ModelList> {
    let data = model_ids(&state)
        .into_iter()
        .map(|id| model(id, &state))
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}

pub async fn get(
    _auth: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Model>, ProxyError> {
    if model_ids(&state).contains(&id) {
        Ok(Json(model(id, &state)))
    } else {
        Err(ProxyError::Client {
            status: StatusCode::NOT_FOUND,
            message: format!("The model '{id}' is not configured on this gateway"),
            param: Some("model".into()),
            code: "model_not_found".into(),
        })
    }
}
