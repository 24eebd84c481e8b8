//! Upstream kinds and their plumbing against mock servers: Azure's paths,
//! key pools with failover, timeouts, routing by model, outbound proxies.

use chatgate::config::{UpstreamConfig, UpstreamKind};
use chatgate_testkit::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn azure_upstream(name: &str, mock: &Mock, api_version: &str, models: &[&str]) -> UpstreamConfig {
    UpstreamConfig {
        api_keys: vec!["azure-key-0001".into()],
        models: models.iter().map(|m| m.to_string()).collect(),
        // The mock's root, as an Azure resource endpoint.
        endpoint: Some(mock.url.trim_end_matches("/v1").to_owned()),
        api_version: Some(api_version.into()),
        deployments: BTreeMap::from([("gpt-4o".into(), "prod-gpt4o".into())]),
        ..UpstreamConfig::new(name, UpstreamKind::Azure)
    }
}

fn with_keys(mut u: UpstreamConfig, keys: &[&str]) -> UpstreamConfig {
    u.api_keys = keys.iter().map(|k| k.to_string()).collect();
    u
}

async fn chat(app: &TestApp, key: &str, model: &str, stream: bool) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(key)
        .json(&json!({"model": model, "stream": stream,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_classic_paths_deployments_and_api_key() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![azure_upstream(
        "azure-east",
        &mock,
        "2024-10-21",
        &["gpt-4o", "text-embedding-3-small"],
    )]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;

    let r = chat(&app, &key, "gpt-4o", false).await;
    assert_eq!(r.status(), 200);
    let seen = mock.last();
    assert_eq!(seen.path, "/openai/deployments/prod-gpt4o/chat/completions");
    assert_eq!(seen.query, "api-version=2024-10-21");
    assert_eq!(seen.header("api-key"), Some("azure-key-0001"));
    assert!(
        seen.header("authorization").is_none(),
        "the client's key leaked"
    );

    // Streamed, with usage asked for and hidden as for OpenAI.
    mock.state.release.add_permits(1);
    let text = chat(&app, &key, "gpt-4o", true).await.text().await.unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n") && !text.contains("\"usage\""),
        "{text}"
    );
    let seen: Value = serde_json::from_slice(&mock.last().body).unwrap();
    assert_eq!(seen["stream_options"]["include_usage"], true);

    let r = http()
        .post(format!("{}/embeddings", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": "text-embedding-3-small", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        mock.last().path,
        "/openai/deployments/text-embedding-3-small/embeddings"
    );

    // An endpoint the classic API does not have: a clear 404, not Azure's page.
    let r = http()
        .post(format!("{}/images/generations", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "prompt": "a cat"}))
        .send()
        .await
        .unwrap();
    let (status, code, msg) = error_parts(r).await;
    assert_eq!((status, code.as_str()), (404, "unknown_url"));
    assert!(msg.contains("api_version: v1"), "{msg}");

    // /v1/models lists the configured models.
    let ids = model_ids(&app, &key).await;
    assert_eq!(ids, ["gpt-4o", "text-embedding-3-small"]);
    let pool = app.stop().await;
    let rows = stored(&pool, "/chat/completions");
    let (p, c) = STREAM_USAGE;
    assert_eq!(
        rows[1].total,
        Some(p + c),
        "stream usage from Azure counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_v1_maps_every_path_and_the_model() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![azure_upstream("azure", &mock, "v1", &["*"])]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    assert_eq!(chat(&app, &key, "gpt-4o", false).await.status(), 200);
    let seen = mock.last();
    assert_eq!(
        (seen.path.as_str(), seen.query.as_str()),
        ("/openai/v1/chat/completions", "")
    );
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["model"], "prod-gpt4o");
    let r = http()
        .post(format!("{}/images/generations?quality=hd", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": "dall-e-3", "prompt": "a cat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = mock.last();
    assert_eq!(
        (seen.path.as_str(), seen.query.as_str()),
        ("/openai/v1/images/generations", "quality=hd")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_skips_a_rejected_and_a_busy_key() {
    let mock = start_mock();
    let up = with_keys(
        openai_upstream("pool", &mock.url, &["*"]),
        &[
            "sk-bad401-aaaaaaaa",
            "sk-busy429-bbbbbbb",
            "sk-good-cccccccccc",
        ],
    );
    let (config, dir) = test_config(vec![up]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    for _ in 0..6 {
        assert_eq!(chat(&app, &key, "gpt-4o", false).await.status(), 200);
    }
    // Every request (add_user's probes included) reached the good key; the
    // rejected key was tried once and parked; the busy one cools down, so
    // it is tried far less often than round-robin would (unit tests pin
    // the backoff itself).
    let seen = mock.seen();
    let tries = |k: &str| {
        seen.iter()
            .filter(|s| s.header("authorization") == Some(&format!("Bearer {k}")))
            .count()
    };
    let requests = tries("sk-good-cccccccccc");
    assert!(requests >= 7, "{requests}");
    assert_eq!(tries("sk-bad401-aaaaaaaa"), 1);
    let busy = tries("sk-busy429-bbbbbbb");
    assert!(
        (1..requests / 2).contains(&busy),
        "busy key tried {busy} times in {requests}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_keys_failing_is_502_and_a_hanging_upstream_is_504() {
    let mock = start_mock();
    let busy = with_keys(
        openai_upstream("busy", &mock.url, &["gpt-*"]),
        &["sk-busy429-one", "sk-busy429-two"],
    );
    let slow = openai_upstream("slow", &mock.url, &[models::HANG]);
    let (mut config, dir) = test_config(vec![busy, slow]);
    config.limits.upstream_timeout = Duration::from_millis(500);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let (status, code, msg) = error_parts(chat(&app, &key, "gpt-4o", false).await).await;
    assert_eq!((status, code.as_str()), (502, "upstream_error"));
    assert!(
        msg.contains("busy") && msg.contains("429") && !msg.contains("sk-"),
        "{msg}"
    );

    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": models::HANG}))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_parts(r).await;
    assert_eq!((status, code.as_str()), (504, "upstream_timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_route_by_glob_fail_over_between_upstreams_and_merge() {
    let (a, b) = (start_mock(), start_mock());
    let first = with_keys(
        openai_upstream("first", &a.url, &["gpt-*", "shared"]),
        &["sk-busy429-x"],
    );
    let second = openai_upstream("second", &b.url, &["claude-3", "claude-3.5", "shared"]);
    let (config, dir) = test_config(vec![first, second]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let chats = |m: &Mock| {
        m.seen()
            .iter()
            .filter(|s| s.path == "/v1/chat/completions")
            .count()
    };

    // gpt-* is only on `first`, whose only key is busy: nowhere to go.
    assert_eq!(chat(&app, &key, "gpt-4o", false).await.status(), 502);
    assert_eq!((chats(&a), chats(&b)), (1, 0));
    assert_eq!(chat(&app, &key, "claude-3", false).await.status(), 200);
    assert_eq!((chats(&a), chats(&b)), (1, 1));
    // `shared` is on both: `first` fails (or is cooling down), `second` serves.
    assert_eq!(chat(&app, &key, "shared", false).await.status(), 200);
    assert_eq!(chats(&b), 2);
    let (status, code, _) = error_parts(chat(&app, &key, "llama", false).await).await;
    assert_eq!((status, code.as_str()), (404, "model_not_found"));

    // The merged list: `first` serves a pattern but its only key is busy,
    // so only `second`'s configured models show; nothing leaks or fails.
    let ids = model_ids(&app, &key).await;
    assert_eq!(ids, ["claude-3", "claude-3.5", "shared"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_models_include_live_lists() {
    let (a, b) = (start_mock(), start_mock());
    let live = openai_upstream("live", &a.url, &["*"]);
    let fixed = openai_upstream("fixed", &b.url, &["claude-3", "gpt-4o"]);
    let (config, dir) = test_config(vec![live, fixed]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let ids = model_ids(&app, &key).await;
    assert_eq!(
        ids,
        ["gpt-4o", "gpt-4o-mini", "o1", "claude-3"],
        "live first, no duplicates"
    );
}

async fn through_proxy(socks5: bool) {
    let mock = start_mock();
    let proxy = start_proxy(socks5).await;
    let mut up = openai_upstream("proxied", &mock.url, &["*"]);
    up.proxy = Some(proxy.url.clone());
    let (config, dir) = test_config(vec![up]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    assert_eq!(chat(&app, &key, "gpt-4o", false).await.status(), 200);
    let mock_addr = mock
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_owned();
    let tunnels = proxy.tunnels.lock().unwrap().clone();
    assert!(
        !tunnels.is_empty() && tunnels.iter().all(|t| *t == mock_addr),
        "{tunnels:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_go_through_a_socks5_proxy() {
    through_proxy(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_go_through_an_http_proxy() {
    through_proxy(false).await;
}
