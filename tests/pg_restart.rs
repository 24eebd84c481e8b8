//! PostgreSQL going away and coming back while the gateway serves: requests
//! keep flowing from memory, usage waits and is written once the server is
//! back. Its own test binary (cargo runs binaries one at a time), so
//! stopping the server touches no other test.

use chatgate_testkit::*;
use diesel::connection::Connection;
use std::process::Command;
use std::time::Duration;

fn cluster() -> Option<String> {
    let out = Command::new("ls").arg("/etc/postgresql").output().ok()?;
    let version = String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .next()?
        .trim()
        .to_owned();
    (!version.is_empty() && Command::new("pg_ctlcluster").arg("--help").output().is_ok())
        .then_some(version)
}

fn pg_ctl(version: &str, action: &str) {
    let ok = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version, "main", action])
        .args(if action == "stop" {
            &["-m", "fast"][..]
        } else {
            &[][..]
        })
        .status()
        .unwrap();
    assert!(ok.success(), "pg_ctlcluster {action} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_during_load_loses_no_usage() {
    let server = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    if on_mysql() {
        // About PostgreSQL whichever pass runs it: the other passes did.
        return;
    }
    let reachable = || diesel::PgConnection::establish(&server).is_ok();
    let Some(version) = cluster().filter(|_| reachable()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI: a local PostgreSQL cluster (pg_ctlcluster) is needed for this test"
        );
        eprintln!("SKIPPED a_postgres_restart_during_load_loses_no_usage: no local PostgreSQL cluster to restart");
        return;
    };
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    // This test is about PostgreSQL whichever pass runs it.
    config.database.url = fresh_postgres_url();
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let chat = |n: usize| {
        let url = format!("{}/chat/completions", app.base);
        let key = key.clone();
        async move {
            let mut ok = 0;
            for _ in 0..n {
                let r = http()
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
                    .send()
                    .await
                    .unwrap();
                ok += usize::from(r.status() == 200);
            }
            ok
        }
    };
    assert_eq!(chat(10).await, 10);
    pg_ctl(&version, "stop");
    let during = chat(15).await;
    pg_ctl(&version, "start");
    let back = eventually(Duration::from_secs(30), || async { reachable() }).await;
    assert!(back, "PostgreSQL did not come back");
    assert_eq!(during, 15, "requests failed while the database was away");
    assert_eq!(chat(5).await, 5);
    let pool = app.stop().await;
    assert_eq!(
        stored(&pool, "/chat/completions").len(),
        30,
        "usage was lost"
    );
}
