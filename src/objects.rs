//! Account objects: what the upstream account keeps for every key alike
//! (files, uploads, vector stores, stored responses and chat completions,
//! conversations). The gateway records which user created each one, and
//! at which upstream, so that a user reaches only their own.

use crate::db::schema::objects;
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashSet;

/// The kinds of objects one upstream account keeps for all its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Files,
    Uploads,
    VectorStores,
    Responses,
    ChatCompletions,
    Conversations,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 6] = [
        ObjectKind::Files,
        ObjectKind::Uploads,
        ObjectKind::VectorStores,
        ObjectKind::Responses,
        ObjectKind::ChatCompletions,
        ObjectKind::Conversations,
    ];

    /// As stored, and as `user show` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Files => "files",
            ObjectKind::Uploads => "uploads",
            ObjectKind::VectorStores => "vector_stores",
            ObjectKind::Responses => "responses",
            ObjectKind::ChatCompletions => "chat_completions",
            ObjectKind::Conversations => "conversations",
        }
    }
}

/// Who created an object, and the upstream that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user: String,
    pub upstream: String,
}

/// Records that `user` created `id` at `upstream`. An id already recorded
/// keeps its first owner (an upstream does not hand out an id twice; a
/// replayed reply must not move an object to another user).
pub fn claim(
    conn: &mut DbConnection,
    id: &str,
    kind: ObjectKind,
    user: &str,
    upstream: &str,
    at: NaiveDateTime,
) -> QueryResult<()> {
    if owner(conn, id)?.is_some() {
        return Ok(());
    }
    let inserted = diesel::insert_into(objects::table)
        .values((
            objects::id.eq(id),
            objects::kind.eq(kind.as_str()),
            objects::user_name.eq(user),
            objects::upstream.eq(upstream),
            objects::created_at.eq(at),
        ))
        .execute(conn);
    match inserted {
        // Another instance claimed it first.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        other => other.map(|_| ()),
    }
}

pub fn owner(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Owner>> {
    objects::table
        .filter(objects::id.eq(id))
        .select((objects::user_name, objects::upstream))
        .first::<(String, String)>(conn)
        .optional()
        .map(|o| o.map(|(user, upstream)| Owner { user, upstream }))
}

/// The ids of `user`'s objects of `kind`.
pub fn owned(
    conn: &mut DbConnection,
    user: &str,
    kind: ObjectKind,
) -> QueryResult<HashSet<String>> {
    objects::table
        .filter(objects::user_name.eq(user))
        .filter(objects::kind.eq(kind.as_str()))
        .select(objects::id)
        .load::<String>(conn)
        .map(|ids| ids.into_iter().collect())
}

/// Forgets an object the upstream deleted.
pub fn forget(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::delete(objects::table.filter(objects::id.eq(id)))
        .execute(conn)
        .map(|_| ())
}

/// How many objects of each kind `user` owns (kinds with none left out).
pub fn counts(conn: &mut DbConnection, user: &str) -> QueryResult<Vec<(String, i64)>> {
    use diesel::dsl::count_star;
    objects::table
        .filter(objects::user_name.eq(user))
        .group_by(objects::kind)
        .select((objects::kind, count_star()))
        .order(objects::kind.asc())
        .load(conn)
}
