//! The binary as systemd runs it: readiness notification, SIGHUP reloads
//! without dropping a stream, a bad configuration kept out.

use chatgate_testkit::*;
use serde_json::json;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn chat(stream: bool) -> serde_json::Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

async fn post(base: &str, body: &serde_json::Value) -> reqwest::Response {
    http()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("sk-alice-test-key")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_upstream_key_while_a_stream_completes() {
    let mock = start_mock();
    let notify_dir = tempfile::tempdir().unwrap();
    let notify_path = notify_dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut server = serve_binary(
        &upstream_yaml(&mock.url, "sk-old-key-0001"),
        &[("NOTIFY_SOCKET", notify_path.to_str().unwrap())],
    )
    .await;
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).contains("READY=1"),
        "no readiness"
    );

    // A stream in flight, held by the mock after its first chunk.
    let streaming = post(&server.base, &chat(true)).await;
    assert_eq!(streaming.status(), 200);
    let last_key = || mock.last().header("authorization").unwrap_or("").to_owned();
    assert_eq!(last_key(), "Bearer sk-old-key-0001");

    // (With a setting only a restart applies, which the log says.)
    std::fs::write(
        &server.config,
        std::fs::read_to_string(&server.config)
            .unwrap()
            .replace("sk-old-key-0001", "sk-new-key-0002")
            + "usage:\n  keep_records: 30d\n",
    )
    .unwrap();
    server.signal("HUP");
    let swapped = eventually(Duration::from_secs(10), || async {
        post(&server.base, &chat(false)).await.status() == 200
            && last_key() == "Bearer sk-new-key-0002"
    })
    .await;
    assert!(swapped, "the new key was never used");
    let warned = "`usage` changed; it takes effect at the next restart";
    let said = eventually(Duration::from_secs(10), || async {
        server.log().contains(warned)
    })
    .await;
    assert!(said, "log: {}", server.log());

    // The stream that began before the reload finishes normally.
    mock.state.release.add_permits(1);
    let text = streaming.text().await.unwrap();
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "the stream was cut: {text}"
    );

    // A configuration that does not load is reported and the old one kept.
    std::fs::write(&server.config, "workers: [not a number\n").unwrap();
    server.signal("HUP");
    let reported = eventually(Duration::from_secs(10), || async {
        server
            .log()
            .contains("reload failed, keeping the running configuration")
    })
    .await;
    assert!(reported, "log: {}", server.log());
    for _ in 0..3 {
        assert_eq!(post(&server.base, &chat(false)).await.status(), 200);
    }
    assert_eq!(last_key(), "Bearer sk-new-key-0002");

    assert!(
        !server.log().contains("sk-new-key-0002"),
        "a key reached the log"
    );

    server.signal("TERM");
    assert!(server.exit().await, "exit code was not 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_http2_from_a_self_signed_certificate() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let (app, client) = spawn_tls_app(config, dir);
    let r = client
        .get(format!("https://localhost:{}/healthz", app.port))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.version(),
        reqwest::Version::HTTP_2,
        "ALPN did not offer h2"
    );
    let mut conn = app.pool.get().unwrap();
    let key = chatgate::users::add(
        &mut conn,
        &chatgate::audit::Actor::Config,
        &chatgate::users::UserName::parse("alice").unwrap(),
        None,
        Default::default(),
    )
    .unwrap();
    let url = format!("https://localhost:{}/v1/chat/completions", app.port);
    let ok = eventually(Duration::from_secs(10), || async {
        client
            .post(&url)
            .bearer_auth(key.expose())
            .json(&chat(false))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ok, "a proxied request over HTTPS failed");
}

#[test]
fn a_bad_certificate_path_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chatgate.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ndatabase:\n  url: sqlite://{}/gate.db\ntls:\n  cert: /nonexistent/cert.pem\n  key: /nonexistent/key.pem\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("chatgate")
        .unwrap()
        .args(["-c", config.to_str().unwrap(), "serve", "--demo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls.cert") && err.contains("/nonexistent/cert.pem"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_without_secrets() {
    let mock = start_mock();
    let yaml = format!(
        "{}log:\n  format: json\n",
        upstream_yaml(&mock.url, "sk-upstream-log-0001")
    );
    let mut server = serve_binary(&yaml, &[("RUST_LOG", "")]).await;
    assert_eq!(post(&server.base, &chat(false)).await.status(), 200);
    let logged = eventually(Duration::from_secs(10), || async {
        server.log().lines().any(|l| l.contains("\"request\""))
    })
    .await;
    assert!(logged, "{}", server.log());
    let log = server.log();
    let line = log.lines().find(|l| l.contains("\"request\"")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(v["fields"]["user"], "alice");
    assert_eq!(v["fields"]["status"], 200);
    assert_eq!(v["fields"]["model"], "gpt-4o");
    // The mock's JSON usage (7 + 2), read before the line is written.
    assert_eq!(v["fields"]["tokens"], 9);
    for secret in ["sk-alice-test-key", "sk-upstream-log-0001", "\"hi\""] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
    server.signal("TERM");
    assert!(server.exit().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_line_can_be_turned_off_alone() {
    let mock = start_mock();
    let yaml = format!(
        "{}log:\n  level: \"info,chatgate::request=off\"\n",
        upstream_yaml(&mock.url, "sk-upstream-log-0002")
    );
    let mut server = serve_binary(&yaml, &[("RUST_LOG", "")]).await;
    assert_eq!(post(&server.base, &chat(false)).await.status(), 200);
    server.signal("TERM");
    assert!(server.exit().await);
    // Stopped, so every line is written: the others are there, it is not.
    let log = server.log();
    assert!(log.contains("usage flushed"), "{log}");
    assert!(!log.contains(" request "), "{log}");
    // Not a terminal: no colour codes in files or the journal.
    assert!(!log.contains('\x1b'), "{log:?}");
}

/// What `serve --demo` prints is enough to start: the base URL, a key that
/// works there, and the web app's address, which serves the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_a_working_key_and_the_web_apps_address() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("chatgate.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nworkers: 1\ndatabase:\n  url: sqlite://{}/gate.db\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("chatgate"))
        .args(["-c", config.to_str().unwrap(), "serve", "--demo"])
        .env_remove("OPENAI_API_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = std::collections::HashMap::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((name, value)) = line.split_once(": ") {
            printed.insert(name.to_owned(), value.trim().to_owned());
        }
        // The last line the demo prints.
        if line.starts_with("try:") {
            break;
        }
    }
    let base = printed["base URL"].clone();
    let key = printed["demo key"].clone();
    let web = printed.get("web app").cloned().unwrap_or_default();
    assert_eq!(base, format!("http://127.0.0.1:{port}/v1"));
    assert!(
        web.starts_with(&format!("http://127.0.0.1:{port}/ ")),
        "{web}"
    );
    let r = http()
        .post(format!("{base}/chat/completions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Hello!"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = http()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    let _ = child.kill();
    let _ = child.wait();
}
