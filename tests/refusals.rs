//! Hostile input, round two (#30), and refusals that clients understand:
//! bounded names, Azure deployments, endless events, failed attempts,
//! CSV formulas, secrets and notes, replies a browser would render, the
//! refusals a retry cannot fix, a log line for each, the caller's own
//! limits.

use chatgate::config::{UpstreamConfig, UpstreamKind};
use chatgate::users::{Setting, UserSettings};
use chatgate_testkit::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

async fn mock_app() -> (Mock, TestApp) {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["gpt-4o*"])]);
    (mock, spawn_app(config, dir))
}

/// The names every record and the log could grow by, as stored.
fn names(app: &TestApp) -> Vec<String> {
    use chatgate::db::schema::usage_names;
    use diesel::prelude::*;
    usage_names::table
        .select(usage_names::name)
        .load(&mut app.pool.get().unwrap())
        .unwrap()
}

/// Model names a client invents, and ids in paths, do not grow the
/// database: an overlong or unprintable model is a 400 before anything is
/// recorded, a model no upstream serves is recorded as `(unknown)`, an
/// object path by its shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_clients_invent_do_not_grow_the_database() {
    let (mock, app) = mock_app().await;
    let key = app
        .add_user_with(
            "mallory",
            UserSettings {
                request_limit: Some(Setting::Set(1)),
                ..Default::default()
            },
        )
        .await;
    let huge = "m".repeat(1 << 20);
    for model in [
        huge.as_str(),
        &"x".repeat(257),
        "gpt 4o",
        "gpt-4o\u{7f}",
        "zoë",
    ] {
        let r = post_json(&app, &key, "/chat/completions", &chat(model)).await;
        let (status, code, message) = error_parts(r).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request_error"));
        assert!(message.contains("256"), "{message}");
        assert!(
            message.len() < 300,
            "the name came back: {} bytes",
            message.len()
        );
    }
    for i in 0..5 {
        let r = post_json(
            &app,
            &key,
            "/chat/completions",
            &chat(&format!("made-up-{i}")),
        )
        .await;
        assert_eq!(error_parts(r).await.1, "model_not_found");
        let r = http()
            .get(format!("{}/files/file-nobodys-{i}/content", app.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let r = http()
        .get(format!("{}/nowhere-{}", app.base, "y".repeat(2000)))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let recorded = eventually(Duration::from_secs(5), || async {
        all_records(&app.pool).len() >= 16
    })
    .await;
    assert!(recorded);
    let names = names(&app);
    assert!(names.iter().all(|n| n.len() <= 256), "{names:?}");
    for invented in ["made-up-0", "file-nobodys-0", "nowhere"] {
        assert!(
            !names.iter().any(|n| n.contains(invented)),
            "`{invented}` was kept: {names:?}"
        );
    }
    assert!(names.iter().any(|n| n == "(unknown)"), "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("/files/{file}/content")),
        "{names:?}"
    );
    assert!(mock.seen().iter().all(|s| !s.path.contains("made-up")));
}

/// A deployment comes from `deployments` or is a model name a path can
/// hold as it is: nothing a client sends adds a path segment or a query
/// parameter upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_deployments_take_no_path_from_the_model() {
    let mock = start_mock();
    let azure = UpstreamConfig {
        api_keys: vec!["azure-key-0001".into()],
        models: vec!["gpt-4o-mini*".into()],
        endpoint: Some(mock.url.trim_end_matches("/v1").to_owned()),
        api_version: Some("2024-10-21".into()),
        deployments: BTreeMap::new(),
        ..UpstreamConfig::new("azure", UpstreamKind::Azure)
    };
    let (config, dir) = test_config(vec![azure]);
    let app = spawn_app(config, dir);
    let key = app
        .add_user_with(
            "mallory",
            UserSettings {
                models: Some(Setting::Set(vec!["gpt-4o-mini*".into()])),
                ..Default::default()
            },
        )
        .await;
    for model in [
        "gpt-4o-mini/../o1-pro",
        "gpt-4o-mini%2F..%2Fo1-pro",
        "gpt-4o-mini?api-version=2099-01-01",
        "gpt-4o-mini#x",
    ] {
        let r = post_json(&app, &key, "/chat/completions", &chat(model)).await;
        let (status, code, _) = error_parts(r).await;
        assert_eq!((status, code.as_str()), (404, "model_not_found"), "{model}");
    }
    assert!(mock.seen().is_empty(), "{:?}", mock.seen());
    let r = post_json(
        &app,
        &key,
        "/chat/completions",
        &chat("gpt-4o-mini-2024-07-18"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.last().path,
        "/openai/deployments/gpt-4o-mini-2024-07-18/chat/completions"
    );
}

/// One server-sent event without its blank line is not held whole: past
/// 1 MiB the stream ends with an error event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_event_ends_the_stream() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let mut body = chat(models::ENDLESS_EVENT);
    body["stream"] = json!(true);
    let r = post_json(&app, &key, "/chat/completions", &body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.len() < 2 << 20, "{} bytes came through", text.len());
    assert!(
        text.ends_with("the gateway ended the stream.\"}}\n\n"),
        "{}",
        &text[text.len() - 200..]
    );
    let records = eventually(Duration::from_secs(5), || async {
        stored(&app.pool, "/chat/completions").len() == 1
    })
    .await;
    assert!(records);
    assert_eq!(stored(&app.pool, "/chat/completions")[0].status, 502);
}

/// Failed key and admin-token attempts are throttled per client address:
/// the 21st in a minute is 429 with `Retry-After`; another address is not
/// locked out (behind a trusted proxy, as `X-Forwarded-For` names it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_throttled_per_client_address() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.trusted_proxies = vec!["127.0.0.1".into()];
    config.admin = Some(chatgate::config::AdminConfig {
        token: Some("a-long-enough-admin-token-0001".into()),
    });
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let models = |key: &str, from: &str| {
        http()
            .get(format!("{}/models", app.base))
            .bearer_auth(key)
            .header("x-forwarded-for", from)
            .send()
    };
    for i in 0..20 {
        let r = models("sk-wrong-guess", "203.0.113.7").await.unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = models("sk-wrong-guess", "203.0.113.7").await.unwrap();
    let retry = r.headers().get("retry-after").cloned();
    let (status, code, _) = error_parts(r).await;
    assert_eq!((status, code.as_str()), (429, "rate_limit_exceeded"));
    assert!(retry.is_some_and(|s| s.to_str().unwrap().parse::<u64>().unwrap() <= 60));
    // Even the right key from there waits; from elsewhere it works.
    assert_eq!(models(&key, "203.0.113.7").await.unwrap().status(), 429);
    assert_eq!(models(&key, "198.51.100.1").await.unwrap().status(), 200);
    // The admin token too, counted per address.
    for _ in 0..20 {
        let r = http()
            .get(app.url("/admin/users"))
            .bearer_auth("guess")
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = http()
        .get(app.url("/admin/users"))
        .bearer_auth("a-long-enough-admin-token-0001")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // The admin API answers no CORS preflight.
    let r = http()
        .request(reqwest::Method::OPTIONS, app.url("/admin/users"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// Proxied replies carry `nosniff`, and one a browser would render as a
/// page (an HTML file's content) goes as an attachment, never as a page
/// on the web app's origin; the user never sees the admin's note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_runs_on_the_apps_origin_and_notes_stay_the_admins() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let key = app
        .add_user_with(
            "alice",
            UserSettings {
                note: Some(Setting::Set("contractor; fire after Q1".into())),
                ..Default::default()
            },
        )
        .await;
    let form = reqwest::multipart::Form::new()
        .text("purpose", "assistants")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"<script>alert(1)</script>".to_vec())
                .file_name("p.html"),
        );
    let file: Value = http()
        .post(format!("{}/files", app.base))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = file["id"].as_str().unwrap();
    let r = http()
        .get(format!("{}/files/{id}/content?token={key}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["content-disposition"], "attachment");
    let r = post_json(&app, &key, "/chat/completions", &chat("gpt-4o")).await;
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let me = get_json(app.url("/v1/me"), &key).await;
    assert_eq!(me["note"], Value::Null, "{me}");
}

/// Refusals a retry cannot fix say so (`x-should-retry: false`), in
/// OpenAI's and Anthropic's shapes; a misplaced `/v1` is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_that_a_retry_cannot_fix_say_so() {
    let (_mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let no_retry = |r: &reqwest::Response| {
        r.headers()
            .get("x-should-retry")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let r = post_json(&app, "sk-wrong", "/chat/completions", &chat("gpt-4o")).await;
    assert_eq!(
        (r.status().as_u16(), no_retry(&r)),
        (401, Some("false".into()))
    );
    let r = http()
        .post(format!("{}/messages", app.base))
        .header("x-api-key", "sk-wrong")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-x", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), no_retry(&r)),
        (401, Some("false".into()))
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "error", "Anthropic's shape");
    for (path, body) in [
        ("/chat/completions", chat("not-served")),
        ("/batches", json!({})),
        ("/files/file-nobodys", json!({})),
    ] {
        let r = post_json(&app, &key, path, &body).await;
        assert!(matches!(r.status().as_u16(), 403 | 404), "{path}");
        assert_eq!(no_retry(&r).as_deref(), Some("false"), "{path}");
    }
    // A 429 for the rate is worth a retry: no such header.
    // Claude Code with ANTHROPIC_BASE_URL=…/v1 sends /v1/v1/messages.
    let r = post_json(&app, &key, "/v1/messages", &json!({})).await;
    let (status, _, message) = error_parts(r).await;
    assert_eq!(status, 404);
    assert!(
        message.contains("version twice") && message.contains("/v1/v1/messages"),
        "{message}"
    );
    // Codex with a base URL without /v1 sends /responses.
    let r = http()
        .post(app.url("/responses"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_retry(&r).as_deref(), Some("false"));
    let (status, _, message) = error_parts(r).await;
    assert_eq!(status, 404);
    assert!(message.contains("lacks `/v1`"), "{message}");
}

/// Every reply to a metered request carries the caller's own limits in
/// the API's names, never the shared upstream account's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_carry_the_callers_own_limits() {
    let mock = start_mock();
    let anthropic = start_anthropic_mock();
    let (config, dir) = test_config(vec![
        anthropic_upstream("anthropic", &anthropic.url, &["claude-*"]),
        openai_upstream("mock", &mock.url, &["*"]),
    ]);
    let app = spawn_app(config, dir);
    let limited = app
        .add_user_with(
            "alice",
            UserSettings {
                rpm: Some(Setting::Set(60)),
                token_limit: Some(Setting::Set(100_000)),
                ..Default::default()
            },
        )
        .await;
    let free = app.add_user("bob").await;
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let r = post_json(&app, &limited, "/chat/completions", &chat("gpt-4o")).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(
        header(&r, "x-ratelimit-limit-requests").as_deref(),
        Some("60")
    );
    // The model lists the harness sent to see the key count within the minute.
    let remaining: i64 = header(&r, "x-ratelimit-remaining-requests")
        .unwrap()
        .parse()
        .unwrap();
    assert!((0..60).contains(&remaining), "{remaining}");
    assert!(header(&r, "x-ratelimit-reset-requests")
        .unwrap()
        .ends_with('s'));
    let tokens: i64 = header(&r, "x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(tokens < 100_000 && tokens > 90_000, "{tokens}");
    // A caller without limits: none, and not the account's either.
    let r = post_json(&app, &free, "/chat/completions", &chat("gpt-4o")).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "x-ratelimit-limit-requests").is_none());
    // Anthropic's names on its face.
    let r = http()
        .post(format!("{}/messages", app.base))
        .header("x-api-key", &limited)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 50,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "anthropic-ratelimit-requests-limit").as_deref(),
        Some("60")
    );
    assert!(header(&r, "anthropic-ratelimit-tokens-remaining").is_some());
    assert!(header(&r, "x-ratelimit-limit-requests").is_none());
}

/// Every request leaves one log line, refused ones too, each naming its
/// request id, with no key and no body in any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_request_leaves_one_log_line() {
    let mock = start_mock();
    let served = serve_binary(&upstream_yaml(&mock.url, UPSTREAM_KEY), &[]).await;
    let key = "sk-alice-test-key";
    let requests: [(&str, &str, Option<&str>); 6] = [
        (
            "POST",
            "/v1/chat/completions",
            Some("sk-wrong-key-1234567890"),
        ),
        ("GET", "/nowhere/at/all", Some(key)),
        ("POST", "/v1/v1/messages", Some(key)),
        (
            "POST",
            "/v1beta/models/gemini-2.5-flash:generateContent",
            Some(key),
        ),
        ("POST", "/v1/batches", Some(key)),
        ("POST", "/responses", Some(key)),
    ];
    let mut ids = Vec::new();
    for (method, path, with) in requests {
        let mut r = http()
            .request(method.parse().unwrap(), format!("{}{path}", served.base))
            .json(&json!({"secret_prompt": "do not log me"}));
        if let Some(k) = with {
            r = r.bearer_auth(k);
        }
        let r = r.send().await.unwrap();
        assert!(r.status().is_client_error(), "{path}");
        ids.push((
            path,
            r.headers()["x-request-id"].to_str().unwrap().to_owned(),
        ));
    }
    for (path, id) in &ids {
        let logged = eventually(Duration::from_secs(10), || async {
            served
                .log()
                .lines()
                .filter(|l| l.contains(id.as_str()))
                .count()
                == 1
        })
        .await;
        assert!(logged, "{path} ({id}) left no line:\n{}", served.log());
    }
    let log = served.log();
    for secret in ["sk-wrong-key", key, "do not log me", UPSTREAM_KEY] {
        assert!(!log.contains(secret), "{secret} was logged");
    }
    let line = log.lines().find(|l| l.contains(&ids[0].1)).unwrap();
    assert!(
        line.contains("user=\"-\"") && line.contains("status=401"),
        "{line}"
    );
}

/// `/v1/me/usage` costs what the caller's own daily totals cost: a bound
/// within a day (which would read every user's records of that day) is a
/// clear 400; dates and midnights are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_usage_reads_whole_days_only() {
    let (_mock, app) = mock_app().await;
    let key = app.add_user("alice").await;
    let today = chrono::Utc::now().date_naive();
    let get = |query: String| {
        http()
            .get(format!("{}/me/usage?{query}", app.base))
            .bearer_auth(&key)
            .send()
    };
    let r = get(format!("since={today}T00:00:01Z")).await.unwrap();
    let (status, _, message) = error_parts(r).await;
    assert_eq!(status, 400);
    assert!(message.contains("whole days"), "{message}");
    for query in [
        format!("since={today}"),
        format!("since={today}T00:00:00Z"),
        "period=7d".into(),
    ] {
        assert_eq!(get(query.clone()).await.unwrap().status(), 200, "{query}");
    }
}
