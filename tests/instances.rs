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
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status != 200 {
        eprintln!("{}: {status} {}", app.base, r.text().await.unwrap());
    }
    status
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

/// Shares of rpm and parallel limits are leased where several instances
/// can share the database; one SQLite file serves one instance.
fn leased() -> bool {
    on_postgres() || on_mysql()
}

async fn three_instances(lease_ttl: Duration) -> (Mock, Vec<TestApp>) {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.cluster.lease_ttl = lease_ttl;
    let apps = vec![
        spawn_app(config.clone(), dir),
        spawn_app(config.clone(), tempfile::tempdir().unwrap()),
        spawn_app(config, tempfile::tempdir().unwrap()),
    ];
    (mock, apps)
}

/// Waits until every instance knows `key` (`/v1/me` counts against no
/// limit).
async fn known_on_all(apps: &[TestApp], key: &str) {
    // (`add_user_with`'s own probe of the key would count.)
    for app in apps {
        let known = eventually(Duration::from_secs(10), || async {
            http()
                .get(format!("{}/me", app.base))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                == 200
        })
        .await;
        assert!(known, "{} never knew the key", app.base);
    }
}

/// Adds a user with an rpm and a parallel limit; once every instance
/// knows the key, returns it.
async fn limited_user(
    apps: &[TestApp],
    name: &str,
    rpm: Option<i64>,
    parallel: Option<i64>,
) -> String {
    use chatgate::users::{Setting, UserSettings};
    let settings = UserSettings {
        rpm: rpm.map(Setting::Set),
        max_parallel: parallel.map(Setting::Set),
        ..Default::default()
    };
    user_with(apps, name, settings).await
}

/// Adds a user; once every instance knows the key, returns it.
async fn user_with(
    apps: &[TestApp],
    name: &str,
    settings: chatgate::users::UserSettings,
) -> String {
    use chatgate::users::{self, UserName};
    let mut conn = apps[0].pool.get().unwrap();
    let actor = chatgate::audit::Actor::Config;
    let name = UserName::parse(name).unwrap();
    let key = users::add(&mut conn, &actor, &name, None, settings).unwrap();
    let key = key.expose().to_owned();
    known_on_all(apps, &key).await;
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpm_holds_in_total_across_three_instances_and_is_whole_wherever_requests_land() {
    if !leased() {
        eprintln!("SKIPPED: limits are leased across instances on PostgreSQL and MySQL");
        return;
    }
    let (_mock, apps) = three_instances(Duration::from_secs(10)).await;
    // Round robin: all six of the minute are served, two on each; then
    // every instance refuses.
    let alice = limited_user(&apps, "alice", Some(6), None).await;
    for i in 0..6 {
        assert_eq!(chat(&apps[i % 3], &alice).await, 200, "request {i}");
    }
    for app in &apps {
        assert_eq!(chat(app, &alice).await, 429, "{}", app.base);
    }
    // All on one instance: the whole rpm is there.
    let carol = limited_user(&apps, "carol", Some(4), None).await;
    for i in 0..4 {
        assert_eq!(chat(&apps[2], &carol).await, 200, "request {i}");
    }
    assert_eq!(chat(&apps[1], &carol).await, 429);
    // Thirty at once, ten on each: exactly the rpm is served.
    let bob = limited_user(&apps, "bob", Some(5), None).await;
    let asked = (0..30).map(|i| chat(&apps[i % 3], &bob));
    let statuses = futures_util::future::join_all(asked).await;
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(served, 5, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
}

/// A stream the mock holds until released: the status once its headers
/// are in.
async fn held_stream(app: &TestApp, key: &str) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_parallel_holds_in_total_across_three_instances_and_a_crashed_ones_slots_come_back() {
    if !leased() {
        eprintln!("SKIPPED: limits are leased across instances on PostgreSQL and MySQL");
        return;
    }
    // Longer than a request waits for shares given back (two heartbeats).
    let ttl = Duration::from_secs(5);
    let (mock, apps) = three_instances(ttl).await;
    let dave = limited_user(&apps, "dave", None, Some(2)).await;
    // Nine streams at once, three on each instance: two run.
    let asked = (0..9).map(|i| held_stream(&apps[i % 3], &dave));
    let replies = futures_util::future::join_all(asked).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    // Both end; their slots are free again, on any instance.
    mock.state.release.add_permits(2);
    for r in replies.into_iter().filter(|r| r.status() == 200) {
        assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    }
    for app in &apps {
        let r = held_stream(app, &dave).await;
        assert_eq!(r.status(), 200, "{}", app.base);
        mock.state.release.add_permits(1);
        assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    }
    // Idle shares go back to the database within two heartbeats.
    let returned = eventually(Duration::from_secs(5), || async {
        let mut conn = apps[0].pool.get().unwrap();
        shares(&mut conn, "user:dave") == 0
    })
    .await;
    assert!(returned, "idle shares were kept");
    // An instance that crashed holding both slots: they are taken until
    // its row is older than the lease TTL, then free.
    {
        use diesel::RunQueryDsl;
        let mut conn = apps[0].pool.get().unwrap();
        let now = chrono::Utc::now()
            .naive_utc()
            .format("%Y-%m-%d %H:%M:%S%.6f");
        diesel::sql_query(format!(
            "INSERT INTO instances (id, address, version, started_at, last_seen_at, in_flight) \
             VALUES ('crashed', 'http://gone:1', '0', '{now}', '{now}', 2)"
        ))
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query(
            "INSERT INTO leases (subject, kind, instance, amount, in_use, wanted, hold_until) \
             VALUES ('user:dave', 'parallel', 'crashed', 2, 2, 0, '1970-01-01 00:00:00')",
        )
        .execute(&mut conn)
        .unwrap();
    }
    let started = std::time::Instant::now();
    assert_eq!(held_stream(&apps[1], &dave).await.status(), 429);
    let freed = eventually(ttl * 5, || async {
        let r = held_stream(&apps[1], &dave).await;
        let ok = r.status() == 200;
        if ok {
            mock.state.release.add_permits(1);
            r.text().await.unwrap();
        }
        ok
    })
    .await;
    assert!(freed, "the crashed instance's slots never came back");
    assert!(started.elapsed() >= ttl / 2, "freed before the lease TTL");
}

/// The shares instances hold of `subject`'s limits (its lock row aside).
fn shares(conn: &mut chatgate::db::DbConnection, subject: &str) -> i64 {
    use chatgate::db::schema::leases::dsl as l;
    use diesel::prelude::*;
    let rows: Vec<i64> = l::leases
        .filter(l::subject.eq(subject))
        .filter(l::instance.ne(""))
        .select(l::amount)
        .load(conn)
        .unwrap();
    rows.iter().sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_across_three_instances_admits_exactly_what_it_reserves() {
    if !leased() {
        eprintln!("SKIPPED: limits are leased across instances on PostgreSQL and MySQL");
        return;
    }
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.prices = [(
        "gpt-4o".to_string(),
        chatgate::config::Price {
            input: 2.5,
            output: 10.0,
            ..Default::default()
        },
    )]
    .into();
    let apps = vec![
        spawn_app(config.clone(), dir),
        spawn_app(config.clone(), tempfile::tempdir().unwrap()),
        spawn_app(config, tempfile::tempdir().unwrap()),
    ];
    // What one streamed request reserves: its prompt guess (body bytes /
    // 4) at the input price, its max_tokens at the output price; the
    // budget holds five.
    let body = json!({"model": "gpt-4o", "stream": true, "max_tokens": 3,
                      "messages": [{"role": "user", "content": "hi"}]});
    let guess = (serde_json::to_vec(&body).unwrap().len() / 4) as i64;
    let reserved = guess * 2500 + 3 * 10_000;
    let settings = chatgate::users::UserSettings {
        budget: Some(
            chatgate::users::parse_usd(&format!("{:.9}", 5.0 * reserved as f64 / 1e9)).unwrap(),
        ),
        ..Default::default()
    };
    let erin = user_with(&apps, "erin", settings).await;
    // Thirty at once, ten on each instance, held by the mock: five run.
    let asked = (0..30).map(|i| post_json(&apps[i % 3], &erin, "/chat/completions", &body));
    let replies = futures_util::future::join_all(asked).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    mock.state.release.add_permits(5);
    for r in replies {
        if r.status() == 200 {
            r.bytes().await.unwrap();
        } else {
            let (status, code, msg) = error_parts(r).await;
            assert_eq!(
                (status, code.as_str()),
                (429, "insufficient_quota"),
                "{msg}"
            );
            assert!(msg.contains("budget of $"), "{msg}");
        }
    }
    let mut pools = Vec::new();
    for app in apps {
        pools.push(app.stop().await);
    }
    let spent: i64 = stored_costs(&pools[0], "/chat/completions")
        .iter()
        .flatten()
        .sum();
    let (p, c) = STREAM_USAGE;
    assert_eq!(
        spent,
        5 * (p * 2500 + c * 10_000),
        "five settled at their real cost"
    );
}
