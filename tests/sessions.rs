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

/// A provider the gateway never has to reach: sessions are made here.
fn app_oidc() -> Option<chatgate::config::OidcConfig> {
    serde_json::from_value(json!({
        "issuer": "https://id.example.test", "client_id": "gate", "client_secret": "s3cret-for-tests"
    }))
    .ok()
}

fn app() -> TestApp {
    let (mut config, dir) = test_config(vec![]);
    config.use_demo_upstream();
    config.web.oidc = app_oidc();
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
    let set_disabled = |disabled: bool| {
        let mut conn = app.pool.get().unwrap();
        let change = chatgate::users::UserSettings {
            disabled: Some(disabled),
            ..Default::default()
        };
        chatgate::users::update(&mut conn, &chatgate::audit::Actor::Config, "alice", change)
            .unwrap();
    };
    set_disabled(true);
    assert_eq!(call(&app, &id, None, "GET", "/v1/me", None).await.0, 401);
    set_disabled(false);
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

/// An issuer that publishes `keys` (swapped by the test) at its JWKS URL.
async fn issuer(keys: std::sync::Arc<std::sync::Mutex<Value>>) -> String {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let doc = json!({"issuer": base, "authorization_endpoint": format!("{base}/auth"),
        "token_endpoint": format!("{base}/token"), "jwks_uri": format!("{base}/jwks")});
    let server = HttpServer::new(move || {
        let (doc, keys) = (doc.clone(), keys.clone());
        App::new()
            .route(
                "/.well-known/openid-configuration",
                web::get().to(move || {
                    let doc = doc.clone();
                    async move { HttpResponse::Ok().json(doc) }
                }),
            )
            .route(
                "/jwks",
                web::get().to(move || {
                    let keys = keys.lock().unwrap().clone();
                    async move { HttpResponse::Ok().json(keys) }
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    base
}

/// A P-256 signing key and its public JWK under `kid`.
fn es256(kid: &str) -> (jsonwebtoken::EncodingKey, Value) {
    use base64::Engine;
    let pair = rcgen::KeyPair::generate().unwrap();
    let raw = pair.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..])});
    (
        jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
        jwk,
    )
}

#[actix_web::test]
async fn keys_the_issuer_rotates_are_read_again_and_old_ones_then_refused() {
    let (a, a_jwk) = es256("a");
    let (b, b_jwk) = es256("b");
    let keys = std::sync::Arc::new(std::sync::Mutex::new(json!({"keys": [a_jwk]})));
    let base = issuer(keys.clone()).await;
    let config: chatgate::config::OidcConfig =
        serde_json::from_value(json!({"issuer": base, "client_id": "gate", "client_secret": "s"}))
            .unwrap();
    let token = |key: &jsonwebtoken::EncodingKey, kid: &str| {
        let now = chrono::Utc::now().timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.into());
        let claims = json!({"iss": base, "aud": "gate", "sub": "u", "exp": now + 60, "nonce": "n"});
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let cache = chatgate::oidc::ProviderCache::default();
    let d = cache.discovery(&base).await.unwrap();
    assert!(cache
        .verify(&d, &config, &token(&a, "a"), "n")
        .await
        .is_ok());
    // The issuer rotates: b is read when a token names it; a is gone.
    *keys.lock().unwrap() = json!({"keys": [b_jwk]});
    assert!(cache
        .verify(&d, &config, &token(&b, "b"), "n")
        .await
        .is_ok());
    assert!(cache
        .verify(&d, &config, &token(&a, "a"), "n")
        .await
        .is_err());
    // A key claiming b's id but not b's signature proves nothing.
    assert!(cache
        .verify(&d, &config, &token(&a, "b"), "n")
        .await
        .is_err());
}

#[tokio::test]
async fn the_session_cookie_is_secure_over_tls() {
    let (mut config, dir) = test_config(vec![]);
    config.web.oidc = app_oidc();
    config.use_demo_upstream();
    let (app, client) = spawn_tls_app(config, dir);
    let r = client
        .post(format!("https://localhost:{}/auth/logout", app.port))
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("chatgate_session=")
            && cookie.contains("Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

/// Where a sign-in ends when refused: back on the page with the reason.
fn refusal_of(r: &reqwest::Response) -> String {
    assert_eq!(r.status().as_u16(), 302);
    let to = r.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(&format!("http://x{to}")).unwrap();
    assert_eq!(
        (url.path(), url.fragment()),
        ("/", Some("/account")),
        "{to}"
    );
    url.query_pairs()
        .find(|(k, _)| k == "sign_in_error")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn refused_and_hostile_callbacks_say_why_and_sign_no_one_in() {
    let app = app();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: String, cookie: Option<&'static str>| {
        let mut r = client.get(app.url(&path));
        if let Some(c) = cookie {
            r = r.header("Cookie", c);
        }
        r.send()
    };
    // The provider said no: its reason, as text (the page shows it so).
    let r = get(
        "/auth/callback?error=access_denied&error_description=%3Cscript%3Ex%3C%2Fscript%3E".into(),
        None,
    )
    .await
    .unwrap();
    let why = refusal_of(&r);
    assert!(
        why.contains("access_denied") && why.contains("<script>x</script>"),
        "{why}"
    );
    let cookies: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().all(|c| !c.starts_with("chatgate_session=")),
        "no session: {cookies:?}"
    );
    // A state this browser was not given, or none at all.
    for (query, cookie) in [
        ("code=c&state=s1", None),
        ("code=c&state=s1", Some("chatgate_sign_in=s2")),
        ("code=c", Some("chatgate_sign_in=s1")),
        (
            &*format!("code=c&state={}", "x".repeat(10_000)),
            Some("chatgate_sign_in=y"),
        ),
    ] {
        let why = refusal_of(
            &get(format!("/auth/callback?{query}"), cookie)
                .await
                .unwrap(),
        );
        assert!(
            why.contains("state") || why.contains("no code"),
            "{query}: {why}"
        );
    }
    // The browser's state, but never begun (or already used) here.
    let why = refusal_of(
        &get(
            "/auth/callback?code=c&state=s1".into(),
            Some("chatgate_sign_in=s1"),
        )
        .await
        .unwrap(),
    );
    assert!(why.contains("expired or was already used"), "{why}");
    // An issuer that cannot be reached: said, nothing started.
    let why = refusal_of(&get("/auth/login".into(), None).await.unwrap());
    assert!(why.contains("cannot be reached"), "{why}");
    // A made-up session cookie is nobody, and a CSRF header alone opens nothing.
    let (_, who) = call(&app, "forged", None, "GET", "/auth/session", None).await;
    assert_eq!(who["user"], Value::Null);
    assert_eq!(who["sso"], "SSO");
    let (s, _) = call(
        &app,
        "forged",
        Some("t"),
        "POST",
        "/v1/me/keys",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 401);
}
