//! The admin HTTP API: on only with `admin.token`, checked; each operation
//! the same as the CLI's.

use chatgate_testkit::*;
use serde_json::{json, Value};
use std::time::Duration;

const ADMIN: &str = "adm-test-token-123";

async fn admin_app() -> (Mock, TestApp) {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.admin = Some(chatgate::config::AdminConfig {
        token: Some(ADMIN.into()),
    });
    (mock, spawn_app(config, dir))
}

/// An admin API call with the admin token.
async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    chatgate_testkit::call(app, ADMIN, method, path, body).await
}

async fn becomes(app: &TestApp, key: &str, want: (u16, &str)) -> bool {
    eventually(Duration::from_secs(10), || async {
        let (s, c) = key_status(app, key).await;
        s == want.0 && c == want.1
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_can_be_managed_over_http() {
    let (_mock, app) = admin_app().await;
    let (status, created) = call(
        &app,
        "POST",
        "/admin/users",
        Some(
            json!({"name": "alice", "token_limit": 1000, "models": ["gpt-*"],
                    "expires": "2099-01-01", "note": "from the API"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "alice");
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-") && key.len() == 51);
    assert!(
        becomes(&app, &key, (200, "")).await,
        "the new key never worked"
    );

    let (status, user) = call(&app, "GET", "/admin/users/alice", None).await;
    assert_eq!(status, 200);
    assert_eq!(user["token_limit"], 1000);
    assert_eq!(user["models"], json!(["gpt-*"]));
    assert_eq!(user["expires_at"], "2099-01-01T23:59:59Z");
    assert_eq!(user["note"], "from the API");

    // null clears, absent keeps; disabled blocks the key.
    let (status, user) = call(
        &app,
        "PATCH",
        "/admin/users/alice",
        Some(json!({"models": null, "rpm": 10, "disabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["models"], Value::Null);
    assert_eq!(user["rpm"], 10);
    assert_eq!(user["token_limit"], 1000);
    assert_eq!(user["status"], "disabled");
    assert!(becomes(&app, &key, (401, "user_disabled")).await);
    call(
        &app,
        "PATCH",
        "/admin/users/alice",
        Some(json!({"disabled": false})),
    )
    .await;

    let (status, recharged) = call(
        &app,
        "POST",
        "/admin/users/alice/recharge",
        Some(json!({"tokens": 500})),
    )
    .await;
    assert_eq!(
        (status, recharged["token_limit"].as_i64()),
        (200, Some(1500))
    );
    let (status, err) = call(
        &app,
        "POST",
        "/admin/users/alice/recharge",
        Some(json!({"requests": 5})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no request limit"),
        "{err}"
    );

    let (status, rotated) = call(&app, "POST", "/admin/users/alice/rotate", None).await;
    assert_eq!(status, 200);
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert!(
        becomes(&app, &key, (401, "invalid_api_key")).await,
        "the old key still works"
    );
    assert!(becomes(&app, &new_key, (200, "")).await);

    let (status, list) = call(&app, "GET", "/admin/users", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, rows) = call(&app, "GET", "/admin/usage?period=today&by=user,model", None).await;
    assert_eq!(status, 200, "{rows}");
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["user"] == "alice"),
        "{rows}"
    );

    let (status, _) = call(&app, "DELETE", "/admin/users/alice", None).await;
    assert_eq!(status, 204);
    let (status, err) = call(&app, "GET", "/admin/users/alice", None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("user_not_found"))
    );
    assert!(becomes(&app, &new_key, (401, "invalid_api_key")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let (_mock, app) = admin_app().await;
    for (body, needle) in [
        (json!({"name": "a b"}), "whitespace"),
        (json!({"name": "x", "limit_period": "week"}), "limit_period"),
        (json!({"name": "x", "expires": "soon"}), "expires"),
        (json!({"name": "x", "token_limit": -5}), "token_limit"),
        (json!({"name": "x", "colour": "blue"}), "colour"),
        (json!({"nom": "x"}), "name"),
    ] {
        let (status, err) = call(&app, "POST", "/admin/users", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {err}");
        let msg = err["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    call(&app, "POST", "/admin/users", Some(json!({"name": "x"}))).await;
    let (status, err) = call(&app, "POST", "/admin/users", Some(json!({"name": "x"}))).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (status, _) = call(&app, "GET", "/admin/usage?by=planet", None).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_required_and_the_api_off_without_one() {
    let (_mock, app) = admin_app().await;
    for token in ["wrong", "", "adm-test-token-12", "adm-test-token-1234"] {
        let r = http()
            .get(app.url("/admin/users"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{token:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert!(!v.to_string().contains(ADMIN));
    }
    let r = http().get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A user's key is not an admin token.
    let key = app.add_user("bob").await;
    let r = http()
        .get(app.url("/admin/users"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let off = spawn_app(config, dir);
    let r = http()
        .get(off.url("/admin/users"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
