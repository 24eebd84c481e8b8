//! Gemini's API through the gateway, against an in-process Gemini-shaped
//! upstream: the key in each of Google's places and never forwarded, the
//! client's version kept, exact usage from `usageMetadata` (thoughts,
//! cached content and tool-use prompts), streams, the path's model as the
//! one every rule reads, Google-shaped refusals, a bad upstream key parked,
//! the OpenAI-format route to a gemini upstream, model lists in Google's
//! shape, cached contents kept to their creators, and the account's files
//! refused (not served yet).

use chatgate::users::{Setting, UserSettings};
use chatgate_testkit::*;
use serde_json::{json, Value};

fn contents(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

async fn app_with(mock: &GeminiMock, keys: &[&str]) -> TestApp {
    let mut upstream = gemini_upstream("google", &mock.url, &["gemini-*"]);
    upstream.api_keys = keys.iter().map(|k| k.to_string()).collect();
    let (config, dir) = test_config(vec![upstream]);
    spawn_app(config, dir)
}

/// `POST {path}` as Google's SDKs send it: the key as `x-goog-api-key`.
async fn google_post(app: &TestApp, key: &str, path: &str, body: &Value) -> reqwest::Response {
    http()
        .post(app.url(path))
        .header("x-goog-api-key", key)
        .header("user-agent", "google-genai-sdk/3.6.1 gl-node/v20.20.2")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// (status, Google's status name, ErrorInfo reason, message).
async fn google_error(r: reqwest::Response) -> (u16, String, String, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    let e = &v["error"];
    assert_eq!(e["code"], status, "{v}");
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    (
        status,
        s(&e["status"]),
        s(&e["details"][0]["reason"]),
        s(&e["message"]),
    )
}

/// prompt = prompt + tool-use prompt; completion = candidates + thoughts.
fn expected() -> (i64, i64, i64) {
    let (prompt, candidates, thoughts, cached, tool) = GEMINI_USAGE;
    (prompt + tool, candidates + thoughts, cached)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_and_stream_with_the_keys_in_googles_places_and_exact_usage() {
    let mock = start_gemini_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;

    // The key as x-goog-api-key, under /v1beta: the upstream gets its own
    // key, and the client's nowhere.
    let r = google_post(
        &app,
        &key,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        &contents("Hello"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "Hello world"
    );
    let seen = mock.last();
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some(UPSTREAM_KEY));
    assert!(seen.header("authorization").is_none());
    assert!(!seen.headers.iter().any(|(_, v)| v.contains(&key)));

    // `?key=` (stripped), streamed as server-sent events, under /v1.
    let r = http()
        .post(app.url(&format!(
            "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={key}"
        )))
        .json(&contents("Hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"finishReason\":\"STOP\""), "{text}");
    let seen = mock.last();
    assert_eq!(
        seen.path,
        "/v1/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(seen.query, "alt=sse");

    // A Bearer key works too; countTokens is a request, not tokens.
    let r = http()
        .post(app.url("/v1beta/models/gemini-2.5-flash:countTokens"))
        .bearer_auth(&key)
        .json(&contents("Hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["totalTokens"], GEMINI_COUNTED);

    let pool = app.stop().await;
    let (prompt, completion, cached) = expected();
    for endpoint in [":generateContent", ":streamGenerateContent"] {
        let records = stored(&pool, endpoint);
        assert_eq!(records.len(), 1, "{endpoint}");
        let r = &records[0];
        assert_eq!(r.model.as_deref(), Some("gemini-2.5-flash"));
        assert_eq!(
            (r.prompt, r.completion, r.estimated),
            (Some(prompt), Some(completion), false),
            "{endpoint}"
        );
    }
    assert_eq!(stored_cached(&pool, ":generateContent"), [Some(cached)]);
    let counted = stored(&pool, ":countTokens");
    assert_eq!(counted.len(), 1);
    assert_eq!(counted[0].total.unwrap_or(0), 0);
    let clients: Vec<_> = all_records(&pool)
        .into_iter()
        .filter(|r| r.endpoint == ":generateContent")
        .map(|r| r.client)
        .collect();
    assert_eq!(clients, [Some("google-genai".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_without_usage_are_estimated_from_the_input() {
    let mock = start_gemini_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;
    let one = json!({"content": {"parts": [{"text": "one two three"}]}});
    let r = google_post(
        &app,
        &key,
        "/v1beta/models/gemini-embedding-001:embedContent",
        &one,
    )
    .await;
    assert_eq!(r.status(), 200);
    let batch = json!({"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "one two"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "three"}]}}]});
    let r = google_post(
        &app,
        &key,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        &batch,
    )
    .await;
    assert_eq!(r.status(), 200);
    let pool = app.stop().await;
    for endpoint in [":embedContent", ":batchEmbedContents"] {
        let r = &stored(&pool, endpoint)[0];
        assert!(r.estimated, "{endpoint}");
        assert!(r.prompt.unwrap() >= 3, "{endpoint}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_googles_and_the_paths_model_is_the_one() {
    let mock = start_gemini_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";

    let r = google_post(
        &app,
        "sk-not-a-key-000000000000000000000000000000000000000000",
        path,
        &contents("x"),
    )
    .await;
    assert_eq!(r.headers()["x-should-retry"], "false");
    let (status, name, reason, _) = google_error(r).await;
    assert_eq!(
        (status, name.as_str(), reason.as_str()),
        (401, "UNAUTHENTICATED", "invalid_api_key")
    );

    let only_flash = UserSettings {
        models: Some(Setting::Set(vec!["gemini-2.5-flash".into()])),
        request_limit: Some(Setting::Set(1)),
        ..Default::default()
    };
    let bob = app.add_user_with("bob", only_flash).await;
    let pro = "/v1beta/models/gemini-2.5-pro:generateContent";
    let (status, name, reason, _) =
        google_error(google_post(&app, &bob, pro, &contents("x")).await).await;
    assert_eq!(
        (status, name.as_str(), reason.as_str()),
        (403, "PERMISSION_DENIED", "model_not_allowed")
    );
    // The body cannot name another model than the path's.
    let sneaky = json!({"model": "models/gemini-2.5-pro", "contents": []});
    let (status, name, _, message) =
        google_error(google_post(&app, &bob, path, &sneaky).await).await;
    assert_eq!((status, name.as_str()), (400, "INVALID_ARGUMENT"));
    assert!(message.contains("gemini-2.5-pro"), "{message}");
    // A spent request limit: RESOURCE_EXHAUSTED, not to be retried.
    assert_eq!(
        google_post(&app, &bob, path, &contents("x")).await.status(),
        200
    );
    let r = google_post(&app, &bob, path, &contents("x")).await;
    assert_eq!(r.headers()["x-should-retry"], "false");
    let (status, name, reason, _) = google_error(r).await;
    assert_eq!(
        (status, name.as_str(), reason.as_str()),
        (429, "RESOURCE_EXHAUSTED", "insufficient_quota")
    );

    // Streams are server-sent events; anything else is refused before
    // it is sent.
    let before = mock.seen().len();
    let stream = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    let (status, _, _, message) =
        google_error(google_post(&app, &key, stream, &contents("x")).await).await;
    assert_eq!(status, 400);
    assert!(message.contains("alt=sse"), "{message}");
    // A cached content nobody here made, and the account's files (not
    // served), are refused.
    let cached = json!({"cachedContent": "cachedContents/someone-elses", "contents": []});
    let (status, name, _, _) = google_error(google_post(&app, &key, path, &cached).await).await;
    assert_eq!((status, name.as_str()), (404, "NOT_FOUND"));
    let file = json!({"contents": [{"role": "user", "parts": [{"fileData": {
        "mimeType": "application/pdf",
        "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}}]}]});
    let (status, _, _, _) = google_error(google_post(&app, &key, path, &file).await).await;
    assert_eq!(status, 404);
    // A file search store (not served) is nobody's either.
    let store = json!({"contents": [], "tools": [{"fileSearch": {
        "fileSearchStoreNames": ["fileSearchStores/someone-elses"]}}]});
    let (status, _, _, _) = google_error(google_post(&app, &key, path, &store).await).await;
    assert_eq!(status, 404);
    // Only Gemini's API is under /v1beta; an unknown method is not sent.
    let (status, name, _, _) =
        google_error(google_post(&app, &key, "/v1beta/chat/completions", &json!({})).await).await;
    assert_eq!((status, name.as_str()), (404, "NOT_FOUND"));
    let (status, _, _, _) = google_error(
        google_post(
            &app,
            &key,
            "/v1beta/models/gemini-2.5-flash:tuneModel",
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        mock.seen().len(),
        before,
        "nothing refused reached the upstream"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_google_calls_invalid_is_parked_and_the_next_one_answers() {
    let mock = start_gemini_mock();
    let app = app_with(&mock, &["AIza-revoked-0000000000000000", UPSTREAM_KEY]).await;
    let key = app.add_user("alice").await;
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    for _ in 0..3 {
        let r = google_post(&app, &key, path, &contents("x")).await;
        assert_eq!(r.status(), 200);
    }
    let bad_key_tries = mock
        .seen()
        .iter()
        .filter(|s| s.header("x-goog-api-key") != Some(UPSTREAM_KEY))
        .count();
    assert_eq!(
        bad_key_tries, 1,
        "the revoked key was tried once, then parked"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_requests_go_to_the_compatible_endpoint_and_lists_take_googles_shape() {
    let mock = start_gemini_mock();
    let openai = start_mock();
    let (config, dir) = test_config(vec![
        gemini_upstream("google", &mock.url, &["gemini-2.5-flash", "gemini-2.5-pro"]),
        openai_upstream("openai", &openai.url, &["gpt-4o"]),
    ]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;

    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(
            &json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = mock.last();
    assert_eq!(seen.path, "/v1beta/openai/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );

    // Gemini's face reaches only upstreams that speak it.
    let r = google_post(
        &app,
        &key,
        "/v1beta/models/gpt-4o:generateContent",
        &contents("x"),
    )
    .await;
    let (status, name, _, _) = google_error(r).await;
    assert_eq!((status, name.as_str()), (404, "NOT_FOUND"));

    // Google's list: only what Gemini's API reaches, as Google names it.
    let list: Value = google(&app, &key, reqwest::Method::GET, "/v1beta/models", None)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["models/gemini-2.5-flash", "models/gemini-2.5-pro"]);
    let one: Value = google(
        &app,
        &key,
        reqwest::Method::GET,
        "/v1beta/models/gemini-2.5-pro",
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(one["name"], "models/gemini-2.5-pro");
    // Under /v1, the key's place decides the shape.
    let google: Value = http()
        .get(format!("{}/models?key={key}", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(google["models"].is_array(), "{google}");
    assert_eq!(
        model_ids(&app, &key).await,
        ["gemini-2.5-flash", "gemini-2.5-pro", "gpt-4o"]
    );
    app.stop().await;
}

/// A request as Google's SDKs send it, with any method.
async fn google(
    app: &TestApp,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut r = http()
        .request(method, app.url(path))
        .header("x-goog-api-key", key);
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send().await.unwrap()
}

/// The names in a list page, and its next page's token.
fn names(page: &Value) -> (Vec<String>, Option<String>) {
    let names = page["cachedContents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    (names, page["nextPageToken"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_contents_are_their_creators_own() {
    use reqwest::Method;
    let mock = start_gemini_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let alice = app.add_user("alice").await;
    let bob = app.add_user("bob").await;
    let create = json!({"model": "models/gemini-2.5-flash", "ttl": "300s",
        "contents": [{"role": "user", "parts": [{"text": "a long document"}]}]});
    let make = |key: String| {
        let (app, create) = (&app, &create);
        async move {
            let r = google(
                app,
                &key,
                Method::POST,
                "/v1beta/cachedContents",
                Some(create),
            )
            .await;
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            v["name"].as_str().unwrap().to_owned()
        }
    };
    // The account holds someone else's too, made with the upstream's key.
    let outside = http()
        .post(format!("{}/v1beta/cachedContents", mock.url))
        .header("x-goog-api-key", UPSTREAM_KEY)
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 200);
    let a1 = make(alice.clone()).await;
    let b1 = make(bob.clone()).await;
    let a2 = make(alice.clone()).await;
    let a3 = make(alice.clone()).await;

    // Lists hold the caller's own, a page at a time, with the gateway's
    // tokens; the upstream's pages (two each) are walked.
    let list = |key: &str, query: &str| {
        let (app, key, path) = (
            &app,
            key.to_owned(),
            format!("/v1beta/cachedContents{query}"),
        );
        async move {
            let r = google(app, &key, Method::GET, &path, None).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, page) = list(&alice, "?pageSize=2").await;
    assert_eq!(status, 200, "{page}");
    let (first, token) = names(&page);
    assert_eq!(first, [a1.clone(), a2.clone()]);
    let token = token.expect("a next page");
    let (_, page) = list(&alice, &format!("?pageSize=2&pageToken={token}")).await;
    assert_eq!(names(&page), (vec![a3.clone()], None));
    let (_, page) = list(&bob, "").await;
    assert_eq!(names(&page), (vec![b1.clone()], None));
    // Another's name is no token of Bob's.
    let (status, _) = list(&bob, &format!("?pageToken={a1}")).await;
    assert_eq!(status, 404);

    // Bob reaches none of Alice's: not read, changed, deleted or used.
    let seen = mock.seen().len();
    let one = |name: &str| format!("/v1beta/{name}");
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"ttl": "9999s"}))),
        (Method::DELETE, None),
    ] {
        let r = google(&app, &bob, method.clone(), &one(&a1), body.as_ref()).await;
        let (status, name, _, _) = google_error(r).await;
        assert_eq!((status, name.as_str()), (404, "NOT_FOUND"), "{method}");
    }
    let generate = "/v1beta/models/gemini-2.5-flash:generateContent";
    let using = |name: &str| json!({"cachedContent": name, "contents": []});
    let r = google_post(&app, &bob, generate, &using(&a1)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        mock.seen().len(),
        seen,
        "nothing of Bob's reached the upstream"
    );

    // Alice uses, reads, changes and deletes hers.
    let r = google_post(&app, &alice, generate, &using(&a1)).await;
    assert_eq!(r.status(), 200);
    let r = google(
        &app,
        &alice,
        Method::PATCH,
        &one(&a1),
        Some(&json!({"ttl": "60s"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(mock.last().path, one(&a1));
    let r = google(&app, &alice, Method::GET, &one(&a1), None).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ttl"], "60s");
    let r = google(&app, &alice, Method::DELETE, &one(&a1), None).await;
    assert_eq!(r.status(), 200);
    // Deleted, it is forgotten: no longer hers to name.
    let seen = mock.seen().len();
    let r = google(&app, &alice, Method::GET, &one(&a1), None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(mock.seen().len(), seen);
    let (_, page) = list(&alice, "").await;
    assert_eq!(names(&page), (vec![a2, a3], None));
    app.stop().await;
}

/// Begins an upload as Google's SDKs do; the address its parts go to.
async fn begin_upload(app: &TestApp, key: &str) -> String {
    let r = http()
        .post(app.url("/upload/v1beta/files"))
        .header("x-goog-api-key", key)
        .header("x-goog-upload-protocol", "resumable")
        .header("x-goog-upload-command", "start")
        .header("x-goog-upload-header-content-length", "11")
        .header("x-goog-upload-header-content-type", "text/plain")
        .json(&json!({"file": {"displayName": "notes", "mimeType": "text/plain"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-goog-upload-url"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// One part of an upload at `url`.
async fn upload_part(
    url: &str,
    key: &str,
    command: &str,
    bytes: &'static str,
) -> reqwest::Response {
    http()
        .post(url)
        .header("x-goog-api-key", key)
        .header("x-goog-upload-command", command)
        .header("x-goog-upload-offset", "0")
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_their_uploaders_own_from_the_first_byte() {
    use reqwest::Method;
    let mock = start_gemini_mock();
    let app = app_with(&mock, &[UPSTREAM_KEY]).await;
    let alice = app.add_user("alice").await;
    let bob = app.add_user("bob").await;

    // The parts' address is the gateway's, not Google's.
    let url = begin_upload(&app, &alice).await;
    let prefix = app.url("/upload/v1beta/files?upload_id=");
    assert!(url.starts_with(&prefix), "{url}");
    // Bob cannot add to Alice's upload, nor finish it.
    let seen = mock.seen().len();
    let r = upload_part(&url, &bob, "upload, finalize", "not hers").await;
    let (status, name, _, _) = google_error(r).await;
    assert_eq!((status, name.as_str()), (404, "NOT_FOUND"));
    assert_eq!(mock.seen().len(), seen);
    // Alice sends her bytes in two parts; the last makes her file.
    let r = upload_part(&url, &alice, "upload", "hello ").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-goog-upload-status"], "active");
    // A part's reply sends nobody to the upstream itself.
    assert!(r.headers().get("x-goog-upload-url").is_none());
    let r = upload_part(&url, &alice, "upload, finalize", "world").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-goog-upload-status"], "final");
    let file: Value = r.json().await.unwrap();
    let (name, uri) = (
        file["file"]["name"].as_str().unwrap().to_owned(),
        file["file"]["uri"].as_str().unwrap().to_owned(),
    );
    assert_eq!(file["file"]["sizeBytes"], "11");
    // The account holds someone else's file too.
    let other = begin_upload(&app, &bob).await;
    let r = upload_part(&other, &bob, "upload, finalize", "bob's").await;
    assert_eq!(r.status(), 200);
    let bobs: Value = r.json().await.unwrap();

    // Bob reaches none of Alice's: not read, listed, deleted or named.
    let seen = mock.seen().len();
    let one = format!("/v1beta/{name}");
    for method in [Method::GET, Method::DELETE] {
        let r = google(&app, &bob, method.clone(), &one, None).await;
        assert_eq!(r.status(), 404, "{method}");
    }
    let generate = "/v1beta/models/gemini-2.5-flash:generateContent";
    let naming = |uri: &str| {
        json!({"contents": [{"role": "user", "parts": [
            {"fileData": {"mimeType": "text/plain", "fileUri": uri}}, {"text": "sum up"}]}]})
    };
    for named in [uri.clone(), name.clone()] {
        let r = google_post(&app, &bob, generate, &naming(&named)).await;
        assert_eq!(r.status(), 404, "{named}");
    }
    assert_eq!(
        mock.seen().len(),
        seen,
        "nothing of Bob's reached the upstream"
    );
    let listed = |key: String| {
        let app = &app;
        async move {
            let r = google(app, &key, Method::GET, "/v1beta/files", None).await;
            let v: Value = r.json().await.unwrap();
            v["files"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| f["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(bob.clone()).await,
        [bobs["file"]["name"].as_str().unwrap()]
    );
    assert_eq!(listed(alice.clone()).await, [name.as_str()]);

    // Alice uses, reads and deletes hers.
    let r = google_post(&app, &alice, generate, &naming(&uri)).await;
    assert_eq!(r.status(), 200);
    let r = google(&app, &alice, Method::GET, &one, None).await;
    assert_eq!(r.status(), 200);
    let r = google(&app, &alice, Method::DELETE, &one, None).await;
    assert_eq!(r.status(), 200);
    let seen = mock.seen().len();
    let r = google(&app, &alice, Method::GET, &one, None).await;
    assert_eq!(r.status(), 404);
    assert_eq!(mock.seen().len(), seen, "a deleted file is forgotten");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grounded_prompt_is_charged_its_search_and_unpriced_grounding_refused() {
    use chatgate::config::Price;
    let mock = start_gemini_mock();
    let (mut config, dir) = test_config(vec![gemini_upstream("google", &mock.url, &["gemini-*"])]);
    let price = |searches: Option<f64>| Price {
        input: 1.0,
        output: 2.0,
        per_thousand_web_searches: searches,
        ..Price::default()
    };
    config.prices = [
        ("gemini-2.5-flash".to_string(), price(Some(35.0))),
        ("gemini-2.5-pro".to_string(), price(None)),
    ]
    .into();
    let app = spawn_app(config, dir);
    let budget = UserSettings {
        budget: Some(chatgate::users::parse_usd("10").unwrap()),
        ..Default::default()
    };
    let key = app.add_user_with("alice", budget).await;
    let mut body = contents("weather?");
    body["tools"] = json!([{"googleSearch": {}}]);
    let flash = "/v1beta/models/gemini-2.5-flash";
    let r = google_post(&app, &key, &format!("{flash}:generateContent"), &body).await;
    assert_eq!(r.status(), 200);
    let r = google_post(
        &app,
        &key,
        &format!("{flash}:streamGenerateContent?alt=sse"),
        &body,
    )
    .await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    // Search offered on a model with no search price: refused to a
    // budget, before anything is sent.
    let seen = mock.seen().len();
    let r = google_post(
        &app,
        &key,
        "/v1beta/models/gemini-2.5-pro:generateContent",
        &body,
    )
    .await;
    let (status, _, _, message) = google_error(r).await;
    assert_eq!(status, 403, "{message}");
    assert!(message.contains("no price"), "{message}");
    assert_eq!(mock.seen().len(), seen);

    let pool = app.stop().await;
    // The tokens at $1/$2 a million, and the grounded prompt's search at
    // $35 a thousand.
    let (prompt, completion, _) = expected();
    let tokens = prompt * 1_000 + completion * 2_000;
    let charged = Some(tokens + 35_000_000);
    // The refusal is recorded, and charged nothing.
    assert_eq!(stored_costs(&pool, ":generateContent"), [charged, None]);
    assert_eq!(stored_costs(&pool, ":streamGenerateContent"), [charged]);
}
