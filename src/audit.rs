//! The audit trail (SPEC §9): who changed which user, team or key, when,
//! and what each field was before and after.
//!
//! One mechanism for every path: the operations in `users`, `teams` and
//! `users::keys` open their transaction through [`transaction`], which
//! hands them a [`Trail`] and writes what they record into the same
//! transaction. A change and its row commit or roll back together, and an
//! operation that records nothing fails instead of committing unaudited.
//! The CLI, the admin API, the web console, self-service and sign-in only
//! say who acts ([`Actor`]).

use crate::db::moment::At;
use crate::db::schema::audit;
use crate::db::{self, rfc3339, DbConnection};
use crate::users::UserError;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

/// Who made a change, as the `actor` column shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The command line, with the operating-system user running it.
    Cli(String),
    /// The admin API (and console) with the admin token.
    AdminToken,
    /// A person signed in with the identity provider.
    Oidc(String),
    /// A user managing their own keys with a key.
    User(String),
    /// The config file's `users:` and the demo user, at start.
    Config,
}

impl Actor {
    /// The person at the terminal: under `sudo`, the one who ran it.
    pub fn cli() -> Actor {
        let who = ["SUDO_USER", "USER", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned());
        Actor::Cli(who)
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Cli(who) => write!(f, "cli:{who}"),
            Actor::AdminToken => f.write_str("admin-token"),
            Actor::Oidc(who) => write!(f, "oidc:{who}"),
            Actor::User(who) => write!(f, "user:{who}"),
            Actor::Config => f.write_str("config"),
        }
    }
}

/// What was done (the `action` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    UserAdd,
    UserEdit,
    UserDisable,
    UserEnable,
    UserRemove,
    UserRecharge,
    KeyAdd,
    KeyRevoke,
    KeyRotate,
    TeamAdd,
    TeamEdit,
    TeamRemove,
    TeamRecharge,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::UserAdd,
        Action::UserEdit,
        Action::UserDisable,
        Action::UserEnable,
        Action::UserRemove,
        Action::UserRecharge,
        Action::KeyAdd,
        Action::KeyRevoke,
        Action::KeyRotate,
        Action::TeamAdd,
        Action::TeamEdit,
        Action::TeamRemove,
        Action::TeamRecharge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::UserAdd => "user.add",
            Action::UserEdit => "user.edit",
            Action::UserDisable => "user.disable",
            Action::UserEnable => "user.enable",
            Action::UserRemove => "user.remove",
            Action::UserRecharge => "user.recharge",
            Action::KeyAdd => "key.add",
            Action::KeyRevoke => "key.revoke",
            Action::KeyRotate => "key.rotate",
            Action::TeamAdd => "team.add",
            Action::TeamEdit => "team.edit",
            Action::TeamRemove => "team.remove",
            Action::TeamRecharge => "team.recharge",
        }
    }
}

/// Fields of a view that are not settings: usage, which moves on its own,
/// and what the target already names.
const NOT_SETTINGS: [&str; 9] = [
    "name",
    "user",
    "label",
    "created_at",
    "last_used_at",
    "tokens_used",
    "requests_used",
    "spent_usd",
    "members",
];

/// A view's settings, to compare before and after.
fn snapshot(view: &impl Serialize) -> Map<String, Value> {
    let mut map = match serde_json::to_value(view) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for k in NOT_SETTINGS {
        map.remove(k);
    }
    map
}

/// The fields that differ, each as `{"old", "new"}` (an absent side is
/// `null`: everything set, for an addition; everything held, for a
/// removal).
fn diff(old: Option<&Map<String, Value>>, new: Option<&Map<String, Value>>) -> Value {
    let empty = Map::new();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    let mut fields: Vec<&String> = old.keys().chain(new.keys()).collect();
    fields.sort();
    fields.dedup();
    let mut out = Map::new();
    for f in fields {
        let (o, n) = (
            old.get(f).unwrap_or(&Value::Null),
            new.get(f).unwrap_or(&Value::Null),
        );
        if o != n {
            out.insert(f.clone(), serde_json::json!({ "old": o, "new": n }));
        }
    }
    Value::Object(out)
}

#[derive(Insertable)]
#[diesel(table_name = audit)]
struct NewRow {
    at: At,
    actor: String,
    action: &'static str,
    target: String,
    subject: String,
    changes: String,
}

/// What an operation records inside its transaction.
pub struct Trail<'a> {
    by: &'a Actor,
    rows: Vec<NewRow>,
}

impl Trail<'_> {
    /// One change to the user or team `name` (to its key `label`: the
    /// target is then `name/label`); `changes` as [`diff`] makes it.
    pub fn record(&mut self, action: Action, name: &str, label: Option<&str>, changes: Value) {
        self.rows.push(NewRow {
            at: At(db::now()),
            actor: self.by.to_string(),
            action: action.as_str(),
            target: match label {
                Some(l) => format!("{name}/{l}"),
                None => name.to_owned(),
            },
            subject: name.to_owned(),
            changes: changes.to_string(),
        });
    }

    /// Records `old` → `new` of a view (either absent).
    pub fn record_views<V: Serialize>(
        &mut self,
        action: Action,
        (name, label): (&str, Option<&str>),
        old: Option<&V>,
        new: Option<&V>,
    ) {
        let (old, new) = (old.map(snapshot), new.map(snapshot));
        self.record(action, name, label, diff(old.as_ref(), new.as_ref()));
    }
}

/// Runs a change in one transaction with its audit rows. Refused with an
/// error (and rolled back) when the change recorded nothing.
pub fn transaction<T>(
    conn: &mut DbConnection,
    by: &Actor,
    op: impl FnOnce(&mut DbConnection, &mut Trail) -> Result<T, UserError>,
) -> Result<T, UserError> {
    crate::db::transaction(conn, |conn| {
        let mut trail = Trail {
            by,
            rows: Vec::new(),
        };
        let out = op(conn, &mut trail)?;
        if trail.rows.is_empty() {
            return Err(UserError::Unaudited);
        }
        // One statement per row: diesel's multi-row INSERT does not run on
        // the multi-backend connection, and only `user import` writes many.
        for row in &trail.rows {
            diesel::insert_into(audit::table)
                .values(row)
                .execute(conn)?;
        }
        Ok(out)
    })
}

/// A row as shown (`audit list`, `GET /admin/audit`).
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub changes: Value,
}

/// Which rows to show: all filters optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub actor: Option<String>,
    /// A user or team name: its rows and, for a user, their keys' rows.
    pub target: Option<String>,
    /// Only the newest this many (the console's page).
    pub limit: Option<i64>,
}

impl Filter {
    /// From `--since`/`--until` (or the query's `since`/`until`: a date or
    /// RFC 3339, as `usage report` takes them), `actor` and `target`.
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        actor: Option<String>,
        target: Option<String>,
    ) -> Result<Filter, String> {
        let bound = |s: Option<&str>, is_until: bool, what: &str| {
            s.map(|s| crate::usage::report::bound(s, is_until).map_err(|e| format!("{what}: {e}")))
                .transpose()
        };
        Ok(Filter {
            since: bound(since, false, "since")?,
            until: bound(until, true, "until")?,
            actor,
            target,
            limit: None,
        })
    }
}

/// The rows that pass `filter`, oldest first.
pub fn list(conn: &mut DbConnection, filter: &Filter) -> QueryResult<Vec<Entry>> {
    let mut q = audit::table
        .select((
            audit::at,
            audit::actor,
            audit::action,
            audit::target,
            audit::changes,
        ))
        .into_boxed();
    if let Some(t) = filter.since {
        q = q.filter(audit::at.ge(At(t)));
    }
    if let Some(t) = filter.until {
        q = q.filter(audit::at.lt(At(t)));
    }
    if let Some(a) = &filter.actor {
        q = q.filter(audit::actor.eq(a.clone()));
    }
    if let Some(t) = &filter.target {
        q = q.filter(audit::subject.eq(t.clone()));
    }
    // Newest first when limited, then put back in order.
    let mut rows: Vec<(NaiveDateTime, String, String, String, String)> = match filter.limit {
        Some(n) => q.order(audit::id.desc()).limit(n.max(0)).load(conn)?,
        None => q.order(audit::id.asc()).load(conn)?,
    };
    if filter.limit.is_some() {
        rows.reverse();
    }
    Ok(rows
        .into_iter()
        .map(|(at, actor, action, target, changes)| Entry {
            at: rfc3339(at),
            actor,
            action,
            target,
            changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
        })
        .collect())
}

/// The changes as one line: `field: old → new; …` (tables).
pub fn changes_line(changes: &Value) -> String {
    let Some(map) = changes.as_object() else {
        return String::new();
    };
    map.iter()
        .map(|(field, c)| {
            let side = |v: Option<&Value>| match v {
                None | Some(Value::Null) => "-".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            };
            format!("{field}: {} → {}", side(c.get("old")), side(c.get("new")))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_diff_holds_only_what_changed_and_names_both_sides() {
        let old = snapshot(&json!({"name": "a", "rpm": 5, "note": null, "tokens_used": 3}));
        let new = snapshot(&json!({"name": "a", "rpm": 6, "note": "x", "tokens_used": 9}));
        assert_eq!(
            diff(Some(&old), Some(&new)),
            json!({"note": {"old": null, "new": "x"}, "rpm": {"old": 5, "new": 6}})
        );
        assert_eq!(
            diff(None, Some(&new)),
            json!({"note": {"old": null, "new": "x"}, "rpm": {"old": null, "new": 6}})
        );
        assert_eq!(diff(Some(&old), Some(&old)), json!({}));
    }

    #[test]
    fn actors_are_spelled_as_the_contract_says() {
        assert_eq!(Actor::Cli("root".into()).to_string(), "cli:root");
        assert_eq!(Actor::AdminToken.to_string(), "admin-token");
        assert_eq!(Actor::Oidc("a@b".into()).to_string(), "oidc:a@b");
        assert_eq!(Actor::User("bob".into()).to_string(), "user:bob");
    }
}
