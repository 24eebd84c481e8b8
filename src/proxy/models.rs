//! `GET /v1/models` (and `/v1/models/{id}`): the union of what the upstreams
//! serve, filtered by what the caller may use, answered by the gateway.
//! Fixed lists come from the configuration; an OpenAI upstream that serves
//! model patterns (`["*"]`) contributes its own live list.

use super::body::RequestBody;
use crate::error::ApiError;
use crate::keytable::Caller;
use crate::state::Gateway;
use crate::upstream::client::Clients;
use crate::upstream::failover::{self, Answer};
use crate::upstream::{Target, Upstream, Upstreams};
use actix_web::HttpRequest;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// The largest upstream model list read.
const MAX_MODEL_LIST: usize = 8 * 1024 * 1024;

/// The merged list as an OpenAI `list` object, and the upstream asked last
/// (for the usage record).
pub async fn list(
    upstreams: &Upstreams,
    clients: &Clients,
    req: &HttpRequest,
    caller: &Caller,
    gw: &Gateway,
) -> Result<(Value, Option<Arc<str>>), ApiError> {
    let mut seen = HashSet::new();
    let mut data: Vec<Value> = Vec::new();
    let mut asked = None;
    let mut failure = None;
    for u in upstreams.all() {
        let entries = if u.lists_live() {
            match live(u, clients, req, &mut asked).await {
                Ok(entries) => {
                    // Listed names may label metrics; made-up ones may not.
                    gw.metrics
                        .know_models(entries.iter().filter_map(|e| e["id"].as_str()));
                    entries
                }
                Err(e) => {
                    tracing::warn!(upstream = %u.name, "cannot list the upstream's models: {e}");
                    failure = Some(e);
                    continue;
                }
            }
        } else {
            configured(u)
        };
        for entry in entries {
            let Some(id) = entry["id"].as_str() else {
                continue;
            };
            if caller.may_use(id) && seen.insert(id.to_owned()) {
                data.push(entry);
            }
        }
    }
    if asked.is_none() {
        asked = upstreams.all().first().map(|u| u.name.clone());
    }
    match failure {
        Some(e) if data.is_empty() => Err(e),
        _ => Ok((json!({"object": "list", "data": data}), asked)),
    }
}

/// `GET /v1/models/{id}`: the entry of the list, or 404 `model_not_found`.
pub async fn one(
    upstreams: &Upstreams,
    clients: &Clients,
    req: &HttpRequest,
    caller: &Caller,
    gw: &Gateway,
    id: &str,
) -> Result<(actix_web::http::StatusCode, Value, Option<Arc<str>>), ApiError> {
    let (mut list, asked) = list(upstreams, clients, req, caller, gw).await?;
    let found = list["data"]
        .as_array_mut()
        .and_then(|d| d.iter_mut().find(|e| e["id"] == id))
        .map(Value::take)
        .or_else(|| served(upstreams, caller, id));
    match found {
        Some(entry) => Ok((actix_web::http::StatusCode::OK, entry, asked)),
        None => Err(ApiError::ModelNotFound(format!(
            "The model `{}` does not exist or you do not have access to it.",
            id.chars().take(200).collect::<String>()
        ))),
    }
}

/// A model no list names that an upstream with a configured pattern
/// (`claude-*`, echo's `*`) serves: asking for it by id is how clients
/// check a model before using it (Claude Code does), so it answers as
/// using it would. An upstream that lists live is not asked: its list
/// is the truth.
fn served(upstreams: &Upstreams, caller: &Caller, id: &str) -> Option<Value> {
    let u = upstreams
        .all()
        .iter()
        .find(|u| !u.lists_live() && u.serves(id))?;
    caller
        .may_use(id)
        .then(|| json!({"id": id, "object": "model", "created": 0, "owned_by": &*u.name}))
}

/// The list (or one entry of it) in Anthropic's shape, for a request with
/// `anthropic-version`: `{"data": [{"type": "model", "id", "display_name",
/// "created_at"}], "has_more", "first_id", "last_id"}`.
pub fn anthropic_shape(openai: Value) -> Value {
    let entry = |e: &Value| {
        json!({"type": "model", "id": e["id"], "display_name": e["id"],
               "created_at": "1970-01-01T00:00:00Z"})
    };
    match openai["data"].as_array() {
        Some(list) => {
            let data: Vec<Value> = list.iter().map(entry).collect();
            json!({
                "data": data, "has_more": false,
                "first_id": data.first().map(|e| e["id"].clone()),
                "last_id": data.last().map(|e| e["id"].clone()),
            })
        }
        None => entry(&openai),
    }
}

/// The list (or one entry of it) in Google's shape, for Gemini's face:
/// the models of upstreams that speak Gemini's API,
/// `{"models": [{"name": "models/ID", "displayName", …}]}`; one entry of
/// another upstream is not found.
pub fn google_shape(openai: Value, upstreams: &Upstreams) -> Result<Value, ApiError> {
    let speaks = |e: &Value| {
        e["owned_by"]
            .as_str()
            .and_then(|name| upstreams.named(name))
            .is_some_and(|u| u.speaks(crate::catalogue::Face::Gemini))
    };
    let entry = |e: &Value| {
        let id = e["id"].as_str().unwrap_or_default();
        json!({"name": format!("models/{id}"), "version": "001", "displayName": id,
               "description": "", "supportedGenerationMethods": [
                   "generateContent", "streamGenerateContent", "countTokens",
                   "embedContent", "batchEmbedContents"]})
    };
    match openai["data"].as_array() {
        Some(list) => {
            let models: Vec<Value> = list.iter().filter(|e| speaks(e)).map(entry).collect();
            Ok(json!({ "models": models }))
        }
        None if speaks(&openai) => Ok(entry(&openai)),
        None => Err(ApiError::ModelNotFound(format!(
            "The model `{}` is not served on Gemini's API here.",
            openai["id"].as_str().unwrap_or_default()
        ))),
    }
}

fn configured(u: &Upstream) -> Vec<Value> {
    let mut names = u.listed_models();
    if names.is_empty() && matches!(u.target, Target::Echo(_)) {
        // The echo upstream answers any model; show a few that clients'
        // model pickers and set-up checks know.
        names.extend(crate::upstream::echo::COMMON_MODELS);
    }
    names
        .into_iter()
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": &*u.name}))
        .collect()
}

async fn live(
    u: &Upstream,
    clients: &Clients,
    req: &HttpRequest,
    asked: &mut Option<Arc<str>>,
) -> Result<Vec<Value>, ApiError> {
    let mut body = RequestBody::None;
    let scrub = |text: &[u8]| bytes::Bytes::copy_from_slice(text);
    let out = failover::Outgoing::new(req, "/models", None);
    let (answer, _) = match failover::with_failover(clients, &[u], &scrub, &out, &mut body).await {
        Ok(a) => a,
        Err((e, tried)) => {
            *asked = tried;
            return Err(e);
        }
    };
    *asked = Some(u.name.clone());
    let mut res = match answer {
        Answer::Live(res) => res,
        Answer::Read { status, .. } => {
            return Err(ApiError::Upstream(format!(
                "The upstream `{}` answered {} to a model list request.",
                u.name,
                status.as_u16()
            )))
        }
    };
    let bytes = res.body().limit(MAX_MODEL_LIST).await.map_err(|e| {
        ApiError::Upstream(format!("Cannot read the model list of `{}`: {e}.", u.name))
    })?;
    let mut list: Value = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::Upstream(format!("The model list of `{}` is not JSON.", u.name)))?;
    Ok(match list.get_mut("data").map(Value::take) {
        Some(Value::Array(entries)) => entries,
        _ => Vec::new(),
    })
}
