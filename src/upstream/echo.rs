//! The built-in `echo` upstream: no network, no key. It answers chat
//! completions (`echo/chat.rs`), the Responses API (`echo/responses.rs`),
//! Anthropic's Messages API (`echo/messages.rs`) and Gemini's
//! (`echo/gemini.rs`) with the last user message (streamed word by word when asked) or, when the request forces
//! one, a tool call (`echo/tools.rs`); text completions with the prompt,
//! embeddings with small deterministic vectors; and reports usage counted
//! with the tokenizer. For demos, client set-up checks and tests.
//! (Its models appear in `/v1/models` through the merged list.)

mod chat;
mod gemini;
mod messages;
mod responses;
mod tools;

use crate::error::ErrorBody;
use crate::usage::{count_tokens, Tokens};
use actix_web::http::{Method, StatusCode};
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub struct Echo;

/// What an echo upstream that serves every model lists in `/v1/models`.
pub const COMMON_MODELS: [&str; 10] = [
    "echo",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "claude-sonnet-4-5",
    "claude-opus-4-1",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-embedding-001",
];

pub enum Body {
    Full(Bytes),
    /// Server-sent events, one chunk each.
    Events(Vec<Bytes>),
}

pub struct LocalReply {
    pub status: StatusCode,
    pub body: Body,
    pub tokens: Option<Tokens>,
}

/// Per-message overhead of the chat format (OpenAI's cookbook numbers).
const TOKENS_PER_MESSAGE: i64 = 3;
const REPLY_PRIMING: i64 = 3;
const EMBEDDING_DIMENSIONS: usize = 16;

impl Echo {
    pub fn respond(&self, method: &Method, endpoint: &str, body: Option<&[u8]>) -> LocalReply {
        let request: Value = body
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        if crate::catalogue::is_gemini_call(endpoint) {
            return gemini::respond(method, endpoint, &request);
        }
        match (method.as_str(), endpoint) {
            ("POST", "/chat/completions") => chat::chat(&request),
            ("POST", "/completions") => completion(&request),
            ("POST", "/embeddings") => embeddings(&request),
            ("POST", "/responses") => responses::response(&request),
            ("POST", "/messages") => messages::messages(&request),
            ("POST", "/messages/count_tokens") => messages::count_tokens_reply(&request),
            _ => not_found(method, endpoint),
        }
    }
}

fn model_of(request: &Value) -> &str {
    request["model"].as_str().unwrap_or("echo")
}

/// Text of a message's `content`: a string, or the text parts of an array
/// (a tool result's own `content` included).
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match &p["text"] {
                Value::String(t) => Some(t.clone()),
                _ if p["type"] == "tool_result" => Some(content_text(&p["content"])),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Prompt tokens of a conversation, by the chat format's per-message count.
fn prompt_tokens<'a>(model: &str, contents: impl Iterator<Item = &'a Value>) -> i64 {
    contents
        .map(|c| TOKENS_PER_MESSAGE + count_tokens(model, &content_text(c)))
        .sum::<i64>()
        + REPLY_PRIMING
}

fn completion(request: &Value) -> LocalReply {
    let model = model_of(request);
    let prompt = match &request["prompt"] {
        Value::Array(a) => a.first().and_then(Value::as_str).unwrap_or("").to_owned(),
        v => v.as_str().unwrap_or("").to_owned(),
    };
    let tokens = Tokens {
        prompt: count_tokens(model, &prompt),
        completion: count_tokens(model, &prompt),
        cached: 0,
        cache_written: 0,
    };
    let id = format!("cmpl-echo{}", short_hash(&prompt));
    let created = chrono::Utc::now().timestamp();
    if request["stream"] == true {
        let mut events: Vec<Value> = words(&prompt)
            .into_iter()
            .map(|w| {
                json!({"id": id, "object": "text_completion", "created": created, "model": model,
                       "choices": [{"index": 0, "text": w, "logprobs": null, "finish_reason": null}]})
            })
            .collect();
        events.push(json!({"id": id, "object": "text_completion", "created": created, "model": model,
                           "choices": [{"index": 0, "text": "", "logprobs": null, "finish_reason": "stop"}]}));
        if request["stream_options"]["include_usage"] == true {
            events.push(
                json!({"id": id, "object": "text_completion", "created": created,
                               "model": model, "choices": [], "usage": usage_json(tokens)}),
            );
        }
        return sse(events, tokens);
    }
    let body = json!({
        "id": id, "object": "text_completion", "created": created, "model": model,
        "choices": [{"index": 0, "text": prompt, "logprobs": null, "finish_reason": "stop"}],
        "usage": usage_json(tokens)
    });
    json_reply(StatusCode::OK, &body, Some(tokens))
}

fn embeddings(request: &Value) -> LocalReply {
    let model = model_of(request);
    // Texts, or token arrays (LangChain's default): one array of token ids,
    // or a list of them. A token array counts as the tokens it holds.
    let counted = |v: &Value| match v {
        Value::String(s) => (s.clone(), count_tokens(model, s)),
        Value::Array(ids) => (v.to_string(), i64::try_from(ids.len()).unwrap_or(i64::MAX)),
        other => (other.to_string(), count_tokens(model, &other.to_string())),
    };
    let inputs: Vec<(String, i64)> = match &request["input"] {
        s @ Value::String(_) => vec![counted(s)],
        Value::Array(a) if a.first().is_some_and(Value::is_number) => {
            vec![counted(&request["input"])]
        }
        Value::Array(a) => a.iter().map(counted).collect(),
        _ => {
            let err = ErrorBody::new(
                "`input` must be a string or an array",
                "invalid_request_error",
                None,
            )
            .with_param("input");
            return error_reply(StatusCode::BAD_REQUEST, &err);
        }
    };
    let base64 = request["encoding_format"] == "base64";
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, (text, _))| {
            let vector = embed(text);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let prompt: i64 = inputs.iter().map(|(_, n)| n).sum();
    let tokens = Tokens {
        prompt,
        completion: 0,
        cached: 0,
        cache_written: 0,
    };
    let body = json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt}
    });
    json_reply(StatusCode::OK, &body, Some(tokens))
}

fn not_found(method: &Method, endpoint: &str) -> LocalReply {
    let err = ErrorBody::new(
        format!("The echo upstream does not implement {method} /v1{endpoint}."),
        "invalid_request_error",
        Some("unknown_url"),
    );
    error_reply(StatusCode::NOT_FOUND, &err)
}

/// Unit vector derived from the text's SHA-256: equal texts, equal vectors.
fn embed(text: &str) -> Vec<f32> {
    let digest = Sha256::digest(text.as_bytes());
    let raw: Vec<f32> = digest
        .iter()
        .take(EMBEDDING_DIMENSIONS)
        .map(|b| f32::from(*b) / 255.0 - 0.5)
        .collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    raw.iter().map(|x| x / norm).collect()
}

fn short_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..6])
}

/// A tool call's arguments in the pieces a stream sends them in (a few
/// characters each, as models do), which join back exactly.
fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in text.char_indices() {
        if i - start >= 8 {
            out.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Words with the whitespace before them, so the pieces join back exactly.
fn words(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut after_space) = (0, true);
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && !after_space {
            out.push(&text[start..i]);
            start = i;
        }
        after_space = space;
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

fn usage_json(t: Tokens) -> Value {
    json!({"prompt_tokens": t.prompt, "completion_tokens": t.completion,
           "total_tokens": t.prompt + t.completion})
}

fn json_reply(status: StatusCode, body: &Value, tokens: Option<Tokens>) -> LocalReply {
    LocalReply {
        status,
        body: Body::Full(Bytes::from(body.to_string())),
        tokens,
    }
}

fn error_reply(status: StatusCode, body: &ErrorBody) -> LocalReply {
    LocalReply {
        status,
        body: Body::Full(body.to_bytes()),
        tokens: None,
    }
}

/// Chat and text completions' events: `data:` lines, then `[DONE]`.
fn sse(events: Vec<Value>, tokens: Tokens) -> LocalReply {
    let mut chunks: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(format!("data: {e}\n\n")))
        .collect();
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events_reply(chunks, tokens)
}

/// The Responses API's events: each named by its `type` and numbered, with
/// no `[DONE]` (as OpenAI sends them).
fn typed_sse(events: Vec<Value>, tokens: Tokens) -> LocalReply {
    let chunks = events
        .into_iter()
        .enumerate()
        .map(|(n, mut e)| {
            e["sequence_number"] = json!(n);
            Bytes::from(format!(
                "event: {}\ndata: {e}\n\n",
                e["type"].as_str().unwrap_or("")
            ))
        })
        .collect();
    events_reply(chunks, tokens)
}

fn events_reply(chunks: Vec<Bytes>, tokens: Tokens) -> LocalReply {
    LocalReply {
        status: StatusCode::OK,
        body: Body::Events(chunks),
        tokens: Some(tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Echo's answer to `body`: status, body or events, tokens.
    pub(super) fn call(endpoint: &str, body: Value) -> (StatusCode, Vec<String>, Option<Tokens>) {
        let bytes = body.to_string();
        let reply = Echo.respond(&Method::POST, endpoint, Some(bytes.as_bytes()));
        let chunks = match reply.body {
            Body::Full(b) => vec![String::from_utf8(b.to_vec()).unwrap()],
            Body::Events(v) => v
                .iter()
                .map(|b| String::from_utf8(b.to_vec()).unwrap())
                .collect(),
        };
        (reply.status, chunks, reply.tokens)
    }

    #[test]
    fn words_join_back_exactly() {
        let text = "Hello  big world\n!";
        assert_eq!(words(text).concat(), text);
        assert_eq!(words("Hello big world"), ["Hello", " big", " world"]);
        assert!(words("").is_empty());
    }

    #[test]
    fn embeddings_are_deterministic_in_both_encodings() {
        let (_, a, t) = call("/embeddings", json!({"model": "e", "input": ["x", "y"]}));
        let v: Value = serde_json::from_str(&a[0]).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(
            v["data"][0]["embedding"].as_array().unwrap().len(),
            EMBEDDING_DIMENSIONS
        );
        assert!(t.unwrap().prompt > 0);
        let (_, b, _) = call(
            "/embeddings",
            json!({"model": "e", "input": "x", "encoding_format": "base64"}),
        );
        let v2: Value = serde_json::from_str(&b[0]).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v2["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let first = f32::from_le_bytes(raw[..4].try_into().unwrap());
        assert_eq!(json!(first), v["data"][0]["embedding"][0]);
    }

    #[test]
    fn token_arrays_count_as_the_tokens_they_hold() {
        let (_, body, t) = call("/embeddings", json!({"model": "e", "input": [1, 2, 3, 4]}));
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        assert_eq!(
            (t.unwrap().prompt, &v["usage"]["prompt_tokens"]),
            (4, &json!(4))
        );
        let (_, body, t) = call(
            "/embeddings",
            json!({"model": "e", "input": [[1, 2], [3, 4, 5]]}),
        );
        let v: Value = serde_json::from_str(&body[0]).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(t.unwrap().prompt, 5);
    }

    #[test]
    fn a_streamed_completion_ends_with_usage_when_asked() {
        let request = json!({"model": "m", "prompt": "one two", "stream": true,
                             "stream_options": {"include_usage": true}});
        let (_, events, t) = call("/completions", request);
        let last: Value =
            serde_json::from_str(events[events.len() - 2].trim_start_matches("data: ")).unwrap();
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"]["completion_tokens"], t.unwrap().completion);
        let (_, events, _) = call(
            "/completions",
            json!({"model": "m", "prompt": "x", "stream": true}),
        );
        assert!(!events.iter().any(|e| e.contains("\"usage\"")));
    }

    #[test]
    fn unknown_endpoints_are_404() {
        let (status, body, _) = call("/audio/speech", json!({}));
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body[0].contains("does not implement"));
    }
}
