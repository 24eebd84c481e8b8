//! Two gateway instances on one database (as behind a load balancer): what
//! the CLI or one instance changes reaches the other; usage from both lands
//! in one report; a token limit holds across both. Runs on SQLite and, in
//! test.sh's second pass, on PostgreSQL.

use chatgate_testkit::*;
use serde_json::json;
use std::time::Duration;

async fn two_instances() -> (Mock, TestApp, TestApp) {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let a = spawn_app(config.clone(), dir);
    let b = spawn_app(config, tempfile::tempdir().unwrap());
    (mock, a, b)
}

fn cli(app: &TestApp, args: &[&str]) -> String {
    let out = assert_cmd::Command::cargo_bin("chatgate")
        .unwrap()
        .arg("--database")
        .arg(&app.db_url)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

async fn both_become(apps: [&TestApp; 2], key: &str, want: (u16, &str)) -> bool {
    for app in apps {
        let seen = eventually(Duration::from_secs(10), || async {
            let (s, c) = key_status(app, key).await;
            s == want.0 && c == want.1
        })
        .await;
        if !seen {
            return false;
        }
    }
    true
}

async fn chat(app: &TestApp, key: &str) -> u16 {
    http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_reach_both_instances() {
    let (_mock, a, b) = two_instances().await;
    let key = cli(&a, &["-q", "user", "add", "alice"]).trim().to_owned();
    assert!(
        both_become([&a, &b], &key, (200, "")).await,
        "the new user never worked on both"
    );
    cli(&a, &["user", "disable", "alice"]);
    assert!(both_become([&a, &b], &key, (401, "user_disabled")).await);
    cli(&a, &["user", "enable", "alice"]);
    let new_key = cli(&a, &["-q", "token", "rotate", "alice"])
        .trim()
        .to_owned();
    assert!(
        both_become([&a, &b], &key, (401, "invalid_api_key")).await,
        "the old key still works"
    );
    assert!(both_become([&a, &b], &new_key, (200, "")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_from_both_lands_in_one_report() {
    let (_mock, a, b) = two_instances().await;
    let key = a.add_user("alice").await;
    assert!(both_become([&a, &b], &key, (200, "")).await);
    for _ in 0..3 {
        assert_eq!(chat(&a, &key).await, 200);
    }
    for _ in 0..2 {
        assert_eq!(chat(&b, &key).await, 200);
    }
    let pool = a.stop().await;
    b.stop().await;
    let rows = stored(&pool, "/chat/completions");
    assert_eq!(rows.len(), 5);
    let now = chrono::Utc::now().naive_utc();
    let range = chatgate::usage::report::period("2d", now).unwrap();
    use chatgate::usage::report::{self, GroupBy};
    let query = report::Query {
        range,
        users: vec!["alice".into()],
        teams: Vec::new(),
        by: vec![GroupBy::Model],
    };
    let rows = report::run(&mut pool.get().unwrap(), &query).unwrap();
    let chats: Vec<_> = rows.iter().filter(|r| r.keys == ["gpt-4o"]).collect();
    let requests: i64 = chats.iter().map(|r| r.requests).sum();
    let tokens: i64 = chats.iter().map(|r| r.total_tokens).sum();
    assert_eq!(
        (requests, tokens),
        (5, 5 * 9),
        "the daily totals of both instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_limit_holds_across_instances() {
    let (_mock, a, b) = two_instances().await;
    // The mock reports 9 tokens a request: four fit.
    let settings = chatgate::users::UserSettings {
        token_limit: Some(chatgate::users::parse_count("36").unwrap()),
        ..Default::default()
    };
    let key = a.add_user_with("alice", settings).await;
    assert!(both_become([&a, &b], &key, (200, "")).await);
    let mut served = 0;
    for _ in 0..10 {
        if chat(&a, &key).await == 200 {
            served += 1;
        } else {
            break;
        }
    }
    // `a` refuses once its own usage is committed and re-read.
    let refused_on_a = eventually(Duration::from_secs(10), || async {
        chat(&a, &key).await == 429
    })
    .await;
    assert!(refused_on_a);
    // `b` sees the other instance's usage within its re-read interval.
    let refused_on_b = eventually(Duration::from_secs(10), || async {
        chat(&b, &key).await == 429
    })
    .await;
    assert!(refused_on_b, "the limit did not reach the second instance");
    let pool = a.stop().await;
    b.stop().await;
    let used: i64 = stored(&pool, "/chat/completions")
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.total.unwrap())
        .sum();
    // Sequential requests: at most the one in flight when the limit was
    // reached goes over, by its own size.
    assert!(
        served <= 5 && used <= 36 + 9,
        "served {served}, used {used}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_made_through_one_instance_is_its_owners_on_the_other_at_once() {
    let (_mock, a, b) = two_instances().await;
    let alice = a.add_user("alice").await;
    let bob = a.add_user("bob").await;
    assert!(both_become([&a, &b], &bob, (200, "")).await);
    let created: serde_json::Value = http()
        .post(format!("{}/responses", a.base))
        .bearer_auth(&alice)
        .json(&json!({"model": "gpt-4o", "input": "hi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    // No waiting: the owner was written before the reply left instance a.
    let get = |app: &TestApp, key: &str| {
        http()
            .get(format!("{}/responses/{id}", app.base))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(get(&b, &alice).await.unwrap().status(), 200);
    assert_eq!(get(&b, &bob).await.unwrap().status(), 404);
    // The CLI tells what a user owns, and what removing them leaves upstream.
    let show = cli(&a, &["user", "show", "alice"]);
    assert!(
        show.contains("objects kept upstream: responses: 1"),
        "{show}"
    );
    let out = assert_cmd::Command::cargo_bin("chatgate")
        .unwrap()
        .args(["--database", &a.db_url, "user", "remove", "alice", "--yes"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("still owns 1 object(s)"), "{said}");
}

fn instances(app: &TestApp) -> Vec<serde_json::Value> {
    let out = cli(app, &["cluster", "status", "--format", "json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn cluster_status_lists_the_instances_and_forgets_the_gone() {
    let (_mock, a, b) = two_instances().await;
    let listed = instances(&a);
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let ports: Vec<String> = [a.port, b.port].iter().map(|p| format!(":{p}")).collect();
    for (row, port) in listed.iter().zip(&ports) {
        assert!(
            row["address"].as_str().unwrap().ends_with(port.as_str()),
            "{row}"
        );
        assert_eq!(row["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(row["in_flight"], 0);
        for field in ["instance", "started_at", "last_seen_at"] {
            assert!(row[field].is_string(), "{field}: {row}");
        }
    }
    // A crashed instance's row (not refreshed for longer than the lease
    // TTL) is not listed, and the next heartbeat drops it.
    {
        use diesel::RunQueryDsl;
        let mut conn = a.pool.get().unwrap();
        diesel::sql_query(
            "INSERT INTO instances (id, address, version, started_at, last_seen_at, in_flight) \
             VALUES ('crashed', 'http://gone:1', '0', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 3)",
        )
        .execute(&mut conn)
        .unwrap();
    }
    assert_eq!(instances(&a).len(), 2);
    let dropped = eventually(Duration::from_secs(5), || async {
        use diesel::prelude::*;
        let mut conn = a.pool.get().unwrap();
        let n: i64 = chatgate::db::schema::instances::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        n == 2
    })
    .await;
    assert!(dropped, "the crashed instance's row stayed");
    // A clean stop removes its own row.
    let b_port = format!(":{}", b.port);
    b.stop().await;
    let left = instances(&a);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert!(!left[0]["address"].as_str().unwrap().ends_with(&b_port));
}
