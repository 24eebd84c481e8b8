//! Users and their keys: validated input types and the operations on them.
//!
//! The CLI (and later the admin API) call these same functions, so every
//! rule about users lives here once.

pub use crate::db::rfc3339;
use crate::db::schema::users;
use crate::db::{self, DbConnection};
use crate::keys::PlainKey;
pub use crate::limits::LimitPeriod;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("no user named `{0}`")]
    NotFound(String),
    #[error("a user named `{0}` already exists")]
    Exists(String),
    #[error("that key is already in use; choose another")]
    KeyInUse,
    #[error(
        "`{name}` has no {what} limit to top up; set one with `user edit {name} --{what}-limit N`"
    )]
    NoLimit { name: String, what: &'static str },
    #[error("give --tokens or --requests (or both), each a whole number above 0")]
    NothingToRecharge,
    #[error("database error: {0}")]
    Db(#[from] DieselError),
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// A user of the config file's `users:`, added at start if absent.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    pub name: String,
    pub token: String,
}

/// A user name: 1–64 printable characters, no whitespace; kept literally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<UserName, String> {
        let n = s.chars().count();
        if n == 0 || n > 64 {
            return Err(format!("a user name must be 1 to 64 characters, not {n}"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a user name must not contain whitespace or control characters".into());
        }
        Ok(UserName(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One optional setting as given on the command line: a value, or
/// `none`/`never` to clear it.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting<T> {
    Clear,
    Set(T),
}

impl<T> Setting<T> {
    fn into_option(self) -> Option<T> {
        match self {
            Setting::Clear => None,
            Setting::Set(v) => Some(v),
        }
    }
}

const CLEAR_WORDS: [&str; 2] = ["none", "never"];

pub fn parse_count(s: &str) -> Result<Setting<i64>, String> {
    if CLEAR_WORDS.contains(&s) {
        return Ok(Setting::Clear);
    }
    match s.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Setting::Set(n)),
        _ => Err(format!("`{s}` is not a whole number ≥ 0 (or `none`)")),
    }
}

/// `YYYY-MM-DD` (the end of that day, UTC), RFC 3339, or a duration from now
/// (`30d`, `12h`, `90m`); `never` clears.
pub fn parse_expiry(s: &str) -> Result<Setting<NaiveDateTime>, String> {
    if CLEAR_WORDS.contains(&s) {
        return Ok(Setting::Clear);
    }
    parse_time_or_duration(s, Utc::now().naive_utc()).map(Setting::Set)
}

fn parse_time_or_duration(s: &str, now: NaiveDateTime) -> Result<NaiveDateTime, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(23, 59, 59).expect("valid time"));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc).naive_utc());
    }
    if let Ok(d) = humantime::parse_duration(s) {
        let d = chrono::Duration::from_std(d).map_err(|_| format!("`{s}` is too long"))?;
        return now
            .checked_add_signed(d)
            .ok_or_else(|| format!("`{s}` is too long"));
    }
    Err(format!(
        "`{s}` is not a date (YYYY-MM-DD), an RFC 3339 time, a duration (30d, 12h, 90m) or `never`"
    ))
}

/// `--models gpt-4o,o1-*`: comma-separated glob patterns; `none` clears.
pub fn parse_models(s: &str) -> Result<Setting<Vec<String>>, String> {
    if CLEAR_WORDS.contains(&s) {
        return Ok(Setting::Clear);
    }
    let list: Vec<String> = s
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    if list.is_empty() {
        return Err("give at least one model pattern, or `none`".into());
    }
    for m in &list {
        glob::Pattern::new(m).map_err(|e| format!("`{m}` is not a glob pattern: {e}"))?;
    }
    Ok(Setting::Set(list))
}

pub fn parse_note(s: &str) -> Result<Setting<String>, String> {
    Ok(if s.is_empty() {
        Setting::Clear
    } else {
        Setting::Set(s.to_owned())
    })
}

/// The settings `user add` and `user edit` share; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct UserSettings {
    pub token_limit: Option<Setting<i64>>,
    pub request_limit: Option<Setting<i64>>,
    pub limit_period: Option<LimitPeriod>,
    pub expires: Option<Setting<NaiveDateTime>>,
    pub models: Option<Setting<Vec<String>>>,
    pub rpm: Option<Setting<i64>>,
    pub max_parallel: Option<Setting<i64>>,
    pub note: Option<Setting<String>>,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = users)]
struct UserChanges {
    token_limit: Option<Option<i64>>,
    request_limit: Option<Option<i64>>,
    limit_period: Option<String>,
    expires_at: Option<Option<NaiveDateTime>>,
    models: Option<Option<String>>,
    rpm: Option<Option<i64>>,
    max_parallel: Option<Option<i64>>,
    note: Option<Option<String>>,
}

impl UserSettings {
    fn changes(self) -> UserChanges {
        UserChanges {
            token_limit: self.token_limit.map(Setting::into_option),
            request_limit: self.request_limit.map(Setting::into_option),
            limit_period: self.limit_period.map(|p| p.as_str().to_owned()),
            expires_at: self.expires.map(Setting::into_option),
            models: self
                .models
                .map(|m| m.into_option().map(|l| encode_models(&l))),
            rpm: self.rpm.map(Setting::into_option),
            max_parallel: self.max_parallel.map(Setting::into_option),
            note: self.note.map(Setting::into_option),
        }
    }

    fn is_empty(&self) -> bool {
        self.token_limit.is_none()
            && self.request_limit.is_none()
            && self.limit_period.is_none()
            && self.expires.is_none()
            && self.models.is_none()
            && self.rpm.is_none()
            && self.max_parallel.is_none()
            && self.note.is_none()
    }
}

fn encode_models(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

pub fn decode_models(text: Option<&str>) -> Option<Vec<String>> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub key_hash: String,
    pub key_hint: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub token_limit: Option<i64>,
    pub request_limit: Option<i64>,
    pub limit_period: String,
    pub models: Option<String>,
    pub rpm: Option<i64>,
    pub note: Option<String>,
    pub max_parallel: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Disabled,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::Expired => "expired",
        }
    }
}

impl UserRow {
    pub fn status(&self, now: NaiveDateTime) -> Status {
        if self.disabled {
            Status::Disabled
        } else if self.expires_at.is_some_and(|e| e < now) {
            Status::Expired
        } else {
            Status::Active
        }
    }

    pub fn period(&self) -> LimitPeriod {
        LimitPeriod::from_db(&self.limit_period)
    }
}

/// A user as shown to the admin (`--format json` and the admin API):
/// the field names of the contract.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub name: String,
    pub status: Status,
    pub key_hint: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub token_limit: Option<i64>,
    pub request_limit: Option<i64>,
    pub limit_period: LimitPeriod,
    pub tokens_used: i64,
    pub requests_used: i64,
    pub models: Option<Vec<String>>,
    pub rpm: Option<i64>,
    pub note: Option<String>,
    pub max_parallel: Option<i64>,
}

fn view(conn: &mut DbConnection, row: UserRow, now: NaiveDateTime) -> QueryResult<UserView> {
    let since = row.period().start(now).date();
    let (requests_used, tokens_used) =
        crate::usage::daily::used_between(conn, &row.name, since, None)?;
    Ok(UserView {
        status: row.status(now),
        created_at: rfc3339(row.created_at),
        expires_at: row.expires_at.map(rfc3339),
        last_used_at: row.last_used_at.map(rfc3339),
        limit_period: row.period(),
        models: decode_models(row.models.as_deref()),
        tokens_used,
        requests_used,
        name: row.name,
        key_hint: row.key_hint,
        token_limit: row.token_limit,
        request_limit: row.request_limit,
        rpm: row.rpm,
        note: row.note,
        max_parallel: row.max_parallel,
    })
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
        _ => UserError::Db(e),
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
                users::created_at.eq(now),
            ))
            .execute(conn)
            .map_err(|e| map_unique(e, name.as_str()))?;
        if !settings.is_empty() {
            diesel::update(users::table.filter(users::name.eq(name.as_str())))
                .set(settings.changes())
                .execute(conn)?;
        }
        Ok::<(), UserError>(())
    })?;
    Ok(key)
}

pub fn edit(conn: &mut DbConnection, name: &str, settings: UserSettings) -> Result<(), UserError> {
    find_row(conn, name)?;
    if !settings.is_empty() {
        diesel::update(users::table.filter(users::name.eq(name)))
            .set(settings.changes())
            .execute(conn)?;
    }
    Ok(())
}

pub fn set_disabled(conn: &mut DbConnection, name: &str, disabled: bool) -> Result<(), UserError> {
    let n = diesel::update(users::table.filter(users::name.eq(name)))
        .set(users::disabled.eq(disabled))
        .execute(conn)?;
    if n == 0 {
        return Err(UserError::NotFound(name.to_owned()));
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

/// Raises a user's token and/or request limit by the amounts given (a
/// top-up); the user can go on at once (a running server sees it within
/// a second).
pub fn recharge(
    conn: &mut DbConnection,
    name: &str,
    tokens: Option<i64>,
    requests: Option<i64>,
) -> Result<UserView, UserError> {
    let positive = |v: Option<i64>| v.is_none_or(|n| n > 0);
    if (tokens.is_none() && requests.is_none()) || !positive(tokens) || !positive(requests) {
        return Err(UserError::NothingToRecharge);
    }
    conn.transaction(|conn| {
        let row = find_row(conn, name)?;
        let raise = |limit: Option<i64>, by: Option<i64>, what| match (limit, by) {
            (_, None) => Ok(limit),
            (Some(l), Some(n)) => Ok(Some(l.saturating_add(n))),
            (None, Some(_)) => Err(UserError::NoLimit {
                name: name.to_owned(),
                what,
            }),
        };
        let token_limit = raise(row.token_limit, tokens, "token")?;
        let request_limit = raise(row.request_limit, requests, "request")?;
        diesel::update(users::table.filter(users::id.eq(row.id)))
            .set((
                users::token_limit.eq(token_limit),
                users::request_limit.eq(request_limit),
            ))
            .execute(conn)?;
        Ok::<_, UserError>(())
    })?;
    show(conn, name)
}

pub fn show(conn: &mut DbConnection, name: &str) -> Result<UserView, UserError> {
    let row = find_row(conn, name)?;
    Ok(view(conn, row, db::now())?)
}

/// Users by name; without `all`, only active ones.
pub fn list(conn: &mut DbConnection, all: bool) -> Result<Vec<UserView>, UserError> {
    let now = db::now();
    let rows: Vec<UserRow> = users::table
        .order(users::name.asc())
        .select(UserRow::as_select())
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if all || row.status(now) == Status::Active {
            out.push(view(conn, row, now)?);
        }
    }
    Ok(out)
}

/// Every user row, for the server's in-memory key table.
pub fn all_rows(conn: &mut DbConnection) -> QueryResult<Vec<UserRow>> {
    users::table.select(UserRow::as_select()).load(conn)
}

/// Adds the config file's `users:` that do not exist yet; returns their names.
pub fn seed(conn: &mut DbConnection, seeds: &[UserSeed]) -> Result<Vec<String>, UserError> {
    let mut added = Vec::new();
    for s in seeds {
        let exists = users::table
            .filter(users::name.eq(&s.name))
            .count()
            .get_result::<i64>(conn)?
            > 0;
        if exists {
            continue;
        }
        // Validated with the config; parse again rather than trust.
        let (Ok(name), Ok(key)) = (UserName::parse(&s.name), PlainKey::parse(&s.token)) else {
            continue;
        };
        add(conn, &name, Some(key), UserSettings::default())?;
        added.push(s.name.clone());
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn names_are_kept_literally() {
        for ok in ["alice", "o'brien", "zoë-日本", "quote\"d", &"x".repeat(64)] {
            assert_eq!(UserName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "a b", "tab\there", &"x".repeat(65)] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn expiry_date_is_end_of_day_and_durations_count_from_now() {
        let now = at("2026-11-22 10:00:00");
        assert_eq!(
            parse_time_or_duration("2026-11-30", now).unwrap(),
            at("2026-11-30 23:59:59")
        );
        assert_eq!(
            parse_time_or_duration("2026-11-30T12:00:00+02:00", now).unwrap(),
            at("2026-11-30 10:00:00")
        );
        assert_eq!(
            parse_time_or_duration("30d", now).unwrap(),
            at("2026-12-22 10:00:00")
        );
        assert_eq!(
            parse_time_or_duration("90m", now).unwrap(),
            at("2026-11-22 11:30:00")
        );
        assert!(parse_time_or_duration("soon", now).is_err());
        assert_eq!(parse_expiry("never").unwrap(), Setting::Clear);
    }

    #[test]
    fn settings_parse_and_clear() {
        assert_eq!(parse_count("100").unwrap(), Setting::Set(100));
        assert_eq!(parse_count("none").unwrap(), Setting::Clear);
        assert!(parse_count("-1").is_err());
        assert_eq!(
            parse_models("gpt-4o, o1-*").unwrap(),
            Setting::Set(vec!["gpt-4o".into(), "o1-*".into()])
        );
        assert!(parse_models(",").is_err());
        assert!(parse_models("[").is_err());
    }

    #[test]
    fn period_starts() {
        let now = at("2026-11-22 10:00:00");
        assert_eq!(LimitPeriod::Day.start(now), at("2026-11-22 00:00:00"));
        assert_eq!(LimitPeriod::Month.start(now), at("2026-11-01 00:00:00"));
        assert_eq!(LimitPeriod::Total.start(now), at("1970-01-01 00:00:00"));
    }
}
