//! Account objects: one upstream account serves every user, and it keeps
//! files and stored responses for all its keys alike (as the mock does).
//! Through the gateway each user reaches only their own.

use chatgate_testkit::*;
use serde_json::{json, Value};

struct Two {
    mock: Mock,
    app: TestApp,
    alice: String,
    bob: String,
}

async fn two_users() -> Two {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.endpoints.allow = vec!["/batches".into()];
    let app = spawn_app(config, dir);
    let alice = app.add_user("alice").await;
    let bob = app.add_user("bob").await;
    Two {
        mock,
        app,
        alice,
        bob,
    }
}

async fn upload(app: &TestApp, key: &str, name: &str) -> String {
    let form = reqwest::multipart::Form::new()
        .text("purpose", "assistants")
        .part(
            "file",
            reqwest::multipart::Part::bytes(name.as_bytes().to_vec()).file_name(name.to_owned()),
        );
    let r = http()
        .post(format!("{}/files", app.base))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn respond(app: &TestApp, key: &str, extra: Value) -> reqwest::Response {
    let mut body = json!({"model": "gpt-4o", "input": "hi"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    http()
        .post(format!("{}/responses", app.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, key: &str, path: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_reaches_only_their_own_objects() {
    let Two {
        mock,
        app,
        alice,
        bob,
    } = two_users().await;
    let a_file = upload(&app, &alice, "a.txt").await;
    let b_file = upload(&app, &bob, "b.txt").await;
    let a_resp = respond(&app, &alice, json!({}))
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A streamed response is Bob's from its first event on.
    let r = respond(&app, &bob, json!({"stream": true})).await;
    let text = r.text().await.unwrap();
    assert!(text.contains("response.completed"), "{text}");
    let b_resp = text
        .split("\"id\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_owned();

    // Lists answer only the caller's own; the upstream's list holds both.
    let list: Value = get(&app, &alice, "/files").await.json().await.unwrap();
    assert_eq!(ids(&list), std::slice::from_ref(&a_file));
    let list: Value = get(&app, &bob, "/files").await.json().await.unwrap();
    assert_eq!(ids(&list), std::slice::from_ref(&b_file));

    assert_eq!(
        get(&app, &bob, &format!("/responses/{b_resp}"))
            .await
            .status(),
        200
    );
    // The owner reaches hers, sub-paths included.
    assert_eq!(
        get(&app, &alice, &format!("/files/{a_file}"))
            .await
            .status(),
        200
    );
    let content = get(&app, &alice, &format!("/files/{a_file}/content")).await;
    assert_eq!(
        content.text().await.unwrap(),
        format!("content of {a_file}")
    );
    assert_eq!(
        get(&app, &alice, &format!("/responses/{a_resp}"))
            .await
            .status(),
        200
    );

    // Anyone else's: 404 not_found, and the upstream is not asked.
    let before = mock.seen().len();
    for (method, path) in [
        ("GET", format!("/files/{b_file}")),
        ("GET", format!("/files/{b_file}/content")),
        ("DELETE", format!("/files/{b_file}")),
        ("GET", format!("/responses/{b_resp}")),
        ("GET", format!("/responses/{b_resp}/input_items")),
        ("DELETE", format!("/responses/{b_resp}")),
        ("POST", format!("/responses/{b_resp}/cancel")),
        ("GET", "/files/file-does-not-exist".to_string()),
    ] {
        let r = http()
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_parts(r).await;
        assert_eq!(
            (status, code.as_str()),
            (404, "not_found"),
            "{method} {path}"
        );
    }
    // Building on another's response is refused the same way.
    let r = respond(&app, &alice, json!({"previous_response_id": b_resp})).await;
    assert_eq!(error_parts(r).await.1, "not_found");
    let r = respond(
        &app,
        &alice,
        json!({"conversation": {"id": "conv_not_hers"}}),
    )
    .await;
    assert_eq!(error_parts(r).await.1, "not_found");
    assert_eq!(mock.seen().len(), before, "the upstream was asked");
    // Her own previous response is fine.
    let r = respond(&app, &alice, json!({"previous_response_id": a_resp})).await;
    assert_eq!(r.status(), 200);

    // Deleting her own works; then it is gone for her too.
    let r = http()
        .delete(format!("{}/files/{a_file}", app.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get(&app, &alice, &format!("/files/{a_file}"))
            .await
            .status(),
        404
    );
    // Bob's file is still there for Bob.
    assert_eq!(
        get(&app, &bob, &format!("/files/{b_file}")).await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_chat_completions_and_completed_uploads_belong_to_their_creator() {
    let Two {
        app, alice, bob, ..
    } = two_users().await;
    let r = post_json(
        &app,
        &alice,
        "/chat/completions",
        &json!({"model": "gpt-4o", "store": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let stored: Value = r.json().await.unwrap();
    let id = stored["id"].as_str().unwrap();
    let list: Value = get(&app, &alice, "/chat/completions")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&list), [id]);
    let list: Value = get(&app, &bob, "/chat/completions")
        .await
        .json()
        .await
        .unwrap();
    assert!(ids(&list).is_empty());
    assert_eq!(
        get(&app, &bob, &format!("/chat/completions/{id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        get(&app, &alice, &format!("/chat/completions/{id}"))
            .await
            .status(),
        200
    );

    // An upload: Bob's, and the file it completes into too.
    let post = |key: &str, path: String| {
        http()
            .post(format!("{}{path}", app.base))
            .bearer_auth(key)
            .json(&json!({"purpose": "assistants", "filename": "x", "bytes": 1, "mime_type": "text/plain"}))
            .send()
    };
    let upload: Value = post(&bob, "/uploads".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upload = upload["id"].as_str().unwrap().to_owned();
    let r = post(&alice, format!("/uploads/{upload}/complete"))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let done: Value = post(&bob, format!("/uploads/{upload}/complete"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file = done["file"]["id"].as_str().unwrap();
    assert_eq!(
        get(&app, &bob, &format!("/files/{file}")).await.status(),
        200
    );
    assert_eq!(
        get(&app, &alice, &format!("/files/{file}")).await.status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmeterable_endpoints_are_closed_unless_opened_and_then_not_for_limited_users() {
    let Two {
        mock, app, alice, ..
    } = two_users().await;
    let limited = app.add_user_with("carol", token_limited(1000)).await;
    let before = mock.seen().len();
    for (path, code) in [
        ("/fine_tuning/jobs", "endpoint_not_allowed"),
        ("/assistants", "endpoint_not_allowed"),
        ("/evals", "endpoint_not_allowed"),
        ("/organization/users", "endpoint_not_allowed"),
        ("/realtime/client_secrets", "endpoint_not_allowed"),
        ("/containers", "endpoint_not_allowed"),
        ("/nonsense/deep/path", "unknown_endpoint"),
    ] {
        let r = http()
            .post(format!("{}{path}", app.base))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        let (status, got, msg) = error_parts(r).await;
        assert_eq!(got, code, "{path}: {msg}");
        assert_eq!(status, if code == "unknown_endpoint" { 404 } else { 403 });
        if code == "endpoint_not_allowed" {
            assert!(msg.contains("endpoints.allow"), "{msg}");
        }
    }
    let r = post_json(
        &app,
        &limited,
        "/batches",
        &json!({"input_file_id": "file-1"}),
    )
    .await;
    assert_eq!(error_parts(r).await.1, "endpoint_not_allowed");
    assert_eq!(
        mock.seen().len(),
        before,
        "a closed endpoint reached the upstream"
    );
    // Opened: any method, with its query string.
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let r = http()
            .request(
                method.parse().unwrap(),
                format!("{}/batches/batch_1/x?limit=2", app.base),
            )
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method}");
        let seen = mock.last();
        assert_eq!(
            (
                seen.method.as_str(),
                seen.path.as_str(),
                seen.query.as_str()
            ),
            (method, "/v1/batches/batch_1/x", "limit=2")
        );
    }
}

/// Follows `after=last_id` from the first page to the end: every id seen,
/// in order, and every cursor the pages named.
async fn walk(app: &TestApp, key: &str, path: &str, limit: usize) -> (Vec<String>, Vec<Value>) {
    let mut seen = Vec::new();
    let mut cursors = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..20 {
        let url = match &after {
            Some(a) => format!("{path}?limit={limit}&after={a}"),
            None => format!("{path}?limit={limit}"),
        };
        let r = get(app, key, &url).await;
        assert_eq!(r.status(), 200, "{url}");
        let page: Value = r.json().await.unwrap();
        seen.extend(ids(&page));
        cursors.push(page["first_id"].clone());
        cursors.push(page["last_id"].clone());
        if page["has_more"] != true {
            return (seen, cursors);
        }
        after = Some(
            page["last_id"]
                .as_str()
                .expect("a cursor to go on from")
                .to_owned(),
        );
    }
    panic!("the pages never ended");
}

/// A hostile key holder cannot find another user's files through a list's
/// cursors: each page and its `first_id`/`last_id` are the caller's own,
/// walking every page yields exactly the caller's files, and a cursor of
/// someone else's is 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_cursors_reveal_only_the_callers_objects() {
    let Two {
        mock,
        app,
        alice,
        bob,
    } = two_users().await;
    let mut a_files = Vec::new();
    let mut b_files = Vec::new();
    for i in 0..4 {
        a_files.push(upload(&app, &alice, &format!("a{i}.txt")).await);
        b_files.push(upload(&app, &bob, &format!("b{i}.txt")).await);
    }
    // A page of one: the upstream's holds Alice's newest file, Bob's does
    // not show it anywhere, not even as a cursor.
    for limit in [1, 2, 3, 100] {
        let (seen, cursors) = walk(&app, &bob, "/files", limit).await;
        let mut expected = b_files.clone();
        expected.reverse(); // newest first, as the upstream lists them
        assert_eq!(seen, expected, "pages of {limit}");
        for c in cursors.iter().filter_map(Value::as_str) {
            assert!(b_files.iter().any(|f| f == c), "{c} is not Bob's");
        }
    }
    // Vector stores too.
    let store = |key: &str| {
        let key = key.to_owned();
        let base = app.base.clone();
        async move {
            let r = http()
                .post(format!("{base}/vector_stores"))
                .bearer_auth(&key)
                .json(&json!({"name": "notes"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let a_vs = store(&alice).await;
    let b_vs = store(&bob).await;
    let (seen, _) = walk(&app, &alice, "/vector_stores", 1).await;
    assert_eq!(seen, std::slice::from_ref(&a_vs));
    // Someone else's cursor: 404 naming it, the upstream not asked.
    let before = mock.seen().len();
    for path in [
        format!("/files?after={}", a_files[0]),
        format!("/files?before={}", a_files[1]),
        format!("/files?limit=1&after={}", a_files[2].replace('-', "%2D")),
        format!("/vector_stores?after={a_vs}"),
        "/chat/completions?after=chatcmpl-nobodys".to_string(),
    ] {
        let (status, code, message) = error_parts(get(&app, &bob, &path).await).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{path}");
        assert!(message.contains('`'), "names the id: {message}");
    }
    assert_eq!(mock.seen().len(), before, "the upstream was asked");
    // A user with none of a kind gets an empty page without the upstream
    // being asked.
    let carol = app.add_user("carol").await;
    let before = mock.seen().len();
    let page: Value = get(&app, &carol, "/files").await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
    assert_eq!(
        (page["has_more"].clone(), page["last_id"].clone()),
        (json!(false), Value::Null)
    );
    assert_eq!(mock.seen().len(), before);
    let _ = b_vs;
}

/// Ids inside bodies are references like the path's: Bob cannot attach
/// Alice's file to his own vector store, read it back through it, hand it
/// to a response as input or build on her vector store, whatever the
/// depth or spelling; his own work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_inside_bodies_must_be_the_callers_own() {
    let Two {
        mock,
        app,
        alice,
        bob,
    } = two_users().await;
    let a_file = upload(&app, &alice, "alice-secret.txt").await;
    let b_file = upload(&app, &bob, "bob.txt").await;
    let post = |key: &str, path: &str, body: Value| {
        http()
            .post(format!("{}{path}", app.base))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let a_vs: Value = post(&alice, "/vector_stores", json!({"file_ids": [a_file]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a_vs = a_vs["id"].as_str().unwrap().to_owned();
    let b_vs: Value = post(&bob, "/vector_stores", json!({"name": "bob"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b_vs = b_vs["id"].as_str().unwrap().to_owned();
    let before = mock.seen().len();
    let refused = [
        // Attached to his own store, then read back through it.
        (
            format!("/vector_stores/{b_vs}/files"),
            json!({"file_id": a_file}),
        ),
        (
            "/vector_stores".to_string(),
            json!({"file_ids": [b_file, a_file]}),
        ),
        // As input, at depth, with an escaped key.
        (
            "/responses".to_string(),
            json!({"model": "gpt-4o", "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "summarise"},
                {"type": "input_file", "file_id": a_file}]}]}),
        ),
        (
            "/chat/completions".to_string(),
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
                {"type": "file", "file": {"file_id": a_file}}]}]}),
        ),
        // Her vector store in his file search; a container nobody owns.
        (
            "/responses".to_string(),
            json!({"model": "gpt-4o", "input": "hi",
                "tools": [{"type": "file_search", "vector_store_ids": [a_vs]}]}),
        ),
        (
            "/responses".to_string(),
            json!({"model": "gpt-4o", "input": "hi",
                "tools": [{"type": "code_interpreter", "container": "cntr_someone"}]}),
        ),
        (
            "/responses".to_string(),
            json!({"model": "gpt-4o", "input": "hi",
                "tools": [{"type": "code_interpreter", "container": {"type": "auto", "file_ids": [a_file]}}]}),
        ),
    ];
    for (path, body) in &refused {
        let r = post(&bob, path, body.clone()).await.unwrap();
        let (status, code, message) = error_parts(r).await;
        assert_eq!(
            (status, code.as_str()),
            (404, "not_found"),
            "{path} {body}: {message}"
        );
    }
    // The same with the key spelled with an escape, which JSON decodes.
    let escaped = format!(
        r#"{{"model":"gpt-4o","input":[{{"role":"user","content":[{{"type":"input_file","file\u005fid":"{a_file}"}}]}}]}}"#
    );
    let r = http()
        .post(format!("{}/responses", app.base))
        .bearer_auth(&bob)
        .header("content-type", "application/json")
        .body(escaped)
        .send()
        .await
        .unwrap();
    assert_eq!(error_parts(r).await.1, "not_found");
    // Reading her file through his store: the path names it.
    let r = get(
        &app,
        &bob,
        &format!("/vector_stores/{b_vs}/files/{a_file}/content"),
    )
    .await;
    assert_eq!(error_parts(r).await.1, "not_found");
    // A body of another media type to an object endpoint is refused, not
    // forwarded unread (a lenient upstream parses any body as JSON).
    let r = http()
        .post(format!("{}/vector_stores/{b_vs}/files", app.base))
        .bearer_auth(&bob)
        .header("content-type", "text/plain")
        .body(format!(r#"{{"file_id":"{a_file}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(error_parts(r).await.0, 415);
    assert_eq!(
        mock.seen().len(),
        before,
        "a foreign reference reached the upstream"
    );

    // His own: attached, read back, used as input.
    let r = post(
        &bob,
        &format!("/vector_stores/{b_vs}/files"),
        json!({"file_id": b_file}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = get(
        &app,
        &bob,
        &format!("/vector_stores/{b_vs}/files/{b_file}/content"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = respond(
        &app,
        &bob,
        json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": b_file}]}],
               "tools": [{"type": "file_search", "vector_store_ids": [b_vs]}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
}
