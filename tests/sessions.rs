//! Sign-in sessions (SPEC §9) on the suite's backend: kept in the
//! database (so any instance knows them), ended by time, by sign-out and
//! at once by disabling the user; a change made with the cookie needs the
//! CSRF token; an admin group's session reaches `/admin/*`, another's
//! does not. The sign-in itself, through a real provider in a browser, is
//! web/tests/signin.test.mjs.

use chatgate::sessions;
use chatgate_testkit::*;
use serde_json::{json, Value};
use std::time::Duration;

fn app() -> TestApp {
    let (mut config, dir) = test_config(vec![upstream(
        chatgate::config::UpstreamKind::Echo,
        "echo",
        "",
        &["*"],
    )]);
    config.web.oidc = Some(
        serde_json::from_value(json!({
            "issuer": "https://id.example.test", "client_id": "gate", "client_secret": "s3cret-for-tests"
        }))
        .unwrap(),
    );
    spawn_app(config, dir)
}

fn session(app: &TestApp, user: &str, admin: bool, ttl: Duration) -> (String, String) {
    let mut conn = app.pool.get().unwrap();
    let id = sessions::create(&mut conn, user, &format!("{user}@idp"), admin, ttl).unwrap();
    let csrf = sessions::find(&mut conn, &id).unwrap().unwrap().csrf;
    (id, csrf)
}

async fn call(
    app: &TestApp,
    cookie: &str,
    csrf: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http()
        .request(method.parse().unwrap(), app.url(path))
        .header("Cookie", format!("chatgate_session={cookie}"));
    if let Some(t) = csrf {
        r = r.header("x-csrf-token", t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_session_acts_for_its_user_only_with_the_csrf_token_and_ends_when_told() {
    let app = app();
    app.add_user("alice").await;
    let (id, csrf) = session(&app, "alice", false, Duration::from_secs(3600));

    let (s, me) = call(&app, &id, None, "GET", "/v1/me", None).await;
    assert_eq!((s, me["name"].as_str()), (200, Some("alice")), "{me}");
    let (s, e) = call(
        &app,
        &id,
        None,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "x"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (403, Some("csrf_failed")),
        "{e}"
    );
    let (s, e) = call(
        &app,
        &id,
        Some("wrong"),
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "x"})),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    let (s, made) = call(
        &app,
        &id,
        Some(&csrf),
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "laptop"})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    let rows = {
        let mut conn = app.pool.get().unwrap();
        chatgate::audit::list(&mut conn, &Default::default()).unwrap()
    };
    let last = rows.last().unwrap();
    assert_eq!(
        (
            last.actor.as_str(),
            last.action.as_str(),
            last.target.as_str()
        ),
        ("oidc:alice@idp", "key.add", "alice/laptop")
    );
    // Not an admin: the console's API refuses, reads and changes alike.
    assert_eq!(
        call(&app, &id, None, "GET", "/admin/users", None).await.0,
        403
    );
    assert_eq!(
        call(&app, &id, Some(&csrf), "DELETE", "/admin/users/alice", None)
            .await
            .0,
        403
    );

    // Disabling the user ends the session at once; enabling brings it back.
    {
        let mut conn = app.pool.get().unwrap();
        let by = chatgate::audit::Actor::Config;
        let off = chatgate::users::UserSettings {
            disabled: Some(true),
            ..Default::default()
        };
        chatgate::users::update(&mut conn, &by, "alice", off).unwrap();
    }
    assert_eq!(call(&app, &id, None, "GET", "/v1/me", None).await.0, 401);
    {
        let mut conn = app.pool.get().unwrap();
        let by = chatgate::audit::Actor::Config;
        let on = chatgate::users::UserSettings {
            disabled: Some(false),
            ..Default::default()
        };
        chatgate::users::update(&mut conn, &by, "alice", on).unwrap();
    }
    assert_eq!(call(&app, &id, None, "GET", "/v1/me", None).await.0, 200);

    // Sign-out needs the token too, then the cookie opens nothing.
    assert_eq!(
        call(&app, &id, None, "POST", "/auth/logout", None).await.0,
        403
    );
    assert_eq!(
        call(&app, &id, Some(&csrf), "POST", "/auth/logout", None)
            .await
            .0,
        204
    );
    assert_eq!(call(&app, &id, None, "GET", "/v1/me", None).await.0, 401);
    let (_, who) = call(&app, &id, None, "GET", "/auth/session", None).await;
    assert_eq!(who["user"], Value::Null);

    // An ended session (its time up) and an unknown id open nothing.
    let old = {
        let mut conn = app.pool.get().unwrap();
        sessions::create(&mut conn, "alice", "alice@idp", false, Duration::ZERO).unwrap()
    };
    assert_eq!(call(&app, &old, None, "GET", "/v1/me", None).await.0, 401);
    assert_eq!(
        call(&app, "not-a-session", None, "GET", "/v1/me", None)
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn an_admin_session_runs_the_console_and_is_audited_by_name() {
    let app = app();
    app.add_user("root").await;
    let (id, csrf) = session(&app, "root", true, Duration::from_secs(3600));
    let (_, who) = call(&app, &id, None, "GET", "/auth/session", None).await;
    assert_eq!(
        (who["user"].as_str(), who["admin"].as_bool()),
        (Some("root"), Some(true)),
        "{who}"
    );
    assert_eq!(
        call(&app, &id, None, "GET", "/admin/users", None).await.0,
        200
    );
    let add = Some(json!({"name": "data"}));
    assert_eq!(
        call(&app, &id, None, "POST", "/admin/teams", add.clone())
            .await
            .0,
        403,
        "no CSRF token"
    );
    assert_eq!(
        call(&app, &id, Some(&csrf), "POST", "/admin/teams", add)
            .await
            .0,
        201
    );
    let (s, rows) = call(&app, &id, None, "GET", "/admin/audit?target=data", None).await;
    assert_eq!(s, 200);
    assert_eq!(rows[0]["actor"], "oidc:root@idp");
    // The token is not needed, but a wrong one is still refused.
    let r = http()
        .get(app.url("/admin/users"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[test]
fn a_sign_in_in_progress_is_taken_once() {
    let dir = tempfile::tempdir().unwrap();
    let pool = chatgate::db::open(&fresh_database_url(dir.path())).unwrap();
    let mut conn = pool.get().unwrap();
    let pending = sessions::Pending {
        nonce: "n".into(),
        verifier: "v".repeat(43),
        redirect_uri: "https://gate.example/auth/callback".into(),
    };
    sessions::begin_sign_in(&mut conn, "state-1", &pending).unwrap();
    let taken = sessions::take_sign_in(&mut conn, "state-1")
        .unwrap()
        .unwrap();
    assert_eq!((taken.nonce.as_str(), taken.verifier.len()), ("n", 43));
    assert!(
        sessions::take_sign_in(&mut conn, "state-1")
            .unwrap()
            .is_none(),
        "replayed"
    );
    assert!(
        sessions::take_sign_in(&mut conn, "state-2")
            .unwrap()
            .is_none(),
        "forged"
    );
}
