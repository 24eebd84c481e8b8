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
use crate::limits::{Account, Ledger, Ledgers, Limits};
use crate::model_pattern::ModelPattern;
use crate::periodic::Periodic;
use crate::teams::{self, TeamRow};
use crate::users::keys::KeyRow;
use crate::users::{self, UserRow};
use arc_swap::ArcSwap;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Model patterns; `None` allows every model.
type Models = Option<Arc<[ModelPattern]>>;

fn patterns(text: Option<&str>) -> Models {
    users::decode_models(text).map(|l| l.iter().filter_map(|m| ModelPattern::new(m).ok()).collect())
}

fn allows(models: &Models, model: &str) -> bool {
    models
        .as_ref()
        .is_none_or(|p| p.iter().any(|p| p.matches(model)))
}

/// A team as the request path knows it.
#[derive(Debug)]
pub struct Team {
    pub name: Arc<str>,
    pub models: Models,
    pub limits: Limits,
    /// The team's usage and reservations; kept across reloads.
    pub ledger: Arc<Ledger>,
}

/// What the request path knows about the holder of a key: the key, its
/// user and the user's team.
#[derive(Debug)]
pub struct Caller {
    user_id: i64,
    pub name: Arc<str>,
    /// The key's label.
    pub key: Arc<str>,
    pub disabled: bool,
    /// The earlier of the user's and the key's expiry.
    pub expires_at: Option<NaiveDateTime>,
    /// The user's model patterns, and the key's, which narrow them.
    models: Models,
    key_models: Models,
    pub limits: Limits,
    /// The user's usage and reservations; kept across reloads.
    pub ledger: Arc<Ledger>,
    pub team: Option<Arc<Team>>,
}

impl Caller {
    /// Whether the user, the key and the team all allow `model`.
    pub fn may_use(&self, model: &str) -> bool {
        allows(&self.models, model)
            && allows(&self.key_models, model)
            && self.team.as_ref().is_none_or(|t| allows(&t.models, model))
    }

    /// The accounts a request must pass: the user's, then (in a team)
    /// the team's; no allocation.
    pub fn accounts(&self) -> [Option<Account<'_>>; 2] {
        [
            Some(Account {
                limits: &self.limits,
                ledger: &self.ledger,
                team: None,
                user: &self.name,
            }),
            self.team.as_ref().map(|t| Account {
                limits: &t.limits,
                ledger: &t.ledger,
                team: Some(&t.name),
                user: &self.name,
            }),
        ]
    }

    /// Whether any of its limits (the user's or the team's) is checked
    /// per request: a rate, or usage counted against a limit.
    pub fn limited(&self) -> bool {
        let limited = |l: &Limits| l.rpm.is_some() || l.counts_usage();
        limited(&self.limits) || self.team.as_ref().is_some_and(|t| limited(&t.limits))
    }

    /// Whether it has any limit at all (its own or its team's): what it
    /// used elsewhere must be known to serve it.
    pub fn any_limit(&self) -> bool {
        let any = |l: &Limits| l.rpm.is_some() || l.parallel.is_some() || l.counts_usage();
        any(&self.limits) || self.team.as_ref().is_some_and(|t| any(&t.limits))
    }

    /// Whether its use is metered against a token limit or a USD budget
    /// (its own or its team's): then it may only use what can be metered.
    pub fn metered(&self) -> bool {
        let metered = |l: &Limits| l.tokens.is_some() || l.budget.is_some();
        metered(&self.limits) || self.team.as_ref().is_some_and(|t| metered(&t.limits))
    }

    /// Whether it spends from a USD budget (its own or its team's): then
    /// it may only use what has a price.
    pub fn has_budget(&self) -> bool {
        self.limits.budget.is_some()
            || self
                .team
                .as_ref()
                .is_some_and(|t| t.limits.budget.is_some())
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

/// The keys the request path looks up. The users' ids are in the entries:
/// a refresh copies the map leaving out the changed users' keys, so no
/// per-user index is kept (nor copied) beside it.
#[derive(Default, Clone)]
struct Table {
    by_key: ByDigest<Arc<Caller>>,
}

/// Labels shared by the keys that have them (`default`, `key-1`, …): one
/// allocation each per load, not one per key.
#[derive(Default)]
struct Labels(HashMap<String, Arc<str>>);

impl Labels {
    fn get(&mut self, label: &str) -> Arc<str> {
        if let Some(l) = self.0.get(label) {
            return l.clone();
        }
        let l: Arc<str> = Arc::from(label);
        self.0.insert(label.to_owned(), l.clone());
        l
    }
}

impl Table {
    /// A copy without the keys of the users `ids` (sorted); with the
    /// names of those users that had keys. A clone and a scan: neither
    /// hashes an entry again.
    fn without(&self, ids: &[i64]) -> (Table, Vec<Arc<str>>) {
        let mut by_key = self.by_key.clone();
        let mut gone: HashMap<i64, Arc<str>> = HashMap::new();
        by_key.retain(|_, c| {
            let keep = ids.binary_search(&c.user_id).is_err();
            if !keep {
                gone.entry(c.user_id).or_insert_with(|| c.name.clone());
            }
            keep
        });
        (Table { by_key }, gone.into_values().collect())
    }

    fn add(
        &mut self,
        row: &UserRow,
        keys: &[&KeyRow],
        ledger: Arc<Ledger>,
        team: Option<Arc<Team>>,
        labels: &mut Labels,
    ) {
        let name: Arc<str> = Arc::from(row.name.as_str());
        let models = patterns(row.models.as_deref());
        let limits = Caller::limits(row);
        for k in keys {
            let Some(digest) = keys::HashedKey(k.key_hash.clone()).digest() else {
                continue;
            };
            let expires_at = match (row.expires_at, k.expires_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let caller = Caller {
                user_id: row.id,
                name: name.clone(),
                key: labels.get(&k.label),
                disabled: row.disabled,
                expires_at,
                models: models.clone(),
                key_models: patterns(k.models.as_deref()),
                limits,
                ledger: ledger.clone(),
                team: team.clone(),
            };
            self.by_key.insert(digest, Arc::new(caller));
        }
    }
}

/// The keys of each user (by id).
fn by_user(keys: &[KeyRow]) -> HashMap<i64, Vec<&KeyRow>> {
    let mut out: HashMap<i64, Vec<&KeyRow>> = HashMap::new();
    for k in keys {
        out.entry(k.user_id).or_default().push(k);
    }
    out
}

#[derive(Default)]
pub struct KeyTable {
    table: ArcSwap<Table>,
    /// The users' and teams' ledgers, kept across reloads.
    ledgers: Arc<Ledgers>,
    /// Taken by whoever swaps in a new table (the refresher, a reload), so
    /// that neither swaps in a table made from an older one.
    swapping: Mutex<()>,
}

impl KeyTable {
    pub fn lookup(&self, key: &[u8]) -> Option<Arc<Caller>> {
        self.table.load().by_key.get(&keys::digest(key)).cloned()
    }

    /// The users' and teams' ledgers (for the usage writer's refreshes).
    pub fn ledgers(&self) -> Arc<Ledgers> {
        self.ledgers.clone()
    }

    /// Every team as it is now, by id, each with its ledger (kept across
    /// reloads by name). Teams are few: all are read whenever any user
    /// changed.
    fn teams(&self, conn: &mut DbConnection) -> QueryResult<HashMap<i64, Arc<Team>>> {
        let rows: Vec<TeamRow> = teams::all_rows(conn)?;
        let ledgers = self
            .ledgers
            .teams()
            .update(rows.iter().map(|t| (t.name.as_str(), t.limits())));
        Ok(rows
            .iter()
            .filter_map(|t| {
                let team = Team {
                    name: Arc::from(t.name.as_str()),
                    models: patterns(t.models.as_deref()),
                    limits: t.limits(),
                    ledger: ledgers.get(&t.name)?.clone(),
                };
                Some((t.id, Arc::new(team)))
            })
            .collect())
    }

    /// Loads every user now: at start, before the server accepts
    /// requests, and on a reload. Returns the revision loaded.
    pub fn load(&self, conn: &mut DbConnection) -> QueryResult<i64> {
        let _swapping = self.swapping.lock().unwrap_or_else(|e| e.into_inner());
        let revision = users_revision(conn)?;
        let rows = users::all_rows(conn)?;
        let keys = users::keys::rows_for(conn, None)?;
        let teams = self.teams(conn)?;
        let ledgers = self
            .ledgers
            .users()
            .update(rows.iter().map(|r| (r.name.as_str(), Caller::limits(r))));
        let keys = by_user(&keys);
        let mut table = Table::default();
        let mut labels = Labels::default();
        for r in &rows {
            if let Some(ledger) = ledgers.get(&r.name) {
                let team = r.team_id.and_then(|t| teams.get(&t).cloned());
                let theirs = keys.get(&r.id).map_or(&[][..], Vec::as_slice);
                table.add(r, theirs, ledger.clone(), team, &mut labels);
            }
        }
        self.table.store(Arc::new(table));
        Ok(revision)
    }

    /// Takes in what changed after revision `since`: the users changed or
    /// added (with their keys and team) and those deleted, no others.
    /// Returns the revision now held.
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
        let ids: Vec<i64> = changed.iter().map(|r| r.id).collect();
        let keys = users::keys::rows_for(conn, Some(&ids))?;
        let teams = self.teams(conn)?;
        let keys = by_user(&keys);
        let mut dropped: Vec<i64> = deleted.iter().chain(&ids).copied().collect();
        dropped.sort_unstable();
        let (mut table, gone) = self.table.load().without(&dropped);
        let mut labels = Labels::default();
        let ledgers = self.ledgers.users().change(
            gone.iter().map(|n| &**n),
            changed.iter().map(|r| (r.name.as_str(), Caller::limits(r))),
        );
        for (r, ledger) in changed.iter().zip(ledgers) {
            let team = r.team_id.and_then(|t| teams.get(&t).cloned());
            let theirs = keys.get(&r.id).map_or(&[][..], Vec::as_slice);
            table.add(r, theirs, ledger, team, &mut labels);
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
/// Refreshes the key table every second; whether the database answered
/// goes to `outage`.
pub fn refresher(
    keys: Arc<KeyTable>,
    pool: Pool,
    mut revision: i64,
    outage: Arc<crate::outage::Outage>,
) -> Periodic {
    Periodic::start("chatgate-keys", REFRESH_EVERY, false, move |_| {
        let result = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
            revision = keys
                .refresh(&mut conn, revision)
                .map_err(|e| e.to_string())?;
            Ok(())
        });
        match result {
            Ok(()) => outage.answered(),
            Err(e) => {
                // Keep serving from the table we have.
                outage.failed();
                tracing::warn!("cannot refresh keys from the database: {e}");
            }
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
        users::add(
            conn,
            &crate::audit::Actor::Config,
            &name,
            None,
            UserSettings::default(),
        )
        .unwrap()
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
        users::update(conn, &crate::audit::Actor::Config, "bob", rpm).unwrap();
        users::remove(conn, &crate::audit::Actor::Config, "carol").unwrap();
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
        let new_key = users::rotate(conn, &crate::audit::Actor::Config, "dave", None).unwrap();
        let rotated = keys.refresh(conn, refreshed).unwrap();
        assert!(find(&d).is_none() && find(&new_key).is_some());
        assert_eq!(keys.refresh(conn, rotated).unwrap(), rotated);
        assert_eq!(keys.table.load().by_key.len(), 3);
    }
}
