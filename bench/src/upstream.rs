//! A fast OpenAI-shaped mock upstream for `bench/run.sh`: chat completions
//! as JSON, or as SSE with `stream: true` (CHUNKS chunks, CHUNK_DELAY_MS
//! apart). Usage: bench_upstream ADDR (e.g. 127.0.0.1:9001).
//!
//! With a delay, each chunk's `created` is the wall-clock time it was sent,
//! in microseconds, so that `bench_stream` can tell how long the chunk took
//! to reach it.

use actix_web::{web, App, HttpResponse, HttpServer};
use bytes::Bytes;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REPLY: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#;
const CHUNK: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word \"},\"finish_reason\":null}]}\n\n";
const USAGE: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":20,\"total_tokens\":32}}\n\n";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn contains(body: &[u8], what: &[u8]) -> bool {
    body.windows(what.len()).any(|w| w == what)
}

async fn chat(body: Bytes) -> HttpResponse {
    let streamed = contains(&body, b"\"stream\":true");
    if !streamed {
        return HttpResponse::Ok()
            .content_type("application/json")
            .body(REPLY);
    }
    let (chunks, delay) = (env("CHUNKS", 20), env("CHUNK_DELAY_MS", 0));
    let with_usage = contains(&body, b"\"include_usage\"");
    let stream = futures_util::stream::unfold(0u64, move |i| async move {
        if i > chunks + 1 {
            return None;
        }
        if delay > 0 && i > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let item = match i {
            i if i < chunks && delay > 0 => Bytes::from(CHUNK.replacen(
                "\"created\":1",
                &format!("\"created\":{}", now_us()),
                1,
            )),
            i if i < chunks => Bytes::from_static(CHUNK.as_bytes()),
            i if i == chunks && with_usage => Bytes::from_static(USAGE.as_bytes()),
            i if i == chunks => Bytes::new(),
            _ => Bytes::from_static(b"data: [DONE]\n\n"),
        };
        Some((Ok::<_, std::convert::Infallible>(item), i + 1))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(stream)
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    HttpServer::new(|| App::new().route("/v1/chat/completions", web::post().to(chat)))
        .workers(1)
        .tcp_nodelay(true)
        .disable_signals()
        .bind(addr)?
        .run()
        .await
}
