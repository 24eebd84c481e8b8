//! The real gateway on port 0 with a fresh database (SQLite file in a temp
//! dir, or a PostgreSQL database of its own), and the calls tests make to it.

use crate::UPSTREAM_KEY;
use chatgate::config::{Config, UpstreamConfig, UpstreamKind};
use chatgate::db::Pool;
use chatgate::server::{Application, Records};
use chatgate::users::{self, UserName, UserSettings};
use std::net::TcpListener;
use std::time::Duration;

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub db_url: String,
    pub pool: Pool,
    pub handle: actix_web::dev::ServerHandle,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub dir: tempfile::TempDir,
}

/// An upstream of `kind` at `base_url` with the mock's key.
pub fn upstream(kind: UpstreamKind, name: &str, base_url: &str, models: &[&str]) -> UpstreamConfig {
    UpstreamConfig {
        base_url: Some(base_url.into()),
        api_keys: vec![UPSTREAM_KEY.into()],
        models: models.iter().map(|m| m.to_string()).collect(),
        ..UpstreamConfig::new(name, kind)
    }
}

pub fn openai_upstream(name: &str, base_url: &str, models: &[&str]) -> UpstreamConfig {
    upstream(UpstreamKind::Openai, name, base_url, models)
}

/// The backend the suite runs on: SQLite unless `TEST_DATABASE` is
/// `postgres` or `mysql` (test.sh runs the suite once on each).
pub fn on_postgres() -> bool {
    std::env::var("TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

pub fn on_mysql() -> bool {
    std::env::var("TEST_DATABASE").is_ok_and(|v| v == "mysql")
}

/// A new, empty database for one test: an SQLite file in `dir`, or a new
/// PostgreSQL database on the server `TEST_POSTGRES_URL` names
/// (default: the project machines' 127.0.0.1:5432, trust auth, `test`), so
/// tests run in parallel without seeing each other.
pub fn fresh_database_url(dir: &std::path::Path) -> String {
    if on_mysql() {
        return fresh_mysql_url();
    }
    if !on_postgres() {
        return format!("sqlite://{}", dir.join("chatgate.db").display());
    }
    fresh_postgres_url()
}

/// A database name of its own for one test.
fn fresh_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "chatgate_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    )
}

/// A new, empty MySQL/MariaDB database on the server `TEST_MYSQL_URL`
/// names (default: the project machines' MariaDB, 127.0.0.1:3306, user
/// `root` without a password), made with the `mysql` client (the harness
/// links no MySQL library).
pub fn fresh_mysql_url() -> String {
    let server = std::env::var("TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let mut url = url::Url::parse(&server).unwrap();
    let name = fresh_name();
    let mut cmd = std::process::Command::new("mysql");
    cmd.arg("-h")
        .arg(url.host_str().unwrap_or("127.0.0.1"))
        .arg("-P")
        .arg(url.port().unwrap_or(3306).to_string())
        .arg("-u")
        .arg(url.username());
    if let Some(pw) = url.password() {
        cmd.env("MYSQL_PWD", pw);
    }
    let out = cmd
        .arg("-e")
        .arg(format!(
            "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))
        .output()
        .unwrap_or_else(|e| panic!("the mysql client is needed for TEST_DATABASE=mysql: {e}"));
    assert!(
        out.status.success(),
        "MySQL at {server} is not reachable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    url.set_path(&name);
    url.to_string()
}

/// A new, empty PostgreSQL database (see `fresh_database_url`).
pub fn fresh_postgres_url() -> String {
    use diesel::connection::{Connection, SimpleConnection};
    let server = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = fresh_name();
    let mut admin = diesel::PgConnection::establish(&server)
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} is not reachable: {e}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let mut url = url::Url::parse(&server).unwrap();
    url.set_path(&name);
    url.to_string()
}

pub fn test_config(upstreams: Vec<UpstreamConfig>) -> (Config, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.database.url = fresh_database_url(dir.path());
    config.workers = 1;
    config.limits.shutdown_timeout = Duration::from_secs(5);
    config.upstreams = upstreams;
    (config, dir)
}

pub fn spawn_app(config: Config, dir: tempfile::TempDir) -> TestApp {
    spawn_app_with(config, dir, Records::Kept)
}

/// `spawn_app`, choosing whether usage records are kept.
pub fn spawn_app_with(config: Config, dir: tempfile::TempDir, records: Records) -> TestApp {
    chatgate::server::install_crypto_provider();
    let pool = chatgate::db::open(&config.database.url).unwrap();
    let db_url = config.database.url.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build_with(config, listener, pool.clone(), records).unwrap();
    let port = app.port();
    let handle = app.handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        base: format!("http://127.0.0.1:{port}/v1"),
        port,
        db_url,
        pool,
        handle,
        task,
        dir,
    }
}

/// The gateway serving HTTPS (HTTP/2 by ALPN) with a fresh self-signed
/// certificate for `localhost`, and a client that trusts it.
pub fn spawn_tls_app(mut config: Config, dir: tempfile::TempDir) -> (TestApp, reqwest::Client) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    config.tls = Some(chatgate::config::TlsConfig {
        cert: cert_path,
        key: key_path,
    });
    let app = spawn_app(config, dir);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    (app, client)
}

impl TestApp {
    pub async fn add_user(&self, name: &str) -> String {
        self.add_user_with(name, UserSettings::default()).await
    }

    /// Adds a user in the database and waits until the running server
    /// accepts the key (its key table refreshes in the background).
    pub async fn add_user_with(&self, name: &str, settings: UserSettings) -> String {
        let key = {
            let mut conn = self.pool.get().unwrap();
            users::add(
                &mut conn,
                &chatgate::audit::Actor::Config,
                &UserName::parse(name).unwrap(),
                None,
                settings,
            )
            .unwrap()
        };
        let key = key.expose().to_owned();
        let url = self.url("/v1/models");
        // Not too eagerly: each 401 is a failed attempt of this address.
        let mut known = false;
        for _ in 0..40 {
            let r = http().get(&url).bearer_auth(&key).send().await.unwrap();
            if r.status() != 401 {
                known = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(known, "the server never accepted the new key");
        key
    }

    /// Stops the server gracefully and starts it again on the same
    /// database with `config` (a new port).
    pub async fn restart(self, config: Config) -> TestApp {
        self.handle.stop(true).await;
        self.task.await.unwrap().unwrap();
        spawn_app(config, self.dir)
    }

    /// Stops the server gracefully; returns once usage is flushed.
    pub async fn stop(self) -> Pool {
        self.handle.stop(true).await;
        self.task.await.unwrap().unwrap();
        self.pool
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Polls `check` until it returns true, for at most `limit`; for changes that
/// a running server picks up asynchronously. Returns whether it happened.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn http() -> reqwest::Client {
    chatgate::server::install_crypto_provider();
    reqwest::Client::builder().build().unwrap()
}

/// A user with a token limit of `tokens` (total).
pub fn token_limited(tokens: i64) -> UserSettings {
    UserSettings {
        token_limit: Some(users::Setting::Set(tokens)),
        ..Default::default()
    }
}

/// `METHOD {path}` (from the server's root) with `key` and an optional
/// JSON body: the status and the JSON answer (null when none).
pub async fn call(
    app: &TestApp,
    key: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut r = http()
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// `POST {app.base}{path}` with `key` and a JSON body.
pub async fn post_json(
    app: &TestApp,
    key: &str,
    path: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    http()
        .post(format!("{}{path}", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// (status, error code, error message) of an OpenAI-shaped error reply.
pub async fn error_parts(r: reqwest::Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    let s = |k: &str| v["error"][k].as_str().unwrap_or("").to_owned();
    (status, s("code"), s("message"))
}

/// (status, error code) of `GET /v1/models` with `key`: whether a key works.
pub async fn key_status(app: &TestApp, key: &str) -> (u16, String) {
    let r = http()
        .get(format!("{}/models", app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_parts(r).await;
    (status, code)
}

/// `GET url` with `key`, its JSON body.
pub async fn get_json(url: impl reqwest::IntoUrl, key: &str) -> serde_json::Value {
    http()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The model ids `GET /v1/models` lists for `key`.
pub async fn model_ids(app: &TestApp, key: &str) -> Vec<String> {
    let v = get_json(format!("{}/models", app.base), key).await;
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}
