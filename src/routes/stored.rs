//! Conversation state of `/v1/responses`: the stored chain behind `previous_response_id`,
//! `item_reference` resolution, saving a finished response (`store`, default true), and the
//! stored-response routes (`GET` / `DELETE /v1/responses/{id}`, `GET …/input_items`).
//!
//! `item_reference` is resolved in a bounded way without an index: the items of the loaded
//! chain first; otherwise the item id itself names its response (this gateway's output item
//! ids are `{msg|rs|fc|ctc}_{response tail}_{n}`), so one read of `resp_{tail}` finds it.
//! Every lookup is owner-scoped: another key's response reads as missing.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::Authorized;
use crate::error::ProxyError;
use crate::openai::responses as rs;
use crate::state::AppState;
use crate::store::{Caller, ResponseRecord, StateStore, StoreError, StoredJson};

/// At most this many earlier turns are followed through `previous_response_id`.
pub const MAX_CHAIN: usize = 256;

/// The input of one turn after the state is applied.
pub struct Resolved {
    /// This turn's items (references resolved, ids assigned): what the record stores.
    pub turn: Vec<Value>,
    /// The stored chain (oldest first) followed by `turn`: what is translated (a malformed
    /// `input` stays as sent, so the translator names it).
    pub full: Value,
}

/// Apply `previous_response_id` and resolve `item_reference`s in `input` (a string or a list).
pub async fn resolve(
    store: &dyn StateStore,
    owner: Option<&str>,
    previous: Option<&str>,
    input: Option<Value>,
) -> Result<Resolved, ProxyError> {
    let mut full = match previous {
        Some(id) => chain(store, owner, id).await?,
        None => Vec::new(),
    };
    let items = match input {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": s}]})],
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Ok(Resolved {
                turn: Vec::new(),
                full: other,
            });
        }
    };
    let mut fetched: HashMap<String, Option<ResponseRecord>> = HashMap::new();
    let mut turn = Vec::with_capacity(items.len());
    for (i, mut item) in items.into_iter().enumerate() {
        if item.get("type").and_then(Value::as_str) == Some("item_reference") {
            item = reference(store, owner, &full, &mut fetched, &item, i).await?;
        }
        assign_id(&mut item);
        turn.push(item);
    }
    full.extend(turn.iter().cloned());
    Ok(Resolved {
        turn,
        full: Value::Array(full),
    })
}

fn not_found(id: &str) -> ProxyError {
    ProxyError::Client {
        status: StatusCode::BAD_REQUEST,
        message: format!(
            "Previous response with id '{}' not found.",
            id.chars().take(100).collect::<String>()
        ),
        param: Some("previous_response_id".into()),
        code: "previous_response_not_found".into(),
    }
}

/// Every earlier turn's input and output items, oldest first.
async fn chain(
    store: &dyn StateStore,
    owner: Option<&str>,
    id: &str,
) -> Result<Vec<Value>, ProxyError> {
    let owner = owner.ok_or_else(|| not_found(id))?;
    /// What the walk needs of a record (the stored response object is skipped, not built).
    #[derive(serde::Deserialize)]
    struct Link {
        id: String,
        #[serde(default)]
        input: Vec<Value>,
        #[serde(default)]
        output: Vec<Value>,
        #[serde(default)]
        previous_response_id: Option<String>,
    }
    let mut records: Vec<Link> = Vec::new();
    let mut next = Some(id.to_owned());
    while let Some(cur) = next.take() {
        // A chain that loops back (a reused response id) ends where it repeats.
        if records.iter().any(|r| r.id == cur) {
            break;
        }
        if records.len() >= MAX_CHAIN {
            return Err(ProxyError::bad_request(
                format!(
                    "the conversation is longer than {MAX_CHAIN} stored turns; start a new one with the history in input"
                ),
                Some("previous_response_id"),
                "invalid_value",
            ));
        }
        let raw = store
            .get_response_bytes(owner, &cur)
            .await?
            .ok_or_else(|| not_found(&cur))?;
        let rec: Link = crate::store::decode(&raw)?;
        next = rec.previous_response_id.clone();
        records.push(rec);
    }
    Ok(records
        .into_iter()
        .rev()
        .flat_map(|r| r.input.into_iter().chain(r.output))
        .collect())
}

/// The stored item an `item_reference` names.
async fn reference(
    store: &dyn StateStore,
    owner: Option<&str>,
    chain: &[Value],
    fetched: &mut HashMap<String, Option<ResponseRecord>>,
    item: &Value,
    index: usize,
) -> Result<Value, ProxyError> {
    let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
    let missing = || {
        ProxyError::bad_request(
            format!(
                "Item with id '{}' not found.",
                id.chars().take(100).collect::<String>()
            ),
            Some(&format!("input[{index}]")),
            "item_not_found",
        )
    };
    let has_id = |v: &&Value| v.get("id").and_then(Value::as_str) == Some(id);
    if let Some(found) = chain.iter().rev().find(has_id) {
        return Ok(found.clone());
    }
    let (Some(owner), Some(resp)) = (owner, response_of_item(id)) else {
        return Err(missing());
    };
    if !fetched.contains_key(&resp) {
        let rec = store.get_response(owner, &resp).await?;
        fetched.insert(resp.clone(), rec);
    }
    fetched
        .get(&resp)
        .and_then(Option::as_ref)
        .and_then(|r| r.output.iter().chain(&r.input).find(has_id).cloned())
        .ok_or_else(missing)
}

/// `msg_{tail}_{n}` → `resp_{tail}`.
fn response_of_item(id: &str) -> Option<String> {
    let (_, rest) = id.split_once('_')?;
    let (tail, n) = rest.rsplit_once('_')?;
    (!tail.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| format!("resp_{tail}"))
}

/// Input items get ids as OpenAI's do (listed by `input_items`, paginated by id).
fn assign_id(item: &mut Value) {
    let Some(obj) = item.as_object_mut() else {
        return;
    };
    if obj.get("id").and_then(Value::as_str).is_some() {
        return;
    }
    let prefix = match obj.get("type").and_then(Value::as_str) {
        None | Some("message") => "msg",
        Some("function_call_output") => "fco",
        Some(_) => "item",
    };
    obj.insert(
        "id".into(),
        Value::String(format!("{prefix}_{}", uuid::Uuid::new_v4().simple())),
    );
}

/// What saving a finished response needs.
#[derive(Clone)]
pub struct Saver {
    pub store: Arc<dyn StateStore>,
    pub owner: String,
    pub input: Vec<Value>,
    pub previous: Option<String>,
}

impl Saver {
    pub async fn save(self, r: &rs::Response) -> Result<(), StoreError> {
        // The response object is written once, as text; only the output items (the next
        // turn's history) and the usage are kept as values.
        let object = StoredJson::to_json(r)?;
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
        let output = r
            .output
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        let usage = match &r.usage {
            Some(u) => Some(serde_json::to_value(u).map_err(corrupt)?),
            None => None,
        };
        let record = ResponseRecord {
            id: r.id.clone(),
            owner: self.owner,
            model: r.model.clone(),
            created_at: r.created_at,
            input: self.input,
            output,
            usage,
            previous_response_id: self.previous,
            response: Some(object),
            extra: Map::new(),
        };
        self.store.put_response(&record).await
    }
}

// ---- the stored-response routes ---------------------------------------------------------------

fn missing_response(id: &str) -> ProxyError {
    ProxyError::Client {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "Response with id '{}' not found.",
            id.chars().take(100).collect::<String>()
        ),
        param: None,
        code: "not_found".into(),
    }
}

async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<ResponseRecord, ProxyError> {
    let owner = caller
        .owner
        .as_deref()
        .ok_or_else(|| missing_response(id))?;
    if !id.starts_with("resp_") {
        return Err(missing_response(id));
    }
    state
        .store
        .get_response(owner, id)
        .await?
        .ok_or_else(|| missing_response(id))
}

/// `GET /v1/responses/{id}`: the stored response object.
pub async fn retrieve(
    _: Authorized,
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ProxyError> {
    let rec = load(&state, &caller, &id).await?;
    if let Some(object) = rec.response {
        return super::json_ok(&object, false);
    }
    let object = json!({"id": rec.id, "object": "response", "created_at": rec.created_at,
        "status": "completed", "model": rec.model, "output": rec.output,
        "usage": rec.usage, "previous_response_id": rec.previous_response_id, "store": true});
    Ok(axum::Json(object).into_response())
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    _: Authorized,
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ProxyError> {
    let owner = caller
        .owner
        .as_deref()
        .ok_or_else(|| missing_response(&id))?;
    if !id.starts_with("resp_") || !state.store.delete_response(owner, &id).await? {
        return Err(missing_response(&id));
    }
    Ok(
        axum::Json(json!({"id": id, "object": "response.deleted", "deleted": true}))
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<i64>,
    order: Option<String>,
    after: Option<String>,
    before: Option<String>,
}

/// `GET /v1/responses/{id}/input_items`: the turn's input items, paginated as OpenAI's lists.
pub async fn input_items(
    _: Authorized,
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Response, ProxyError> {
    let rec = load(&state, &caller, &id).await?;
    Ok(axum::Json(paginate(rec.input, &page)?).into_response())
}

fn paginate(mut items: Vec<Value>, page: &Page) -> Result<Value, ProxyError> {
    let limit = match page.limit {
        None => 20,
        Some(l @ 1..=100) => l as usize,
        Some(_) => {
            return Err(ProxyError::bad_request(
                "'limit' must be between 1 and 100",
                Some("limit"),
                "invalid_value",
            ));
        }
    };
    match page.order.as_deref() {
        None | Some("desc") => items.reverse(),
        Some("asc") => {}
        Some(_) => {
            return Err(ProxyError::bad_request(
                "'order' must be 'asc' or 'desc'",
                Some("order"),
                "invalid_value",
            ));
        }
    }
    let id_of = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_owned);
    let position = |cursor: &str, param: &str| {
        items
            .iter()
            .position(|v| id_of(v).as_deref() == Some(cursor))
            .ok_or_else(|| {
                ProxyError::bad_request(
                    format!("No item with id '{cursor}' in this response."),
                    Some(param),
                    "invalid_value",
                )
            })
    };
    let start = match &page.after {
        Some(a) => position(a, "after")? + 1,
        None => 0,
    };
    let end = match &page.before {
        Some(b) => position(b, "before")?,
        None => items.len(),
    };
    let window: Vec<Value> = items
        .get(start..end.max(start))
        .unwrap_or_default()
        .iter()
        .take(limit)
        .cloned()
        .collect();
    let has_more = end.max(start) - start > window.len();
    Ok(json!({
        "object": "list",
        "data": window,
        "first_id": window.first().and_then(id_of),
        "last_id": window.last().and_then(id_of),
        "has_more": has_more,
    }))
}

/// Who is calling, for the Responses route: the owner of what it stores and the sink for
/// the tokens it uses (both set by the limits middleware).
pub struct Turn {
    pub owner: Option<String>,
    pub usage: Option<super::limits::UsageSink>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Turn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Turn {
            owner: parts
                .extensions
                .get::<Caller>()
                .and_then(|c| c.owner.clone()),
            usage: parts.extensions.get::<super::limits::UsageSink>().cloned(),
        })
    }
}
