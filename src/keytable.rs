//! The in-memory key table the request path authenticates against, and the
//! thread that keeps it in step with the database.
//!
//! A request never waits on the database: it hashes the presented key and
//! looks the digest up in an immutable map behind an `ArcSwap`. A background
//! thread polls the `users` revision (bumped by triggers on every change)
//! once a second and swaps in a fresh map when it moved, so a CLI change is
//! seen by a running server within about a second.

use crate::db::schema::revisions;
use crate::db::{DbConnection, Pool};
use crate::keys::{self, KeyDigest};
use crate::limits::{Ledger, Ledgers, Limits};
use crate::users::{self, UserRow};
use arc_swap::ArcSwap;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// What the request path knows about the owner of a key.
#[derive(Debug)]
pub struct Caller {
    pub name: Arc<str>,
    pub disabled: bool,
    pub expires_at: Option<NaiveDateTime>,
    /// Allowed model patterns; `None` allows every model.
    pub models: Option<Vec<glob::Pattern>>,
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
            models: users::decode_models(row.models.as_deref()).map(|l| {
                l.iter()
                    .filter_map(|m| glob::Pattern::new(m).ok())
                    .collect()
            }),
            limits: Caller::limits(row),
            ledger,
        }
    }
}

type Table = HashMap<KeyDigest, Arc<Caller>>;

#[derive(Default)]
pub struct KeyTable {
    table: ArcSwap<Table>,
    /// The users' ledgers, kept across reloads.
    ledgers: Arc<Ledgers>,
}

impl KeyTable {
    pub fn lookup(&self, key: &[u8]) -> Option<Arc<Caller>> {
        self.table.load().get(&keys::digest(key)).cloned()
    }

    fn replace(&self, rows: &[UserRow]) {
        let ledgers = self
            .ledgers
            .update(rows.iter().map(|r| (r.name.as_str(), Caller::limits(r))));
        let table: Table = rows
            .iter()
            .filter_map(|r| {
                let digest = keys::HashedKey(r.key_hash.clone()).digest()?;
                let ledger = ledgers.get(&r.name)?.clone();
                Some((digest, Arc::new(Caller::from_row(r, ledger))))
            })
            .collect();
        self.table.store(Arc::new(table));
    }

    /// The users' ledgers (for the usage writer's refreshes).
    pub fn ledgers(&self) -> Arc<Ledgers> {
        self.ledgers.clone()
    }

    /// Loads every user now; used at start, before the server accepts requests.
    pub fn load(&self, conn: &mut DbConnection) -> QueryResult<i64> {
        let revision = users_revision(conn)?;
        self.replace(&users::all_rows(conn)?);
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

/// The background refresher; stops when dropped or on `stop`.
pub struct Refresher {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl Refresher {
    pub fn start(keys: Arc<KeyTable>, pool: Pool, mut revision: i64) -> Refresher {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("chatgate-keys".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(REFRESH_EVERY)
                {
                    let result = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                        let now = users_revision(&mut conn).map_err(|e| e.to_string())?;
                        if now != revision {
                            revision = keys.load(&mut conn).map_err(|e| e.to_string())?;
                            tracing::debug!(revision, "key table reloaded");
                        }
                        Ok(())
                    });
                    if let Err(e) = result {
                        // Keep serving from the table we have.
                        tracing::warn!("cannot refresh keys from the database: {e}");
                    }
                }
            })
            .expect("spawn key refresher thread");
        Refresher {
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.stop();
    }
}
