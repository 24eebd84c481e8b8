//! An in-process Gemini-shaped upstream: its own API under `/v1beta` and
//! `/v1` (`models/{model}:{method}`, the key as `x-goog-api-key`, a bad
//! key answered as Google does: 400 with reason `API_KEY_INVALID`),
//! streams as server-sent events ending in `\r\n\r\n` with the counts so
//! far in every chunk (as Google sends them), embeddings without usage,
//! the OpenAI-compatible `/v1beta/openai/chat/completions` with a
//! Bearer key, and cached contents kept for the whole account as Google
//! keeps them (created, listed two a page with opaque page tokens, read,
//! updated, deleted, and named by `generateContent`), and files as
//! Google's resumable upload makes them (a start answers the parts'
//! address on Google's host, as Google does), read, listed, deleted and
//! named by a prompt's `fileUri`.

use crate::{MockState, Seen, UPSTREAM_KEY};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use chatgate::config::{UpstreamConfig, UpstreamKind};
use serde_json::{json, Value};

/// What every reply reports: (prompt, candidates, thoughts, cached,
/// tool-use prompt) tokens.
pub const GEMINI_USAGE: (i64, i64, i64, i64, i64) = (50, 7, 13, 20, 3);
/// What `countTokens` answers.
pub const GEMINI_COUNTED: i64 = 17;

pub struct GeminiMock {
    /// Without a version, as a `gemini` upstream's `base_url` is written.
    pub url: String,
    pub state: MockState,
}

impl GeminiMock {
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the Gemini mock saw no request")
    }
}

pub fn gemini_upstream(name: &str, base_url: &str, models: &[&str]) -> UpstreamConfig {
    crate::upstream(UpstreamKind::Gemini, name, base_url, models)
}

fn error(status: u16, name: &str, message: &str, reason: Option<&str>) -> HttpResponse {
    let mut body = json!({"error": {"code": status, "message": message, "status": name}});
    if let Some(r) = reason {
        body["error"]["details"] = json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": r, "domain": "googleapis.com"}]);
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body)
}

/// `usageMetadata` with `candidates` tokens of the reply so far.
fn usage(candidates: i64, thoughts: i64) -> Value {
    let (prompt, _, _, cached, tool) = GEMINI_USAGE;
    json!({"promptTokenCount": prompt, "candidatesTokenCount": candidates,
           "thoughtsTokenCount": thoughts, "cachedContentTokenCount": cached,
           "toolUsePromptTokenCount": tool,
           "totalTokenCount": prompt + tool + candidates + thoughts})
}

fn chunk(text: &str, finish: Option<&str>, usage: Value, model: &str) -> Value {
    let mut candidate =
        json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
    if let Some(f) = finish {
        candidate["finishReason"] = json!(f);
    }
    json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": model})
}

/// A reply's last chunk, grounded (as Google marks it) when the request
/// offered Google Search.
fn grounded(mut chunk: Value, request: &Value) -> Value {
    let searched = request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t.get("googleSearch").is_some());
    if searched {
        chunk["candidates"][0]["groundingMetadata"] = json!({"webSearchQueries": ["weather today", "weather tomorrow"],
                   "groundingChunks": [{"web": {"uri": "https://example.com", "title": "x"}}]});
    }
    chunk
}

async fn handle(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    state.seen.lock().unwrap().push(Seen::of(&req, &body));
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_owned())
    };
    let path = req.path();
    if path == "/v1beta/openai/chat/completions" {
        if header("authorization") != Some(format!("Bearer {UPSTREAM_KEY}")) {
            return error(401, "UNAUTHENTICATED", "bad key", None);
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or_default();
        return HttpResponse::Ok().json(json!({
            "id": "chatcmpl-g", "object": "chat.completion", "created": 1,
            "model": request["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
        }));
    }
    if header("x-goog-api-key").as_deref() != Some(UPSTREAM_KEY) {
        return error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            Some("API_KEY_INVALID"),
        );
    }
    if let Some(rest) = path.strip_prefix("/v1beta/cachedContents") {
        return cached_contents(&req, rest, &body, &state);
    }
    if path.starts_with("/upload/v1beta/files") || path.starts_with("/v1beta/files") {
        return files(&req, &body, &state);
    }
    let call = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))
        .and_then(|rest| rest.rsplit_once(':'));
    let Some((model, method)) = call else {
        return error(404, "NOT_FOUND", "no such method", None);
    };
    let (_, candidates, thoughts, _, _) = GEMINI_USAGE;
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let uris = request["contents"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| {
            c["parts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["fileData"]["fileUri"].as_str())
        });
    for uri in uris {
        let known = state
            .objects
            .lock()
            .unwrap()
            .iter()
            .any(|(_, v)| v["uri"] == uri);
        if !known {
            return error(
                403,
                "PERMISSION_DENIED",
                "You do not have permission to access the File",
                None,
            );
        }
    }
    if let Some(cached) = request["cachedContent"].as_str() {
        let known = state
            .objects
            .lock()
            .unwrap()
            .iter()
            .any(|(n, _)| n == cached);
        if !known {
            return error(403, "PERMISSION_DENIED", "CachedContent not found", None);
        }
    }
    match method {
        "generateContent" => HttpResponse::Ok().json(grounded(
            chunk(
                "Hello world",
                Some("STOP"),
                usage(candidates, thoughts),
                model,
            ),
            &request,
        )),
        "streamGenerateContent" => {
            if req.query_string() != "alt=sse" {
                // Google streams a JSON array without it; the gateway
                // never asks for that.
                return error(400, "INVALID_ARGUMENT", "expected alt=sse", None);
            }
            let events = [
                chunk("Hello", None, usage(2, thoughts), model),
                grounded(
                    chunk(" world", Some("STOP"), usage(candidates, thoughts), model),
                    &request,
                ),
            ];
            let text: String = events
                .iter()
                .map(|e| format!("data: {e}\r\n\r\n"))
                .collect();
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .body(text)
        }
        "countTokens" => HttpResponse::Ok().json(json!({"totalTokens": GEMINI_COUNTED})),
        "embedContent" => HttpResponse::Ok().json(json!({"embedding": {"values": [0.1, 0.2]}})),
        "batchEmbedContents" => HttpResponse::Ok().json(json!({"embeddings": [
            {"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]})),
        _ => error(404, "NOT_FOUND", "no such method", None),
    }
}

/// What a cached content counts (`usageMetadata.totalTokenCount`).
pub const GEMINI_CACHED_TOKENS: i64 = 4321;

/// `/v1beta/cachedContents…`: the account's, whoever's key.
fn cached_contents(req: &HttpRequest, rest: &str, body: &[u8], state: &MockState) -> HttpResponse {
    let mut objects = state.objects.lock().unwrap();
    let method = req.method().as_str();
    if rest.is_empty() {
        return match method {
            "POST" => {
                let n = state.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let name = format!("cachedContents/cc{n}");
                let mut v: Value = serde_json::from_slice(body).unwrap_or_default();
                v["name"] = json!(name);
                v["usageMetadata"] = json!({"totalTokenCount": GEMINI_CACHED_TOKENS});
                v.as_object_mut().unwrap().remove("contents");
                objects.push((name, v.clone()));
                HttpResponse::Ok().json(v)
            }
            "GET" => {
                // Two a page; the token is the next entry's index, opaque.
                let query: std::collections::HashMap<String, String> =
                    url::form_urlencoded::parse(req.query_string().as_bytes())
                        .into_owned()
                        .collect();
                let from: usize = query
                    .get("pageToken")
                    .and_then(|t| t.strip_prefix("tok"))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let all: Vec<&Value> = objects
                    .iter()
                    .filter(|(n, _)| n.starts_with("cachedContents/"))
                    .map(|(_, v)| v)
                    .collect();
                let page: Vec<&Value> = all.iter().skip(from).take(2).copied().collect();
                let mut v = json!({});
                if !page.is_empty() {
                    v["cachedContents"] = json!(page);
                }
                if from + 2 < all.len() {
                    v["nextPageToken"] = json!(format!("tok{}", from + 2));
                }
                HttpResponse::Ok().json(v)
            }
            _ => error(405, "INVALID_ARGUMENT", "method", None),
        };
    }
    let name = format!("cachedContents{rest}");
    let Some(at) = objects.iter().position(|(n, _)| *n == name) else {
        return error(403, "PERMISSION_DENIED", "CachedContent not found", None);
    };
    match method {
        "GET" => HttpResponse::Ok().json(objects[at].1.clone()),
        "PATCH" => {
            let update: Value = serde_json::from_slice(body).unwrap_or_default();
            objects[at].1["ttl"] = update["ttl"].clone();
            HttpResponse::Ok().json(objects[at].1.clone())
        }
        "DELETE" => {
            objects.remove(at);
            HttpResponse::Ok().json(json!({}))
        }
        _ => error(405, "INVALID_ARGUMENT", "method", None),
    }
}

/// Uploads and files: the account's, whoever's key.
fn files(req: &HttpRequest, body: &[u8], state: &MockState) -> HttpResponse {
    let mut objects = state.objects.lock().unwrap();
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let next = || state.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = req.path();
    match (req.method().as_str(), path) {
        ("POST", "/upload/v1beta/files") => match query.get("upload_id") {
            None => {
                if header("x-goog-upload-command") != "start" {
                    return error(400, "INVALID_ARGUMENT", "start first", None);
                }
                let id = format!("up{}", next());
                let meta: Value = serde_json::from_slice(body).unwrap_or_default();
                objects.push((
                    format!("uploads/{id}"),
                    json!({"meta": meta["file"], "bytes": 0}),
                ));
                HttpResponse::Ok()
                    .insert_header((
                        "x-goog-upload-url",
                        format!("https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id={id}&upload_protocol=resumable"),
                    ))
                    .insert_header(("x-goog-upload-status", "active"))
                    .finish()
            }
            Some(id) => {
                let key = format!("uploads/{id}");
                let Some(at) = objects.iter().position(|(n, _)| *n == key) else {
                    return error(404, "NOT_FOUND", "no such upload", None);
                };
                let size = objects[at].1["bytes"].as_u64().unwrap() + body.len() as u64;
                objects[at].1["bytes"] = json!(size);
                if !header("x-goog-upload-command").contains("finalize") {
                    // An address on Google's host, as a start's: the
                    // gateway must not hand it on from a part.
                    return HttpResponse::Ok()
                        .insert_header(("x-goog-upload-status", "active"))
                        .insert_header((
                            "x-goog-upload-url",
                            "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=elsewhere",
                        ))
                        .finish();
                }
                let meta = objects.remove(at).1["meta"].clone();
                let n = next();
                let file = json!({"name": format!("files/f{n}"), "displayName": meta["displayName"],
                    "mimeType": meta["mimeType"], "sizeBytes": size.to_string(), "state": "ACTIVE",
                    "uri": format!("https://generativelanguage.googleapis.com/v1beta/files/f{n}")});
                objects.push((format!("files/f{n}"), file.clone()));
                HttpResponse::Ok()
                    .insert_header(("x-goog-upload-status", "final"))
                    .json(json!({"file": file}))
            }
        },
        ("GET", "/v1beta/files") => {
            let all: Vec<Value> = objects
                .iter()
                .filter(|(n, _)| n.starts_with("files/"))
                .map(|(_, v)| v.clone())
                .collect();
            HttpResponse::Ok().json(if all.is_empty() {
                json!({})
            } else {
                json!({"files": all})
            })
        }
        (method, _) => {
            let name = path.trim_start_matches("/v1beta/").to_owned();
            let Some(at) = objects.iter().position(|(n, _)| *n == name) else {
                return error(403, "PERMISSION_DENIED", "You do not have permission", None);
            };
            match method {
                "GET" => HttpResponse::Ok().json(objects[at].1.clone()),
                "DELETE" => {
                    objects.remove(at);
                    HttpResponse::Ok().json(json!({}))
                }
                _ => error(405, "INVALID_ARGUMENT", "method", None),
            }
        }
    }
}

pub fn start_gemini_mock() -> GeminiMock {
    let state = MockState::default();
    let port = crate::mock::serve(&state, handle);
    GeminiMock {
        url: format!("http://127.0.0.1:{port}"),
        state,
    }
}
