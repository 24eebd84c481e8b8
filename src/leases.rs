//! Shares of the rpm and parallel limits across the instances that share
//! one database (SPEC §10), so that those limits hold in total, wherever
//! requests land, without the common request waiting on the database.
//!
//! Each instance holds a share of a user's (or team's) limit in a `leases`
//! row and admits from memory while its share lasts (`limits`). Only when
//! it runs out does a request ask the database for more (`grow`): under
//! the subject's lock row, the shares of the live instances are summed and
//! what the limit leaves is granted. A share is given back off the request
//! path (`tick`, every second on the heartbeat's thread) once it has been
//! idle for a second, or at once when another instance asks for it.
//!
//! A share counts while its instance is alive (its `instances` row is
//! fresh within `cluster.lease_ttl`); an rpm share also until the minute
//! of its last admission is over, so a crash never lets the requests it
//! admitted be admitted again within that minute.
//!
//! The invariant: what an instance uses ≤ its share in memory ≤ its share
//! in the database, and the database's shares sum to at most the limit.
//! Growing writes the database first, then memory; giving back lowers
//! memory first, then the database; and this instance's writes are taken
//! one at a time (`writing`), so neither overtakes the other.

use crate::db::moment::At;
use crate::db::schema::{instances, leases};
use crate::db::{self, DbConnection, Pool};
use crate::limits::{Ledger, ShareKind, Shortfall};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a request short of a share goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This instance now holds more: admit it again.
    Granted,
    /// Other instances hold shares they do not use: they give them back
    /// within a second.
    Wait,
    /// The limit is used up across the instances.
    Full { retry_after: u64 },
}

/// A share this instance holds, as the keeper last wrote it.
struct Held {
    ledger: Arc<Ledger>,
    /// The ledger's admissions at the last tick: none since, and it is idle.
    admitted: u64,
    /// (share, in use) as the database has them.
    written: (i64, i64),
    /// Whether a request here waits for others' spare shares.
    waiting: bool,
    /// Taken without the database (an outage): given back to what is in
    /// use once it answers.
    guessed: bool,
}

type Subject = (String, ShareKind);

pub struct Leases {
    pool: Pool,
    instance: String,
    ttl: Duration,
    held: Mutex<HashMap<Subject, Held>>,
    /// Taken while this instance writes its rows (see the module's comment).
    writing: Mutex<()>,
    /// How many instances were alive at the last tick: when the database
    /// is out, each takes this part of a limit.
    alive: AtomicI64,
    outage: Arc<crate::outage::Outage>,
}

impl Leases {
    pub fn new(
        pool: Pool,
        instance: String,
        ttl: Duration,
        outage: Arc<crate::outage::Outage>,
    ) -> Leases {
        Leases {
            pool,
            instance,
            ttl,
            held: Mutex::default(),
            writing: Mutex::default(),
            alive: AtomicI64::new(1),
            outage,
        }
    }

    /// Asks the database for a share of what `short` lacks.
    pub async fn grow(self: &Arc<Self>, short: &Shortfall) -> Outcome {
        if self.outage.lasted().is_some() {
            return self.part_of(short);
        }
        let (this, short2) = (self.clone(), short.clone());
        let asked = db::query(&self.pool, move |conn| {
            // Two instances making the subject's lock row at once: one of
            // them fails, and asks again.
            let mut tries = 0;
            loop {
                tries += 1;
                match this.take(conn, &short2) {
                    Err(diesel::result::Error::DatabaseError(..)) if tries < 3 => continue,
                    other => return other,
                }
            }
        })
        .await;
        match asked {
            Ok(outcome) => outcome,
            Err(e @ db::DbError::Query(_)) => {
                // Fail closed: a share is never guessed while the database answers.
                tracing::warn!("cannot lease a share of {}: {e}", short.subject);
                Outcome::Full { retry_after: 1 }
            }
            Err(e @ db::DbError::Unavailable(_)) => {
                tracing::warn!("cannot lease a share of {}: {e}", short.subject);
                self.outage.failed();
                self.part_of(short)
            }
        }
    }

    /// While the database is out, the limits last seen hold, each live
    /// instance taking its part (`outage_grace` bounds how long).
    fn part_of(&self, short: &Shortfall) -> Outcome {
        let alive = self.alive.load(Ordering::Relaxed).max(1);
        let part = (short.limit + alive - 1) / alive;
        let (share, used) = short.ledger.share(short.kind, Instant::now());
        if used < part && share < part {
            short.ledger.grant(short.kind, part);
            let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            let entry = held
                .entry((short.subject.clone(), short.kind))
                .or_insert_with(|| Held {
                    ledger: short.ledger.clone(),
                    admitted: short.ledger.admitted(),
                    written: (0, 0),
                    waiting: false,
                    guessed: true,
                });
            entry.guessed = true;
            Outcome::Granted
        } else {
            Outcome::Full { retry_after: 1 }
        }
    }

    fn take(&self, conn: &mut DbConnection, short: &Shortfall) -> QueryResult<Outcome> {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let kind = short.kind;
        let (share, used) = short.ledger.share(kind, Instant::now());
        let need = used + short.need;
        if need <= share {
            return Ok(Outcome::Granted); // given meanwhile
        }
        let now = db::now();
        let outcome = crate::db::transaction(conn, |c| {
            lock(c, &short.subject, kind, short.limit)?;
            let alive = alive(c, self.ttl)?;
            // What is committed counts against a usage limit too.
            let committed = if kind.of_usage() {
                let of = match short.team {
                    Some(_) => crate::usage::daily::Of::Teams,
                    None => crate::usage::daily::Of::Users,
                };
                let used = crate::usage::daily::used_now(c, short.name(), short.period, of, now)?;
                match kind {
                    ShareKind::Requests => used.requests,
                    ShareKind::Tokens => used.tokens,
                    _ => used.nano_usd,
                }
            } else {
                0
            };
            let rows: Vec<(String, i64, i64, NaiveDateTime)> = leases::table
                .filter(leases::subject.eq(&short.subject))
                .filter(leases::kind.eq(kind.as_str()))
                .filter(leases::instance.ne(""))
                .filter(leases::instance.ne(&self.instance))
                .select((
                    leases::instance,
                    leases::amount,
                    leases::in_use,
                    leases::hold_until,
                ))
                .load(c)?;
            let (mut others, mut spare) = (0, 0);
            for (instance, amount, in_use, hold_until) in rows {
                let live = alive.contains(&instance);
                if live || hold_until > now {
                    others += amount;
                }
                if live {
                    spare += (amount - in_use).max(0);
                }
            }
            let free = short.limit.saturating_sub(others).saturating_sub(committed);
            let refused = |retry_after| Ok((Outcome::Full { retry_after }, share));
            let (granted, wanted, outcome) = if free >= need {
                // A little more than asked, so that the next requests
                // need not ask; of a usage limit, a slice of what is left.
                let more = match kind {
                    ShareKind::Parallel => 0,
                    ShareKind::Rpm => (short.limit / 20).max(1) - 1,
                    _ => (free - need) / (2 * alive.len().max(1) as i64),
                };
                (need.saturating_add(more).min(free), 0, Outcome::Granted)
            } else if spare > 0 || (kind == ShareKind::Parallel && others > 0) {
                // What others use of a parallel limit changes faster than
                // their rows say: any of theirs may be free by now.
                (share, 1, Outcome::Wait)
            } else {
                return refused(match kind {
                    ShareKind::Rpm => (60 / short.limit.max(1)).max(1) as u64,
                    _ => 1,
                });
            };
            let hold = hold_until(kind, now, Some(Duration::ZERO));
            let row = Row {
                subject: &short.subject,
                kind,
                instance: &self.instance,
                amount: granted,
                // The request that asked takes it at once.
                in_use: if wanted == 0 { need } else { used },
                wanted,
                hold_until: hold,
            };
            row.put(c)?;
            Ok::<_, diesel::result::Error>((outcome, granted))
        })?;
        let (outcome, granted) = outcome;
        if let Outcome::Full { .. } = outcome {
            return Ok(outcome);
        }
        // Memory only after the database.
        let waiting = outcome == Outcome::Wait;
        short.ledger.grant(kind, granted);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let entry = held
            .entry((short.subject.clone(), kind))
            .or_insert_with(|| Held {
                ledger: short.ledger.clone(),
                admitted: short.ledger.admitted(),
                written: (share, used),
                waiting,
                guessed: false,
            });
        entry.ledger = short.ledger.clone();
        entry.waiting = waiting;
        entry.written = (granted, used);
        Ok(outcome)
    }

    /// Gives back shares idle since the last tick or asked for by another
    /// instance, and tells the others what is in use: every second, on
    /// the heartbeat's thread.
    pub fn tick(&self, conn: &mut DbConnection) -> QueryResult<()> {
        self.alive.store(
            alive(conn, self.ttl)?.len().max(1) as i64,
            Ordering::Relaxed,
        );
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        if held.is_empty() {
            return Ok(());
        }
        let asked: HashSet<(String, String)> = leases::table
            .filter(leases::wanted.eq(1))
            .filter(leases::instance.ne(&self.instance))
            .select((leases::subject, leases::kind))
            .load::<(String, String)>(conn)?
            .into_iter()
            .collect();
        let now = db::now();
        let at = Instant::now();
        let mut result = Ok(());
        held.retain(|(subject, kind), h| {
            let admitted = h.ledger.admitted();
            let idle = admitted == h.admitted;
            h.admitted = admitted;
            let wanted = asked.contains(&(subject.clone(), kind.as_str().to_owned()));
            let (share, used) = if idle || wanted || std::mem::take(&mut h.guessed) {
                let share = h.ledger.shrink(*kind, at);
                (share, share)
            } else {
                h.ledger.share(*kind, at)
            };
            let waiting = std::mem::take(&mut h.waiting);
            if (share, used) == h.written && !waiting {
                return true;
            }
            let written = if share == 0 && used == 0 {
                delete(conn, subject, *kind, &self.instance)
            } else {
                let hold = hold_until(*kind, now, h.ledger.since_last(at));
                Row {
                    subject,
                    kind: *kind,
                    instance: &self.instance,
                    amount: share,
                    in_use: used,
                    wanted: i64::from(waiting),
                    hold_until: hold,
                }
                // Made again if the others dropped it while this instance
                // could not reach the database for longer than the TTL.
                .put(conn)
            };
            match written {
                Ok(()) => h.written = (share, used),
                Err(e) => result = Err(e),
            }
            share > 0 || used > 0
        });
        // Requests may have added shares meanwhile: theirs are newer.
        let mut now_held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in held {
            now_held.entry(k).or_insert(v);
        }
        result
    }

    /// Gives back every share (a clean stop).
    pub fn release_all(&self, conn: &mut DbConnection) -> QueryResult<()> {
        diesel::delete(leases::table.filter(leases::instance.eq(&self.instance)))
            .execute(conn)
            .map(drop)
    }
}

/// Until when a share counts after its instance is gone: an rpm share
/// until the minute of its last admission (`since`: how long ago) is over.
fn hold_until(kind: ShareKind, now: NaiveDateTime, since: Option<Duration>) -> NaiveDateTime {
    match (kind, since) {
        (ShareKind::Rpm, Some(ago)) => {
            let ago = chrono::Duration::from_std(ago).unwrap_or_default();
            now + chrono::Duration::seconds(60) - ago
        }
        _ => db::beginning_of_time(),
    }
}

/// Drops the shares of instances gone, once nothing holds them.
pub fn drop_gone(conn: &mut DbConnection, ttl: Duration) -> QueryResult<()> {
    let alive = alive(conn, ttl)?;
    let gone: Vec<String> = leases::table
        .filter(leases::instance.ne(""))
        .filter(leases::hold_until.lt(At(db::now())))
        .select(leases::instance)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .filter(|i| !alive.contains(i))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    diesel::delete(
        leases::table
            .filter(leases::instance.eq_any(&gone))
            .filter(leases::hold_until.lt(At(db::now()))),
    )
    .execute(conn)
    .map(drop)
}

/// The instances seen within `ttl`.
fn alive(conn: &mut DbConnection, ttl: Duration) -> QueryResult<HashSet<String>> {
    Ok(instances::table
        .filter(instances::last_seen_at.ge(crate::cluster::ttl_ago(ttl)))
        .select(instances::id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Takes the subject's lock row (instance ''), making it the first time:
/// whoever holds it may count and change the shares of `kind`.
fn lock(conn: &mut DbConnection, subject: &str, kind: ShareKind, limit: i64) -> QueryResult<()> {
    let row = Row {
        subject,
        kind,
        instance: "",
        amount: limit,
        in_use: 0,
        wanted: 0,
        hold_until: db::beginning_of_time(),
    };
    // Another instance making it at the same time fails one of the two
    // with a unique violation; that request asks again later.
    row.put(conn)
}

fn delete(
    conn: &mut DbConnection,
    subject: &str,
    kind: ShareKind,
    instance: &str,
) -> QueryResult<()> {
    diesel::delete(
        leases::table
            .filter(leases::subject.eq(subject))
            .filter(leases::kind.eq(kind.as_str()))
            .filter(leases::instance.eq(instance)),
    )
    .execute(conn)
    .map(drop)
}

struct Row<'a> {
    subject: &'a str,
    kind: ShareKind,
    instance: &'a str,
    amount: i64,
    in_use: i64,
    wanted: i64,
    hold_until: NaiveDateTime,
}

impl Row<'_> {
    fn update(&self, conn: &mut DbConnection) -> QueryResult<usize> {
        diesel::update(
            leases::table
                .filter(leases::subject.eq(self.subject))
                .filter(leases::kind.eq(self.kind.as_str()))
                .filter(leases::instance.eq(self.instance)),
        )
        .set((
            leases::amount.eq(self.amount),
            leases::in_use.eq(self.in_use),
            leases::wanted.eq(self.wanted),
            leases::hold_until.eq(At(self.hold_until)),
        ))
        .execute(conn)
    }

    /// Updates the row, or makes it.
    fn put(&self, conn: &mut DbConnection) -> QueryResult<()> {
        if self.update(conn)? > 0 {
            return Ok(());
        }
        diesel::insert_into(leases::table)
            .values((
                leases::subject.eq(self.subject),
                leases::kind.eq(self.kind.as_str()),
                leases::instance.eq(self.instance),
                leases::amount.eq(self.amount),
                leases::in_use.eq(self.in_use),
                leases::wanted.eq(self.wanted),
                leases::hold_until.eq(At(self.hold_until)),
            ))
            .execute(conn)
            .map(drop)
    }
}
