//! Databases made by an earlier release keep their usage after the compact
//! records migration (000008): a real SQLite file written by the release of
//! 2026-12-01 (tests/data/release-2026-12-01: users, records of chat,
//! streams, embeddings, Anthropic messages, refusals, a request id of
//! another shape and none), and the same rows in today's schema on the
//! suite's backend (PostgreSQL under TEST_DATABASE=postgres).

use chatgate::usage::records::Stored;
use chatgate::usage::{writer, UsageRecord};
use chatgate_testkit::*;
use diesel::connection::SimpleConnection;
use std::path::Path;
use std::sync::Arc;

const FIXTURE: &str = "tests/data/release-2026-12-01";

/// A record as the fixture's records.txt has it (`sqlite3` of the old
/// table), without the old id: the time to the millisecond, as the new
/// layout keeps it (records are now kept in time order, keyed by it).
fn line(r: &Stored) -> String {
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    [
        r.at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        r.user.clone(),
        r.method.clone(),
        r.endpoint.clone(),
        r.model.clone().unwrap_or_default(),
        r.upstream.clone().unwrap_or_default(),
        r.status.to_string(),
        opt(r.prompt_tokens),
        opt(r.completion_tokens),
        u8::from(r.estimated).to_string(),
        u8::from(r.stream).to_string(),
        r.latency_ms.to_string(),
        r.request_id.clone().unwrap_or_default(),
        opt(r.cached_tokens),
        opt(r.cost_nano_usd),
    ]
    .join("|")
}

/// The fixture's records, split into fields.
fn fixture_rows() -> Vec<Vec<String>> {
    std::fs::read_to_string(Path::new(FIXTURE).join("records.txt"))
        .unwrap()
        .lines()
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// records.txt in time order, its times cut to the millisecond.
fn expected_lines() -> Vec<String> {
    let mut rows = fixture_rows();
    rows.sort_by(|a, b| a[1].cmp(&b[1]));
    rows.into_iter()
        .map(|mut f| {
            f[1].truncate("2026-12-01 17:40:42.609".len());
            f[1..].join("|")
        })
        .collect()
}

fn stored_lines(url: &str) -> Vec<String> {
    let mut conn = chatgate::db::connect(url).unwrap();
    chatgate::usage::records::all(&mut conn)
        .unwrap()
        .iter()
        .map(line)
        .collect()
}

/// A record written after the migration reuses the names and comes last.
fn write_one_more(url: &str) -> Stored {
    let mut conn = chatgate::db::connect(url).unwrap();
    let r = UsageRecord {
        at: chatgate::usage::records::now(),
        user: Arc::from("alice"),
        method: "POST",
        endpoint: "/chat/completions".into(),
        model: Some("gpt-4o-mini".into()),
        upstream: Some(Arc::from("echo")),
        status: 200,
        prompt_tokens: Some(3),
        completion_tokens: Some(4),
        request_id: Some("req_00000000000000000000000000000abc".into()),
        ..UsageRecord::default()
    };
    writer::write_batch(&mut conn, &[r]).unwrap();
    let mut all = chatgate::usage::records::all(&mut conn).unwrap();
    assert_eq!(all.len(), 16);
    all.pop().unwrap()
}

#[test]
fn a_database_of_the_last_release_keeps_its_records_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chatgate.db");
    std::fs::copy(Path::new(FIXTURE).join("chatgate.db"), &db).unwrap();
    let url = format!("sqlite://{}", db.display());
    let reports = [
        (
            "report-records.json",
            // Part of a day: read from the records.
            &[
                "--since",
                "2026-11-15T09:00:00Z",
                "--until",
                "2026-12-02T00:00:00Z",
                "--by",
                "user,model,upstream",
            ][..],
        ),
        (
            "report-daily.json",
            &[
                "--since",
                "2026-11-01",
                "--until",
                "2026-12-02",
                "--by",
                "day,user,model",
            ][..],
        ),
    ];
    for (file, args) in reports {
        let out = assert_cmd::Command::cargo_bin("chatgate")
            .unwrap()
            .args(["--database", &url, "usage", "report", "--format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(Path::new(FIXTURE).join(file)).unwrap())
                .unwrap();
        assert_eq!(got, want, "{file}");
    }
    assert_eq!(stored_lines(&url), expected_lines());
    // Each user's one key is now their key `default`.
    let out = assert_cmd::Command::cargo_bin("chatgate")
        .unwrap()
        .args(["--database", &url, "key", "list", "--format", "json"])
        .output()
        .unwrap();
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<_> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| format!("{} {} {}", k["user"], k["label"], k["key_hint"]))
        .collect();
    assert_eq!(
        keys,
        [
            r#""alice" "default" "sk-al…0000""#,
            r#""bob" "default" "sk-bo…0000""#,
            r#""carol" "default" "sk-ca…0000""#,
            r#""demo" "default" "sk-xE…YvrH""#,
        ]
    );
    let next = write_one_more(&url);
    assert_eq!(
        line(&next)[line(&next).find("|alice").unwrap()..],
        *"|alice|POST|/chat/completions|gpt-4o-mini|echo|200|3|4|0|0|0|req_00000000000000000000000000000abc||"
    );
}

#[test]
fn todays_schema_migrates_on_this_backend() {
    if on_mysql() {
        // MySQL's schema begins at the release that brought it: no earlier
        // layout to migrate from.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path());
    let mut conn = chatgate::db::connect(&url).unwrap();
    chatgate::db::migrate_through(&mut conn, "2026-12-01-000007").unwrap();
    let text = |s: &str| {
        if s.is_empty() {
            "NULL".to_owned()
        } else {
            format!("'{}'", s.replace('\'', "''"))
        }
    };
    let number = |s: &str| if s.is_empty() { "NULL" } else { s }.to_owned();
    for f in fixture_rows() {
        let values = [
            number(&f[0]),
            text(&f[1]),
            text(&f[2]),
            text(&f[3]),
            text(&f[4]),
            text(&f[5]),
            text(&f[6]),
            number(&f[7]),
            number(&f[8]),
            number(&f[9]),
            format!("CAST({} AS BOOLEAN)", f[10]),
            format!("CAST({} AS BOOLEAN)", f[11]),
            number(&f[12]),
            text(&f[13]),
            number(&f[14]),
            number(&f[15]),
        ];
        conn.batch_execute(&format!(
            "INSERT INTO usage_records (id, at, user_name, method, endpoint, model, upstream, \
             status, prompt_tokens, completion_tokens, estimated, stream, latency_ms, \
             request_id, cached_tokens, cost_nano_usd) VALUES ({})",
            values.join(", ")
        ))
        .unwrap();
    }
    chatgate::db::migrate(&mut conn).unwrap();
    drop(conn);
    assert_eq!(stored_lines(&url), expected_lines());
    assert_eq!(write_one_more(&url).user, "alice");
}

/// Users made before teams and keys (000012) keep their key as `default`,
/// on every backend: written into the schema of the release before, then
/// migrated, then served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_from_before_several_keys_is_the_users_default_key() {
    let (mut config, dir) = test_config(Vec::new());
    let url = config.database.url.clone();
    let key = chatgate::keys::PlainKey::generate();
    {
        let mut conn = chatgate::db::connect(&url).unwrap();
        chatgate::db::migrate_through(&mut conn, "2026-12-07-000011").unwrap();
        conn.batch_execute(&format!(
            "INSERT INTO users (name, key_hash, key_hint, created_at, models) \
             VALUES ('olga', '{}', '{}', '2026-12-01 10:00:00', '[\"gpt-4o\"]')",
            key.hashed().0,
            key.hint()
        ))
        .unwrap();
        chatgate::db::migrate(&mut conn).unwrap();
    }
    let mut conn = chatgate::db::connect(&url).unwrap();
    let keys = chatgate::users::keys::list(&mut conn, Some("olga")).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].label.as_str(), keys[0].key_hint.clone()),
        ("default", key.hint())
    );
    drop(conn);
    config.database.url = url;
    let mock = start_mock();
    config.upstreams = vec![openai_upstream("mock", &mock.url, &["*"])];
    let app = spawn_app(config, dir);
    assert_eq!(model_ids(&app, key.expose()).await, ["gpt-4o"]);
}
