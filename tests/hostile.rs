//! A hostile key holder against a running gateway, in front of a mock
//! upstream as lenient as the common servers (it decodes `%2F`, merges
//! `//`, resolves `..`, parses any body as JSON, answers a bogus
//! `OpenAI-Organization` with 401). No request shape gets past a rule,
//! switches the upstream keys off, or leaks the operator's secrets.

use chatgate::users::{Setting, UserSettings};
use chatgate_testkit::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn mock_app(configure: impl FnOnce(&mut chatgate::config::Config)) -> (Mock, TestApp) {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    configure(&mut config);
    (mock, spawn_app(config, dir))
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// Sends `head` (and `body`) as they are, over one connection, and reads
/// the reply: (status, whole reply text). No client library tidies the
/// request first.
async fn raw(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).await.unwrap();
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn raw_request(method: &str, path: &str, key: &str, extra: &str, body: &[u8]) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer {key}\r\n\
         Connection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bogus_organization_parks_no_key_and_other_refusals_fail_over() {
    let mock = start_mock();
    let mut up = openai_upstream("mock", &mock.url, &["*"]);
    up.api_keys = vec!["sk-pool-key-one-0001".into(), "sk-pool-key-two-0002".into()];
    let (config, dir) = test_config(vec![up]);
    let app = spawn_app(config, dir);
    let key = app.add_user("mallory").await;
    for _ in 0..4 {
        let r = http()
            .get(format!("{}/models", app.base))
            .bearer_auth(&key)
            .header("OpenAI-Organization", "org-bogus")
            .header("OpenAI-Project", "proj_bogus")
            .header("Cookie", "session=stolen")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let seen = mock.seen();
    assert!(seen
        .iter()
        .all(|s| s.header("openai-organization").is_none()
            && s.header("openai-project").is_none()
            && s.header("cookie").is_none()));

    // A 403 the client provoked (a region, a model) is passed back after
    // every key was tried, and no key is blamed for it.
    let r = post_json(
        &app,
        &key,
        "/chat/completions",
        &chat_body(models::FORBIDDEN),
    )
    .await;
    let (status, code, _) = error_parts(r).await;
    assert_eq!(
        (status, code.as_str()),
        (403, "unsupported_country_region_territory")
    );
    let forbidden = mock
        .seen()
        .iter()
        .filter(|s| s.body.windows(14).any(|w| w == b"mock-forbidden"))
        .count();
    assert_eq!(forbidden, 2, "both keys tried");
    // Both keys still serve everyone.
    for _ in 0..4 {
        let r = post_json(&app, &key, "/chat/completions", &chat_body("gpt-4o")).await;
        assert_eq!(r.status(), 200);
    }
    let keys_used: std::collections::HashSet<_> = mock
        .seen()
        .iter()
        .rev()
        .take(4)
        .filter_map(|s| s.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(keys_used.len(), 2, "{keys_used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_organization_is_sent_and_account_headers_do_not_come_back() {
    let mock = start_mock();
    let mut up = openai_upstream("mock", &mock.url, &["*"]);
    up.organization = Some(MOCK_ORGANIZATION.into());
    up.project = Some("proj_operator".into());
    let (config, dir) = test_config(vec![up]);
    let app = spawn_app(config, dir);
    let key = app.add_user("mallory").await;
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .header("OpenAI-Organization", "org-bogus")
        .json(&chat_body("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.headers().get("openai-organization").is_none());
    assert_eq!(r.headers()["x-request-id"], "req_mock_upstream");
    let seen = mock.last();
    assert_eq!(seen.header("openai-organization"), Some(MOCK_ORGANIZATION));
    assert_eq!(seen.header("openai-project"), Some("proj_operator"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_variants_never_reach_the_upstream() {
    let (mock, app) = mock_app(|c| c.endpoints.allow = vec!["/batches".into()]).await;
    let spent = app.add_user_with("mallory", token_limited(1)).await;
    // Use the one token up.
    let r = post_json(&app, &spent, "/chat/completions", &chat_body("gpt-4o")).await;
    assert_eq!(r.status(), 200);
    let before = mock.seen().len();
    let body = serde_json::to_vec(&chat_body("gpt-4o")).unwrap();
    for path in [
        "/v1/chat%2Fcompletions",
        "/v1/chat%2fcompletions",
        "/v1//chat/completions",
        "//v1/chat/completions",
        "/v1/chat/completions/",
        "/v1/./chat/completions",
        "/v1/x/../chat/completions",
        "/v1/../../internal/secret",
        "/v1/%2e%2e/%2e%2e/internal/secret",
        "/v1/chat/c%6Fmpletions",
        "/v1/chat/completions;x",
        "/v1/internal/secret",
        "/v1/batches%2F..%2F..%2Fchat/completions",
    ] {
        let head = raw_request(
            "POST",
            path,
            &spent,
            "Content-Type: application/json\r\n",
            &body,
        );
        let (status, reply) = raw(app.port, &head, &body).await;
        assert_eq!(status, 404, "{path}: {reply}");
        assert!(reply.contains("unknown_endpoint"), "{path}: {reply}");
    }
    let (_, reply) = raw(
        app.port,
        &raw_request("POST", "//v1/chat/completions", &spent, "", b""),
        b"",
    )
    .await;
    assert!(reply.contains("base URL"), "{reply}");
    // Known endpoints that cannot be metered are closed, and say how to open.
    for path in [
        "/v1/fine_tuning/jobs",
        "/v1/threads/runs",
        "/v1/realtime/client_secrets",
    ] {
        let (status, reply) = raw(app.port, &raw_request("POST", path, &spent, "", b""), b"").await;
        assert_eq!(status, 403, "{path}: {reply}");
        assert!(reply.contains("endpoint_not_allowed") && reply.contains("endpoints.allow"));
    }
    // An opened one is still refused to a user with a token limit.
    let (status, reply) = raw(
        app.port,
        &raw_request("GET", "/v1/batches", &spent, "", b""),
        b"",
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(mock.seen().len(), before, "the upstream was asked");
    // The real path: the spent quota is enforced.
    let r = post_json(&app, &spent, "/chat/completions", &chat_body("gpt-4o")).await;
    assert_eq!(error_parts(r).await.1, "insufficient_quota");

    // A user without limits reaches an opened endpoint with any method and
    // its query string, counted as a request.
    let free = app.add_user("trent").await;
    let r = http()
        .delete(format!("{}/batches/batch_1?x=1&token={free}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = mock.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("DELETE", "/v1/batches/batch_1")
    );
    assert_eq!(seen.query, "x=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_decides_nothing_the_media_type_does_not_allow() {
    let (mock, app) = mock_app(|_| {}).await;
    let key = app
        .add_user_with(
            "mallory",
            UserSettings {
                models: Some(Setting::Set(vec!["gpt-4o-mini".into()])),
                ..Default::default()
            },
        )
        .await;
    let body = serde_json::to_vec(
        &json!({"model": "o1-pro", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .unwrap();
    for content_type in [
        "Content-Type: text/plain\r\n",
        "",
        "Content-Type: application/jsonx\r\n",
    ] {
        let head = raw_request("POST", "/v1/chat/completions", &key, content_type, &body);
        let (status, reply) = raw(app.port, &head, &body).await;
        assert_eq!(status, 415, "{content_type:?}: {reply}");
        assert!(reply.contains("unsupported_media_type"), "{reply}");
    }
    // Any spelling of application/json is JSON, and its model is checked.
    let head = raw_request(
        "POST",
        "/v1/chat/completions",
        &key,
        "Content-Type: Application/JSON; charset=utf-8\r\n",
        &body,
    );
    let (status, reply) = raw(app.port, &head, &body).await;
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("model_not_allowed"));
    // A model named twice is refused, whichever the upstream would read.
    let twice = br#"{"model":"gpt-4o-mini","model":"o1-pro","messages":[]}"#;
    let head = raw_request(
        "POST",
        "/v1/chat/completions",
        &key,
        "Content-Type: application/json\r\n",
        twice,
    );
    let (status, reply) = raw(app.port, &head, twice).await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.contains("invalid_request_error") && reply.contains("duplicate"));
    // Malformed JSON: 400 invalid_request_error.
    let bad = b"{\"model\": ";
    let head = raw_request(
        "POST",
        "/v1/chat/completions",
        &key,
        "Content-Type: application/json\r\n",
        bad,
    );
    let (status, reply) = raw(app.port, &head, bad).await;
    assert_eq!(status, 400);
    let json: Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["error"]["code"], "invalid_request_error");

    // Multipart: the form's model field is read and checked.
    let form = |model: &'static str| {
        reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(vec![7u8; 2048]).file_name("a.mp3"),
            )
            .text("model", model)
    };
    let upload = |form| {
        http()
            .post(format!("{}/audio/transcriptions", app.base))
            .bearer_auth(&key)
            .multipart(form)
            .send()
    };
    let (status, code, _) = error_parts(upload(form("whisper-1")).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "model_not_allowed"));
    let twice = form("gpt-4o-mini").text("model", "whisper-1");
    let (status, _, msg) = error_parts(upload(twice).await.unwrap()).await;
    assert_eq!(status, 400, "{msg}");
    let r = upload(form("gpt-4o-mini")).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.json::<Value>().await.unwrap()["text"].clone();
    assert!(
        text.as_str().is_some_and(|t| t.ends_with("bytes")),
        "{text}"
    );
    let forwarded = mock.last();
    assert_eq!(forwarded.path, "/v1/audio/transcriptions");
    assert!(forwarded.body.len() > 2048, "the whole form went on");
    assert_eq!(
        mock.seen()
            .iter()
            .filter(|s| s.path.contains("chat"))
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_numbers_are_refused_and_n_is_reserved() {
    let (mock, app) = mock_app(|_| {}).await;
    let key = app.add_user_with("mallory", token_limited(1000)).await;
    let post = |body: Value| {
        http()
            .post(format!("{}/chat/completions", app.base))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    for (field, value) in [
        ("max_tokens", json!(-100000000)),
        ("max_tokens", json!(1.5)),
        ("max_completion_tokens", json!(u64::MAX)),
        ("n", json!(-1)),
    ] {
        let mut body = chat_body("gpt-4o");
        body[field] = value;
        let (status, code, msg) = error_parts(post(body).await.unwrap()).await;
        assert_eq!(
            (status, code.as_str()),
            (400, "invalid_request_error"),
            "{msg}"
        );
        assert!(msg.contains(&format!("`{field}`")), "{msg}");
    }
    // n replies of max_tokens each hold the whole limit while the first
    // request streams: the second is refused.
    let mut held = chat_body("gpt-4o");
    held["stream"] = json!(true);
    held["n"] = json!(4);
    held["max_tokens"] = json!(250);
    let first = post(held).await.unwrap();
    assert_eq!(first.status(), 200);
    let (status, code, _) = error_parts(post(chat_body("gpt-4o")).await.unwrap()).await;
    assert_eq!((status, code.as_str()), (429, "insufficient_quota"));
    // i64::MAX does not wrap around into an admission either.
    let mut huge = chat_body("gpt-4o");
    huge["max_tokens"] = json!(i64::MAX);
    huge["n"] = json!(i64::MAX);
    assert_eq!(post(huge).await.unwrap().status(), 429);
    mock.state.release.add_permits(1);
    assert!(first.text().await.unwrap().ends_with("data: [DONE]\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_of_any_size_is_counted() {
    let (_mock, app) = mock_app(|_| {}).await;
    let key = app.add_user("mallory").await;
    let r = post_json(
        &app,
        &key,
        "/embeddings",
        &json!({"model": models::HUGE, "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().len() > 20 << 20);
    let pool = app.stop().await;
    let records = stored(&pool, "/embeddings");
    assert_eq!(records[0].prompt, Some(1234), "{records:?}");
    assert!(!records[0].estimated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_prompt_is_estimated_in_bounded_work() {
    let (_mock, app) = mock_app(|_| {}).await;
    let key = app.add_user("mallory").await;
    // 4 MiB of prompt to an upstream that reports no usage.
    let prompt = "lorem ipsum dolor sit amet ".repeat(4 << 20 >> 5);
    let r = post_json(
        &app,
        &key,
        "/chat/completions",
        &json!({"model": NO_USAGE_MODEL, "messages": [{"role": "user", "content": prompt}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let pool = app.stop().await;
    let records = stored(&pool, "/chat/completions");
    let r = &records[0];
    assert!(r.estimated, "{r:?}");
    // Counted from its first 256 KiB and extrapolated to the whole.
    let sample = "lorem ipsum dolor sit amet ".repeat(1000);
    let per_repeat = chatgate::usage::count_tokens("gpt-4o", &sample) as f64 / 1000.0;
    let whole = per_repeat * (prompt.len() / 27) as f64;
    let prompt_tokens = r.prompt.unwrap() as f64;
    assert!(
        (prompt_tokens - whole).abs() < whole / 20.0,
        "{prompt_tokens} tokens, about {whole} expected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_cut_off_at_the_upstream_timeout() {
    let (_mock, app) = mock_app(|c| c.limits.upstream_timeout = Duration::from_millis(800)).await;
    let key = app.add_user("mallory").await;
    let mut body = chat_body(models::STALL);
    body["stream"] = json!(true);
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    // The upstream sends nothing more; the gateway ends the reply.
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(item) = stream.next().await {
            if item.is_err() {
                return true;
            }
        }
        true
    })
    .await;
    assert_eq!(end, Ok(true), "the stream ran on");
    let pool = app.stop().await;
    assert_eq!(stored(&pool, "/chat/completions")[0].status, 504);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_model_names_do_not_grow_the_metrics() {
    let (_mock, app) = mock_app(|_| {}).await;
    let key = app.add_user("mallory").await;
    let size = || async {
        http()
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The live list's names label metrics.
    http()
        .get(format!("{}/models", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    for i in 0..20 {
        let model = format!("made-up-{i}-{}", "x".repeat(200));
        let r = post_json(&app, &key, "/chat/completions", &chat_body(&model)).await;
        assert_eq!(r.status(), 200);
    }
    let r = post_json(&app, &key, "/chat/completions", &chat_body("gpt-4o")).await;
    assert_eq!(r.status(), 200);
    let text = size().await;
    assert!(!text.contains("made-up"), "made-up names became labels");
    assert!(text.contains(r#"model="other""#), "{text}");
    assert!(text.contains(r#"model="gpt-4o""#), "{text}");
    assert!(text.len() < 30_000, "{}", text.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_off_with_408() {
    let (mock, app) = mock_app(|c| c.limits.client_body_timeout = Duration::from_secs(1)).await;
    let key = app.add_user("mallory").await;
    let body = serde_json::to_vec(&chat_body("gpt-4o")).unwrap();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = raw_request(
        "POST",
        "/v1/chat/completions",
        &key,
        "Content-Type: application/json\r\n",
        &body,
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = s.into_split();
    // One byte every half second: the body would take half a minute.
    let trickle = tokio::spawn(async move {
        for b in body {
            if write.write_all(&[b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let mut reply = Vec::new();
    let read_all =
        tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut reply)).await;
    trickle.abort();
    assert!(read_all.is_ok(), "no answer while the body trickled");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(mock.seen().iter().all(|s| s.path != "/v1/chat/completions"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parallel_limit_holds_and_frees_its_slot() {
    let (mock, app) = mock_app(|_| {}).await;
    let key = app
        .add_user_with(
            "mallory",
            UserSettings {
                max_parallel: Some(Setting::Set(1)),
                ..Default::default()
            },
        )
        .await;
    let post = || {
        let mut body = chat_body("gpt-4o");
        body["stream"] = json!(true);
        http()
            .post(format!("{}/chat/completions", app.base))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status(), 200);
    let (status, code, msg) = error_parts(post().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (429, "rate_limit_exceeded"));
    assert!(msg.contains("parallel limit"), "{msg}");
    mock.state.release.add_permits(1);
    first.text().await.unwrap();
    // The slot is given back when the first request ends.
    mock.state.release.add_permits(1);
    let freed = eventually(Duration::from_secs(10), || async {
        let r = http()
            .get(format!("{}/models", app.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        r.status() == 200
    })
    .await;
    assert!(freed, "the parallel slot was never given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripped_stream_loses_its_content_length() {
    let (_mock, app) = mock_app(|_| {}).await;
    let key = app.add_user("mallory").await;
    let mut body = chat_body(models::SSE_LENGTH);
    body["stream"] = json!(true);
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.headers().get("openai-organization").is_none());
    let text = r.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(!text.contains("\"usage\""), "{text}");
    let pool = app.stop().await;
    let records = stored(&pool, "/chat/completions");
    assert_eq!(
        (records[0].prompt, records[0].completion),
        (Some(5), Some(2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_body_without_a_length_arrives() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let (app, client) = spawn_tls_app(config, dir);
    let key = {
        let mut conn = app.pool.get().unwrap();
        let name = chatgate::users::UserName::parse("mallory").unwrap();
        chatgate::users::add(
            &mut conn,
            &chatgate::audit::Actor::Config,
            &name,
            None,
            Default::default(),
        )
        .unwrap()
    };
    let base = format!("https://localhost:{}/v1", app.port);
    let body = serde_json::to_vec(&chat_body("gpt-4o")).unwrap();
    // A streamed body: HTTP/2 sends it in DATA frames, with no length.
    let send = |path: &str, parts: Vec<Vec<u8>>| {
        let stream = futures_util::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>));
        client
            .post(format!("{base}{path}"))
            .bearer_auth(key.expose())
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
    };
    let known = eventually(Duration::from_secs(10), || async {
        let parts = body.chunks(7).map(<[u8]>::to_vec).collect();
        send("/chat/completions", parts)
            .await
            .is_ok_and(|r| r.status() == 200 && r.version() == reqwest::Version::HTTP_2)
    })
    .await;
    assert!(known, "the HTTP/2 request with a streamed body failed");
    assert_eq!(mock.last().body, body);
    // To an object endpoint too, read whole (its references are checked).
    let r = send(
        "/vector_stores",
        vec![b"{\"name\": ".to_vec(), b"\"notes\"}".to_vec()],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(mock.last().body, "{\"name\": \"notes\"}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reply_carries_a_request_id_and_the_log_names_it() {
    let mock = start_mock();
    let yaml = format!(
        "{}log:\n  format: json\nadmin:\n  token: adm-secret-token\n",
        upstream_yaml(&mock.url, UPSTREAM_KEY)
    );
    let served = serve_binary(&yaml, &[]).await;
    let key = "sk-alice-test-key";
    let ok = eventually(Duration::from_secs(10), || async {
        http()
            .get(format!("{}/v1/models", served.base))
            .bearer_auth(key)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ok);
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let upstream = http()
        .post(format!("{}/v1/chat/completions", served.base))
        .bearer_auth(key)
        .json(&chat_body("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(id(&upstream), "req_mock_upstream");
    let refused = http()
        .post(format!("{}/v1/batches", served.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let own = id(&refused);
    assert!(own.starts_with("req_") && own.len() == 36, "{own}");
    for path in ["/healthz", "/metrics", "/nowhere", "/admin/users", "/v1/me"] {
        let r = http()
            .get(format!("{}{path}", served.base))
            .send()
            .await
            .unwrap();
        assert!(id(&r).starts_with("req_"), "{path}");
    }
    let log_has = |needle: String| {
        let served = &served;
        async move { served.log().contains(&needle) }
    };
    assert!(
        eventually(Duration::from_secs(10), || log_has(format!(
            "\"request_id\":\"{own}\""
        )))
        .await
    );
    assert!(
        eventually(Duration::from_secs(10), || log_has(
            "\"request_id\":\"req_mock_upstream\"".into()
        ))
        .await
    );

    // The admin API checks the token before it reads a body.
    let r = http()
        .patch(format!("{}/admin/users/alice", served.base))
        .header("content-type", "application/json")
        .body(r#"{"bogus":1}"#)
        .send()
        .await
        .unwrap();
    let (status, code, msg) = error_parts(r).await;
    assert_eq!((status, code.as_str()), (401, "invalid_api_key"), "{msg}");
    // The scheme in any case; a period out of the calendar is a clear 400.
    let r = http()
        .get(format!("{}/admin/usage?period=200000000d", served.base))
        .header("authorization", "bearer adm-secret-token")
        .send()
        .await
        .unwrap();
    let (status, _, msg) = error_parts(r).await;
    assert_eq!(status, 400, "{msg}");
    assert!(msg.contains("calendar"), "{msg}");
    let mut served = served;
    served.signal("TERM");
    assert!(served.exit().await);
}
