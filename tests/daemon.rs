//! The binary as systemd runs it: readiness notification, SIGHUP reloads
//! without dropping a stream, a bad configuration kept out.

mod common;

use common::*;
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

    std::fs::write(
        &server.config,
        std::fs::read_to_string(&server.config)
            .unwrap()
            .replace("sk-old-key-0001", "sk-new-key-0002"),
    )
    .unwrap();
    server.signal("HUP");
    let swapped = eventually(Duration::from_secs(10), || async {
        post(&server.base, &chat(false)).await.status() == 200
            && last_key() == "Bearer sk-new-key-0002"
    })
    .await;
    assert!(swapped, "the new key was never used");

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
