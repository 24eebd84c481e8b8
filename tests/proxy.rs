//! The gateway in front of a mock upstream, driven by a real OpenAI client
//! (async-openai) and by raw HTTP.

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::audio::{AudioInput, CreateTranscriptionRequestArgs};
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use async_openai::types::embeddings::CreateEmbeddingRequestArgs;
use async_openai::types::responses::{CreateResponseArgs, ResponseStreamEvent};
use chatgate_testkit::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

fn openai(app: &TestApp, key: &str) -> async_openai::Client<OpenAIConfig> {
    async_openai::Client::with_config(
        OpenAIConfig::new()
            .with_api_base(app.base.clone())
            .with_api_key(key),
    )
}

fn chat_request(stream: bool) -> async_openai::types::chat::CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .stream(stream)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("Hello there")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap()
}

async fn mock_app() -> (Mock, TestApp) {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    (mock, spawn_app(config, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_with_the_sdk_replaces_the_key() {
    let (mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let reply = openai(&app, &key)
        .chat()
        .create(chat_request(false))
        .await
        .unwrap();
    assert_eq!(
        reply.choices[0].message.content.as_deref(),
        Some("mock reply")
    );
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert!(
        !seen.headers.iter().any(|(_, v)| v.contains(&key)),
        "client key leaked upstream"
    );
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["model"], "gpt-4o-mini");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_chunks_arrive_before_the_upstream_finishes() {
    let (mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let client = openai(&app, &key);
    let mut stream = client
        .chat()
        .create_stream(chat_request(true))
        .await
        .unwrap();
    // The mock holds everything after "Hello" until released: the first chunk
    // can only be here if the gateway forwarded it without buffering.
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("first chunk was held back")
        .unwrap()
        .unwrap();
    assert_eq!(first.choices[0].delta.content.as_deref(), Some("Hello"));
    mock.state.release.add_permits(1);
    let mut text = String::from("Hello");
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if let Some(c) = chunk.choices.first().and_then(|c| c.delta.content.clone()) {
            text.push_str(&c);
        }
    }
    assert_eq!(text, "Hello world");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_and_multipart_uploads_pass_through() {
    let (mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let client = openai(&app, &key);
    let emb = client
        .embeddings()
        .create(
            CreateEmbeddingRequestArgs::default()
                .model("text-embedding-3-small")
                .input("hi")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(emb.data[0].embedding, vec![0.25, -0.5]);

    let audio = vec![7u8; 100_000];
    let request = CreateTranscriptionRequestArgs::default()
        .file(AudioInput::from_vec_u8("a.mp3".into(), audio.clone()))
        .model("whisper-1")
        .build()
        .unwrap();
    let text = client
        .audio()
        .transcription()
        .create(request)
        .await
        .unwrap();
    let seen = mock.last();
    assert_eq!(seen.path, "/v1/audio/transcriptions");
    assert!(seen
        .header("content-type")
        .unwrap()
        .starts_with("multipart/form-data"));
    assert_eq!(text.text, format!("{} bytes", seen.body.len()));
    let at = seen.body.windows(audio.len()).position(|w| w == &audio[..]);
    assert!(at.is_some(), "the file did not reach the upstream intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_responses_and_upstream_errors_pass_through() {
    let (_mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let r = http()
        .post(format!("{}/audio/speech", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": "tts-1", "input": "hi", "voice": "alloy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/mpeg");
    let audio = r.bytes().await.unwrap();
    assert_eq!(audio.len(), SPEECH_BYTES);
    assert_eq!(
        &audio[..4],
        &[0xff, 0xfb, 0x50, 0x00],
        "the bytes as they came"
    );

    // The client's own error passes through, without the upstream key
    // that the upstream quoted in it.
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": models::BAD_REQUEST}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "x");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("bad parameter") && !message.contains(UPSTREAM_KEY),
        "{message}"
    );
    assert!(message.contains("sk-up…0001"), "{message}");

    // The upstream refusing *our* key must not show it, nor look like the
    // client's fault.
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": models::KEY_REJECTED}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let text = r.text().await.unwrap();
    assert!(!text.contains(UPSTREAM_KEY), "{text}");
    assert!(text.contains("upstream_error"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_key_forms_work_and_token_is_stripped() {
    let (mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let c = http();
    let url = format!("{}/models", app.base);
    let r = c.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(&url).header("api-key", &key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(mock.last().header("api-key").is_none());
    let r = c
        .get(format!("{url}?limit=5&token={key}&after=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = mock.last();
    assert_eq!(seen.query, "limit=5&after=x");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_get_openai_shaped_401s() {
    let (mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let url = format!("{}/models", app.base);
    let (status, code, _) = error_parts(http().get(&url).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (401, "invalid_api_key"));
    let (status, code, msg) = error_parts(
        http()
            .get(&url)
            .bearer_auth("sk-wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "invalid_api_key"));
    assert!(!msg.contains("sk-wrong"));

    // The SDK parses the body as OpenAI's error type.
    let err = openai(&app, "sk-wrong")
        .chat()
        .create(chat_request(false))
        .await
        .unwrap_err();
    match err {
        OpenAIError::ApiError(e) => {
            assert_eq!(e.status_code, 401);
            assert_eq!(e.api_error.code.as_deref(), Some("invalid_api_key"));
        }
        other => panic!("not an API error: {other:?}"),
    }

    {
        let mut conn = app.pool.get().unwrap();
        let block = chatgate::users::UserSettings {
            disabled: Some(true),
            ..Default::default()
        };
        chatgate::users::update(&mut conn, &chatgate::audit::Actor::Config, "alice", block)
            .unwrap();
    }
    let disabled = eventually(Duration::from_secs(10), || async {
        let r = http().get(&url).bearer_auth(&key).send().await.unwrap();
        error_parts(r).await.1 == "user_disabled"
    })
    .await;
    assert!(disabled, "disabling was never seen");
    let seen_before = mock.seen().len();
    let (status, _, _) =
        error_parts(http().get(&url).bearer_auth(&key).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(
        mock.seen().len(),
        seen_before,
        "a refused request reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_keys_and_disallowed_models_are_refused() {
    let (_mock, app) = mock_app().await;
    use chatgate::users::{parse_expiry, parse_models, UserSettings};
    let key = app
        .add_user_with(
            "bob",
            UserSettings {
                models: Some(parse_models("gpt-4o-*").unwrap()),
                ..Default::default()
            },
        )
        .await;
    let url = format!("{}/chat/completions", app.base);
    let body = |m: &str| json!({"model": m, "messages": [{"role": "user", "content": "x"}]});
    let r = http()
        .post(&url)
        .bearer_auth(&key)
        .json(&body("gpt-4o-mini"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, code, msg) = error_parts(
        http()
            .post(&url)
            .bearer_auth(&key)
            .json(&body("o1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "model_not_allowed"));
    assert!(msg.contains("o1"));

    {
        let mut conn = app.pool.get().unwrap();
        let past = UserSettings {
            expires: Some(parse_expiry("2020-01-01").unwrap()),
            ..Default::default()
        };
        chatgate::users::update(&mut conn, &chatgate::audit::Actor::Config, "bob", past).unwrap();
    }
    let expired = eventually(Duration::from_secs(10), || async {
        let r = http()
            .post(&url)
            .bearer_auth(&key)
            .json(&body("gpt-4o"))
            .send()
            .await
            .unwrap();
        error_parts(r).await.1 == "key_expired"
    })
    .await;
    assert!(expired, "expiry was never enforced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_clearly() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["gpt-*"])]);
    config.limits.max_body_bytes = 1000;
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let url = format!("{}/chat/completions", app.base);
    let r = http()
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_parts(r).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request_error"));

    let big = json!({"model": "gpt-4o", "input": "x".repeat(2000)});
    let (status, code, _) = error_parts(
        http()
            .post(&url)
            .bearer_auth(&key)
            .json(&big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (413, "request_too_large"));

    let chunked = reqwest::Body::wrap_stream(futures_util::stream::iter(
        (0..5).map(|_| Ok::<_, std::io::Error>(vec![b'a'; 400])),
    ));
    let r = http()
        .post(format!("{}/audio/transcriptions", app.base))
        .bearer_auth(&key)
        .header("content-type", "multipart/form-data; boundary=x")
        .body(chunked)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    let (status, code, _) = error_parts(
        http()
            .post(&url)
            .bearer_auth(&key)
            .json(&json!({"model": "claude-3"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (404, "model_not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (config, dir) = test_config(vec![openai_upstream(
        "gone",
        &format!("http://127.0.0.1:{port}/v1"),
        &["*"],
    )]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "messages": []}))
        .send()
        .await
        .unwrap();
    let (status, code, msg) = error_parts(r).await;
    assert_eq!((status, code.as_str()), (502, "upstream_error"));
    assert!(msg.contains("gone"), "{msg}");
    assert!(!msg.contains(UPSTREAM_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_headers() {
    let (_mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let r = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/chat/completions", app.base),
        )
        .header("origin", "https://nextchat.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-stainless-os",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for h in ["authorization", "api-key", "content-type", "x-stainless-os"] {
        assert!(allowed.contains(h), "{h} missing from {allowed}");
    }
    let r = http()
        .get(format!("{}/models", app.base))
        .header("origin", "https://nextchat.example")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_leaves_a_usage_record() {
    let (_mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let client = openai(&app, &key);
    for _ in 0..3 {
        client.chat().create(chat_request(false)).await.unwrap();
    }
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // add_user's probe requests (GET /models) are records too.
    let pool = app.stop().await;
    let rows: Vec<_> = all_records(&pool)
        .into_iter()
        .filter(|r| r.endpoint == "/chat/completions")
        .map(|r| (r.user, r.model, r.upstream, r.status))
        .collect();
    let expect = |m: &str| {
        (
            "alice".to_owned(),
            Some(m.to_owned()),
            Some("mock".to_owned()),
            200,
        )
    };
    assert_eq!(
        rows,
        vec![
            expect("gpt-4o-mini"),
            expect("gpt-4o-mini"),
            expect("gpt-4o-mini"),
            expect("gpt-4o")
        ]
    );
}

/// A gateway whose only upstream is the built-in echo, as `serve --demo`.
fn echo_app() -> TestApp {
    let (mut config, dir) = test_config(vec![]);
    config.use_demo_upstream();
    spawn_app(config, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_upstream_serves_the_sdk() {
    let app = echo_app();
    let key = app.add_user("demo").await;
    let client = openai(&app, &key);
    let reply = client.chat().create(chat_request(false)).await.unwrap();
    assert_eq!(
        reply.choices[0].message.content.as_deref(),
        Some("Hello there")
    );
    assert!(reply.usage.unwrap().completion_tokens > 0);
    let mut stream = client
        .chat()
        .create_stream(chat_request(true))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        if let Some(c) = chunk
            .unwrap()
            .choices
            .first()
            .and_then(|c| c.delta.content.clone())
        {
            text.push_str(&c);
        }
    }
    assert_eq!(text, "Hello there");
}

fn response_request(stream: bool) -> async_openai::types::responses::CreateResponse {
    CreateResponseArgs::default()
        .model("gpt-4o-mini")
        .instructions("Repeat after me.")
        .input("Hello there")
        .stream(stream)
        .build()
        .unwrap()
}

/// One plain and one streamed Responses API call, checking the text both
/// ways; the usage the plain reply reported.
async fn call_responses_api(client: &async_openai::Client<OpenAIConfig>) -> (i64, i64) {
    let reply = client
        .responses()
        .create(response_request(false))
        .await
        .unwrap();
    assert_eq!(reply.output_text().as_deref(), Some("Hello there"));
    let usage = reply.usage.unwrap();

    let mut stream = client
        .responses()
        .create_stream(response_request(true))
        .await
        .unwrap();
    let (mut deltas, mut completed) = (String::new(), None);
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            ResponseStreamEvent::ResponseOutputTextDelta(d) => deltas.push_str(&d.delta),
            ResponseStreamEvent::ResponseCompleted(c) => completed = Some(c.response),
            _ => {}
        }
    }
    assert_eq!(deltas, "Hello there");
    let completed = completed.expect("no response.completed event");
    assert_eq!(completed.output_text().as_deref(), Some("Hello there"));
    assert_eq!(completed.usage.as_ref(), Some(&usage));
    (usage.input_tokens.into(), usage.output_tokens.into())
}

/// The two calls of `call_responses_api` as stored: plain, then streamed,
/// each with the upstream's reported usage.
fn assert_responses_counted(pool: &chatgate::db::Pool, (prompt, completion): (i64, i64)) {
    let counted: Vec<_> = stored(pool, "/responses")
        .iter()
        .map(|r| (r.stream, r.prompt, r.completion, r.estimated))
        .collect();
    let reported = (Some(prompt), Some(completion), false);
    assert_eq!(
        counted,
        [
            (false, reported.0, reported.1, reported.2),
            (true, reported.0, reported.1, reported.2)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_upstream_serves_the_responses_api() {
    let app = echo_app();
    let key = app.add_user("demo").await;
    let usage = call_responses_api(&openai(&app, &key)).await;
    assert_eq!(usage.1, 2, "Hello there");
    assert_responses_counted(&app.stop().await, usage);
}

/// A gateway in front of another gateway's echo upstream: the front one
/// reads the usage of a streamed Responses API call from its typed
/// `response.completed` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_api_usage_is_read_through_an_openai_upstream() {
    let back = echo_app();
    let back_key = back.add_user("front-gateway").await;
    let mut upstream = openai_upstream("back", &back.base, &["*"]);
    upstream.api_keys = vec![back_key];
    let (config, dir) = test_config(vec![upstream]);
    let front = spawn_app(config, dir);
    let key = front.add_user("alice").await;
    let usage = call_responses_api(&openai(&front, &key)).await;
    assert_responses_counted(&front.stop().await, usage);
    assert_responses_counted(&back.stop().await, usage);
}

/// The value of a Prometheus sample whose line starts with `prefix`.
async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = http()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_tokens_and_upstream_time() {
    let (_mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let requests = r#"chatgate_requests_total{model="gpt-4o-mini",status="200",upstream="mock"}"#;
    let prompt = r#"chatgate_tokens_total{kind="prompt",model="gpt-4o-mini",upstream="mock"}"#;
    assert_eq!(metric(&app, requests).await, 0.0);
    for _ in 0..3 {
        openai(&app, &key)
            .chat()
            .create(chat_request(false))
            .await
            .unwrap();
    }
    let counted = eventually(Duration::from_secs(10), || async {
        metric(&app, requests).await == 3.0 && metric(&app, prompt).await == 21.0
    })
    .await;
    assert!(counted, "requests or tokens were not counted");
    // Committed in at least one batch, and never more batches than
    // records (add_user's /v1/models check is one of them).
    let batches = "chatgate_usage_batches_total";
    let committed = eventually(Duration::from_secs(10), || async {
        metric(&app, batches).await >= 1.0
    })
    .await;
    assert!(committed, "no usage batch was counted");
    let n = metric(&app, batches).await;
    let records = all_records(&app.pool).len() as f64;
    assert!(n <= records, "{n} batches of {records} records");
    assert!(
        metric(
            &app,
            r#"chatgate_upstream_response_seconds_count{upstream="mock"}"#
        )
        .await
            >= 3.0
    );
    let refused = r#"chatgate_requests_total{model="-",status="401",upstream="-"}"#;
    let before = metric(&app, refused).await;
    let _ = http()
        .get(format!("{}/models", app.base))
        .bearer_auth("sk-nope")
        .send()
        .await;
    assert_eq!(metric(&app, "chatgate_requests_in_flight").await, 0.0);
    // Unknown keys leave no usage record (no user) but are counted.
    assert_eq!(metric(&app, refused).await, before + 1.0);
}
