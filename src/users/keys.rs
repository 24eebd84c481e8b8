//! A user's keys (SPEC §9): one per laptop, CI job or agent, each with a
//! label unique per user, an optional expiry and a model list narrowing
//! the user's own. The CLI, the admin API and self-service call these.
//!
//! Every change to a user's keys bumps their row's `touched` in the same
//! transaction, so the revision triggers tell running servers to reload
//! that user with their keys (within the refresher's second).

use super::view::{decode_models, encode_models};
use super::UserError;
use crate::audit::{self, Action, Actor};
use crate::db::moment::At;
use crate::db::schema::{keys, users};
use crate::db::{self, rfc3339, DbConnection};
use crate::keys::PlainKey;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;

/// The label `user add` gives the first key.
pub const DEFAULT_LABEL: &str = "default";

/// A row of `keys`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = keys)]
pub struct KeyRow {
    pub id: i64,
    pub user_id: i64,
    pub label: String,
    pub key_hash: String,
    pub key_hint: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub models: Option<String>,
}

/// A key as shown (JSON key fields of SPEC §9); never the key itself.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    pub user: String,
    pub label: String,
    pub key_hint: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub models: Option<Vec<String>>,
}

impl KeyView {
    /// How the audit trail names the key: its user and label.
    pub fn target(&self) -> (&str, Option<&str>) {
        (&self.user, Some(&self.label))
    }

    fn of(user: &str, row: KeyRow) -> KeyView {
        KeyView {
            user: user.to_owned(),
            label: row.label,
            key_hint: row.key_hint,
            created_at: rfc3339(row.created_at),
            expires_at: row.expires_at.map(rfc3339),
            last_used_at: row.last_used_at.map(rfc3339),
            models: decode_models(row.models.as_deref()),
        }
    }
}

/// What a new key is given: all optional.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub label: Option<String>,
    pub expires: Option<NaiveDateTime>,
    pub models: Option<Vec<String>>,
    /// Chosen by the admin (`--token`); else generated.
    pub key: Option<PlainKey>,
}

/// Who asks: the admin is bound by nothing, a user by
/// `keys.max_per_user`, by their own models, and by the key they ask
/// with (`via`, its label): a key cannot make one that outlives it or
/// reaches models it cannot, so a narrowed CI key stays narrowed.
#[derive(Debug, Clone)]
pub enum Asker {
    Admin,
    /// `via`: none when they ask through a sign-in session, not a key.
    User {
        max_keys: usize,
        via: Option<String>,
    },
}

/// A label: 1–64 printable characters without whitespace or `/` (reports
/// show a key as `user/label`).
pub fn parse_label(s: &str) -> Result<String, String> {
    let n = s.chars().count();
    if n == 0 || n > 64 {
        return Err(format!("a key label must be 1 to 64 characters, not {n}"));
    }
    if s.chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err("a key label must not contain whitespace, control characters or `/`".into());
    }
    Ok(s.to_owned())
}

fn user_id(conn: &mut DbConnection, user: &str) -> Result<(i64, Option<String>), UserError> {
    users::table
        .filter(users::name.eq(user))
        .select((users::id, users::models))
        .first(conn)
        .optional()?
        .ok_or_else(|| UserError::NotFound(user.to_owned()))
}

/// The user whose keys are about to change (id, models), their row
/// touched first: running servers reload them, and their row is locked
/// before their keys, the order the usage writer takes them in
/// (`last_used_at`), so the two never deadlock.
fn changing(conn: &mut DbConnection, user: &str) -> Result<(i64, Option<String>), UserError> {
    let (id, models) = user_id(conn, user)?;
    touch(conn, id)?;
    Ok((id, models))
}

fn rows_of(conn: &mut DbConnection, id: i64) -> QueryResult<Vec<KeyRow>> {
    keys::table
        .filter(keys::user_id.eq(id))
        .order(keys::id.asc())
        .select(KeyRow::as_select())
        .load(conn)
}

/// Tells running servers to reload the user (see the module's comment).
pub(super) fn touch(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.filter(users::id.eq(id)))
        .set(users::touched.eq(users::touched + 1))
        .execute(conn)
        .map(drop)
}

fn is_unique_violation(e: &DieselError, column: &str) -> bool {
    matches!(e, DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
        if info.message().contains(column)
            || info.constraint_name().is_some_and(|c| c.contains(column)))
}

/// Inserts a key for user `id`; the caller holds the transaction.
pub(super) fn insert(
    conn: &mut DbConnection,
    id: i64,
    label: &str,
    key: &PlainKey,
    expires: Option<NaiveDateTime>,
    models: Option<&[String]>,
) -> Result<(), UserError> {
    diesel::insert_into(keys::table)
        .values((
            keys::user_id.eq(id),
            keys::label.eq(label),
            keys::key_hash.eq(&key.hashed().0),
            keys::key_hint.eq(key.hint()),
            keys::created_at.eq(At(db::now())),
            keys::expires_at.eq(expires.map(At)),
            keys::models.eq(models.map(encode_models)),
        ))
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e, "hash") {
                UserError::KeyInUse
            } else if is_unique_violation(&e, "label")
                || matches!(
                    e,
                    DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
                )
            {
                UserError::LabelTaken(label.to_owned())
            } else {
                e.into()
            }
        })?;
    Ok(())
}

/// `key-N`, the smallest N no key of the user has.
fn free_label(taken: &[KeyRow]) -> String {
    (1..)
        .map(|n| format!("key-{n}"))
        .find(|l| !taken.iter().any(|k| &k.label == l))
        .expect("some N is free")
}

/// Whether every pattern of `asked` is one the user has (or a model
/// name one of theirs matches): a user cannot widen their models.
fn narrows(asked: &[String], own: Option<&str>) -> bool {
    let Some(own) = decode_models(own) else {
        return true;
    };
    let patterns: Vec<_> = own
        .iter()
        .filter_map(|p| crate::model_pattern::ModelPattern::new(p).ok())
        .collect();
    asked.iter().all(|a| {
        own.contains(a) || (!a.contains(['*', '?', '[']) && patterns.iter().any(|p| p.matches(a)))
    })
}

/// Gives `user` one more key; returns its label and the key, shown once.
pub fn add(
    conn: &mut DbConnection,
    by: &Actor,
    user: &str,
    new: NewKey,
    asker: Asker,
) -> Result<(String, PlainKey), UserError> {
    let mut new = new;
    let key = new.key.take().unwrap_or_else(PlainKey::generate);
    let label = audit::transaction(conn, by, |conn, trail| {
        let (id, own_models) = changing(conn, user)?;
        let taken = rows_of(conn, id)?;
        if let Asker::User { max_keys, via } = &asker {
            if taken.len() >= *max_keys {
                return Err(UserError::TooManyKeys(*max_keys));
            }
            let via = taken.iter().find(|k| Some(&k.label) == via.as_ref());
            let via_models = via.and_then(|k| k.models.as_deref());
            match &new.models {
                Some(m) if !narrows(m, own_models.as_deref()) || !narrows(m, via_models) => {
                    return Err(UserError::WiderModels);
                }
                Some(_) => {}
                None => new.models = decode_models(via_models),
            }
            if let Some(end) = via.and_then(|k| k.expires_at) {
                new.expires = Some(new.expires.map_or(end, |e| e.min(end)));
            }
        }
        let label = match new.label {
            Some(l) if taken.iter().any(|k| k.label == l) => {
                return Err(UserError::LabelTaken(l));
            }
            Some(l) => l,
            None => free_label(&taken),
        };
        insert(conn, id, &label, &key, new.expires, new.models.as_deref())?;
        let view = find(rows_of(conn, id)?, user, &label).map(|k| KeyView::of(user, k))?;
        trail.record_views(Action::KeyAdd, view.target(), None, Some(&view));
        Ok(label)
    })?;
    Ok((label, key))
}

/// The keys of `user`, or of everyone, by user and creation.
pub fn list(conn: &mut DbConnection, user: Option<&str>) -> Result<Vec<KeyView>, UserError> {
    let mut q = keys::table
        .inner_join(users::table.on(users::id.eq(keys::user_id)))
        .select((users::name, KeyRow::as_select()))
        .order((users::name.asc(), keys::id.asc()))
        .into_boxed();
    if let Some(u) = user {
        user_id(conn, u)?;
        q = q.filter(users::name.eq(u.to_owned()));
    }
    let rows: Vec<(String, KeyRow)> = q.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(u, row)| KeyView::of(&u, row))
        .collect())
}

/// The key of `user` whose label (else whose hint) is `which`.
fn find(rows: Vec<KeyRow>, user: &str, which: &str) -> Result<KeyRow, UserError> {
    let (by_label, rest): (Vec<_>, Vec<_>) = rows.into_iter().partition(|k| k.label == which);
    if let Some(k) = by_label.into_iter().next() {
        return Ok(k);
    }
    let mut by_hint: Vec<_> = rest.into_iter().filter(|k| k.key_hint == which).collect();
    match by_hint.len() {
        1 => Ok(by_hint.remove(0)),
        0 => Err(UserError::KeyNotFound {
            user: user.to_owned(),
            which: which.to_owned(),
        }),
        _ => Err(UserError::AmbiguousHint(which.to_owned())),
    }
}

/// Ends one key of `user` at once (by label, else by hint); their other
/// keys keep working. Returns the key as it was.
pub fn revoke(
    conn: &mut DbConnection,
    by: &Actor,
    user: &str,
    which: &str,
) -> Result<KeyView, UserError> {
    audit::transaction(conn, by, |conn, trail| {
        let (id, _) = changing(conn, user)?;
        let key = find(rows_of(conn, id)?, user, which)?;
        diesel::delete(keys::table.filter(keys::id.eq(key.id))).execute(conn)?;
        let view = KeyView::of(user, key);
        trail.record_views(Action::KeyRevoke, view.target(), Some(&view), None);
        Ok(view)
    })
}

/// Replaces one key of `user` with a new one (same label, expiry and
/// models): `label`, else `default`, else their only key. Returns the
/// label and the new key; the old one stops working at once.
pub fn rotate(
    conn: &mut DbConnection,
    by: &Actor,
    user: &str,
    label: Option<&str>,
    key: Option<PlainKey>,
) -> Result<(String, PlainKey), UserError> {
    let key = key.unwrap_or_else(PlainKey::generate);
    let label = audit::transaction(conn, by, |conn, trail| {
        let (id, _) = changing(conn, user)?;
        let rows = rows_of(conn, id)?;
        let old = match label {
            Some(l) => find(rows, user, l)?,
            None => match rows.iter().position(|k| k.label == DEFAULT_LABEL) {
                Some(i) => rows.into_iter().nth(i).expect("found"),
                None if rows.len() == 1 => rows.into_iter().next().expect("one"),
                None => return Err(UserError::WhichKey(user.to_owned())),
            },
        };
        diesel::update(keys::table.filter(keys::id.eq(old.id)))
            .set((
                keys::key_hash.eq(&key.hashed().0),
                keys::key_hint.eq(key.hint()),
            ))
            .execute(conn)
            .map_err(|e| {
                if is_unique_violation(&e, "hash") {
                    UserError::KeyInUse
                } else {
                    e.into()
                }
            })?;
        let before = KeyView::of(user, old);
        let mut after = before.clone();
        after.key_hint = key.hint();
        trail.record_views(
            Action::KeyRotate,
            before.target(),
            Some(&before),
            Some(&after),
        );
        Ok(before.label)
    })?;
    Ok((label, key))
}

/// Every key row (for the server's key table), or those of `users`.
pub fn rows_for(conn: &mut DbConnection, users: Option<&[i64]>) -> QueryResult<Vec<KeyRow>> {
    let q = keys::table.select(KeyRow::as_select());
    match users {
        None => q.load(conn),
        Some(ids) => {
            let mut out = Vec::new();
            // Bound parameters stay well under every backend's limit.
            for chunk in ids.chunks(1000) {
                out.extend(q.filter(keys::user_id.eq_any(chunk)).load::<KeyRow>(conn)?);
            }
            Ok(out)
        }
    }
}

impl NewKey {
    /// Reads a JSON body of `POST …/keys`: `label`, `expires`, `models`
    /// (read as `user add` reads them), and `token` where the admin asks.
    pub fn from_json(body: serde_json::Value, token_allowed: bool) -> Result<NewKey, String> {
        let serde_json::Value::Object(mut body) = body else {
            return Err("the body must be a JSON object".into());
        };
        let mut text = |field: &str| match body.remove(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("`{field}` must be a string")),
        };
        let label = text("label")?
            .map(|l| parse_label(&l).map_err(|e| format!("`label`: {e}")))
            .transpose()?;
        let key = if token_allowed {
            text("token")?
                .map(|t| PlainKey::parse(&t).map_err(|e| format!("`token`: {e}")))
                .transpose()?
        } else {
            None
        };
        if let Some(field) = body
            .keys()
            .find(|k| !["expires", "models"].contains(&k.as_str()))
        {
            return Err(format!(
                "unknown field `{field}`: a key takes `label`, `expires` and `models`"
            ));
        }
        let settings = super::UserSettings::from_json(serde_json::Value::Object(body))?;
        Ok(NewKey {
            label,
            expires: settings.expires.and_then(super::Setting::into_option),
            models: settings.models.and_then(super::Setting::into_option),
            key,
        })
    }
}
