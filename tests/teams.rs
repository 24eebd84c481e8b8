//! Teams and several keys per user (SPEC §9), against a running server on
//! the suite's backend: a team's rules of each kind on top of its members'
//! own, the race for a team's last tokens, keys with their own expiry and
//! models, revocation, self-service, and reports by team and key.

use chatgate_testkit::*;
use serde_json::{json, Value};
use std::time::Duration;

const ADMIN: &str = "adm-test-token-123";

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 3,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// What the gateway reserves for a chat of `model`: body bytes / 4 + max_tokens.
fn reservation(model: &str, stream: bool) -> i64 {
    (serde_json::to_vec(&chat(model, stream)).unwrap().len() / 4) as i64 + 3
}

async fn app_with(edit: impl FnOnce(&mut chatgate::config::Config)) -> (Mock, TestApp) {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.admin = Some(chatgate::config::AdminConfig {
        token: Some(ADMIN.into()),
    });
    config.prices = [(
        "gpt-4o".to_string(),
        serde_json::from_value(json!({"input": 2.5, "output": 10.0})).unwrap(),
    )]
    .into();
    edit(&mut config);
    (mock, spawn_app(config, dir))
}

async fn app() -> (Mock, TestApp) {
    app_with(|_| {}).await
}

/// An admin API call: status and JSON body.
async fn admin(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call(app, ADMIN, method, path, body).await
}

async fn post(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A chat of `model` with `key`, expected refused: status, code, message.
async fn refusal(app: &TestApp, key: &str, model: &str) -> (u16, String, String) {
    error_parts(post(app, key, &chat(model, false)).await).await
}

/// Creates `team` with `rules`, and users `names` in it; returns their keys.
async fn team_of(app: &TestApp, team: &str, rules: Value, names: &[&str]) -> Vec<String> {
    let mut body = rules;
    body["name"] = json!(team);
    let (status, created) = admin(app, "POST", "/admin/teams", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], team);
    let mut keys = Vec::new();
    for name in names {
        keys.push(member(app, team, name, json!({})).await);
    }
    keys
}

/// Adds user `name` with `rules` to `team`; returns their key, once it works.
async fn member(app: &TestApp, team: &str, name: &str, rules: Value) -> String {
    let mut body = rules;
    body["name"] = json!(name);
    body["team"] = json!(team);
    let (status, user) = admin(app, "POST", "/admin/users", Some(body)).await;
    assert_eq!(status, 201, "{user}");
    let key = user["key"].as_str().unwrap().to_owned();
    let (_, shown) = admin(app, "GET", &format!("/admin/users/{name}"), None).await;
    assert_eq!(shown["team"], team);
    assert!(works(app, &key).await, "{name}'s key never worked");
    key
}

/// Whether `key` is accepted within 10 s (the key table refreshes in the
/// background).
async fn works(app: &TestApp, key: &str) -> bool {
    eventually(Duration::from_secs(10), || async {
        key_status(app, key).await.0 == 200
    })
    .await
}

/// Runs the CLI on the app's database; its stdout.
fn cli(app: &TestApp, args: &[&str]) -> String {
    let out = assert_cmd::Command::cargo_bin("chatgate")
        .unwrap()
        .args(["--database", &app.db_url])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_members_get_exactly_what_the_team_budget_reserves() {
    let (mock, app) = app().await;
    let k = 4;
    let keys = team_of(
        &app,
        "data",
        json!({"token_limit": k * reservation("gpt-4o", true)}),
        &["alice", "bob", "carol"],
    )
    .await;
    // 30 streams at once from three members; the mock holds each admitted
    // stream after its first chunk, so all admitted are in flight at once.
    let results: Vec<_> = futures_util::future::join_all((0..30).map(|i| {
        let key = keys[i % keys.len()].clone();
        let app = &app;
        async move {
            let r = post(app, &key, &chat("gpt-4o", true)).await;
            (r.status().as_u16(), r)
        }
    }))
    .await;
    let admitted = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(
        admitted as i64,
        k,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    mock.state.release.add_permits(admitted);
    for (status, r) in results {
        if status == 200 {
            assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
        } else {
            let (status, code, msg) = error_parts(r).await;
            assert_eq!((status, code.as_str()), (429, "insufficient_quota"));
            assert!(
                msg.starts_with("Your team `data` has used its token limit of"),
                "{msg}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_request_limit_binds_its_members_and_its_refusals_use_none_of_theirs() {
    let (_mock, app) = app().await;
    // works()'s probe (a model list) uses no request limit.
    let keys = team_of(&app, "ops", json!({"request_limit": 2}), &[]).await;
    assert!(keys.is_empty());
    let dan = member(&app, "ops", "dan", json!({"request_limit": 2})).await;
    let erin = member(&app, "ops", "erin", json!({})).await;
    assert_eq!(post(&app, &dan, &chat("gpt-4o", false)).await.status(), 200);
    assert_eq!(
        post(&app, &erin, &chat("gpt-4o", false)).await.status(),
        200
    );
    // The team's two are used: both members are refused, many times.
    for key in [&dan, &erin, &dan, &erin, &dan] {
        let (status, code, msg) = refusal(&app, key, "gpt-4o").await;
        assert_eq!(
            (status, code.as_str()),
            (429, "insufficient_quota"),
            "{msg}"
        );
        assert!(
            msg.starts_with("Your team `ops` has used its request limit of 2"),
            "{msg}"
        );
    }
    // A top-up of the team: dan has one of his own two left, then none.
    let (status, team) = admin(
        &app,
        "POST",
        "/admin/teams/ops/recharge",
        Some(json!({"requests": 10})),
    )
    .await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(team["request_limit"], 12);
    let lifted = eventually(Duration::from_secs(10), || async {
        post(&app, &dan, &chat("gpt-4o", false)).await.status() == 200
    })
    .await;
    assert!(lifted, "the team's top-up did not lift the block");
    let (status, code, msg) = refusal(&app, &dan, "gpt-4o").await;
    assert_eq!((status, code.as_str()), (429, "insufficient_quota"));
    assert!(
        msg.starts_with("You have used your request limit of 2"),
        "{msg}"
    );
    // erin has no limit of her own: only the team's holds her.
    assert_eq!(
        post(&app, &erin, &chat("gpt-4o", false)).await.status(),
        200
    );
    let (_, team) = admin(&app, "GET", "/admin/teams/ops", None).await;
    assert_eq!(team["members"], json!(["dan", "erin"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_holds_its_members_to_its_models_rate_parallel_and_dollars() {
    let (mock, app) = app().await;
    let keys = team_of(
        &app,
        "lab",
        json!({"models": ["gpt-4o", "o1"], "max_parallel": 1}),
        &["fay", "gus"],
    )
    .await;
    // Models: both lists; the team's list narrows a user without one.
    let (status, code, msg) = refusal(&app, &keys[0], "gpt-4o-mini").await;
    assert_eq!((status, code.as_str()), (403, "model_not_allowed"), "{msg}");
    let ids = model_ids(&app, &keys[0]).await;
    assert!(ids.iter().all(|m| m == "gpt-4o" || m == "o1"), "{ids:?}");

    // Parallel: one running stream of fay's (its headers are in, the mock
    // holds the rest) holds gus back.
    // (Admitted once the model list's slot, just above, is given back.)
    let mut held = None;
    for _ in 0..100 {
        let r = post(&app, &keys[0], &chat("gpt-4o", true)).await;
        if r.status() == 200 {
            held = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = held.expect("fay's stream was never admitted");
    let (status, code, msg) = refusal(&app, &keys[1], "gpt-4o").await;
    assert_eq!(
        (status, code.as_str()),
        (429, "rate_limit_exceeded"),
        "{msg}"
    );
    assert!(
        msg.starts_with("Your team `lab` has 1 requests running"),
        "{msg}"
    );
    mock.state.release.add_permits(1);
    assert!(held.text().await.unwrap().ends_with("data: [DONE]\n\n"));

    // Rate: a team of its own, whose member's probe was one of its three.
    let (status, _) = admin(
        &app,
        "POST",
        "/admin/teams",
        Some(json!({"name": "fast", "rpm": 3})),
    )
    .await;
    assert_eq!(status, 201);
    let hugo = member(&app, "fast", "hugo", json!({})).await;
    for _ in 0..2 {
        assert_eq!(
            post(&app, &hugo, &chat("gpt-4o", false)).await.status(),
            200
        );
    }
    let (status, code, msg) = refusal(&app, &hugo, "gpt-4o").await;
    assert_eq!(
        (status, code.as_str()),
        (429, "rate_limit_exceeded"),
        "{msg}"
    );
    assert!(
        msg.contains("your team `fast`'s 3 requests per minute"),
        "{msg}"
    );

    // Dollars: a team with a budget allows only priced models.
    let (status, _) = admin(
        &app,
        "PATCH",
        "/admin/teams/lab",
        Some(json!({"budget_usd": 1, "rpm": null, "max_parallel": null})),
    )
    .await;
    assert_eq!(status, 200);
    let unpriced = eventually(Duration::from_secs(10), || async {
        let (_, code, msg) = refusal(&app, &keys[1], "o1").await;
        code == "model_not_allowed" && msg.contains("`o1` has no price")
    })
    .await;
    assert!(unpriced, "a team budget let an unpriced model through");
    assert_eq!(
        post(&app, &keys[1], &chat("gpt-4o", false)).await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_keys_have_their_own_expiry_and_models_and_end_one_at_a_time() {
    let (_mock, app) = app().await;
    let (status, user) = admin(
        &app,
        "POST",
        "/admin/users",
        Some(json!({"name": "hal", "models": ["gpt-*"]})),
    )
    .await;
    assert_eq!(status, 201);
    let laptop = user["key"].as_str().unwrap().to_owned();
    let add = |body: Value| {
        let app = &app;
        async move { admin(app, "POST", "/admin/users/hal/keys", Some(body)).await }
    };
    let (status, ci) = add(json!({"label": "ci", "models": ["gpt-4o"]})).await;
    assert_eq!(status, 201, "{ci}");
    assert_eq!(
        (ci["user"].clone(), ci["label"].clone()),
        (json!("hal"), json!("ci"))
    );
    let ci = ci["key"].as_str().unwrap().to_owned();
    let (status, old) = add(json!({"label": "old", "expires": "2020-01-01"})).await;
    assert_eq!(status, 201, "{old}");
    let old = old["key"].as_str().unwrap().to_owned();
    let (status, unnamed) = add(json!({})).await;
    assert_eq!((status, unnamed["label"].clone()), (201, json!("key-1")));
    let (status, taken) = add(json!({"label": "ci"})).await;
    assert_eq!(
        (status, taken["error"]["code"].clone()),
        (409, json!("label_taken"))
    );

    assert!(works(&app, &ci).await && works(&app, &laptop).await);
    // The ci key narrows hal's models; the laptop key has all of hal's.
    let (status, code, _) = refusal(&app, &ci, "gpt-4o-mini").await;
    assert_eq!((status, code.as_str()), (403, "model_not_allowed"));
    assert_eq!(
        post(&app, &laptop, &chat("gpt-4o-mini", false))
            .await
            .status(),
        200
    );
    assert_eq!(model_ids(&app, &ci).await, vec!["gpt-4o".to_owned()]);
    // Only the expired key is expired.
    assert_eq!(
        key_status(&app, &old).await,
        (401, "key_expired".to_owned())
    );

    let (_, listed) = admin(&app, "GET", "/admin/users/hal/keys", None).await;
    let labels: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].clone())
        .collect();
    assert_eq!(
        labels,
        [json!("default"), json!("ci"), json!("old"), json!("key-1")]
    );
    assert_eq!(listed[1]["models"], json!(["gpt-4o"]));
    assert!(listed[2]["expires_at"]
        .as_str()
        .unwrap()
        .starts_with("2020-01-01"));
    assert!(
        !listed.to_string().contains(&ci[10..]),
        "a key was shown again"
    );

    // Revoking ci ends it within 2 s; the laptop keeps working.
    let (status, _) = admin(&app, "DELETE", "/admin/users/hal/keys/ci", None).await;
    assert_eq!(status, 204);
    let ended = eventually(Duration::from_secs(2), || async {
        key_status(&app, &ci).await.0 == 401
    })
    .await;
    assert!(ended, "a revoked key still worked after 2 s");
    assert_eq!(key_status(&app, &laptop).await.0, 200);
    let (status, gone) = admin(&app, "DELETE", "/admin/users/hal/keys/ci", None).await;
    assert_eq!(
        (status, gone["error"]["code"].clone()),
        (404, json!("not_found"))
    );

    // `token rotate --label` replaces one key, keeping its label.
    let out = cli(
        &app,
        &[
            "token", "rotate", "hal", "--label", "key-1", "--format", "json",
        ],
    );
    let rotated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rotated["name"], "hal");
    let fresh = rotated["key"].as_str().unwrap().to_owned();
    assert!(works(&app, &fresh).await);
    assert_eq!(
        key_status(&app, unnamed["key"].as_str().unwrap()).await.0,
        401
    );
    assert_eq!(key_status(&app, &laptop).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_manage_their_own_keys_within_the_configured_bounds() {
    let (_mock, app) = app_with(|c| c.keys.max_per_user = 3).await;
    let ivy = app
        .add_user_with(
            "ivy",
            chatgate::users::UserSettings {
                models: Some(chatgate::users::Setting::Set(vec![
                    "gpt-4o".into(),
                    "gpt-4o-mini".into(),
                ])),
                ..Default::default()
            },
        )
        .await;
    let (status, created) = call(
        &app,
        &ivy,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "laptop"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["label"], "laptop");
    assert!(created.get("user").is_none());
    let laptop = created["key"].as_str().unwrap().to_owned();
    assert!(works(&app, &laptop).await);

    // Three keys: the bound; the admin is not bound by it.
    let (status, _) = call(
        &app,
        &ivy,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "ci"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, refused) = call(
        &app,
        &ivy,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "more"})),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (409, json!("too_many_keys")),
        "{refused}"
    );
    let (status, _) = admin(
        &app,
        "POST",
        "/admin/users/ivy/keys",
        Some(json!({"label": "more"})),
    )
    .await;
    assert_eq!(status, 201);
    for label in ["ci", "more"] {
        let (status, _) = call(&app, &ivy, "DELETE", &format!("/v1/me/keys/{label}"), None).await;
        assert_eq!(status, 204);
    }

    let (status, refused) = call(
        &app,
        &ivy,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "laptop"})),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (409, json!("label_taken"))
    );
    let (status, refused) = call(
        &app,
        &ivy,
        "POST",
        "/v1/me/keys",
        Some(json!({"models": ["gpt-4o", "o1"]})),
    )
    .await;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = call(
        &app,
        &ivy,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "x", "token": "sk-mine"})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = call(&app, &ivy, "DELETE", "/v1/me/keys/nope", None).await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (404, json!("not_found"))
    );

    let (status, listed) = call(&app, &laptop, "GET", "/v1/me/keys", None).await;
    assert_eq!(status, 200);
    let labels: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["label"].clone())
        .collect();
    assert_eq!(labels, [json!("default"), json!("laptop")]);
    assert!(listed.to_string().contains("key_hint") && !listed.to_string().contains("hash"));

    // Revoking the key in use ends it; the other still works.
    let (status, _) = call(&app, &laptop, "DELETE", "/v1/me/keys/laptop", None).await;
    assert_eq!(status, 204);
    assert!(
        eventually(Duration::from_secs(2), || async {
            key_status(&app, &laptop).await.0 == 401
        })
        .await
    );
    assert_eq!(key_status(&app, &ivy).await.0, 200);

    // A narrowed key makes only keys as narrow, ending no later than it.
    let (status, ci) = admin(
        &app,
        "POST",
        "/admin/users/ivy/keys",
        Some(json!({"label": "ci", "models": ["gpt-4o-mini"], "expires": "2099-01-01"})),
    )
    .await;
    assert_eq!(status, 201);
    let ci = ci["key"].as_str().unwrap().to_owned();
    assert!(works(&app, &ci).await);
    let (status, refused) = call(
        &app,
        &ci,
        "POST",
        "/v1/me/keys",
        Some(json!({"models": ["gpt-4o"]})),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (403, json!("model_not_allowed"))
    );
    let (status, made) = call(
        &app,
        &ci,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "from-ci", "expires": "never"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let (_, listed) = call(&app, &ivy, "GET", "/v1/me/keys", None).await;
    let made = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "from-ci")
        .unwrap();
    assert_eq!(made["models"], json!(["gpt-4o-mini"]), "{made}");
    assert!(
        made["expires_at"]
            .as_str()
            .unwrap()
            .starts_with("2099-01-01"),
        "{made}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_service_can_be_turned_off() {
    let (_mock, app) = app_with(|c| c.keys.self_service = false).await;
    let key = app.add_user("jo").await;
    for (method, path) in [
        ("GET", "/v1/me/keys"),
        ("POST", "/v1/me/keys"),
        ("DELETE", "/v1/me/keys/default"),
    ] {
        let (status, body) = call(&app, &key, method, path, Some(json!({}))).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (403, json!("self_service_disabled")),
            "{method} {path}"
        );
    }
    assert_eq!(key_status(&app, &key).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_show_teams_and_keys_and_a_move_moves_only_future_usage() {
    let (_mock, app) = app().await;
    let keys = team_of(&app, "red", json!({}), &["kim", "lee"]).await;
    // blue's model list shows when the server has seen a move to it.
    let (status, _) = admin(
        &app,
        "POST",
        "/admin/teams",
        Some(json!({"name": "blue", "models": ["gpt-4o"]})),
    )
    .await;
    assert_eq!(status, 201);
    let solo = app.add_user("max").await;
    let (_, ci) = admin(
        &app,
        "POST",
        "/admin/users/kim/keys",
        Some(json!({"label": "ci"})),
    )
    .await;
    let ci = ci["key"].as_str().unwrap().to_owned();
    assert!(works(&app, &ci).await);
    for key in [&keys[0], &ci, &ci, &keys[1], &solo] {
        assert_eq!(post(&app, key, &chat("gpt-4o", false)).await.status(), 200);
    }
    // lee moves to blue: her later usage is blue's, her earlier stays red's.
    let (status, moved) = admin(
        &app,
        "PATCH",
        "/admin/users/lee",
        Some(json!({"team": "blue"})),
    )
    .await;
    assert_eq!((status, moved["team"].clone()), (200, json!("blue")));
    let moved = eventually(Duration::from_secs(10), || async {
        model_ids(&app, &keys[1]).await == ["gpt-4o"]
    })
    .await;
    assert!(moved);
    assert_eq!(
        post(&app, &keys[1], &chat("gpt-4o", false)).await.status(),
        200
    );
    let (_, blue) = admin(&app, "GET", "/admin/teams/blue", None).await;
    assert_eq!(blue["members"], json!(["lee"]));
    // Removing a team with members is refused, naming them.
    let (status, refused) = admin(&app, "DELETE", "/admin/teams/red", None).await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (409, json!("team_not_empty"))
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kim"),
        "{refused}"
    );
    let report = |args: &[&str]| -> Value {
        let mut all = vec!["usage", "report", "--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&cli(&app, &all)).unwrap()
    };
    // The chats alone (each key's probe is a request too).
    let chats = |v: &Value, field: &str| -> Vec<(Value, i64)> {
        let mut out: Vec<(Value, i64)> = Vec::new();
        for r in v
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["model"] == "gpt-4o")
        {
            match out.iter_mut().find(|(k, _)| *k == r[field]) {
                Some(row) => row.1 += r["requests"].as_i64().unwrap(),
                None => out.push((r[field].clone(), r["requests"].as_i64().unwrap())),
            }
        }
        out.sort_by_key(|(k, _)| k.to_string());
        out
    };
    // Usage is written in batches off the request path.
    let written = eventually(Duration::from_secs(10), || async {
        chats(&report(&["--by", "model"]), "model") == [(json!("gpt-4o"), 6)]
    })
    .await;
    assert!(written, "{}", report(&["--by", "model"]));
    let by_team = report(&["--by", "team,model"]);
    assert_eq!(
        chats(&by_team, "team"),
        [(json!("blue"), 1), (json!("red"), 4), (Value::Null, 1)],
        "{by_team}"
    );
    let by_key = report(&["--by", "key,model", "--team", "red"]);
    assert_eq!(
        chats(&by_key, "key"),
        [
            (json!("kim/ci"), 2),
            (json!("kim/default"), 1),
            (json!("lee/default"), 1)
        ],
        "{by_key}"
    );
    let both = report(&["--by", "team,key,model", "--team", "blue", "--team", "red"]);
    assert_eq!(chats(&both, "key").len(), 3, "{both}");
    assert!(
        both.as_array()
            .unwrap()
            .iter()
            .all(|r| r["team"] != Value::Null),
        "{both}"
    );
    let csv = cli(
        &app,
        &["usage", "report", "--by", "team", "--format", "csv"],
    );
    assert!(csv.lines().nth(1).unwrap().starts_with(','), "{csv}");
}
