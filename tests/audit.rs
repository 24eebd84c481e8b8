//! The audit trail (SPEC §9), on the suite's backend: every change to
//! users, teams and keys, from each path (the built binary, the admin API,
//! self-service), leaves exactly one row with the old and new values;
//! reads and refused changes leave none; no key or token ever shows; rows
//! outlive the user; and a change whose row cannot be written does not
//! happen.

use assert_cmd::Command;
use chatgate_testkit::*;
use serde_json::{json, Value};

const ADMIN: &str = "adm-audit-token-123";

fn cli(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("chatgate")
        .unwrap()
        .env_remove("CHATGATE_CONFIG")
        .env_remove("SUDO_USER")
        .env("USER", "ops")
        .current_dir(std::env::temp_dir())
        .arg("--database")
        .arg(db_url)
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must succeed; its stdout.
fn ok(db_url: &str, args: &[&str]) -> String {
    let out = cli(db_url, args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

async fn trail(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, rows) = call(app, ADMIN, "GET", &format!("/admin/audit{query}"), None).await;
    assert_eq!(status, 200, "{rows}");
    rows.as_array().unwrap().clone()
}

/// Follows the trail: each check reads what was added since the last.
struct Watch<'a> {
    app: &'a TestApp,
    seen: usize,
}

impl Watch<'_> {
    /// Exactly one new row, by `actor`, doing `action` to `target`; its changes.
    async fn one(&mut self, actor: &str, action: &str, target: &str) -> Value {
        let rows = trail(self.app, "").await;
        let new = &rows[self.seen..];
        assert_eq!(
            new.len(),
            1,
            "expected one row for {action} {target}, got {new:#?}"
        );
        self.seen = rows.len();
        let row = &new[0];
        assert_eq!(
            (
                row["actor"].as_str(),
                row["action"].as_str(),
                row["target"].as_str()
            ),
            (Some(actor), Some(action), Some(target)),
            "{row}"
        );
        assert!(row["at"].as_str().unwrap().ends_with('Z'), "{row}");
        row["changes"].clone()
    }

    async fn none(&mut self, after: &str) {
        let rows = trail(self.app, "").await;
        assert_eq!(
            rows.len(),
            self.seen,
            "{after} left a row: {:#?}",
            &rows[self.seen..]
        );
    }
}

/// An admin API call (method, path, body) and the row it must leave
/// (action, target, and its exact changes where given).
type Step = (
    &'static str,
    &'static str,
    Option<Value>,
    &'static str,
    &'static str,
    Option<Value>,
);

fn change(old: Value, new: Value) -> Value {
    json!({"old": old, "new": new})
}

#[tokio::test]
async fn every_change_from_every_path_leaves_one_row_and_no_secret() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.admin = Some(chatgate::config::AdminConfig {
        token: Some(ADMIN.into()),
    });
    let app = spawn_app(config, dir);
    let db = app.db_url.clone();
    let mut w = Watch { app: &app, seen: 0 };
    // Every key the gateway hands out, to look for afterwards.
    let mut secrets = vec![ADMIN.to_owned()];

    // The command line, as `cli:<os user>`.
    ok(&db, &["team", "add", "data", "--budget-usd", "100"]);
    let c = w.one("cli:ops", "team.add", "data").await;
    assert_eq!(c["budget_usd"], change(Value::Null, json!(100.0)));
    let key = ok(
        &db,
        &[
            "-q",
            "user",
            "add",
            "alice",
            "--team",
            "data",
            "--token-limit",
            "100",
        ],
    );
    secrets.push(key.trim().to_owned());
    let c = w.one("cli:ops", "user.add", "alice").await;
    assert_eq!(c["team"], change(Value::Null, json!("data")));
    assert_eq!(c["token_limit"], change(Value::Null, json!(100)));
    assert!(c["key_hint"]["new"].as_str().unwrap().contains('…'), "{c}");
    ok(
        &db,
        &["user", "edit", "alice", "--rpm", "6", "--note", "on call"],
    );
    let c = w.one("cli:ops", "user.edit", "alice").await;
    assert_eq!(
        c,
        json!({"note": change(Value::Null, json!("on call")), "rpm": change(Value::Null, json!(6))}),
        "only what changed"
    );
    ok(&db, &["user", "disable", "alice"]);
    let c = w.one("cli:ops", "user.disable", "alice").await;
    assert_eq!(c["status"], change(json!("active"), json!("disabled")));
    ok(&db, &["user", "enable", "alice"]);
    w.one("cli:ops", "user.enable", "alice").await;
    ok(&db, &["user", "recharge", "alice", "--tokens", "50"]);
    let c = w.one("cli:ops", "user.recharge", "alice").await;
    assert_eq!(c, json!({"token_limit": change(json!(100), json!(150))}));
    let ci = ok(&db, &["-q", "key", "add", "alice", "--label", "ci"]);
    secrets.push(ci.trim().to_owned());
    let c = w.one("cli:ops", "key.add", "alice/ci").await;
    let first_hint = c["key_hint"]["new"].as_str().unwrap().to_owned();
    let rotated = ok(&db, &["-q", "token", "rotate", "alice", "--label", "ci"]);
    secrets.push(rotated.trim().to_owned());
    let c = w.one("cli:ops", "key.rotate", "alice/ci").await;
    assert_eq!(c["key_hint"]["old"], json!(first_hint));
    assert_ne!(c["key_hint"]["new"], json!(first_hint));
    ok(&db, &["key", "revoke", "alice", "ci", "--yes"]);
    let c = w.one("cli:ops", "key.revoke", "alice/ci").await;
    assert_eq!(c["key_hint"]["new"], Value::Null);
    ok(&db, &["team", "edit", "data", "--rpm", "10"]);
    let c = w.one("cli:ops", "team.edit", "data").await;
    assert_eq!(c, json!({"rpm": change(Value::Null, json!(10))}));
    ok(&db, &["team", "recharge", "data", "--usd", "5"]);
    let c = w.one("cli:ops", "team.recharge", "data").await;
    assert_eq!(c, json!({"budget_usd": change(json!(100.0), json!(105.0))}));
    // Reads and refusals leave nothing.
    ok(&db, &["user", "list"]);
    ok(&db, &["team", "show", "data"]);
    ok(&db, &["key", "list"]);
    assert!(!cli(&db, &["team", "remove", "data", "--yes"])
        .status
        .success());
    assert!(!cli(&db, &["user", "edit", "nobody", "--rpm", "1"])
        .status
        .success());
    w.none("reads and refusals on the command line").await;

    // The admin API (and the console through it), as `admin-token`: each
    // call, the row it leaves, and (where given) exactly its changes.
    let steps: [Step; 14] = [
        (
            "POST",
            "/admin/users",
            Some(json!({"name": "bob", "rpm": 3})),
            "user.add",
            "bob",
            None,
        ),
        (
            "PATCH",
            "/admin/users/bob",
            Some(json!({"models": ["gpt-4o"]})),
            "user.edit",
            "bob",
            Some(json!({"models": change(Value::Null, json!(["gpt-4o"]))})),
        ),
        (
            "PATCH",
            "/admin/users/bob",
            Some(json!({"disabled": true})),
            "user.disable",
            "bob",
            Some(json!({"status": change(json!("active"), json!("disabled"))})),
        ),
        (
            "PATCH",
            "/admin/users/bob",
            Some(json!({"disabled": false})),
            "user.enable",
            "bob",
            None,
        ),
        (
            "PATCH",
            "/admin/users/bob",
            Some(json!({"request_limit": 10})),
            "user.edit",
            "bob",
            None,
        ),
        (
            "POST",
            "/admin/users/bob/recharge",
            Some(json!({"requests": 5})),
            "user.recharge",
            "bob",
            Some(json!({"request_limit": change(json!(10), json!(15))})),
        ),
        (
            "POST",
            "/admin/users/bob/rotate",
            None,
            "key.rotate",
            "bob/default",
            None,
        ),
        (
            "POST",
            "/admin/users/bob/keys",
            Some(json!({"label": "laptop"})),
            "key.add",
            "bob/laptop",
            None,
        ),
        (
            "DELETE",
            "/admin/users/bob/keys/laptop",
            None,
            "key.revoke",
            "bob/laptop",
            None,
        ),
        (
            "POST",
            "/admin/teams",
            Some(json!({"name": "ops", "max_parallel": 2})),
            "team.add",
            "ops",
            None,
        ),
        (
            "PATCH",
            "/admin/teams/ops",
            Some(json!({"note": "pager"})),
            "team.edit",
            "ops",
            Some(json!({"note": change(Value::Null, json!("pager"))})),
        ),
        (
            "PATCH",
            "/admin/teams/ops",
            Some(json!({"token_limit": 9})),
            "team.edit",
            "ops",
            None,
        ),
        (
            "POST",
            "/admin/teams/ops/recharge",
            Some(json!({"tokens": 1})),
            "team.recharge",
            "ops",
            Some(json!({"token_limit": change(json!(9), json!(10))})),
        ),
        (
            "DELETE",
            "/admin/teams/ops",
            None,
            "team.remove",
            "ops",
            None,
        ),
    ];
    let mut bob_key = String::new();
    for (method, path, body, action, target, expected) in steps {
        let (status, answer) = call(&app, ADMIN, method, path, body).await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
        if let Some(k) = answer["key"].as_str() {
            secrets.push(k.to_owned());
            if answer["name"] == "bob" {
                bob_key = k.to_owned();
            }
        }
        let changes = w.one("admin-token", action, target).await;
        if let Some(e) = expected {
            assert_eq!(changes, e, "{action} {target}");
        }
    }
    let c = &trail(&app, "?target=ops").await[4]["changes"];
    assert_eq!(
        c["max_parallel"],
        change(json!(2), Value::Null),
        "a removal holds what was"
    );
    for path in [
        "/admin/users",
        "/admin/teams",
        "/admin/users/bob",
        "/admin/users/bob/keys",
    ] {
        assert_eq!(call(&app, ADMIN, "GET", path, None).await.0, 200);
    }
    let (s, _) = call(
        &app,
        ADMIN,
        "POST",
        "/admin/users",
        Some(json!({"name": "bob"})),
    )
    .await;
    assert_eq!(s, 409);
    w.none("reads and refusals on the admin API").await;

    // Self-service, as `user:<name>`, once the server has bob's new key.
    // Slowly: each refusal counts towards the address's failed attempts.
    let mut tries = 0;
    while call(&app, &bob_key, "GET", "/v1/me/keys", None).await.0 != 200 {
        tries += 1;
        assert!(tries < 12, "the rotated key never reached the server");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let (s, r) = call(
        &app,
        &bob_key,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "agent"})),
    )
    .await;
    assert_eq!(s, 201, "{r}");
    secrets.push(r["key"].as_str().unwrap().to_owned());
    let c = w.one("user:bob", "key.add", "bob/agent").await;
    assert!(c["key_hint"]["new"].as_str().unwrap().contains('…'), "{c}");
    let (s, _) = call(
        &app,
        &bob_key,
        "POST",
        "/v1/me/keys",
        Some(json!({"label": "agent"})),
    )
    .await;
    assert_eq!(s, 409);
    w.none("self-service reads and refusals").await;
    assert_eq!(
        call(&app, &bob_key, "DELETE", "/v1/me/keys/agent", None)
            .await
            .0,
        204
    );
    w.one("user:bob", "key.revoke", "bob/agent").await;

    // A name may hold `/`: the trail still tells its user from another's key.
    ok(&db, &["user", "add", "alice/ops"]);
    w.one("cli:ops", "user.add", "alice/ops").await;
    assert_eq!(trail(&app, "?target=alice/ops").await.len(), 1);

    // Removal: the rows stay, found by the user's name with their keys'.
    ok(&db, &["user", "remove", "alice", "--yes"]);
    let c = w.one("cli:ops", "user.remove", "alice").await;
    assert_eq!(c["team"], change(json!("data"), Value::Null));
    call(&app, ADMIN, "DELETE", "/admin/users/bob", None).await;
    w.one("admin-token", "user.remove", "bob").await;
    let alice = trail(&app, "?target=alice").await;
    let actions: Vec<&str> = alice
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.add",
            "user.edit",
            "user.disable",
            "user.enable",
            "user.recharge",
            "key.add",
            "key.rotate",
            "key.revoke",
            "user.remove"
        ]
    );

    // Every action of the contract was seen: the class, not a sample.
    let all = trail(&app, "").await;
    for action in chatgate::audit::Action::ALL {
        assert!(
            all.iter().any(|r| r["action"] == action.as_str()),
            "{} never recorded",
            action.as_str()
        );
    }
    // Filters: actor, time.
    let by_admin = trail(&app, "?actor=admin-token").await;
    assert!(by_admin.iter().all(|r| r["actor"] == "admin-token") && by_admin.len() > 10);
    assert!(trail(&app, "?until=2000-01-01").await.is_empty());
    let newest = trail(&app, "?limit=2").await;
    assert_eq!(newest, all[all.len() - 2..], "the newest two, in order");
    assert_eq!(trail(&app, "?since=2000-01-01").await.len(), all.len());
    let (s, e) = call(&app, ADMIN, "GET", "/admin/audit?since=soon", None).await;
    assert_eq!(s, 400, "{e}");

    // No key or token anywhere, in any of the trail's forms.
    let outputs = [
        serde_json::to_string(&all).unwrap(),
        ok(&db, &["audit", "list"]),
        ok(&db, &["audit", "list", "--format", "json"]),
        ok(&db, &["audit", "list", "--format", "csv"]),
    ];
    for out in &outputs {
        for secret in &secrets {
            assert!(
                !secret.is_empty() && !out.contains(secret.as_str()),
                "a secret in {out}"
            );
        }
    }
    // The command line shows the same rows, filtered the same way.
    let listed: Value = serde_json::from_str(&ok(
        &db,
        &["audit", "list", "--target", "alice", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), alice.len());
    let table = ok(&db, &["audit", "list", "--actor", "user:bob"]);
    assert!(
        table.contains("bob/agent") && !table.contains("alice"),
        "{table}"
    );
}

/// A change and its row commit together: with the trail unwritable, the
/// change is refused and does not happen.
#[test]
fn a_change_without_its_row_does_not_happen() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(dir.path());
    ok(&db, &["user", "add", "keep"]);
    {
        use diesel::RunQueryDsl;
        let mut conn = chatgate::db::connect_migrated(&db).unwrap();
        diesel::sql_query("DROP TABLE audit")
            .execute(&mut conn)
            .unwrap();
    }
    assert!(!cli(&db, &["user", "add", "ghost"]).status.success());
    assert!(!cli(&db, &["user", "edit", "keep", "--rpm", "1"])
        .status
        .success());
    let users: Value =
        serde_json::from_str(&ok(&db, &["user", "list", "--format", "json"])).unwrap();
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["rpm"], Value::Null);
}

/// An operation that changes something but records no audit row is
/// refused, and what it changed is rolled back: the guard that keeps a
/// new path from slipping past the trail.
#[test]
fn a_change_that_records_nothing_is_refused_and_undone() {
    use diesel::RunQueryDsl;
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(dir.path());
    ok(&db, &["user", "add", "keep", "--note", "kept"]);
    let mut conn = chatgate::db::connect_migrated(&db).unwrap();
    let by = chatgate::audit::Actor::Config;
    let unaudited = chatgate::audit::transaction(&mut conn, &by, |conn, _trail| {
        diesel::sql_query("UPDATE users SET note = 'sneaked'").execute(conn)?;
        Ok(())
    });
    assert!(matches!(
        unaudited,
        Err(chatgate::users::UserError::Unaudited)
    ));
    let users: Value =
        serde_json::from_str(&ok(&db, &["user", "list", "--format", "json"])).unwrap();
    assert_eq!(
        users[0]["note"], "kept",
        "the unaudited change was rolled back"
    );
}
