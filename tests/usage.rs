//! Usage accounting end to end: tokens from JSON replies and from streams,
//! the usage chunk added for the gateway and hidden again, estimates when
//! the upstream reports nothing, and records for cut-off streams.

use chatgate_testkit::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

async fn app_with_user() -> (Mock, TestApp, String) {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    (mock, app, key)
}

fn chat(model: &str, stream: bool, include_usage: Option<bool>) -> Value {
    let mut body = json!({"model": model, "stream": stream,
        "messages": [{"role": "user", "content": "Say hello to the world"}]});
    if let Some(u) = include_usage {
        body["stream_options"] = json!({"include_usage": u});
    }
    body
}

/// Sends a chat request and returns the raw body text.
async fn send(app: &TestApp, key: &str, body: &Value, release: &Mock) -> String {
    if body["stream"] == true {
        release.state.release.add_permits(1);
    }
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The benchmark's comparison switch (`serve --no-accounting`): the reply
/// is proxied unchanged and nothing is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_accounting_nothing_is_recorded() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app_with(config, dir, chatgate::server::Records::Dropped);
    let key = app.add_user("alice").await;
    let text = send(&app, &key, &chat("gpt-4o", true, None), &mock).await;
    assert!(text.contains("[DONE]"), "{text}");
    // Not asked for usage upstream either, so there is nothing to hide.
    assert!(!text.contains("prompt_tokens"), "{text}");
    let sent: Value = serde_json::from_slice(&mock.last().body).unwrap();
    assert_eq!(sent.get("stream_options"), None);
    send(&app, &key, &chat("gpt-4o", false, None), &mock).await;
    let pool = app.stop().await;
    assert!(stored(&pool, "/chat/completions").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_reply_tokens_are_recorded() {
    let (mock, app, key) = app_with_user().await;
    for _ in 0..3 {
        send(&app, &key, &chat("gpt-4o", false, None), &mock).await;
    }
    let pool = app.stop().await;
    let rows = stored(&pool, "/chat/completions");
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(
            (r.prompt, r.completion, r.total),
            (Some(7), Some(2), Some(9))
        );
        assert!(!r.estimated && !r.stream);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_usage_is_asked_for_and_hidden_from_clients_that_did_not() {
    let (mock, app, key) = app_with_user().await;
    let text = send(&app, &key, &chat("gpt-4o", true, None), &mock).await;
    let seen: Value = serde_json::from_slice(&mock.last().body).unwrap();
    assert_eq!(
        seen["stream_options"]["include_usage"], true,
        "gateway did not ask"
    );
    assert!(
        !text.contains("\"usage\""),
        "usage chunk reached the client:\n{text}"
    );
    assert!(
        text.contains(" world") && text.ends_with("data: [DONE]\n\n"),
        "{text}"
    );

    // include_usage: false is the client's explicit choice: still hidden.
    let text = send(&app, &key, &chat("gpt-4o", true, Some(false)), &mock).await;
    assert!(!text.contains("\"usage\""), "{text}");
    let seen: Value = serde_json::from_slice(&mock.last().body).unwrap();
    assert_eq!(seen["stream_options"]["include_usage"], true);

    let text = send(&app, &key, &chat("gpt-4o", true, Some(true)), &mock).await;
    assert!(
        text.contains("\"usage\""),
        "the client asked for usage:\n{text}"
    );

    let pool = app.stop().await;
    let rows = stored(&pool, "/chat/completions");
    assert_eq!(rows.len(), 3);
    for r in rows {
        let (p, c) = STREAM_USAGE;
        assert_eq!(
            (r.prompt, r.completion, r.total),
            (Some(p), Some(c), Some(p + c))
        );
        assert!(r.stream && !r.estimated);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_estimated_when_the_upstream_reports_none() {
    let (mock, app, key) = app_with_user().await;
    send(&app, &key, &chat(NO_USAGE_MODEL, false, None), &mock).await;
    send(&app, &key, &chat(NO_USAGE_MODEL, true, None), &mock).await;
    let pool = app.stop().await;
    let rows = stored(&pool, "/chat/completions");
    assert_eq!(rows.len(), 2);
    // "Say hello to the world" is 5 tokens; "mock reply" 2; "Hello world" 2.
    assert_eq!((rows[0].prompt, rows[0].completion), (Some(5), Some(2)));
    assert_eq!((rows[1].prompt, rows[1].completion), (Some(5), Some(2)));
    assert!(rows.iter().all(|r| r.estimated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_stream_still_leaves_a_record() {
    let (mock, app, key) = app_with_user().await;
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(&key)
        .json(&chat("gpt-4o", true, None))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hello"));
    drop(body); // the client goes away with the upstream still streaming
    mock.state.release.add_permits(1);
    let pool = app.stop().await;
    let rows = stored(&pool, "/chat/completions");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].prompt.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_usage_is_recorded() {
    let (_mock, app, key) = app_with_user().await;
    let r = http()
        .post(format!("{}/embeddings", app.base))
        .bearer_auth(&key)
        .json(&json!({"model": "text-embedding-3-small", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pool = app.stop().await;
    let rows = stored(&pool, "/embeddings");
    assert_eq!(
        (rows[0].prompt, rows[0].completion, rows[0].total),
        (Some(3), Some(0), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_and_billing_endpoints_report_the_callers_own_usage() {
    use chatgate::users::{parse_count, UserSettings};
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let settings = UserSettings {
        token_limit: Some(parse_count("500000").unwrap()),
        ..Default::default()
    };
    let key = app.add_user_with("alice", settings).await;
    let other = app.add_user("bob").await;
    for _ in 0..3 {
        send(&app, &key, &chat("gpt-4o", false, None), &mock).await;
    }
    let get = |path: &str, key: &str| {
        let (url, key) = (app.url(path), key.to_owned());
        async move {
            let r = http().get(url).bearer_auth(key).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or_default(),
            )
        }
    };
    // Usage is written in batches off the request path: wait for it.
    let written = eventually(Duration::from_secs(10), || async {
        get("/v1/me", &key).await.1["tokens_used"] == 27
    })
    .await;
    assert!(written, "usage never reached /v1/me");
    let seen_upstream = mock.seen().len();

    let (status, me) = get("/v1/me", &key).await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "alice");
    assert_eq!(me["token_limit"], 500000);
    // add_user's probes (GET /v1/models) are requests too.
    assert!(me["requests_used"].as_i64().unwrap() >= 3, "{me}");
    assert_eq!(
        get("/v1/me", &other).await.1["tokens_used"],
        0,
        "bob sees his own"
    );

    for prefix in ["", "/v1"] {
        let (_, sub) = get(&format!("{prefix}/dashboard/billing/subscription"), &key).await;
        assert_eq!(sub["hard_limit_usd"], 500.0);
        let (_, usage) = get(&format!("{prefix}/dashboard/billing/usage"), &key).await;
        assert_eq!(usage["total_usage"], 2.7, "cents: 27 tokens = $0.027");
        let (_, grants) = get(&format!("{prefix}/dashboard/billing/credit_grants"), &key).await;
        assert_eq!(grants["total_available"], 500.0 - 0.027);
    }
    let today = chrono::Utc::now().date_naive();
    let range = |a: chrono::NaiveDate, b: chrono::NaiveDate| {
        format!("/v1/dashboard/billing/usage?start_date={a}&end_date={b}")
    };
    let tomorrow = today.succ_opt().unwrap();
    let last_week = today - chrono::Duration::days(7);
    assert_eq!(
        get(&range(today, tomorrow), &key).await.1["total_usage"],
        2.7
    );
    assert_eq!(
        get(&range(last_week, today), &key).await.1["total_usage"],
        0.0
    );
    let (status, _) = get("/v1/dashboard/billing/usage?start_date=soon", &key).await;
    assert_eq!(status, 400);
    let (unlimited_status, unlimited) = get("/dashboard/billing/subscription", &other).await;
    assert_eq!(
        (unlimited_status, unlimited["hard_limit_usd"].as_f64()),
        (200, Some(1e8))
    );

    let (status, body) = get("/dashboard/billing/subscription", "sk-nobody").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert_eq!(
        mock.seen().len(),
        seen_upstream,
        "billing calls must not reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_requests_leave_two_thousand_records() {
    let (_mock, app, key) = app_with_user().await;
    let client = http();
    let url = format!("{}/chat/completions", app.base);
    let body = chat("gpt-4o", false, None);
    let statuses: Vec<u16> = futures_util::stream::iter(0..2000)
        .map(|_| {
            let req = client.post(&url).bearer_auth(&key).json(&body);
            async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
        })
        .buffer_unordered(500)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "not all succeeded");
    let pool = app.stop().await;
    let rows = stored(&pool, "/chat/completions");
    assert_eq!(rows.len(), 2000);
    assert_eq!(rows.iter().map(|r| r.total.unwrap()).sum::<i64>(), 2000 * 9);
    use chatgate::usage::report::{self, GroupBy};
    let query = report::Query {
        // Today and yesterday, in case the test runs across midnight.
        range: report::period("2d", chrono::Utc::now().naive_utc()).unwrap(),
        users: Vec::new(),
        teams: Vec::new(),
        by: vec![GroupBy::Model],
    };
    let rows = report::run(&mut pool.get().unwrap(), &query).unwrap();
    let gpt4o: i64 = rows
        .iter()
        .filter(|r| r.keys == ["gpt-4o"])
        .map(|r| r.requests)
        .sum();
    assert_eq!(gpt4o, 2000, "daily totals disagree with the records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_streams_finish_and_flushes_their_records() {
    let mock = start_mock();
    let server = serve_binary(&upstream_yaml(&mock.url, UPSTREAM_KEY), &[]).await;
    let base = server.base.clone();

    // Five streams, each held by the mock after its first chunk.
    let streams: Vec<_> = (0..5)
        .map(|_| {
            let url = format!("{base}/v1/chat/completions");
            tokio::spawn(async move {
                let r = http()
                    .post(url)
                    .bearer_auth("sk-alice-test-key")
                    .json(&chat("gpt-4o", true, None))
                    .send()
                    .await
                    .unwrap();
                r.text().await.unwrap()
            })
        })
        .collect();
    let in_flight = eventually(Duration::from_secs(10), || async {
        mock.seen()
            .iter()
            .filter(|s| s.path == "/v1/chat/completions")
            .count()
            == 5
    })
    .await;
    assert!(in_flight);

    server.signal("TERM");
    // Whether the server stopped accepting is seen once healthz fails.
    let stopped_accepting = eventually(Duration::from_secs(10), || async {
        http().get(format!("{base}/healthz")).send().await.is_err()
    })
    .await;
    assert!(stopped_accepting, "still accepting after SIGTERM");
    mock.state.release.add_permits(5);
    for s in streams {
        let text = s.await.unwrap();
        assert!(
            text.ends_with("data: [DONE]\n\n"),
            "a stream was cut: {text}"
        );
    }
    let mut server = server;
    assert!(server.exit().await, "exit code was not 0");
    let db_url = server.db_url.clone();

    let pool = chatgate::db::open(&db_url).unwrap();
    let rows = stored(&pool, "/chat/completions");
    assert_eq!(rows.len(), 5, "{rows:?}");
    let (p, c) = STREAM_USAGE;
    assert!(
        rows.iter()
            .all(|r| r.total == Some(p + c) && r.status == 200),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_flow_while_the_database_is_locked_and_no_usage_is_lost() {
    use diesel::connection::SimpleConnection;
    let (mock, app, key) = app_with_user().await;
    // Another session holds the usage table: the writer cannot write.
    let mut blocker = chatgate::db::connect(&app.db_url).unwrap();
    if on_postgres() {
        blocker
            .batch_execute("BEGIN; LOCK TABLE usage_records IN ACCESS EXCLUSIVE MODE;")
            .unwrap();
    } else if on_mysql() {
        blocker
            .batch_execute("LOCK TABLES usage_records WRITE;")
            .unwrap();
    } else {
        blocker.batch_execute("BEGIN EXCLUSIVE;").unwrap();
    }
    // Keys are checked from memory and records queue up: every request is
    // answered while the lock is held (were one to wait for the database,
    // this test would hang rather than pass).
    for _ in 0..20 {
        send(&app, &key, &chat("gpt-4o", false, None), &mock).await; // asserts 200
    }
    let release = if on_mysql() {
        "UNLOCK TABLES;"
    } else {
        "COMMIT;"
    };
    blocker.batch_execute(release).unwrap();
    drop(blocker);
    let pool = app.stop().await;
    assert_eq!(
        stored(&pool, "/chat/completions").len(),
        20,
        "records were lost"
    );
}

/// The writer inserts in statements of a few fixed sizes (256, 32, 4, 1
/// rows); a batch of 293 uses each once and must arrive whole.
#[test]
fn a_batch_of_any_size_is_stored_whole() {
    let (config, _dir) = test_config(vec![]);
    let pool = chatgate::db::open(&config.database.url).unwrap();
    let records: Vec<_> = (0..293i64)
        .map(|i| chatgate::usage::UsageRecord {
            at: chatgate::db::now(),
            user: "alice".into(),
            method: "POST",
            endpoint: format!("/batch/{i}"),
            model: (i % 2 == 0).then(|| format!("model-{i}")),
            status: 200,
            prompt_tokens: Some(i),
            completion_tokens: (i % 3 == 0).then_some(1),
            estimated: i % 5 == 0,
            latency_ms: i,
            ..Default::default()
        })
        .collect();
    chatgate::usage::writer::write_batch(&mut pool.get().unwrap(), &records).unwrap();
    let stored: Vec<Stored> = (0..293)
        .flat_map(|i| stored(&pool, &format!("/batch/{i}")))
        .collect();
    assert_eq!(stored.len(), 293);
    for (i, s) in (0i64..).zip(&stored) {
        assert_eq!(s.endpoint, format!("/batch/{i}"));
        assert_eq!(s.model, (i % 2 == 0).then(|| format!("model-{i}")));
        assert_eq!(s.prompt, Some(i));
        assert_eq!(s.completion, (i % 3 == 0).then_some(1));
        assert_eq!(
            (s.total, s.estimated),
            ((i % 3 == 0).then_some(i + 1), i % 5 == 0)
        );
    }
}

/// Records are keyed by their time: records of one millisecond from two
/// writers (two instances, or a restart) are all kept, and more than a
/// millisecond holds go on into the next one.
#[test]
fn records_of_one_millisecond_from_two_writers_are_all_kept() {
    let (config, _dir) = test_config(vec![]);
    let pool = chatgate::db::open(&config.database.url).unwrap();
    let at = chatgate::usage::records::now();
    let batch = |n: i64| -> Vec<_> {
        (0..n)
            .map(|i| chatgate::usage::UsageRecord {
                at,
                user: "alice".into(),
                method: "POST",
                endpoint: "/chat/completions".into(),
                status: 200,
                prompt_tokens: Some(i),
                ..Default::default()
            })
            .collect()
    };
    // Each write_batch is a writer of its own, knowing nothing of the other.
    for n in [3, 3, 1001] {
        chatgate::usage::writer::write_batch(&mut pool.get().unwrap(), &batch(n)).unwrap();
    }
    let stored = all_records(&pool);
    assert_eq!(stored.len(), 1007);
    let next_ms = at + chrono::Duration::milliseconds(1);
    assert_eq!(stored.iter().filter(|r| r.at == at).count(), 1000);
    assert_eq!(stored.iter().filter(|r| r.at == next_ms).count(), 7);
}

/// What users used, asked for many users at once (more than SQLite binds
/// in one query: `user list` with 100,000 users), is what asking for a
/// few gives.
#[test]
fn usage_of_many_users_is_read_in_one_query() {
    let (config, _dir) = test_config(vec![]);
    let pool = chatgate::db::open(&config.database.url).unwrap();
    let record = |user: &str, tokens: i64| chat_record(user, chatgate::db::now(), tokens, 1);
    let batch = [record("alice", 10), record("bob", 20), record("carol", 30)];
    let mut conn = pool.get().unwrap();
    chatgate::usage::writer::write_batch(&mut conn, &batch).unwrap();
    let today = chatgate::db::now().date();
    let few = ["alice".to_owned(), "bob".to_owned()];
    let many: Vec<String> = few
        .iter()
        .cloned()
        .chain((0..40_000).map(|i| format!("nobody{i}")))
        .collect();
    let sorted = |mut v: Vec<(String, chatgate::usage::daily::Used)>| {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let read = |conn: &mut chatgate::db::DbConnection, names: &[String]| {
        sorted(
            chatgate::usage::daily::used_by(
                conn,
                names,
                chatgate::usage::daily::Of::Users,
                today,
                None,
            )
            .unwrap(),
        )
    };
    let from_few = read(&mut conn, &few);
    assert_eq!(
        from_few
            .iter()
            .map(|(n, u)| (n.as_str(), u.tokens))
            .collect::<Vec<_>>(),
        [("alice", 11), ("bob", 21)]
    );
    assert_eq!(read(&mut conn, &many), from_few);
}

/// The first batch of a day, user, model and upstream inserts its daily
/// row; later ones add to it, each sum in its own column.
#[test]
fn batches_add_up_in_the_daily_totals() {
    use chatgate::db::schema::usage_daily::dsl::*;
    use diesel::prelude::*;
    let (config, _dir) = test_config(vec![]);
    let pool = chatgate::db::open(&config.database.url).unwrap();
    // One fixed day: a clock passing midnight would split the rows.
    let noon = chrono::NaiveDate::from_ymd_opt(2026, 11, 29)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap();
    let used = |status, prompt, completion, guessed| chatgate::usage::UsageRecord {
        at: noon,
        user: "alice".into(),
        model: Some("gpt-4o".into()),
        upstream: Some("mock".into()),
        status,
        prompt_tokens: Some(prompt),
        completion_tokens: Some(completion),
        estimated: guessed,
        ..Default::default()
    };
    for batch in [
        vec![used(200, 1, 2, true)],
        vec![
            used(500, 10, 20, false),
            used(200, 100, 200, true),
            used(200, 10_000, 20_000, true),
        ],
        vec![used(429, 1000, 2000, true)],
    ] {
        chatgate::usage::writer::write_batch(&mut pool.get().unwrap(), &batch).unwrap();
    }
    let sums: (i64, i64, i64, i64, i64) = usage_daily
        .filter(user_name.eq("alice"))
        .select((
            requests,
            errors,
            prompt_tokens,
            completion_tokens,
            estimated_requests,
        ))
        .get_result(&mut pool.get().unwrap())
        .unwrap();
    assert_eq!(sums, (5, 2, 11_111, 22_222, 4));
}

/// The server writes a user's first use at once; a later one within the
/// minute waits, and is written exactly when the server stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_use_is_written_at_once_then_exactly_at_stop() {
    use chatgate::db::schema::users;
    use diesel::prelude::*;
    let (mock, app, key) = app_with_user().await;
    let pool = app.pool.clone();
    let last_used = || -> Option<chrono::NaiveDateTime> {
        users::table
            .filter(users::name.eq("alice"))
            .select(users::last_used_at)
            .first(&mut pool.get().unwrap())
            .unwrap()
    };
    send(&app, &key, &chat("gpt-4o", false, None), &mock).await;
    assert!(
        eventually(Duration::from_secs(5), || {
            let written = last_used().is_some();
            async move { written }
        })
        .await,
        "the first use was not written"
    );
    let written = last_used();
    // Its record is committed; the next request goes in a later batch.
    send(&app, &key, &chat("gpt-4o", false, None), &mock).await;
    let pool = app.stop().await;
    let latest = all_records(&pool).into_iter().map(|r| r.at).max();
    assert_eq!(stored(&pool, "/chat/completions").len(), 2);
    assert!(latest > written, "both requests share one timestamp");
    assert_eq!(last_used(), latest);
}

/// `usage.keep_records`: the running server deletes older records (in
/// chunks; there are more than one chunk's worth), keeps newer ones and the
/// daily totals, and on SQLite gives the freed pages back to the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_older_than_keep_records_are_pruned_and_their_space_given_back() {
    use diesel::connection::SimpleConnection;
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Pages {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        pages: i64,
    }
    let pages = |pool: &chatgate::db::Pool, pragma: &str| -> i64 {
        let p: Pages = diesel::sql_query(format!(
            "SELECT CAST({pragma} AS BIGINT) AS pages FROM pragma_{pragma}"
        ))
        .get_result(&mut pool.get().unwrap())
        .unwrap();
        p.pages
    };
    // (The upstream is never asked.)
    let (mut config, dir) = test_config(vec![openai_upstream(
        "mock",
        "http://127.0.0.1:9/v1",
        &["*"],
    )]);
    config.usage.keep_records = Some(Duration::from_secs(30 * 86_400));
    let pool = chatgate::db::open(&config.database.url).unwrap();
    let now = chatgate::db::now();
    let record = |days_ago: i64, i: i64| chatgate::usage::UsageRecord {
        request_id: Some(format!("req_{i:032x}").into()),
        ..chat_record("alice", now - chrono::Duration::days(days_ago), i, 1)
    };
    let old: Vec<_> = (0..5000).map(|i| record(40, i)).collect();
    let recent = [record(1, 7), record(0, 8)];
    let mut conn = pool.get().unwrap();
    chatgate::usage::writer::write_batch(&mut conn, &old).unwrap();
    chatgate::usage::writer::write_batch(&mut conn, &recent).unwrap();
    drop(conn);
    let sqlite = !on_postgres() && !on_mysql();
    if sqlite {
        pool.get()
            .unwrap()
            .batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        assert_eq!(
            pages(&pool, "auto_vacuum"),
            2,
            "a new database vacuums incrementally"
        );
    }
    let full = if sqlite {
        pages(&pool, "page_count")
    } else {
        0
    };
    let app = spawn_app(config, dir);
    let pruned = eventually(Duration::from_secs(20), || {
        let left = all_records(&app.pool).len();
        async move { left == 2 }
    })
    .await;
    assert!(pruned, "{} records left", all_records(&app.pool).len());
    let kept: Vec<_> = all_records(&app.pool)
        .iter()
        .map(|r| r.prompt_tokens)
        .collect();
    assert_eq!(kept, [Some(7), Some(8)]);
    if sqlite {
        let given_back = eventually(Duration::from_secs(20), || {
            let (free, count) = (
                pages(&app.pool, "freelist_count"),
                pages(&app.pool, "page_count"),
            );
            async move { free == 0 && count < full / 2 }
        })
        .await;
        assert!(
            given_back,
            "{} of {full} pages left",
            pages(&app.pool, "page_count")
        );
    }
    let pool = app.stop().await;
    // The daily totals keep what the pruned records counted.
    let mut conn = pool.get().unwrap();
    let since = chatgate::usage::report::midnight((now - chrono::Duration::days(41)).date());
    let q = chatgate::usage::report::Query {
        range: chatgate::usage::report::Range {
            since,
            until: chatgate::usage::report::midnight(now.date() + chrono::Duration::days(1)),
        },
        users: vec![],
        teams: vec![],
        by: vec![],
    };
    let rows = chatgate::usage::report::run(&mut conn, &q).unwrap();
    assert_eq!(rows.iter().map(|r| r.requests).sum::<i64>(), 5002);
}

/// `usage.batch_window`: records that reach the writer within the window
/// after a batch's first are committed with it, in one transaction.
#[test]
fn records_within_the_batch_window_are_committed_as_one_batch() {
    use chatgate::usage::writer::UsageWriter;
    let (config, _dir) = test_config(vec![]);
    let pool = chatgate::db::open(&config.database.url).unwrap();
    let metrics = std::sync::Arc::new(chatgate::metrics::Metrics::new());
    let mut writer = UsageWriter::start(
        pool.clone(),
        Default::default(),
        metrics.clone(),
        Default::default(),
        Duration::from_secs(1),
    );
    let sink = writer.sink();
    let send = |tokens| {
        sink.started();
        sink.record(chat_record("alice", chatgate::db::now(), tokens, 1));
    };
    // The first, then two more a tenth of a second later: well within the
    // window (a writer without it would have committed the first alone).
    send(10);
    std::thread::sleep(Duration::from_millis(100));
    send(20);
    send(30);
    writer.flush_and_stop();
    assert_eq!(metrics.usage_batches.get(), 1);
    let stored = all_records(&pool);
    let prompts: Vec<_> = stored.iter().map(|r| r.prompt_tokens).collect();
    assert_eq!(prompts, [Some(10), Some(20), Some(30)]);
}

/// Every field of a record comes back as written, whatever size of
/// statement carried it (37 records: one of 32 rows, one of 4, one of 1;
/// each value distinct, so two columns bound in each other's place show).
#[test]
fn every_field_of_a_record_is_stored_as_written() {
    let (config, _dir) = test_config(vec![]);
    let pool = chatgate::db::open(&config.database.url).unwrap();
    let at = chatgate::usage::records::now();
    let written: Vec<_> = (0..37i64)
        .map(|i| chatgate::usage::UsageRecord {
            at,
            request_id: Some(if i % 2 == 0 {
                format!("req_{:032x}", 0xabc0 + i).into()
            } else {
                format!("msg_01Client{i}").into()
            }),
            user: format!("user{}", i % 3).into(),
            method: if i % 2 == 0 { "POST" } else { "GET" },
            endpoint: format!("/endpoint{i}"),
            model: (i % 4 != 0).then(|| format!("model{i}")),
            upstream: (i % 5 != 0).then(|| format!("up{i}").into()),
            status: 200 + i as u16,
            prompt_tokens: (i % 6 != 0).then_some(1000 + i),
            completion_tokens: Some(2000 + i),
            cached_tokens: Some(3000 + i),
            cost_nano_usd: (i % 7 != 0).then_some(4000 + i),
            estimated: i % 2 == 0,
            stream: i % 3 == 0,
            latency_ms: 5000 + i,
            ..Default::default()
        })
        .collect();
    chatgate::usage::writer::write_batch(&mut pool.get().unwrap(), &written).unwrap();
    let stored = all_records(&pool);
    assert_eq!(stored.len(), written.len());
    for (w, s) in written.iter().zip(&stored) {
        assert_eq!(s.at, w.at);
        assert_eq!(s.request_id.as_deref(), w.request_id.as_deref());
        assert_eq!(s.user, &*w.user);
        assert_eq!(s.method, w.method);
        assert_eq!(s.endpoint, w.endpoint);
        assert_eq!(s.model, w.model);
        assert_eq!(s.upstream.as_deref(), w.upstream.as_deref());
        assert_eq!(s.status, i32::from(w.status));
        assert_eq!(s.prompt_tokens, w.prompt_tokens);
        assert_eq!(s.completion_tokens, w.completion_tokens);
        assert_eq!(s.cached_tokens, w.cached_tokens);
        assert_eq!(s.cost_nano_usd, w.cost_nano_usd);
        assert_eq!((s.estimated, s.stream), (w.estimated, w.stream));
        assert_eq!(s.latency_ms, w.latency_ms);
    }
}

/// Each record names the client family its `User-Agent` belongs to (never
/// the header itself), and reports group by client and by endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_name_the_client_and_reports_group_by_client_and_endpoint() {
    let (_mock, app, key) = app_with_user().await;
    for ua in [
        "claude-cli/2.1.332 (external, sdk-cli)",
        "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)",
        "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)",
        "GeminiCLI/0.61.0 (linux; x64)",
        "my-own-tool/1.0 secret-token-in-ua",
    ] {
        let r = http()
            .post(format!("{}/chat/completions", app.base))
            .bearer_auth(&key)
            .header("user-agent", ua)
            .json(&chat("gpt-4o", false, None))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http()
        .post(format!("{}/embeddings", app.base))
        .bearer_auth(&key)
        .header("user-agent", "OpenAI/Python 1.99.0")
        .json(&json!({"model": "text-embedding-3-small", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The caller's own report reads the daily totals, which have neither.
    let r = http()
        .get(format!("{}/me/usage?period=today&by=client", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let pool = app.stop().await;
    let records = all_records(&pool);
    let clients: Vec<_> = records.iter().filter_map(|r| r.client.clone()).collect();
    assert!(
        !clients
            .iter()
            .any(|c| c.contains("secret") || c.contains('/')),
        "{clients:?}"
    );
    let mut conn = pool.get().unwrap();
    let rows = chatgate::usage::report::run(
        &mut conn,
        &chatgate::usage::report::Query {
            range: chatgate::usage::range::period("today", chatgate::db::now()).unwrap(),
            users: vec![],
            teams: vec![],
            by: vec![
                chatgate::usage::report::GroupBy::Client,
                chatgate::usage::report::GroupBy::Endpoint,
            ],
        },
    )
    .unwrap();
    let seen: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r.keys[0].clone(), r.keys[1].clone(), r.requests))
        .filter(|(_, endpoint, _)| endpoint != "/models")
        .collect();
    let expect = |c: &str, e: &str, n: i64| (c.to_string(), e.to_string(), n);
    assert_eq!(
        seen,
        [
            expect("claude-code", "/chat/completions", 1),
            expect("codex", "/chat/completions", 2),
            expect("gemini-cli", "/chat/completions", 1),
            expect("openai-python", "/embeddings", 1),
            expect("other", "/chat/completions", 1),
        ]
    );
}

/// Holds the usage table's write lock, as a database that stopped taking
/// writes would (the writer waits; records queue in memory).
fn lock_usage_writes(db_url: &str) -> chatgate::db::DbConnection {
    use diesel::RunQueryDsl;
    let mut conn = chatgate::db::connect_migrated(db_url).unwrap();
    let statements: &[&str] = if on_postgres() {
        &["BEGIN", "LOCK TABLE usage_records IN EXCLUSIVE MODE"]
    } else if on_mysql() {
        &["LOCK TABLES usage_records WRITE"]
    } else {
        &["BEGIN EXCLUSIVE"]
    };
    for s in statements {
        diesel::sql_query(*s).execute(&mut conn).unwrap();
    }
    conn
}

/// Every request served is charged: while the database takes no writes,
/// records wait in memory up to `usage.buffer_records`; past that, new
/// requests are refused (503) instead of served uncharged; once the
/// database is back every waiting record is written.
#[tokio::test]
async fn a_full_usage_buffer_refuses_new_requests_and_loses_no_record() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.usage.buffer_records = 3;
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let body = chat("gpt-4o", false, None);
    let ask = || post_json(&app, &key, "/chat/completions", &body);
    // What came before (the key's first requests) is written first.
    let queue_empty = eventually(Duration::from_secs(5), || async {
        let text = http()
            .get(format!("http://127.0.0.1:{}/metrics", app.port))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines().any(|l| l == "chatgate_usage_queue_depth 0")
    })
    .await;
    assert!(queue_empty);
    let before = all_records(&app.pool).len();
    let lock = lock_usage_writes(&app.db_url);
    let mut served = 0;
    let mut refusal = None;
    // Three fit; a record reaches the queue as its request ends, so one
    // or two more may slip in before the bound is seen.
    for _ in 0..20 {
        let r = ask().await;
        match r.status().as_u16() {
            200 => served += 1,
            _ => {
                refusal = Some(error_parts(r).await);
                break;
            }
        }
    }
    let (status, code, message) = refusal.expect("never refused");
    assert_eq!(
        (status, code.as_str()),
        (503, "service_unavailable"),
        "{message}"
    );
    assert!(message.contains("cannot record usage"), "{message}");
    assert!(
        (3..=5).contains(&served),
        "{served} served before the refusal"
    );
    // The database takes writes again: everything waiting is written, and
    // requests are served again.
    drop(lock);
    let back = eventually(Duration::from_secs(10), || async {
        ask().await.status() == 200
    })
    .await;
    assert!(back, "still refused after the database came back");
    served += 1;
    // Refusals leave no record (nothing was served), every served one does.
    let written = eventually(Duration::from_secs(10), || async {
        all_records(&app.pool).len() - before >= served
    })
    .await;
    let new: Vec<_> = all_records(&app.pool).into_iter().skip(before).collect();
    assert!(
        written && new.len() == served,
        "{} records of {served} served requests",
        new.len()
    );
    assert!(new.iter().all(|r| r.status == 200 && r.user == "alice"));
}
