//! Account objects: what the upstream account keeps for every key alike
//! (files, uploads and their parts, vector stores, stored responses and
//! chat completions, conversations). The gateway records which user
//! created each one, at which upstream, and how many tokens it brings into
//! a prompt that names it, so that a user reaches only their own and a
//! request that builds on one reserves what it will cost.

use crate::db::moment::At;
use crate::db::schema::objects;
use crate::db::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};

/// The kinds of objects one upstream account keeps for all its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Files,
    Uploads,
    /// The parts of an upload (`part_ids` when it is completed).
    UploadParts,
    VectorStores,
    Responses,
    ChatCompletions,
    Conversations,
    /// Code interpreter containers: the gateway does not serve
    /// `/v1/containers`, so none is ever anyone's; a request naming one is
    /// refused.
    Containers,
    /// Gemini's cached contents, kept under their full resource name
    /// (`cachedContents/abc`), as prompts name them.
    CachedContents,
    /// Gemini's file search stores: not served (as containers), so a
    /// request naming one (a `fileSearch` tool's store) is refused.
    FileSearchStores,
    /// Gemini's files, under their resource name (`files/abc`); their
    /// uploads are `Uploads`, as OpenAI's.
    GeminiFiles,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 9] = [
        ObjectKind::Files,
        ObjectKind::Uploads,
        ObjectKind::UploadParts,
        ObjectKind::VectorStores,
        ObjectKind::Responses,
        ObjectKind::ChatCompletions,
        ObjectKind::Conversations,
        ObjectKind::CachedContents,
        ObjectKind::GeminiFiles,
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
            ObjectKind::UploadParts => "upload_parts",
            ObjectKind::Containers => "containers",
            ObjectKind::CachedContents => "cached_contents",
            ObjectKind::GeminiFiles => "gemini_files",
            ObjectKind::FileSearchStores => "file_search_stores",
        }
    }

    /// One of them, as the README's endpoint table names a path's id.
    pub fn singular(self) -> &'static str {
        match self {
            ObjectKind::Files => "file",
            ObjectKind::Uploads => "upload",
            ObjectKind::UploadParts => "part",
            ObjectKind::VectorStores => "vector_store",
            ObjectKind::Responses => "response",
            ObjectKind::ChatCompletions => "chat_completion",
            ObjectKind::Conversations => "conversation",
            ObjectKind::Containers => "container",
            ObjectKind::CachedContents => "cached_content",
            ObjectKind::GeminiFiles => "gemini_file",
            ObjectKind::FileSearchStores => "file_search_store",
        }
    }

    /// The id an object is recorded under, from its id in a path: Gemini's
    /// names carry their collection (`cachedContents/abc`).
    pub fn id_from_path(self, segment: &str) -> String {
        match self {
            ObjectKind::CachedContents => format!("cachedContents/{segment}"),
            ObjectKind::GeminiFiles => format!("files/{segment}"),
            _ => segment.to_owned(),
        }
    }

    fn from_str(s: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What the gateway knows of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub kind: ObjectKind,
    pub owner: Owner,
    /// The tokens it brings into a prompt that names it (a stored
    /// response's prompt and reply, a file's size), where known.
    pub tokens: Option<i64>,
}

/// Who created an object, and the upstream that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub user: String,
    pub upstream: String,
}

/// Records that `user` created `id` at `upstream` (bringing `tokens` into
/// a prompt that names it, where known). An id already recorded keeps its
/// first owner (an upstream does not hand out an id twice; a replayed reply
/// must not move an object to another user).
pub fn claim(
    conn: &mut DbConnection,
    id: &str,
    kind: ObjectKind,
    user: &str,
    upstream: &str,
    at: NaiveDateTime,
    tokens: Option<i64>,
) -> QueryResult<()> {
    let recorded = objects::table
        .filter(objects::id.eq(id))
        .count()
        .get_result::<i64>(conn)?;
    if recorded > 0 {
        return Ok(());
    }
    let inserted = diesel::insert_into(objects::table)
        .values((
            objects::id.eq(id),
            objects::kind.eq(kind.as_str()),
            objects::user_name.eq(user),
            objects::upstream.eq(upstream),
            objects::created_at.eq(At(at)),
            objects::tokens.eq(tokens),
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

/// What is known of each of `ids` that the gateway recorded.
pub fn known(conn: &mut DbConnection, ids: &[&str]) -> QueryResult<HashMap<String, Known>> {
    let rows: Vec<(String, String, String, String, Option<i64>)> = objects::table
        .filter(objects::id.eq_any(ids))
        .select((
            objects::id,
            objects::kind,
            objects::user_name,
            objects::upstream,
            objects::tokens,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, kind, user, upstream, tokens)| {
            let kind = ObjectKind::from_str(&kind)?;
            Some((
                id,
                Known {
                    kind,
                    owner: Owner { user, upstream },
                    tokens,
                },
            ))
        })
        .collect())
}

/// Sets what each object brings into a prompt that names it (a stored
/// response: its prompt and reply; a conversation: its last turn's).
pub fn set_tokens(conn: &mut DbConnection, sizes: &[(&str, i64)]) -> QueryResult<()> {
    for (id, tokens) in sizes {
        diesel::update(objects::table.filter(objects::id.eq(*id)))
            .set(objects::tokens.eq(tokens))
            .execute(conn)?;
    }
    Ok(())
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
