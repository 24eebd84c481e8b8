//! An in-process Anthropic-shaped upstream: it requires `x-api-key` and
//! `anthropic-version` on the Messages API (as Anthropic does), answers in
//! Anthropic's JSON and event shapes with cache tokens in its usage, and
//! serves the OpenAI-compatible `/v1/chat/completions` with a Bearer key.

use crate::{MockState, Seen, UPSTREAM_KEY};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use chatgate::config::{UpstreamConfig, UpstreamKind};
use serde_json::{json, Value};

/// What the mock reports for every message: (input, cache read, cache
/// creation, output) tokens.
pub const ANTHROPIC_USAGE: (i64, i64, i64, i64) = (10, 100, 20, 7);
/// What `count_tokens` answers.
pub const COUNTED_TOKENS: i64 = 42;
/// A model the mock refuses with a 400 of its own.
pub const ANTHROPIC_BAD_REQUEST: &str = "claude-bad-request";
/// A model whose stream ends after its first events, without the
/// `message_delta` that reports the reply's tokens.
pub const ANTHROPIC_CUT_SHORT: &str = "claude-cut-short";
/// A stream that thinks (`THINKING_DELTAS` thinking deltas of
/// `THINKING_TEXT`) and then stalls until the client gives up.
pub const ANTHROPIC_THINKING: &str = "claude-thinking";
pub const THINKING_TEXT: &str =
    "Let me weigh each option against the constraints before answering. ";
pub const THINKING_DELTAS: usize = 400;
/// A reply of a long prompt: 210,000 input tokens, 1,000 of them written
/// to the cache for an hour.
pub const ANTHROPIC_LONG: &str = "claude-long";

pub struct AnthropicMock {
    /// Without `/v1`, as an `anthropic` upstream's `base_url` is written.
    pub url: String,
    pub state: MockState,
}

impl AnthropicMock {
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen()
            .pop()
            .expect("the Anthropic mock saw no request")
    }
}

pub fn anthropic_upstream(name: &str, base_url: &str, models: &[&str]) -> UpstreamConfig {
    crate::upstream(UpstreamKind::Anthropic, name, base_url, models)
}

fn error(status: u16, kind: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .json(json!({"type": "error", "error": {"type": kind, "message": message}}))
}

fn usage(output: i64) -> Value {
    let (input, read, created, _) = ANTHROPIC_USAGE;
    json!({"input_tokens": input, "cache_read_input_tokens": read,
           "cache_creation_input_tokens": created, "output_tokens": output})
}

fn event(v: Value) -> Bytes {
    Bytes::from(format!(
        "event: {}\ndata: {v}\n\n",
        v["type"].as_str().unwrap()
    ))
}

async fn handle(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("").to_owned())
    };
    state.seen.lock().unwrap().push(Seen::of(&req, &body));
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or("claude").to_owned();
    match req.path() {
        "/v1/chat/completions" => {
            if header("authorization") != Some(format!("Bearer {UPSTREAM_KEY}")) {
                return error(401, "authentication_error", "invalid x-api-key");
            }
            let (input, read, created, output) = ANTHROPIC_USAGE;
            HttpResponse::Ok().json(json!({
                "id": "chatcmpl-a", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": input + read + created, "completion_tokens": output,
                          "total_tokens": input + read + created + output,
                          "prompt_tokens_details": {"cached_tokens": read}}
            }))
        }
        "/v1/messages" | "/v1/messages/count_tokens" => {
            if header("x-api-key").as_deref() != Some(UPSTREAM_KEY) {
                return error(401, "authentication_error", "invalid x-api-key");
            }
            if header("anthropic-version").is_none() {
                return error(
                    400,
                    "invalid_request_error",
                    "anthropic-version: header is required",
                );
            }
            if model == ANTHROPIC_BAD_REQUEST {
                return error(400, "invalid_request_error", "max_tokens: Field required");
            }
            if req.path().ends_with("count_tokens") {
                return HttpResponse::Ok().json(json!({"input_tokens": COUNTED_TOKENS}));
            }
            let output = ANTHROPIC_USAGE.3;
            if model == ANTHROPIC_LONG {
                return HttpResponse::Ok().json(json!({
                    "id": "msg_2", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": "Done"}],
                    "stop_reason": "end_turn", "stop_sequence": null,
                    "usage": {"input_tokens": 209_000, "cache_read_input_tokens": 0,
                        "cache_creation_input_tokens": 1000,
                        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1000},
                        "output_tokens": 10}
                }));
            }
            if model == ANTHROPIC_THINKING {
                let head = [
                    event(
                        json!({"type": "message_start", "message": {"id": "msg_3", "type": "message",
                        "role": "assistant", "model": model, "content": [], "stop_reason": null,
                        "usage": {"input_tokens": 12, "output_tokens": 1}}}),
                    ),
                    event(json!({"type": "content_block_start", "index": 0,
                        "content_block": {"type": "thinking", "thinking": ""}})),
                ];
                let delta = event(json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": THINKING_TEXT}}));
                let events = head
                    .into_iter()
                    .chain(std::iter::repeat_n(delta, THINKING_DELTAS))
                    .map(Ok::<_, std::convert::Infallible>);
                use futures_util::StreamExt;
                return HttpResponse::Ok()
                    .content_type("text/event-stream")
                    .streaming(futures_util::stream::iter(events).chain(crate::keep_alive(
                        "event: ping\ndata: {\"type\": \"ping\"}\n\n",
                    )));
            }
            if request["stream"] != true {
                return HttpResponse::Ok()
                    .insert_header(("anthropic-ratelimit-requests-limit", "4000"))
                    .json(json!({
                        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": "Hello world"}],
                        "stop_reason": "end_turn", "stop_sequence": null, "usage": usage(output)
                    }));
            }
            // The first events at once; the rest after a permit on
            // `release`, so a test sees them arrive apart.
            let first = [
                event(
                    json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                    "role": "assistant", "model": model, "content": [], "stop_reason": null,
                    "usage": usage(1)}}),
                ),
                event(json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}})),
                event(json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": "Hello"}})),
            ]
            .concat();
            let rest = [
                event(json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": " world"}})),
                event(json!({"type": "content_block_stop", "index": 0})),
                event(
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": output}}),
                ),
                event(json!({"type": "message_stop"})),
            ]
            .concat();
            if model == ANTHROPIC_CUT_SHORT {
                return HttpResponse::Ok()
                    .content_type("text/event-stream")
                    .body(first);
            }
            let release = state.release.clone();
            let chunks = futures_util::stream::unfold(0, move |i| {
                let (release, first, rest) = (release.clone(), first.clone(), rest.clone());
                async move {
                    let chunk = match i {
                        0 => first,
                        1 => {
                            release.acquire().await.unwrap().forget();
                            rest
                        }
                        _ => return None,
                    };
                    Some((Ok::<_, std::convert::Infallible>(Bytes::from(chunk)), i + 1))
                }
            });
            HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(chunks)
        }
        _ => error(404, "not_found_error", "Not found"),
    }
}

pub fn start_anthropic_mock() -> AnthropicMock {
    let state = MockState::default();
    let port = crate::mock::serve(&state, handle);
    AnthropicMock {
        url: format!("http://127.0.0.1:{port}"),
        state,
    }
}
