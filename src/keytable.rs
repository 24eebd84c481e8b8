//! The in-memory key table the request path authenticates against, and the
//! thread that keeps it in step with the database.
//!
//! A request never waits on the database: it hashes the presented key and
//! looks the digest up in an immutable map behind an `ArcSwap`. A background
//! thread polls the `users` revision (bumped by triggers on every change)
//! once a second; when it moved, it reads only the users changed or deleted
//! since (each row carries its revision) and swaps in a copy of the map
//! with them changed, so a CLI change is seen by a running server within
//! about a second, at a cost that does not grow with the users left alone.

use crate::db::schema::revisions;
use crate::db::{DbConnection, Pool};
use crate::keys::{self, KeyDigest};
use crate::limits::{Ledger, Ledgers, Limits};
use crate::model_pattern::ModelPattern;
use crate::periodic::Periodic;
use crate::users::{self, UserRow};
use arc_swap::ArcSwap;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the request path knows about the owner of a key.
#[derive(Debug)]
pub struct Caller {
    pub name: Arc<str>,
    pub disabled: bool,
    pub expires_at: Option<NaiveDateTime>,
    /// Allowed model patterns; `None` allows every model.
    pub models: Option<Vec<ModelPattern>>,
    pub limits: Limits,
    /// The user's usage and reservations; kept across reloads.
    pub ledger: Arc<Ledger>,
}

impl Caller {
    pub fn may_use(&self, model: &str) -> bool {
        match &self.models {
            None => true,
            Some(patterns) => patterns.iter().any(|p| p.matches(model)),
        }
    }

    fn limits(row: &UserRow) -> Limits {
        Limits {
            tokens: row.token_limit,
            requests: row.request_limit,
            budget: row.budget_nano_usd,
            period: row.period(),
            rpm: row.rpm,
            parallel: row.max_parallel,
        }
    }

    fn from_row(row: &UserRow, ledger: Arc<Ledger>) -> Caller {
        Caller {
            name: Arc::from(row.name.as_str()),
            disabled: row.disabled,
            expires_at: row.expires_at,
            models: users::decode_models(row.models.as_deref())
                .map(|l| l.iter().filter_map(|m| ModelPattern::new(m).ok()).collect()),
            limits: Caller::limits(row),
            ledger,
        }
    }
}

/// Hashes a key digest by its first eight bytes: a SHA-256 is spread
/// evenly already, so SipHash over all 32 bytes on every request adds
/// nothing. (No flooding either: the table holds only the users' own
/// digests; a presented key is looked up, never stored.)
#[derive(Default, Clone, Copy)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

type ByDigest<V> = HashMap<KeyDigest, V, std::hash::BuildHasherDefault<DigestHasher>>;

/// The keys the request path looks up, and which key each user (by id)
/// holds, so that a changed or deleted user's old key can be dropped.
#[derive(Default, Clone)]
struct Table {
    by_key: ByDigest<Arc<Caller>>,
    key_of: HashMap<i64, KeyDigest>,
}

impl Table {
    fn forget(&mut self, id: i64) -> Option<Arc<str>> {
        let digest = self.key_of.remove(&id)?;
        self.by_key.remove(&digest).map(|c| c.name.clone())
    }

    fn add(&mut self, row: &UserRow, ledger: Arc<Ledger>) {
        if let Some(digest) = keys::HashedKey(row.key_hash.clone()).digest() {
            self.key_of.insert(row.id, digest);
            self.by_key
                .insert(digest, Arc::new(Caller::from_row(row, ledger)));
        }
    }
}

#[derive(Default)]
pub struct KeyTable {
    table: ArcSwap<Table>,
    /// The users' ledgers, kept across reloads.
    ledgers: Arc<Ledgers>,
    /// Taken by whoever swaps in a new table (the refresher, a reload), so
    /// that neither swaps in a table made from an older one.
    swapping: Mutex<()>,
}

impl KeyTable {
    pub fn lookup(&self, key: &[u8]) -> Option<Arc<Caller>> {
        self.table.load().by_key.get(&keys::digest(key)).cloned()
    }

    /// The users' ledgers (for the usage writer's refreshes).
    pub fn ledgers(&self) -> Arc<Ledgers> {
        self.ledgers.clone()
    }

    /// Loads every user now: at start, before the server accepts
    /// requests, and on a reload. Returns the revision loaded.
    pub fn load(&self, conn: &mut DbConnection) -> QueryResult<i64> {
        let _swapping = self.swapping.lock().unwrap_or_else(|e| e.into_inner());
        let revision = users_revision(conn)?;
        let rows = users::all_rows(conn)?;
        let ledgers = self
            .ledgers
            .update(rows.iter().map(|r| (r.name.as_str(), Caller::limits(r))));
        let mut table = Table::default();
        for r in &rows {
            if let Some(ledger) = ledgers.get(&r.name) {
                table.add(r, ledger.clone());
            }
        }
        self.table.store(Arc::new(table));
        Ok(revision)
    }

    /// Takes in what changed after revision `since`: the users changed or
    /// added and those deleted, no others. Returns the revision now held.
    pub fn refresh(&self, conn: &mut DbConnection, since: i64) -> QueryResult<i64> {
        let revision = users_revision(conn)?;
        if revision == since {
            return Ok(revision);
        }
        let _swapping = self.swapping.lock().unwrap_or_else(|e| e.into_inner());
        // Read after the revision: a change committed meanwhile is taken
        // now and again next time, which is harmless.
        let changed = users::rows_changed_after(conn, since)?;
        let deleted = users::deleted_after(conn, since)?;
        let mut table = Table::clone(&self.table.load());
        let mut gone = Vec::new();
        for id in deleted.iter().chain(changed.iter().map(|r| &r.id)) {
            gone.extend(table.forget(*id));
        }
        let ledgers = self.ledgers.change(
            gone.iter().map(|n| &**n),
            changed.iter().map(|r| (r.name.as_str(), Caller::limits(r))),
        );
        for (r, ledger) in changed.iter().zip(ledgers) {
            table.add(r, ledger);
        }
        self.table.store(Arc::new(table));
        tracing::debug!(
            revision,
            changed = changed.len(),
            deleted = deleted.len(),
            "key table refreshed"
        );
        Ok(revision)
    }
}

fn users_revision(conn: &mut DbConnection) -> QueryResult<i64> {
    revisions::table
        .filter(revisions::name.eq("users"))
        .select(revisions::revision)
        .first(conn)
}

pub use crate::limits::REFRESH_EVERY;

/// The background refresher: takes in what changed every `REFRESH_EVERY`
/// (stops when dropped or on `stop`).
pub fn refresher(keys: Arc<KeyTable>, pool: Pool, mut revision: i64) -> Periodic {
    Periodic::start("chatgate-keys", REFRESH_EVERY, false, move |_| {
        let result = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
            revision = keys
                .refresh(&mut conn, revision)
                .map_err(|e| e.to_string())?;
            Ok(())
        });
        if let Err(e) = result {
            // Keep serving from the table we have.
            tracing::warn!("cannot refresh keys from the database: {e}");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PlainKey;
    use crate::users::{Setting, UserName, UserSettings};

    fn add(conn: &mut DbConnection, name: &str) -> PlainKey {
        let name = UserName::parse(name).unwrap();
        users::add(conn, &name, None, UserSettings::default()).unwrap()
    }

    #[test]
    fn a_refresh_takes_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        let pool = crate::db::open(&url).unwrap();
        let conn = &mut *pool.get().unwrap();
        let (a, b, c) = (add(conn, "alice"), add(conn, "bob"), add(conn, "carol"));
        let keys = KeyTable::default();
        let loaded = keys.load(conn).unwrap();
        let find = |k: &PlainKey| keys.lookup(k.expose().as_bytes());
        let (alice, bob) = (find(&a).unwrap(), find(&b).unwrap());

        let rpm = UserSettings {
            rpm: Some(Setting::Set(5)),
            ..UserSettings::default()
        };
        users::update(conn, "bob", rpm).unwrap();
        users::remove(conn, "carol").unwrap();
        let d = add(conn, "dave");
        let refreshed = keys.refresh(conn, loaded).unwrap();
        assert!(refreshed > loaded);

        // Alice was left alone: the very same entry.
        assert!(Arc::ptr_eq(&find(&a).unwrap(), &alice));
        // Bob's entry is new, his ledger (what he used) the same.
        let bob_now = find(&b).unwrap();
        assert_eq!(bob_now.limits.rpm, Some(5));
        assert!(Arc::ptr_eq(&bob_now.ledger, &bob.ledger));
        assert!(find(&c).is_none(), "a removed user's key still works");
        assert_eq!(&*find(&d).unwrap().name, "dave");

        // A new key replaces the old one; nothing new, nothing read.
        let new_key = users::rotate(conn, "dave", None).unwrap();
        let rotated = keys.refresh(conn, refreshed).unwrap();
        assert!(find(&d).is_none() && find(&new_key).is_some());
        assert_eq!(keys.refresh(conn, rotated).unwrap(), rotated);
        assert_eq!(keys.table.load().by_key.len(), 3);
    }
}
