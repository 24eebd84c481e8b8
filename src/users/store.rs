//! The operations on users. The CLI, the admin API and the web console
//! (through the admin API) call these, so each rule lives here once.

use super::settings::{Setting, UserName, UserSettings};
use super::view::{encode_models, views, UserRow, UserView};
use super::UserError;
use crate::db::moment::At;
use crate::db::schema::users;
use crate::db::{self, DbConnection};
use crate::keys::PlainKey;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

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

fn map_unique(e: DieselError, name: &str) -> UserError {
    match &e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.message().contains("key_hash")
                || info
                    .constraint_name()
                    .is_some_and(|c| c.contains("key_hash")) =>
        {
            UserError::KeyInUse
        }
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            UserError::Exists(name.to_owned())
        }
        _ => e.into(),
    }
}

/// Creates a user; returns the key, which is shown once and never stored.
pub fn add(
    conn: &mut DbConnection,
    name: &UserName,
    key: Option<PlainKey>,
    settings: UserSettings,
) -> Result<PlainKey, UserError> {
    let key = key.unwrap_or_else(PlainKey::generate);
    let now = db::now();
    conn.transaction(|conn| {
        diesel::insert_into(users::table)
            .values((
                users::name.eq(name.as_str()),
                users::key_hash.eq(&key.hashed().0),
                users::key_hint.eq(key.hint()),
                users::disabled.eq(false),
                users::created_at.eq(At(now)),
            ))
            .execute(conn)
            .map_err(|e| map_unique(e, name.as_str()))?;
        change(conn, name.as_str(), settings)
    })?;
    Ok(key)
}

/// Changes a user's settings (and blocks or unblocks their key), all or
/// nothing; `user edit`, `user disable`/`enable` and `PATCH` alike.
pub fn update(
    conn: &mut DbConnection,
    name: &str,
    settings: UserSettings,
) -> Result<UserView, UserError> {
    conn.transaction(|conn| {
        find_row(conn, name)?;
        change(conn, name, settings)?;
        show(conn, name)
    })
}

fn change(conn: &mut DbConnection, name: &str, settings: UserSettings) -> Result<(), UserError> {
    if !settings.is_empty() {
        diesel::update(users::table.filter(users::name.eq(name)))
            .set(UserChanges::from(settings))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes the user; their usage records stay for reports. Their account
/// objects are forgotten, so that a new user of the same name does not
/// inherit them (the objects stay in the upstream account).
pub fn remove(conn: &mut DbConnection, name: &str) -> Result<(), UserError> {
    use crate::db::schema::objects;
    conn.transaction(|conn| {
        let n = diesel::delete(users::table.filter(users::name.eq(name))).execute(conn)?;
        if n == 0 {
            return Err(UserError::NotFound(name.to_owned()));
        }
        diesel::delete(objects::table.filter(objects::user_name.eq(name))).execute(conn)?;
        Ok(())
    })
}

/// Gives the user a new key; the old one stops working at once.
pub fn rotate(
    conn: &mut DbConnection,
    name: &str,
    key: Option<PlainKey>,
) -> Result<PlainKey, UserError> {
    let key = key.unwrap_or_else(PlainKey::generate);
    let n = diesel::update(users::table.filter(users::name.eq(name)))
        .set((
            users::key_hash.eq(&key.hashed().0),
            users::key_hint.eq(key.hint()),
        ))
        .execute(conn)
        .map_err(|e| map_unique(e, name))?;
    if n == 0 {
        return Err(UserError::NotFound(name.to_owned()));
    }
    Ok(key)
}

/// What a top-up adds: tokens, requests, USD (in nano-dollars).
#[derive(Debug, Clone, Copy, Default)]
pub struct TopUp {
    pub tokens: Option<i64>,
    pub requests: Option<i64>,
    pub usd: Option<i64>,
}

/// Raises a user's token limit, request limit and/or USD budget by the
/// amounts given (a top-up); the user can go on at once (a running server
/// sees it within a second).
pub fn recharge(conn: &mut DbConnection, name: &str, top_up: TopUp) -> Result<UserView, UserError> {
    let TopUp {
        tokens,
        requests,
        usd,
    } = top_up;
    let amounts = [tokens, requests, usd];
    if amounts.iter().all(Option::is_none) || amounts.iter().flatten().any(|n| *n <= 0) {
        return Err(UserError::NothingToRecharge);
    }
    conn.transaction(|conn| {
        let row = find_row(conn, name)?;
        let raise = |limit: Option<i64>, by: Option<i64>, (what, flag)| match (limit, by) {
            (_, None) => Ok(limit),
            (Some(l), Some(n)) => Ok(Some(l.saturating_add(n))),
            (None, Some(_)) => Err(UserError::NoLimit {
                name: name.to_owned(),
                what,
                flag,
            }),
        };
        let token_limit = raise(row.token_limit, tokens, ("token limit", "token-limit"))?;
        let request_limit = raise(
            row.request_limit,
            requests,
            ("request limit", "request-limit"),
        )?;
        let budget = raise(row.budget_nano_usd, usd, ("budget", "budget-usd"))?;
        diesel::update(users::table.filter(users::id.eq(row.id)))
            .set((
                users::token_limit.eq(token_limit),
                users::request_limit.eq(request_limit),
                users::budget_nano_usd.eq(budget),
            ))
            .execute(conn)?;
        show(conn, name)
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
