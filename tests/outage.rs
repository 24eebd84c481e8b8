//! A database outage while the gateway serves (SPEC §10), on a PostgreSQL
//! server this test starts itself (its own data directory and port), so
//! stopping it touches nothing else: known keys keep working from memory,
//! users with a limit until `database.outage_grace` and then 503, `/readyz`
//! says so, and every request served meanwhile is recorded once the
//! database is back.

use chatgate_testkit::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A PostgreSQL server of the test's own, stopped when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// Where PostgreSQL's server programs are: Debian's packages put them
/// under /usr/lib/postgresql/<version>/bin.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

impl OwnPostgres {
    fn start() -> Option<OwnPostgres> {
        let bin = server_bin()?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // PostgreSQL refuses to run as root: as root, the server runs as
        // the `postgres` user, which must own the directory.
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown postgres failed");
        }
        let data = dir.path().join("data");
        let pg = OwnPostgres { dir, bin, port };
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.up();
        Some(pg)
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{} {args:?}: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    fn down(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        if Path::new(&data).join("postmaster.pid").exists() {
            let _ = std::panic::catch_unwind(|| self.down());
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

async fn chat(app: &TestApp, key: &str) -> (u16, String) {
    let r = http()
        .post(format!("{}/chat/completions", app.base))
        .bearer_auth(key)
        .json(&serde_json::json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn ready(app: &TestApp) -> (u16, serde_json::Value) {
    let r = http().get(app.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_serves_known_keys_refuses_limited_users_after_the_grace_and_loses_no_usage() {
    if on_postgres() || on_mysql() {
        // About a server of its own whichever pass runs it: the first did.
        return;
    }
    let Some(pg) = OwnPostgres::start() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI: PostgreSQL's server programs (initdb, pg_ctl) are needed for this test"
        );
        eprintln!("SKIPPED: no PostgreSQL server programs to start a server of the test's own");
        return;
    };
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.database.url = pg.url();
    let grace = Duration::from_secs(3);
    config.database.outage_grace = grace;
    let app = spawn_app(config, dir);
    let free = app.add_user("alice").await;
    let limited = app
        .add_user_with(
            "bob",
            chatgate::users::UserSettings {
                rpm: Some(chatgate::users::Setting::Set(1000)),
                ..Default::default()
            },
        )
        .await;
    let mut served = 0;
    for key in [&free, &limited] {
        assert_eq!(chat(&app, key).await.0, 200);
        served += 1;
    }
    assert_eq!(ready(&app).await.0, 200);

    pg.down();
    // What happens meanwhile is asserted once the server is back: a
    // gateway stopped while its database is away waits to write its usage.
    // Within the grace both are served; the gateway notices the outage.
    let mut within = Vec::new();
    for key in [&free, &limited] {
        within.push(chat(&app, key).await.0);
    }
    let noticed = eventually(Duration::from_secs(30), || async {
        let (status, body) = ready(&app).await;
        status == 503 && body["reason"] == "database unreachable"
    })
    .await;
    // After the grace: the limited user is refused with a clear message,
    // the other is served from memory.
    let late = std::sync::atomic::AtomicUsize::new(0);
    let refused = eventually(Duration::from_secs(30), || async {
        let (status, body) = chat(&app, &limited).await;
        if status == 200 {
            late.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        status == 503 && body.contains("service_unavailable") && body.contains("has not answered")
    })
    .await;
    let (_, said) = ready(&app).await;
    let mut past = Vec::new();
    for _ in 0..5 {
        past.push(chat(&app, &free).await.0);
    }
    pg.up();
    let back = eventually(Duration::from_secs(30), || async {
        ready(&app).await.0 == 200
    })
    .await;

    assert_eq!(within, [200, 200], "refused within the grace");
    served += 2 + late.into_inner() + 5;
    assert!(noticed, "/readyz never reported the outage");
    assert!(refused, "the limited user was served past the grace");
    assert_eq!(said["limited_users"], "refused", "{said}");
    assert!(
        said["outage_seconds"].as_u64().unwrap() >= grace.as_secs(),
        "{said}"
    );
    assert_eq!(
        past, [200; 5],
        "a key without limits was refused in the outage"
    );
    assert!(back, "/readyz never said the database was back");
    assert_eq!(chat(&app, &limited).await.0, 200);
    served += 1;
    let pool = app.stop().await;
    let rows = stored(&pool, "/chat/completions");
    assert_eq!(
        rows.iter().filter(|r| r.status == 200).count(),
        served,
        "usage served during the outage was lost"
    );
    drop(pg);
}
