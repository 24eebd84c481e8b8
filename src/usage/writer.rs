//! The batch writer: a thread that drains the usage channel and commits what
//! it gathered in one transaction, so the request path only pushes to a
//! queue. A batch gathers for `usage.batch_window` (5 ms) after its first
//! record: one commit per record would cost more CPU (SQLite's WAL writes
//! and locks, a thread wake-up each) than the proxying itself.

use super::charges::{self, Settlement};
use super::estimator::{EstimateSink, Estimator};
use super::last_used::LastUsed;
use super::prices::PriceBook;
use super::records::{self, Cache};
use super::UsageRecord;
use crate::db::moment::At;
use crate::db::schema::{keys, users};
use crate::db::{DbConnection, Manager, Pool};
use crate::limits::Ledgers;
use crate::limits::REFRESH_EVERY;
use crate::metrics::Metrics;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::r2d2::PooledConnection;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const MAX_BATCH: usize = 5000;

enum Msg {
    Record(Box<UsageRecord>),
    /// The real usage of work that finished after its reply.
    Settle(Settlement),
    Stop,
}

/// The request path's end of the queue. Cheap to clone.
#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<Msg>,
    /// Records with tokens to estimate go there first.
    estimate: Option<EstimateSink>,
    metrics: Arc<Metrics>,
    /// Off only for the benchmark's comparison run.
    counts: bool,
    /// How many records may wait for the database before new requests are
    /// refused (`usage.buffer_records`).
    room: i64,
}

impl UsageSink {
    /// A sink and the records sent to it, for tests of what sends them.
    #[cfg(test)]
    pub fn channel() -> (UsageSink, TestRecords) {
        let (tx, rx) = mpsc::channel();
        let metrics = Arc::default();
        let sink = UsageSink {
            tx,
            estimate: None,
            metrics,
            counts: true,
            room: i64::MAX,
        };
        (sink, TestRecords(rx))
    }

    /// This sink with room for `records` waiting records (`usage.buffer_records`).
    pub fn with_room(self, records: usize) -> UsageSink {
        UsageSink {
            room: i64::try_from(records).unwrap_or(i64::MAX),
            ..self
        }
    }

    /// Whether a new request's record would have room: while the database
    /// is away, records wait in memory up to `usage.buffer_records`; past
    /// that, requests are refused rather than served uncharged (one
    /// atomic read). Counts a refusal.
    pub fn has_room(&self) -> bool {
        if !self.counts || self.metrics.usage_queue.get() < self.room {
            return true;
        }
        self.metrics.usage_full.inc();
        if self.metrics.usage_full.get() % 1000 == 1 {
            tracing::error!(
                waiting = self.room,
                "usage.buffer_records records are waiting for the database; refusing requests until they are written"
            );
        }
        false
    }

    /// A sink that drops records: `serve --no-accounting`, for the benchmark.
    pub fn off(self) -> UsageSink {
        UsageSink {
            counts: false,
            ..self
        }
    }

    /// Whether records are kept (and replies watched for their usage).
    pub fn counts(&self) -> bool {
        self.counts
    }

    /// A request begins: it is in flight until its record is sent.
    pub fn started(&self) {
        self.metrics.in_flight.inc();
    }

    /// A request refused before its user was known: no record (there is
    /// no user to charge), only the request counted.
    pub fn unattributed(&self, status: u16) {
        self.metrics.request_ended(status, None, None);
    }

    pub fn record(&self, mut r: UsageRecord) {
        let m = &self.metrics;
        let model = m.request_ended(r.status, r.model.as_deref(), r.upstream.as_deref());
        r.model_known = model != "other";
        m.in_flight.dec();
        if !self.counts {
            return;
        }
        // Never dropped: the bound is kept at admission (`has_room`), so
        // what waits is at most `usage.buffer_records` and the requests
        // that were running when it was reached.
        m.usage_queue.inc();
        if let (Some(estimate), Some(_)) = (&self.estimate, &r.work) {
            estimate.send(Box::new(r), |r| send_to(&self.tx, r));
            return;
        }
        if self.tx.send(Msg::Record(Box::new(r))).is_err() {
            tracing::error!("usage writer has stopped; a usage record was dropped");
        }
    }
}

impl UsageSink {
    /// Settles a waiting charge with what the upstream reports of its
    /// object, once it is done (a no-op if it was settled already).
    pub fn settle(&self, s: Settlement) {
        if self.counts && self.tx.send(Msg::Settle(s)).is_err() {
            tracing::error!("usage writer has stopped; a settlement was dropped");
        }
    }
}

fn send_to(tx: &mpsc::Sender<Msg>, r: Box<UsageRecord>) {
    if tx.send(Msg::Record(r)).is_err() {
        tracing::error!("usage writer has stopped; a usage record was dropped");
    }
}

#[cfg(test)]
pub struct TestRecords(mpsc::Receiver<Msg>);

#[cfg(test)]
impl TestRecords {
    pub fn try_recv(&self) -> Option<UsageRecord> {
        match self.0.try_recv() {
            Ok(Msg::Record(r)) => Some(*r),
            _ => None,
        }
    }
}

pub struct UsageWriter {
    sink: UsageSink,
    estimator: Estimator,
    handle: Option<JoinHandle<()>>,
}

impl UsageWriter {
    /// Starts the writer; it also keeps the limited users' ledgers in step
    /// with the database.
    /// Each record is priced with what `prices` holds when it is written.
    /// A batch gathers for `gather` after its first record (`usage.batch_window`):
    /// the default 5 ms is long enough for batches of hundreds under load,
    /// short enough that a commit is a brief burst (it shares cores with
    /// the workers). Limits stay exact meanwhile: the records'
    /// reservations are held until the commit.
    pub fn start(
        pool: Pool,
        ledgers: Arc<Ledgers>,
        metrics: Arc<Metrics>,
        prices: PriceBook,
        gather: Duration,
    ) -> UsageWriter {
        let (tx, rx) = mpsc::channel();
        let writer_metrics = metrics.clone();
        let handle = std::thread::Builder::new()
            .name("chatgate-usage".into())
            .spawn(move || run(pool, ledgers, writer_metrics, prices, gather, rx))
            .expect("spawn usage writer thread");
        let to_writer = tx.clone();
        let estimator = Estimator::start(move |r| send_to(&to_writer, r));
        UsageWriter {
            sink: UsageSink {
                tx,
                estimate: Some(estimator.sink()),
                metrics,
                counts: true,
                room: i64::MAX,
            },
            estimator,
            handle: Some(handle),
        }
    }

    pub fn sink(&self) -> UsageSink {
        self.sink.clone()
    }

    /// Estimates and writes everything queued so far, then ends the threads.
    pub fn flush_and_stop(&mut self) {
        self.estimator.stop();
        let _ = self.sink.tx.send(Msg::Stop);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for UsageWriter {
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

fn run(
    pool: Pool,
    ledgers: Arc<Ledgers>,
    metrics: Arc<Metrics>,
    prices: PriceBook,
    gather: Duration,
    rx: mpsc::Receiver<Msg>,
) {
    let mut batch: Vec<UsageRecord> = Vec::new();
    let mut settlements: Vec<Settlement> = Vec::new();
    let mut stopping = false;
    let mut refreshed = Instant::now();
    let mut behind = false;
    let mut last_used = LastUsed::default();
    let mut cache = Cache::default();
    let mut held = Held { pool, conn: None };
    while !stopping {
        // Wait for the first message (or the next refresh), let more
        // gather (asleep: a waiting receiver would be woken by every send),
        // then take what came, unless still behind from the last batch.
        match rx.recv_timeout(REFRESH_EVERY) {
            Ok(Msg::Record(r)) => batch.push(*r),
            Ok(Msg::Settle(s)) => settlements.push(s),
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => stopping = true,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if !batch.is_empty() && !behind && !stopping {
            std::thread::sleep(gather);
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Record(r)) => batch.push(*r),
                Ok(Msg::Settle(s)) => settlements.push(s),
                Ok(Msg::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        behind = batch.len() == MAX_BATCH;
        let in_force = prices.load();
        // Records that wait for their real usage go last: they become
        // charges, not records, until then.
        batch.sort_by_key(|r| r.later.is_some());
        for r in &mut batch {
            r.price(&in_force);
        }
        if !settlements.is_empty() {
            settle(&mut held, &mut cache, &in_force, &metrics, &settlements);
            settlements.clear();
            refreshed = Instant::now() - REFRESH_EVERY;
        }
        count_tokens(&metrics, &batch);
        last_used.saw(&batch);
        let due = last_used.due(stopping);
        write_with_retry(&mut held, &mut cache, &batch, &due, stopping, &metrics);
        last_used.wrote(due);
        // What the batch's requests hold is in the database's totals now,
        // no longer in this instance's shares of limits (several instances).
        for r in &batch {
            if let Some(reservation) = &r.reservation {
                reservation.committed();
            }
        }
        metrics.usage_queue.sub(batch.len() as i64);
        // Re-read what limited users used (this batch and other instances')
        // before their reservations are given back with the records, so
        // that used + reserved never under-counts.
        let reserved = batch.iter().any(|r| r.reservation.is_some());
        if reserved || refreshed.elapsed() >= REFRESH_EVERY {
            refresh_ledgers(&mut held, &ledgers);
            refreshed = Instant::now();
        }
        batch.clear();
    }
}

/// Adds a batch's tokens to the metrics, once per model and upstream in
/// it: a label lookup hashes its values and takes a lock, and a batch
/// mostly holds few of each.
fn count_tokens(metrics: &Metrics, batch: &[UsageRecord]) {
    let mut sums: Vec<(&str, &str, i64, i64)> = Vec::new();
    for r in batch {
        let (Some(upstream), Some(p), Some(c)) =
            (&r.upstream, r.prompt_tokens, r.completion_tokens)
        else {
            continue;
        };
        let model = match &r.model {
            Some(m) if r.model_known => m.as_str(),
            Some(_) => "other",
            None => "-",
        };
        // A negative count (an upstream's) adds nothing, as alone it did.
        let (p, c) = (p.max(0), c.max(0));
        match sums
            .iter_mut()
            .find(|(m, u, ..)| *m == model && *u == &**upstream)
        {
            Some((.., sum_p, sum_c)) => {
                *sum_p = sum_p.saturating_add(p);
                *sum_c = sum_c.saturating_add(c);
            }
            None => sums.push((model, upstream, p, c)),
        }
    }
    for (model, upstream, p, c) in sums {
        for (kind, n) in [("prompt", p), ("completion", c)] {
            metrics
                .tokens
                .with_label_values(&[kind, model, upstream])
                .inc_by(n.unsigned_abs());
        }
    }
}

/// The writer's connection, kept from batch to batch: taking one from the
/// pool each time checked it with a query of its own, and its prepared
/// statements stay prepared. Let go after an error (it may be broken).
struct Held {
    pool: Pool,
    conn: Option<PooledConnection<Manager>>,
}

impl Held {
    fn run<T>(
        &mut self,
        work: impl FnOnce(&mut DbConnection) -> QueryResult<T>,
    ) -> Result<T, String> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self
                .conn
                .insert(self.pool.get().map_err(|e| e.to_string())?),
        };
        work(conn).map_err(|e| {
            self.conn = None;
            e.to_string()
        })
    }
}

fn refresh_ledgers(held: &mut Held, ledgers: &Ledgers) {
    if !ledgers.any_limited() {
        return;
    }
    let result = held.run(|c| super::daily::refresh(c, ledgers, crate::db::now()));
    if let Err(e) = result {
        tracing::warn!("cannot re-read used totals; limits count from the last reading: {e}");
    }
}

/// Retries a failed batch (database locked or away) instead of dropping it.
fn write_with_retry(
    held: &mut Held,
    cache: &mut Cache,
    batch: &[UsageRecord],
    last_used: &[(super::last_used::Holder, NaiveDateTime)],
    stopping: bool,
    metrics: &Metrics,
) {
    let mut attempt = 0u32;
    while !batch.is_empty() || !last_used.is_empty() {
        let result = held.run(|c| commit(c, cache, batch, last_used));
        match result {
            Ok(()) => {
                // (A commit of last uses alone is no batch of records.)
                if !batch.is_empty() {
                    metrics.usage_batches.inc();
                }
                return;
            }
            Err(e) => {
                attempt += 1;
                metrics.usage_write_failures.inc();
                tracing::warn!(records = batch.len(), attempt, "cannot write usage: {e}");
                if stopping && attempt >= 5 {
                    tracing::error!(records = batch.len(), "giving up on usage records at stop");
                    return;
                }
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempt.min(10))));
            }
        }
    }
}

/// Stores a batch with each of its users' last use.
pub fn write_batch(conn: &mut DbConnection, batch: &[UsageRecord]) -> QueryResult<()> {
    let mut last_used = LastUsed::default();
    last_used.saw(batch);
    commit(conn, &mut Cache::default(), batch, &last_used.due(true))
}

/// Stores a batch and the given users' last use in one transaction; if
/// another writer took some of the batch's keys, once more with keys read
/// from the table.
fn commit(
    conn: &mut DbConnection,
    cache: &mut Cache,
    batch: &[UsageRecord],
    last_used: &[(super::last_used::Holder, NaiveDateTime)],
) -> QueryResult<()> {
    cache.learn(conn, batch)?;
    // Other instances writing the same milliseconds under load can take
    // the keys again before this one's retry: a few more, at once, before
    // the writer's slower retries.
    let mut conflicts = 0;
    loop {
        match commit_once(conn, cache, batch, last_used) {
            Err(e) if records::is_conflict(&e) && conflicts < 5 => {
                conflicts += 1;
                records::after_conflict(conn, cache, batch)?;
            }
            done => return done,
        }
    }
}

fn commit_once(
    conn: &mut DbConnection,
    cache: &mut Cache,
    batch: &[UsageRecord],
    last_used: &[(super::last_used::Holder, NaiveDateTime)],
) -> QueryResult<()> {
    // Waiting records (sorted last) become charges.
    let plain = batch.partition_point(|r| r.later.is_none());
    let (batch, waiting) = batch.split_at(plain);
    crate::db::transaction(conn, |conn| {
        records::insert(conn, cache, batch)?;
        super::daily::add_batch(conn, batch)?;
        let waiting: Vec<&UsageRecord> = waiting.iter().collect();
        charges::insert(conn, &waiting, crate::db::now())?;
        set_sizes(conn, batch)?;
        for ((name, label), at) in last_used {
            // Never backwards: another instance may have written a later use.
            let user = users::table.filter(users::name.eq(&**name)).filter(
                users::last_used_at
                    .is_null()
                    .or(users::last_used_at.lt(At(*at))),
            );
            diesel::update(user)
                .set(users::last_used_at.eq(At(*at)))
                .execute(conn)?;
            if label.is_empty() {
                continue;
            }
            let owner = users::table
                .filter(users::name.eq(&**name))
                .select(users::id);
            let key = keys::table
                .filter(keys::user_id.eq_any(owner))
                .filter(keys::label.eq(&**label))
                .filter(
                    keys::last_used_at
                        .is_null()
                        .or(keys::last_used_at.lt(At(*at))),
                );
            diesel::update(key)
                .set(keys::last_used_at.eq(At(*at)))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Sets the size (prompt and reply tokens) of the objects records built on
/// or created, for reserving what a request naming them costs.
fn set_sizes(conn: &mut DbConnection, batch: &[UsageRecord]) -> QueryResult<()> {
    let sizes: Vec<(&str, i64)> = batch
        .iter()
        .filter(|r| !r.sized.is_empty())
        .flat_map(|r| {
            let tokens = r.total_tokens.unwrap_or(0);
            r.sized.iter().map(move |id| (&**id, tokens))
        })
        .collect();
    if sizes.is_empty() {
        return Ok(());
    }
    crate::objects::set_tokens(conn, &sizes)
}

/// Writes the records of settled charges, each in the transaction that
/// claims its charge: a charge another instance settled first is skipped.
fn settle(
    held: &mut Held,
    cache: &mut Cache,
    prices: &super::prices::Prices,
    metrics: &Metrics,
    settlements: &[Settlement],
) {
    let result = held.run(|conn| {
        let mut records = charges::records(conn, settlements)?;
        for r in &mut records {
            r.price(prices);
        }
        cache.learn(conn, &records)?;
        for r in &records {
            if write_settled(conn, cache, r)? {
                metrics.usage_settled.inc();
                count_tokens(metrics, std::slice::from_ref(r));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        // The charges still wait: they are looked at again and settled then.
        tracing::warn!("cannot settle waiting charges yet: {e}");
    }
}

/// Writes one settled record in the transaction that claims its charge;
/// whether it was written (false: settled elsewhere first).
fn write_settled(conn: &mut DbConnection, cache: &mut Cache, r: &UsageRecord) -> QueryResult<bool> {
    let one = std::slice::from_ref(r);
    let id = r.later.as_deref().unwrap_or_default();
    let attempt = |conn: &mut DbConnection, cache: &mut Cache| {
        crate::db::transaction(conn, |conn| {
            if !charges::claim(conn, id)? {
                return Ok(false);
            }
            records::insert(conn, cache, one)?;
            super::daily::add_batch(conn, one)?;
            set_sizes(conn, one)?;
            Ok(true)
        })
    };
    match attempt(conn, cache) {
        Err(e) if records::is_conflict(&e) => {
            records::after_conflict(conn, cache, one)?;
            attempt(conn, cache)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::{count_tokens, UsageRecord};
    use crate::metrics::Metrics;

    fn used(model: &str, known: bool, upstream: Option<&str>, p: i64, c: i64) -> UsageRecord {
        UsageRecord {
            model: Some(model.into()),
            model_known: known,
            upstream: upstream.map(Into::into),
            prompt_tokens: Some(p),
            completion_tokens: Some(c),
            ..UsageRecord::default()
        }
    }

    /// Summed per model and upstream within the batch, each series apart.
    #[test]
    fn a_batch_adds_its_tokens_to_each_models_and_upstreams_series() {
        let metrics = Metrics::new();
        let batch = [
            used("gpt-4o", true, Some("a"), 10, 1),
            used("gpt-4o", true, Some("b"), 100, 2),
            used("o3", true, Some("a"), 1000, 3),
            used("gpt-4o", true, Some("a"), 20, 4),
            used("someones-own", false, Some("a"), 5, 5),
            used("elsewhere", false, Some("a"), 7, 6),
            used("refused", true, None, 9, 9),
            used("gpt-4o", true, Some("b"), -50, 0),
        ];
        count_tokens(&metrics, &batch);
        count_tokens(&metrics, &batch[..1]);
        let get = |kind, model, upstream| {
            metrics
                .tokens
                .with_label_values(&[kind, model, upstream])
                .get()
        };
        assert_eq!(get("prompt", "gpt-4o", "a"), 40);
        assert_eq!(get("completion", "gpt-4o", "a"), 6);
        assert_eq!(get("prompt", "gpt-4o", "b"), 100);
        assert_eq!(get("prompt", "o3", "a"), 1000);
        assert_eq!(get("completion", "o3", "a"), 3);
        assert_eq!(get("prompt", "other", "a"), 12);
        assert_eq!(get("completion", "other", "a"), 11);
        assert_eq!(get("prompt", "refused", "-"), 0);
        // An upstream's absurd counts saturate rather than overflow.
        let absurd = [
            used("big", true, Some("a"), i64::MAX, 1),
            used("big", true, Some("a"), i64::MAX, 1),
        ];
        count_tokens(&metrics, &absurd);
        assert_eq!(get("prompt", "big", "a"), i64::MAX as u64);
    }
}
