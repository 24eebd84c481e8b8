//! Access rules that count, against a running server: token and request
//! limits with reservations, top-ups, rpm, model lists, restarts.

use chatgate::users::{parse_count, LimitPeriod, Setting, UserSettings};
use chatgate_testkit::*;
use serde_json::{json, Value};
use std::time::Duration;

fn limited(tokens: Option<i64>, requests: Option<i64>, rpm: Option<i64>) -> UserSettings {
    UserSettings {
        token_limit: tokens.map(Setting::Set),
        request_limit: requests.map(Setting::Set),
        rpm: rpm.map(Setting::Set),
        ..Default::default()
    }
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "max_tokens": 3,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// What the gateway reserves for `chat(stream)`: body bytes / 4 + max_tokens.
fn reservation(stream: bool) -> i64 {
    (serde_json::to_vec(&chat(stream)).unwrap().len() / 4) as i64 + 3
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

async fn app() -> (Mock, TestApp) {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    (mock, spawn_app(config, dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_only_get_what_the_reservations_allow() {
    let (mock, app) = app().await;
    let key = app
        .add_user_with("alice", limited(Some(5 * reservation(true)), None, None))
        .await;
    // All 50 at once; the mock holds each admitted stream after its first
    // chunk, so every admitted request is still in flight while the rest
    // are decided.
    let results: Vec<_> = futures_util::future::join_all((0..50).map(|_| async {
        let r = post(&app, &key, &chat(true)).await;
        let status = r.status().as_u16();
        (status, r)
    }))
    .await;
    let admitted = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(
        admitted,
        5,
        "statuses: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    // Release every held stream at once: a permit goes to whichever stream
    // waits first, not to the one being read.
    mock.state.release.add_permits(admitted);
    for (status, r) in results {
        if status != 200 {
            let (status, code, msg) = error_parts(r).await;
            assert_eq!((status, code.as_str()), (429, "insufficient_quota"));
            assert!(msg.contains("token limit"), "{msg}");
        } else {
            let text = r.text().await.unwrap();
            assert!(text.ends_with("data: [DONE]\n\n"));
        }
    }
    let pool = app.stop().await;
    let used: i64 = stored(&pool, "/chat/completions")
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.total.unwrap())
        .sum();
    let (p, c) = STREAM_USAGE;
    assert_eq!(used, 5 * (p + c), "five settled with their real usage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_reaches_the_limit_finishes_then_the_user_is_refused() {
    let (mock, app) = app().await;
    // Less than one stream's real usage (7 tokens).
    let key = app.add_user_with("bob", limited(Some(5), None, None)).await;
    mock.state.release.add_permits(1);
    let r = post(&app, &key, &chat(true)).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text().await.unwrap().ends_with("data: [DONE]\n\n"),
        "cut mid-stream"
    );
    let refused = eventually(Duration::from_secs(10), || async {
        error_parts(post(&app, &key, &chat(false)).await).await.1 == "insufficient_quota"
    })
    .await;
    assert!(refused, "the next request was not refused");
    let r = post(&app, &key, &chat(false)).await;
    // The SDKs would retry a 429 twice; a spent quota tells them not to.
    assert_eq!(r.headers()["x-should-retry"], "false");
    assert!(r.headers().get("retry-after").is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "insufficient_quota");
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert_eq!(
        body["error"]["message"],
        "You have used your token limit of 5; ask the gateway's admin for a top-up."
    );

    // A top-up with the CLI lets the user go on.
    let out = assert_cmd::Command::cargo_bin("chatgate")
        .unwrap()
        .args([
            "--database",
            &app.db_url,
            "user",
            "recharge",
            "bob",
            "--tokens",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let lifted = eventually(Duration::from_secs(10), || async {
        post(&app, &key, &chat(false)).await.status() == 200
    })
    .await;
    assert!(lifted, "recharge did not lift the block");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_limits_name_the_limit_and_its_reset() {
    let (_mock, app) = app().await;
    let settings = UserSettings {
        limit_period: Some(LimitPeriod::Day),
        ..limited(None, Some(2), None)
    };
    let key = app.add_user_with("carol", settings).await;
    // add_user's probe (GET /v1/models) was one request of the two.
    assert_eq!(post(&app, &key, &chat(false)).await.status(), 200);
    let refused = eventually(Duration::from_secs(10), || async {
        error_parts(post(&app, &key, &chat(false)).await).await.1 == "insufficient_quota"
    })
    .await;
    assert!(refused);
    let (_, _, msg) = error_parts(post(&app, &key, &chat(false)).await).await;
    let tomorrow = chrono::Utc::now().date_naive().succ_opt().unwrap();
    assert_eq!(
        msg,
        format!("You have used your request limit of 2 for this day; it resets at {tomorrow}T00:00:00Z.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpm_refuses_with_retry_after() {
    let (_mock, app) = app().await;
    let key = app
        .add_user_with("dave", limited(None, None, Some(3)))
        .await;
    // The probe in add_user took one slot: two more pass, the fourth waits.
    for _ in 0..2 {
        assert_eq!(post(&app, &key, &chat(false)).await.status(), 200);
    }
    let r = post(&app, &key, &chat(false)).await;
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Retryable, unlike a spent quota: OpenAI's type for an rpm limit.
    assert!(r.headers().get("x-should-retry").is_none());
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("3 requests per minute"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_lists_show_only_allowed_models() {
    let (_mock, app) = app().await;
    let all = app.add_user("erin").await;
    let some = app
        .add_user_with(
            "frank",
            UserSettings {
                models: Some(chatgate::users::parse_models("gpt-4o*").unwrap()),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(model_ids(&app, &all).await, MOCK_MODELS);
    assert_eq!(model_ids(&app, &some).await, ["gpt-4o", "gpt-4o-mini"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn used_totals_survive_a_restart() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let first = spawn_app(config.clone(), dir);
    // 9 tokens a request (the mock's usage): the limit allows one more.
    let key = first
        .add_user_with("gina", limited(Some(9 * 3 + 1), None, None))
        .await;
    for _ in 0..3 {
        assert_eq!(post(&first, &key, &chat(false)).await.status(), 200);
    }
    let dir = first.dir;
    first.handle.stop(true).await;
    first.task.await.unwrap().unwrap();

    let second = spawn_app(config, dir);
    // Right away: the new server counts from what was used before it.
    assert_eq!(post(&second, &key, &chat(false)).await.status(), 200);
    let refused = eventually(Duration::from_secs(10), || async {
        post(&second, &key, &chat(false)).await.status() == 429
    })
    .await;
    assert!(refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_periods_reset_with_the_clock() {
    use chatgate::keytable::KeyTable;
    let (config, _dir) = test_config(vec![]);
    let pool = chatgate::db::open(&config.database.url).unwrap();
    let mut conn = pool.get().unwrap();
    for (name, period) in [("daily", LimitPeriod::Day), ("monthly", LimitPeriod::Month)] {
        let settings = UserSettings {
            token_limit: Some(parse_count("100").unwrap()),
            limit_period: Some(period),
            ..Default::default()
        };
        chatgate::users::add(
            &mut conn,
            &chatgate::audit::Actor::Config,
            &chatgate::users::UserName::parse(name).unwrap(),
            None,
            settings,
        )
        .unwrap();
    }
    let at = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
    let record = |user: &str| chat_record(user, at("2026-03-30 23:00:00"), 40, 2);
    chatgate::usage::writer::write_batch(&mut conn, &[record("daily"), record("monthly")]).unwrap();
    let keys = KeyTable::default();
    keys.load(&mut conn).unwrap();
    let ledgers = keys.ledgers();
    let used_at = |now: &str| {
        chatgate::usage::daily::refresh(&mut pool.get().unwrap(), &ledgers, at(now)).unwrap();
        ["daily", "monthly"]
            .map(|n| (n.to_string(), ledgers.users().get(n).unwrap().snapshot()[0]))
            .to_vec()
    };
    let u = |d: i64, m: i64| vec![("daily".to_string(), d), ("monthly".to_string(), m)];
    assert_eq!(used_at("2026-03-30 23:59:59"), u(42, 42));
    assert_eq!(
        used_at("2026-03-31 00:00:00"),
        u(0, 42),
        "a day resets at midnight"
    );
    assert_eq!(
        used_at("2026-04-01 00:00:00"),
        u(0, 0),
        "a month on the 1st"
    );
}
