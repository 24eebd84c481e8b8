//! Anthropic's Messages API through the gateway, against an in-process
//! Anthropic-shaped upstream: both key headers, exact usage with cache
//! tokens, streams event by event, Anthropic's error shapes, count_tokens,
//! the OpenAI-format route to an anthropic upstream, failover, the echo
//! upstream's Messages API.

use chatgate::users::{Setting, UserSettings};
use chatgate_testkit::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

const VERSION: &str = "2023-06-01";

fn message(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream,
           "messages": [{"role": "user", "content": "Hello"}]})
}

/// `POST /v1{path}` the way Anthropic's SDKs send it: `x-api-key`.
async fn sdk_post(app: &TestApp, key: &str, path: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{}{path}", app.base))
        .header("x-api-key", key)
        .header("anthropic-version", VERSION)
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A message to `model`, sent as the SDKs send it.
async fn send_message(app: &TestApp, key: &str, model: &str, stream: bool) -> reqwest::Response {
    sdk_post(app, key, "/messages", &message(model, stream)).await
}

/// (status, Anthropic error type, message) of an Anthropic-shaped error.
async fn anthropic_error(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    let s = |k: &str| v["error"][k].as_str().unwrap_or("").to_owned();
    (status, s("type"), s("message"))
}

async fn app_with(mock: &AnthropicMock, keys: &[&str]) -> TestApp {
    let mut upstream = anthropic_upstream("claude", &mock.url, &["claude-*"]);
    upstream.api_keys = keys.iter().map(|k| k.to_string()).collect();
    let (config, dir) = test_config(vec![upstream]);
    spawn_app(config, dir)
}

/// prompt = input + cache read + cache creation; cached = cache read.
fn expected() -> (i64, i64, i64) {
    let (input, read, created, output) = ANTHROPIC_USAGE;
    (input + read + created, output, read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_either_key_header_is_forwarded_natively_and_counted() {
    let mock = start_anthropic_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;

    let r = send_message(&app, &key, "claude-sonnet-4-5", false).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "Hello world");
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("anthropic-version"), Some(VERSION));
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert!(!seen.headers.iter().any(|(_, v)| v.contains(&key)));

    // Claude Code's ANTHROPIC_AUTH_TOKEN: a Bearer key.
    let r = http()
        .post(format!("{}/messages", app.base))
        .bearer_auth(&key)
        .header("anthropic-version", VERSION)
        .json(&message("claude-sonnet-4-5", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = mock.last();
    assert_eq!(seen.header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(seen.header("authorization"), None);

    let pool = app.stop().await;
    let (prompt, completion, cached) = expected();
    let records = stored(&pool, "/messages");
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(
            (r.prompt, r.completion, r.total),
            (Some(prompt), Some(completion), Some(prompt + completion))
        );
        assert!(!r.estimated && !r.stream);
    }
    assert_eq!(stored_cached(&pool, "/messages"), [Some(cached); 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_and_the_limits_count_cache_tokens() {
    let mock = start_anthropic_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user_with("alice", token_limited(1_000_000)).await;
    for stream in [false, true, false] {
        mock.state.release.add_permits(1);
        let r = sdk_post(
            &app,
            &key,
            "/messages",
            &message("claude-haiku-4-5", stream),
        )
        .await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let url = format!("{}/me/usage?period=today&by=model", app.base);
    let (prompt, completion, cached) = expected();
    let reported = eventually(Duration::from_secs(10), || async {
        let rows = get_json(&url, &key).await;
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["model"] == "claude-haiku-4-5" && r["requests"] == 3)
    })
    .await;
    assert!(reported, "the usage never reached the report");
    let rows = get_json(&url, &key).await;
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["model"] == "claude-haiku-4-5")
        .unwrap();
    assert_eq!(row["prompt_tokens"], 3 * prompt);
    assert_eq!(row["completion_tokens"], 3 * completion);
    assert_eq!(row["cached_tokens"], 3 * cached);
    // The token limit counts them as usage report does.
    let me = get_json(format!("{}/me", app.base), &key).await;
    assert_eq!(me["tokens_used"], 3 * (prompt + completion));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_passes_event_by_event_and_is_counted() {
    let mock = start_anthropic_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;
    let r = send_message(&app, &key, "claude-sonnet-4-5", true).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = r.bytes_stream();
    // The mock holds everything after the first delta until released: it
    // can only be here if the gateway passed the events on unbuffered.
    let mut text = String::new();
    while !text.contains("\"Hello\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the first events were held back")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(!text.contains("message_stop"));
    mock.state.release.add_permits(1);
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let pool = app.stop().await;
    let (prompt, completion, cached) = expected();
    let r = &stored(&pool, "/messages")[0];
    assert_eq!(
        (r.prompt, r.completion, r.stream, r.estimated),
        (Some(prompt), Some(completion), true, false)
    );
    assert_eq!(stored_cached(&pool, "/messages"), [Some(cached)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_short_keeps_its_prompt_and_estimates_the_reply() {
    let mock = start_anthropic_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;
    let r = send_message(&app, &key, ANTHROPIC_CUT_SHORT, true).await;
    let text = r.text().await.unwrap();
    assert!(text.contains("\"Hello\"") && !text.contains("message_delta"));
    let pool = app.stop().await;
    let (prompt, _, cached) = expected();
    let r = &stored(&pool, "/messages")[0];
    let reply = chatgate::usage::count_tokens(ANTHROPIC_CUT_SHORT, "Hello");
    assert_eq!(
        (r.prompt, r.completion, r.estimated),
        (Some(prompt), Some(reply), true)
    );
    assert_eq!(stored_cached(&pool, "/messages"), [Some(cached)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_in_anthropics_shape() {
    let mock = start_anthropic_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let body = message("claude-sonnet-4-5", false);

    let r = sdk_post(
        &app,
        "sk-not-a-key-0000000000000000000000",
        "/messages",
        &body,
    )
    .await;
    let (status, kind, _) = anthropic_error(r).await;
    assert_eq!((status, kind.as_str()), (401, "authentication_error"));
    let r = http()
        .post(format!("{}/messages", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, kind, text) = anthropic_error(r).await;
    assert_eq!((status, kind.as_str()), (401, "authentication_error"));
    assert!(text.contains("x-api-key"), "{text}");

    let only_gpt = UserSettings {
        models: Some(Setting::Set(vec!["gpt-*".into()])),
        ..Default::default()
    };
    let key = app.add_user_with("bob", only_gpt).await;
    let (status, kind, _) = anthropic_error(sdk_post(&app, &key, "/messages", &body).await).await;
    assert_eq!((status, kind.as_str()), (403, "permission_error"));

    let key = app
        .add_user_with(
            "carol",
            UserSettings {
                request_limit: Some(Setting::Set(2)),
                ..Default::default()
            },
        )
        .await;
    // add_user's probe (GET /v1/models) was one request of the two.
    assert_eq!(sdk_post(&app, &key, "/messages", &body).await.status(), 200);
    let refused = eventually(Duration::from_secs(10), || async {
        sdk_post(&app, &key, "/messages", &body).await.status() == 429
    })
    .await;
    assert!(refused);
    let r = sdk_post(&app, &key, "/messages", &body).await;
    assert_eq!(r.headers()["x-should-retry"], "false");
    let (status, kind, text) = anthropic_error(r).await;
    assert_eq!((status, kind.as_str()), (429, "rate_limit_error"));
    assert!(text.contains("request limit"), "{text}");

    let key = app.add_user("dave").await;
    let (status, kind, _) =
        anthropic_error(send_message(&app, &key, "gpt-none", false).await).await;
    assert_eq!((status, kind.as_str()), (404, "not_found_error"));
    let (status, kind, _) =
        anthropic_error(sdk_post(&app, &key, "/messages", &json!({"max_tokens": 1})).await).await;
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    let r = http()
        .post(format!("{}/messages", app.base))
        .header("x-api-key", &key)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    let (status, kind, _) = anthropic_error(r).await;
    assert_eq!((status, kind.as_str()), (415, "invalid_request_error"));

    // The upstream's own 400 passes through as it is.
    let r = send_message(&app, &key, ANTHROPIC_BAD_REQUEST, false).await;
    let (status, kind, text) = anthropic_error(r).await;
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    assert_eq!(text, "max_tokens: Field required");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_tokens_is_a_request_not_tokens() {
    let mock = start_anthropic_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;
    let body =
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]});
    let r = sdk_post(&app, &key, "/messages/count_tokens", &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["input_tokens"], COUNTED_TOKENS);
    assert_eq!(mock.last().path, "/v1/messages/count_tokens");
    let pool = app.stop().await;
    let r = &stored(&pool, "/messages/count_tokens")[0];
    assert_eq!((r.status, r.prompt, r.total), (200, None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_client_reaches_claude_through_the_compatible_endpoint() {
    let mock = start_anthropic_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;
    let body =
        json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]});
    let r = post_json(&app, &key, "/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert_eq!(seen.header("x-api-key"), None);
    let pool = app.stop().await;
    let (prompt, completion, cached) = expected();
    let r = &stored(&pool, "/chat/completions")[0];
    assert_eq!((r.prompt, r.completion), (Some(prompt), Some(completion)));
    // OpenAI's prompt_tokens_details.cached_tokens.
    assert_eq!(stored_cached(&pool, "/chat/completions"), [Some(cached)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_key_is_parked_and_the_next_one_serves() {
    let mock = start_anthropic_mock();
    let app = app_with(&mock, &["sk-ant-bad401-0000000000", UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;
    for _ in 0..3 {
        let r = send_message(&app, &key, "claude-sonnet-4-5", false).await;
        assert_eq!(r.status(), 200);
    }
    let tried_bad = mock
        .seen()
        .iter()
        .filter(|s| s.header("x-api-key") != Some(UPSTREAM_KEY))
        .count();
    assert_eq!(tried_bad, 1, "the rejected key is parked after one try");
    app.stop().await;

    // With no key left, a 502 in Anthropic's shape that names no key.
    let app = app_with(&mock, &["sk-ant-bad401-0000000000"]).await;
    let key = app.add_user("alice").await;
    let r = send_message(&app, &key, "claude-sonnet-4-5", false).await;
    let (status, kind, text) = anthropic_error(r).await;
    assert_eq!((status, kind.as_str()), (502, "api_error"));
    assert!(
        text.contains("rejected the gateway's API key") && !text.contains("bad401"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_list_in_anthropics_shape() {
    let mock = start_anthropic_mock();
    let mut upstream = anthropic_upstream(
        "claude",
        &mock.url,
        &["claude-sonnet-4-5", "claude-haiku-4-5"],
    );
    upstream.api_keys = vec![UPSTREAM_KEY.into()];
    let (config, dir) = test_config(vec![upstream]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let v: Value = http()
        .get(format!("{}/models", app.base))
        .header("x-api-key", &key)
        .header("anthropic-version", VERSION)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["data"][0]["id"], "claude-sonnet-4-5");
    assert_eq!(v["has_more"], false);
    assert_eq!(v["last_id"], "claude-haiku-4-5");
    // Without the header, OpenAI's shape.
    assert_eq!(
        model_ids(&app, &key).await,
        ["claude-sonnet-4-5", "claude-haiku-4-5"]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_upstream_speaks_the_messages_api() {
    let (mut config, dir) = test_config(Vec::new());
    config.use_demo_upstream();
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let ids = model_ids(&app, &key).await;
    assert!(
        ids.iter().any(|m| m.starts_with("claude-")) && ids.iter().any(|m| m.starts_with("gpt-"))
    );
    // A model the list does not name but echo serves (Claude Code's
    // default) answers by id, in either shape; one the key may not use
    // does not.
    assert!(!ids.iter().any(|m| m == "claude-opus-4-8"));
    let only_gpt = UserSettings {
        models: Some(Setting::Set(vec!["gpt-*".into()])),
        ..Default::default()
    };
    let narrow = app.add_user_with("bob", only_gpt).await;
    for (key, anthropic, expect) in [(&key, true, 200), (&key, false, 200), (&narrow, true, 404)] {
        let mut get = http().get(format!("{}/models/claude-opus-4-8", app.base));
        get = match anthropic {
            true => get
                .header("x-api-key", key)
                .header("anthropic-version", VERSION),
            false => get.bearer_auth(key),
        };
        let r = get.send().await.unwrap();
        assert_eq!(r.status(), expect);
        if expect == 200 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["id"], "claude-opus-4-8");
            assert_eq!(v["type"] == "model", anthropic, "{v}");
        }
    }

    let r = send_message(&app, &key, "claude-sonnet-4-5", false).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Hello");
    let usage = (
        v["usage"]["input_tokens"].as_i64().unwrap(),
        v["usage"]["output_tokens"].as_i64().unwrap(),
    );

    let r = send_message(&app, &key, "claude-sonnet-4-5", true).await;
    let text = r.text().await.unwrap();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    assert!(text.contains("\"text_delta\""));
    assert!(text
        .trim_end()
        .ends_with("data: {\"type\":\"message_stop\"}"));
    let pool = app.stop().await;
    let records = stored(&pool, "/messages");
    assert_eq!(records.len(), 2);
    for r in records {
        assert_eq!((r.prompt, r.completion), (Some(usage.0), Some(usage.1)));
    }
}
