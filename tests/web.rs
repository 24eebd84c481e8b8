//! The web app's server side: served at `/` with its security headers, off
//! with `web.enabled: false`, and `/v1/me/usage` (the account page's data).
//! The app itself is tested in a browser (web/tests, run by test.sh).

use chatgate_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_with_its_policy_and_can_be_turned_off() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let root = app.base.trim_end_matches("/v1");
    let page = http().get(format!("{root}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert!(page.text().await.unwrap().contains("/app.js"));
    app.stop().await;

    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.web.enabled = false;
    let app = spawn_app(config, dir);
    let root = app.base.trim_end_matches("/v1");
    let page = http().get(format!("{root}/")).send().await.unwrap();
    assert_eq!(page.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_usage_is_my_own_by_day() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let alice = app.add_user("alice").await;
    let bob = app.add_user("bob").await;
    for key in [&alice, &alice, &bob] {
        let body =
            serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
        let r = post_json(&app, key, "/chat/completions", &body).await;
        assert_eq!(r.status(), 200);
    }
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let rows = eventually(std::time::Duration::from_secs(10), || async {
        let r = http()
            .get(format!("{}/me/usage?period=today", app.base))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        let rows: serde_json::Value = r.json().await.unwrap();
        // The two chats and the model list `add_user` asked for.
        rows[0]["requests"] == 3
    })
    .await;
    assert!(rows, "alice's three requests, not bob's, by day");
    let r = http()
        .get(format!("{}/me/usage?period=today&by=day,model", app.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let rows: serde_json::Value = r.json().await.unwrap();
    let chats: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["model"] == "gpt-4o")
        .collect();
    assert_eq!(chats.len(), 1, "{rows}");
    assert_eq!(chats[0]["day"], today.as_str());
    assert_eq!(chats[0]["requests"], 2);
    assert!(chats[0].get("user").is_none());
    // A key given as `?token=` authenticates and is not a report parameter.
    let r = http()
        .get(format!("{}/me/usage?period=today&token={alice}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, code, _) = error_parts(
        http()
            .get(format!("{}/me/usage?user=bob", app.base))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "invalid_request_error"));
    app.stop().await;
}

/// What is embedded is what web/vendor.sh fetched: each vendored file
/// matches the checksum recorded beside its version and license.
#[test]
fn vendored_libraries_match_their_recorded_checksums() {
    use sha2::{Digest, Sha256};
    let vendor = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/vendor");
    let versions = std::fs::read_to_string(vendor.join("VERSIONS")).unwrap();
    let mut checked = 0;
    for line in versions
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split("  ").collect();
        let (file, sum) = (fields[0], fields[fields.len() - 1]);
        let bytes = std::fs::read(vendor.join(file)).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            sum,
            "{file} differs from VERSIONS"
        );
        checked += 1;
    }
    let files = std::fs::read_dir(&vendor).unwrap().count() - 1;
    assert_eq!(checked, files, "every vendored file is listed in VERSIONS");
    assert!(checked >= 3);
}
