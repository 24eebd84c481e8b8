//! The operations on users. The CLI, the admin API and the web console
//! (through the admin API) call these, so each rule lives here once.

use super::keys::{self, DEFAULT_LABEL};
use super::settings::{Setting, UserName, UserSettings};
use super::view::{encode_models, views, UserRow, UserView};
use super::UserError;
use crate::audit::{self, Action, Actor};
use crate::db::moment::At;
use crate::db::schema::{keys as keys_table, users};
use crate::db::{self, DbConnection};
use crate::keys::PlainKey;
use diesel::prelude::*;

#[derive(AsChangeset, Default)]
#[diesel(table_name = users)]
struct UserChanges {
    token_limit: Option<Option<i64>>,
    request_limit: Option<Option<i64>>,
    budget_nano_usd: Option<Option<i64>>,
    limit_period: Option<String>,
    expires_at: Option<Option<chrono::NaiveDateTime>>,
    models: Option<Option<String>>,
    rpm: Option<Option<i64>>,
    max_parallel: Option<Option<i64>>,
    note: Option<Option<String>>,
    disabled: Option<bool>,
    team_id: Option<Option<i64>>,
}

impl From<UserSettings> for UserChanges {
    fn from(s: UserSettings) -> UserChanges {
        UserChanges {
            token_limit: s.token_limit.map(Setting::into_option),
            request_limit: s.request_limit.map(Setting::into_option),
            budget_nano_usd: s.budget.map(Setting::into_option),
            limit_period: s.limit_period.map(|p| p.as_str().to_owned()),
            expires_at: s.expires.map(Setting::into_option),
            models: s.models.map(|m| m.into_option().map(|l| encode_models(&l))),
            rpm: s.rpm.map(Setting::into_option),
            max_parallel: s.max_parallel.map(Setting::into_option),
            note: s.note.map(Setting::into_option),
            disabled: s.disabled,
            // Resolved by `change`, which reads the team's id.
            team_id: None,
        }
    }
}

fn find_row(conn: &mut DbConnection, name: &str) -> Result<UserRow, UserError> {
    users::table
        .filter(users::name.eq(name))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| UserError::NotFound(name.to_owned()))
}

/// Creates a user; returns the key, which is shown once and never stored.
pub fn add(
    conn: &mut DbConnection,
    by: &Actor,
    name: &UserName,
    key: Option<PlainKey>,
    settings: UserSettings,
) -> Result<PlainKey, UserError> {
    let key = key.unwrap_or_else(PlainKey::generate);
    audit::transaction(conn, by, |conn, trail| {
        insert(conn, name, &key, At(db::now()))?;
        change(conn, name.as_str(), settings)?;
        let new = show(conn, name.as_str())?;
        trail.record_views(Action::UserAdd, (name.as_str(), None), None, Some(&new));
        Ok(())
    })?;
    Ok(key)
}

/// Inserts a user without settings and their key `default`; the caller
/// holds the transaction.
fn insert(
    conn: &mut DbConnection,
    name: &UserName,
    key: &PlainKey,
    now: At,
) -> Result<(), UserError> {
    diesel::insert_into(users::table)
        .values((
            users::name.eq(name.as_str()),
            users::disabled.eq(false),
            users::created_at.eq(now),
        ))
        .execute(conn)
        .map_err(|e| match e {
            // The name is the one unique column of `users`.
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => UserError::Exists(name.to_string()),
            e => e.into(),
        })?;
    let id: i64 = users::table
        .filter(users::name.eq(name.as_str()))
        .select(users::id)
        .first(conn)?;
    keys::insert(conn, id, DEFAULT_LABEL, key, None, None)
}

/// Creates many users without settings, each with their key `default`,
/// all or nothing, in one transaction without a savepoint per user
/// (`user import`; a savepoint copies every page it touches). The caller
/// leaves out what `taken` names, and goes one at a time if this fails
/// anyway.
pub fn add_many(
    conn: &mut DbConnection,
    by: &Actor,
    new: &[(UserName, PlainKey)],
) -> Result<(), UserError> {
    let now = At(db::now());
    audit::transaction(conn, by, |conn, trail| {
        for (name, key) in new {
            insert(conn, name, key, now)?;
            // What `show` would give a user without settings, without
            // reading each back.
            let changes = serde_json::json!({
                "key_hint": {"old": null, "new": key.hint()},
                "limit_period": {"old": null, "new": "total"},
                "status": {"old": null, "new": "active"},
            });
            trail.record(Action::UserAdd, name.as_str(), None, changes);
        }
        Ok(())
    })
}

/// Which of `names` are users already, and which of the key hashes
/// `hashes` are in use (at most a thousand of each: one bound parameter
/// apiece).
pub fn taken(
    conn: &mut DbConnection,
    names: &[&str],
    hashes: &[&str],
) -> QueryResult<(Vec<String>, Vec<String>)> {
    let names = users::table
        .filter(users::name.eq_any(names))
        .select(users::name)
        .load(conn)?;
    let hashes = keys_table::table
        .filter(keys_table::key_hash.eq_any(hashes))
        .select(keys_table::key_hash)
        .load(conn)?;
    Ok((names, hashes))
}

/// Changes a user's settings (and blocks or unblocks their key), all or
/// nothing; `user edit`, `user disable`/`enable` and `PATCH` alike.
pub fn update(
    conn: &mut DbConnection,
    by: &Actor,
    name: &str,
    settings: UserSettings,
) -> Result<UserView, UserError> {
    // Blocking or unblocking alone has its own action.
    let action = match settings.disabled {
        Some(d) if settings.clone().without_disabled().is_empty() => {
            if d {
                Action::UserDisable
            } else {
                Action::UserEnable
            }
        }
        _ => Action::UserEdit,
    };
    audit::transaction(conn, by, |conn, trail| {
        let old = show(conn, name)?;
        change(conn, name, settings)?;
        let new = show(conn, name)?;
        trail.record_views(action, (name, None), Some(&old), Some(&new));
        Ok(new)
    })
}

fn change(conn: &mut DbConnection, name: &str, settings: UserSettings) -> Result<(), UserError> {
    if settings.is_empty() {
        return Ok(());
    }
    let team = match &settings.team {
        None => None,
        Some(Setting::Clear) => Some(None),
        Some(Setting::Set(t)) => Some(Some(crate::teams::id_of(conn, t)?)),
    };
    let mut changes = UserChanges::from(settings);
    changes.team_id = team;
    diesel::update(users::table.filter(users::name.eq(name)))
        .set(changes)
        .execute(conn)?;
    Ok(())
}

/// Deletes the user; their usage records stay for reports. Their account
/// objects are forgotten, so that a new user of the same name does not
/// inherit them (the objects stay in the upstream account).
pub fn remove(conn: &mut DbConnection, by: &Actor, name: &str) -> Result<(), UserError> {
    use crate::db::schema::objects;
    audit::transaction(conn, by, |conn, trail| {
        let row = find_row(conn, name)?;
        let old = show(conn, name)?;
        trail.record_views(Action::UserRemove, (name, None), Some(&old), None);
        // The user's row before their keys: the usage writer's order.
        diesel::delete(users::table.filter(users::id.eq(row.id))).execute(conn)?;
        diesel::delete(keys_table::table.filter(keys_table::user_id.eq(row.id))).execute(conn)?;
        diesel::delete(objects::table.filter(objects::user_name.eq(name))).execute(conn)?;
        Ok(())
    })
}

/// Gives the user a new `default` key (or a new one in place of their
/// only key); the old one stops working at once.
pub fn rotate(
    conn: &mut DbConnection,
    by: &Actor,
    name: &str,
    key: Option<PlainKey>,
) -> Result<PlainKey, UserError> {
    keys::rotate(conn, by, name, None, key).map(|(_, key)| key)
}

/// What a top-up adds: tokens, requests, USD (in nano-dollars).
#[derive(Debug, Clone, Copy, Default)]
pub struct TopUp {
    pub tokens: Option<i64>,
    pub requests: Option<i64>,
    pub usd: Option<i64>,
}

impl TopUp {
    /// The (token, request, USD) limits `limits` raised by this top-up;
    /// refused when it adds nothing, or adds to a limit `name` does not
    /// have (`user edit`/`team edit` says how to set one).
    pub fn raise(
        self,
        name: &str,
        limits: [Option<i64>; 3],
    ) -> Result<[Option<i64>; 3], UserError> {
        let amounts = [self.tokens, self.requests, self.usd];
        if amounts.iter().all(Option::is_none) || amounts.iter().flatten().any(|n| *n <= 0) {
            return Err(UserError::NothingToRecharge);
        }
        let names = [
            ("token limit", "token-limit"),
            ("request limit", "request-limit"),
            ("budget", "budget-usd"),
        ];
        let mut out = limits;
        for ((limit, by), (what, flag)) in out.iter_mut().zip(amounts).zip(names) {
            match (*limit, by) {
                (_, None) => {}
                (Some(l), Some(n)) => *limit = Some(l.saturating_add(n)),
                (None, Some(_)) => {
                    return Err(UserError::NoLimit {
                        name: name.to_owned(),
                        what,
                        flag,
                    })
                }
            }
        }
        Ok(out)
    }
}

/// Raises a user's token limit, request limit and/or USD budget by the
/// amounts given (a top-up); the user can go on at once (a running server
/// sees it within a second).
pub fn recharge(
    conn: &mut DbConnection,
    by: &Actor,
    name: &str,
    top_up: TopUp,
) -> Result<UserView, UserError> {
    top_up.raise(name, [Some(0); 3])?;
    audit::transaction(conn, by, |conn, trail| {
        let row = find_row(conn, name)?;
        let old = show(conn, name)?;
        let [token_limit, request_limit, budget] = top_up.raise(
            name,
            [row.token_limit, row.request_limit, row.budget_nano_usd],
        )?;
        diesel::update(users::table.filter(users::id.eq(row.id)))
            .set((
                users::token_limit.eq(token_limit),
                users::request_limit.eq(request_limit),
                users::budget_nano_usd.eq(budget),
            ))
            .execute(conn)?;
        let new = show(conn, name)?;
        trail.record_views(Action::UserRecharge, (name, None), Some(&old), Some(&new));
        Ok(new)
    })
}

pub fn show(conn: &mut DbConnection, name: &str) -> Result<UserView, UserError> {
    let row = find_row(conn, name)?;
    let mut one = views(conn, vec![row], db::now())?;
    Ok(one.remove(0))
}

/// Users by name; without `all`, only active ones.
pub fn list(conn: &mut DbConnection, all: bool) -> Result<Vec<UserView>, UserError> {
    let now = db::now();
    let rows: Vec<UserRow> = users::table
        .order(users::name.asc())
        .select(UserRow::as_select())
        .load(conn)?;
    let rows = rows
        .into_iter()
        .filter(|r| all || r.status(now) == super::Status::Active)
        .collect();
    Ok(views(conn, rows, now)?)
}

/// Every user row, for the server's in-memory key table.
pub fn all_rows(conn: &mut DbConnection) -> QueryResult<Vec<UserRow>> {
    users::table.select(UserRow::as_select()).load(conn)
}

/// The user rows changed or added after revision `since`.
pub fn rows_changed_after(conn: &mut DbConnection, since: i64) -> QueryResult<Vec<UserRow>> {
    users::table
        .filter(users::revision.gt(since))
        .select(UserRow::as_select())
        .load(conn)
}

/// The ids of the users deleted after revision `since`.
pub fn deleted_after(conn: &mut DbConnection, since: i64) -> QueryResult<Vec<i64>> {
    use crate::db::schema::users_deleted;
    users_deleted::table
        .filter(users_deleted::revision.gt(since))
        .select(users_deleted::id)
        .load(conn)
}

/// Whether a user of that name exists.
pub fn exists(conn: &mut DbConnection, name: &str) -> QueryResult<bool> {
    let n: i64 = users::table
        .filter(users::name.eq(name))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
