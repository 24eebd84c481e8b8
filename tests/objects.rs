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
