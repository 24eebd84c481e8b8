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

/// A user's limits and the ledger they are counted in. Users without
/// limits share one (and its ledger, in which nothing is counted).
#[derive(Debug)]
pub struct Rules {
    pub limits: Limits,
    /// The user's usage and reservations, kept across reloads.
    pub ledger: Arc<Ledger>,
}

/// A user as the request path knows them: one per user, shared by the
/// user's keys (each key entry holds only what differs per key).
#[derive(Debug)]
pub struct Holder {
    pub name: Arc<str>,
    pub disabled: bool,
    models: Models,
    pub rules: Arc<Rules>,
    pub team: Option<Arc<Team>>,
}

/// What the request path knows about the holder of a key: the key, its
/// user and the user's team. Small (a key's entry among 300,000): what
/// few keys have is boxed apart.
#[derive(Debug)]
pub struct Caller {
    pub user: Arc<Holder>,
    /// The key's label.
    pub key: Arc<str>,
    narrowed: Option<Box<Narrowed>>,
}

/// An expiry (the user's or the key's) or the key's own models.
#[derive(Debug)]
struct Narrowed {
    /// The earlier of the user's and the key's expiry.
    expires_at: Option<NaiveDateTime>,
    /// The key's model patterns, which narrow its user's.
    models: Models,
}

impl Caller {
    /// Whether the user, the key and the team all allow `model`.
    pub fn may_use(&self, model: &str) -> bool {
        let user = &*self.user;
        allows(&user.models, model)
            && self
                .narrowed
                .as_ref()
                .is_none_or(|n| allows(&n.models, model))
            && user.team.as_ref().is_none_or(|t| allows(&t.models, model))
    }

    /// When the key stops working: the earlier of its user's expiry and
    /// its own.
    pub fn expires_at(&self) -> Option<NaiveDateTime> {
        self.narrowed.as_ref().and_then(|n| n.expires_at)
    }

    /// The accounts a request must pass: the user's, then (in a team)
    /// the team's; no allocation.
    pub fn accounts(&self) -> [Option<Account<'_>>; 2] {
        let user = &*self.user;
        [
            Some(Account {
                limits: &user.rules.limits,
                ledger: &user.rules.ledger,
                team: None,
                user: &user.name,
            }),
            user.team.as_ref().map(|t| Account {
                limits: &t.limits,
                ledger: &t.ledger,
                team: Some(&t.name),
                user: &user.name,
            }),
        ]
    }

    /// Its limits and its team's, if any.
    fn all_limits(&self) -> impl Iterator<Item = &Limits> {
        let user = &*self.user;
        std::iter::once(&user.rules.limits).chain(user.team.as_ref().map(|t| &t.limits))
    }

    /// Whether any of its limits (the user's or the team's) is checked
    /// per request: a rate, or usage counted against a limit.
    pub fn limited(&self) -> bool {
        self.all_limits()
            .any(|l| l.rpm.is_some() || l.counts_usage())
    }

    /// Whether it has any limit at all (its own or its team's): what it
    /// used elsewhere must be known to serve it.
    pub fn any_limit(&self) -> bool {
        self.all_limits().any(Limits::any)
    }

    /// Whether its use is metered against a token limit or a USD budget
    /// (its own or its team's): then it may only use what can be metered.
    pub fn metered(&self) -> bool {
        self.all_limits()
            .any(|l| l.tokens.is_some() || l.budget.is_some())
    }

    /// Whether it spends from a USD budget (its own or its team's): then
    /// it may only use what has a price.
    pub fn has_budget(&self) -> bool {
        self.all_limits().any(|l| l.budget.is_some())
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

/// The first half of a key's SHA-256, as two numbers: what the table is
/// sorted by. Finding a key whose digest begins like one of 300,000 takes
/// some 2^128 / 300,000 tries, as out of reach as the whole digest.
type Prefix = [u64; 2];

fn prefix(digest: &KeyDigest) -> Prefix {
    let half = |i: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[i..i + 8]);
        u64::from_be_bytes(word)
    };
    [half(0), half(8)]
}

/// The keys the request path looks up: sorted by prefix, found by binary
/// search. 32 bytes a key; a hash map's power-of-two buckets at 300,000
/// keys took 44 (BENCHMARKS.md, #33).
#[derive(Default)]
struct Table {
    by_key: Vec<Entry>,
}

/// A key's entry. The user's id is here, beside the prefix: a refresh
/// copies the table leaving out the changed users' keys, and finds them
/// in one scan of the table alone (no per-user index kept beside it, no
/// look into 300,000 callers).
#[derive(Clone)]
struct Entry {
    prefix: Prefix,
    user_id: i64,
    caller: Arc<Caller>,
}

/// What the entries of one load share: the labels (`default`, `key-1`,
/// …), one allocation each, not one per key; and the rules of the users
/// without limits, one for all.
#[derive(Default)]
struct Shared {
    labels: HashMap<String, Arc<str>>,
    unlimited: Option<Arc<Rules>>,
}

impl Shared {
    fn label(&mut self, label: &str) -> Arc<str> {
        if let Some(l) = self.labels.get(label) {
            return l.clone();
        }
        let l: Arc<str> = Arc::from(label);
        self.labels.insert(label.to_owned(), l.clone());
        l
    }

    fn rules(&mut self, limits: Limits, ledger: Arc<Ledger>) -> Arc<Rules> {
        if limits.any() {
            return Arc::new(Rules { limits, ledger });
        }
        self.unlimited
            .get_or_insert_with(|| Arc::new(Rules { limits, ledger }))
            .clone()
    }
}

impl Table {
    fn get(&self, key: &Prefix) -> Option<&Arc<Caller>> {
        let at = self.by_key.binary_search_by(|e| e.prefix.cmp(key)).ok()?;
        Some(&self.by_key[at].caller)
    }

    /// A copy without the keys of the users `ids` (sorted), with room
    /// for `more`; and the names of those users that had keys. One scan,
    /// still sorted.
    fn without(&self, ids: &[i64], more: usize) -> (Table, Vec<Arc<str>>) {
        let mut gone: HashMap<i64, Arc<str>> = HashMap::new();
        let mut by_key = Vec::with_capacity(self.by_key.len() + more);
        for e in &self.by_key {
            if ids.binary_search(&e.user_id).is_ok() {
                gone.entry(e.user_id)
                    .or_insert_with(|| e.caller.user.name.clone());
            } else {
                by_key.push(e.clone());
            }
        }
        (Table { by_key }, gone.into_values().collect())
    }

    /// Sorts what `add` appended into place (a stable sort: the sorted
    /// run and the few appended ones are merged in one pass on a
    /// refresh) and gives back the spare capacity.
    fn settle(mut self) -> Table {
        self.by_key.sort_by_key(|e| e.prefix);
        self.by_key.shrink_to_fit();
        self
    }

    fn add(
        &mut self,
        row: &UserRow,
        keys: &[&KeyRow],
        limits: Limits,
        ledger: Arc<Ledger>,
        team: Option<Arc<Team>>,
        shared: &mut Shared,
    ) {
        let user = Arc::new(Holder {
            name: Arc::from(row.name.as_str()),
            disabled: row.disabled,
            models: patterns(row.models.as_deref()),
            rules: shared.rules(limits, ledger),
            team,
        });
        for k in keys {
            let Some(digest) = keys::HashedKey(k.key_hash.clone()).digest() else {
                continue;
            };
            let expires_at = match (row.expires_at, k.expires_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let models = patterns(k.models.as_deref());
            let narrowed = (expires_at.is_some() || models.is_some())
                .then(|| Box::new(Narrowed { expires_at, models }));
            let caller = Caller {
                user: user.clone(),
                key: shared.label(&k.label),
                narrowed,
            };
            self.by_key.push(Entry {
                prefix: prefix(&digest),
                user_id: row.id,
                caller: Arc::new(caller),
            });
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
        let digest = keys::digest(key);
        self.table.load().get(&prefix(&digest)).cloned()
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
            .zip(ledgers)
            .map(|(t, ledger)| {
                let team = Team {
                    name: Arc::from(t.name.as_str()),
                    models: patterns(t.models.as_deref()),
                    limits: t.limits(),
                    ledger,
                };
                (t.id, Arc::new(team))
            })
            .collect())
    }

    /// Loads every user now: at start, before the server accepts
    /// requests, and on a reload. Returns the revision loaded.
    pub fn load(&self, conn: &mut DbConnection) -> QueryResult<i64> {
        let _swapping = self.swapping.lock().unwrap_or_else(|e| e.into_inner());
        let revision = users_revision(conn)?;
        let table = self.read_all(conn)?;
        self.table.store(Arc::new(table));
        // The rows it was made from are freed by now.
        let _ = crate::memory::give_back_freed();
        Ok(revision)
    }

    /// Every user, with their keys and team.
    fn read_all(&self, conn: &mut DbConnection) -> QueryResult<Table> {
        let rows = users::all_rows(conn)?;
        let keys = users::keys::rows_for(conn, None)?;
        let teams = self.teams(conn)?;
        let ledgers = self
            .ledgers
            .users()
            .update(rows.iter().map(|r| (r.name.as_str(), Caller::limits(r))));
        let mut table = Table {
            by_key: Vec::with_capacity(keys.len()),
        };
        let keys = by_user(&keys);
        let mut shared = Shared::default();
        for (r, ledger) in rows.iter().zip(ledgers) {
            let team = r.team_id.and_then(|t| teams.get(&t).cloned());
            let theirs = keys.get(&r.id).map_or(&[][..], Vec::as_slice);
            table.add(r, theirs, Caller::limits(r), ledger, team, &mut shared);
        }
        Ok(table.settle())
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
        let mut dropped: Vec<i64> = deleted.iter().chain(&ids).copied().collect();
        dropped.sort_unstable();
        let (mut table, gone) = self.table.load().without(&dropped, keys.len());
        let keys = by_user(&keys);
        let mut shared = Shared::default();
        let ledgers = self.ledgers.users().change(
            gone.iter().map(|n| &**n),
            changed.iter().map(|r| (r.name.as_str(), Caller::limits(r))),
        );
        for (r, ledger) in changed.iter().zip(ledgers) {
            let team = r.team_id.and_then(|t| teams.get(&t).cloned());
            let theirs = keys.get(&r.id).map_or(&[][..], Vec::as_slice);
            table.add(r, theirs, Caller::limits(r), ledger, team, &mut shared);
        }
        self.table.store(Arc::new(table.settle()));
        // The table it replaced, unless a request still holds it.
        let _ = crate::memory::give_back_freed();
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
        add_with(conn, name, UserSettings::default())
    }

    fn add_with(conn: &mut DbConnection, name: &str, settings: UserSettings) -> PlainKey {
        let name = UserName::parse(name).unwrap();
        users::add(conn, &crate::audit::Actor::Config, &name, None, settings).unwrap()
    }

    #[test]
    fn a_refresh_takes_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        let pool = crate::db::open(&url).unwrap();
        let conn = &mut *pool.get().unwrap();
        let parallel = UserSettings {
            max_parallel: Some(Setting::Set(3)),
            ..UserSettings::default()
        };
        let (a, b, c) = (
            add(conn, "alice"),
            add_with(conn, "bob", parallel),
            add(conn, "carol"),
        );
        let keys = KeyTable::default();
        let loaded = keys.load(conn).unwrap();
        let find = |k: &PlainKey| keys.lookup(k.expose().as_bytes());
        let (alice, bob) = (find(&a).unwrap(), find(&b).unwrap());
        // Users without limits share one ledger (nothing is counted in
        // it); a user with one has their own.
        let carol = find(&c).unwrap();
        assert!(Arc::ptr_eq(
            &alice.user.rules.ledger,
            &carol.user.rules.ledger
        ));
        assert!(!Arc::ptr_eq(
            &alice.user.rules.ledger,
            &bob.user.rules.ledger
        ));
        let registry = keys.ledgers();
        assert!(registry.users().get("alice").is_none() && registry.users().get("bob").is_some());

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
        assert_eq!(bob_now.user.rules.limits.rpm, Some(5));
        assert!(Arc::ptr_eq(
            &bob_now.user.rules.ledger,
            &bob.user.rules.ledger
        ));
        assert!(find(&c).is_none(), "a removed user's key still works");
        assert_eq!(&*find(&d).unwrap().user.name, "dave");

        // A new key replaces the old one; nothing new, nothing read.
        let new_key = users::rotate(conn, &crate::audit::Actor::Config, "dave", None).unwrap();
        let rotated = keys.refresh(conn, refreshed).unwrap();
        assert!(find(&d).is_none() && find(&new_key).is_some());
        assert_eq!(keys.refresh(conn, rotated).unwrap(), rotated);
        assert_eq!(keys.table.load().by_key.len(), 3);

        // Without limits again: back to the shared ledger, no entry kept.
        let clear = UserSettings {
            rpm: Some(Setting::Clear),
            max_parallel: Some(Setting::Clear),
            ..UserSettings::default()
        };
        users::update(conn, &crate::audit::Actor::Config, "bob", clear).unwrap();
        keys.refresh(conn, rotated).unwrap();
        let bob_free = find(&b).unwrap();
        assert!(Arc::ptr_eq(
            &bob_free.user.rules.ledger,
            &alice.user.rules.ledger
        ));
        assert!(registry.users().get("bob").is_none());
    }

    /// What a key and a user cost in memory: 300,000 keys of 100,000
    /// users within the 64 MiB of `bench/scale.sh` (BENCHMARKS.md) rest
    /// on these sizes (jemalloc's classes of 48 and 80 bytes with the
    /// `Arc`'s counts).
    #[test]
    fn entries_stay_small() {
        assert!(std::mem::size_of::<Caller>() <= 32);
        assert!(std::mem::size_of::<Holder>() <= 64);
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }
}
