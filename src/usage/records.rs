//! The per-request records as stored: rows of integers (migration
//! 000008_compact_records). Names (users, models, upstreams,
//! "METHOD /endpoint") live once in `usage_names` and are referred to by
//! id; a request id shaped like OpenAI's (and the gateway's own) is kept
//! as its 16 bytes. The key is the time: milliseconds since 1970 (UTC)
//! × 1000 plus the record's place among those of its millisecond, so a
//! time range is a range of keys and needs no index of its own. Everything
//! that reads or writes `usage_records` goes through here.

use super::daily::{Part, Sums};
use super::range::Range;
use super::UsageRecord;
use crate::db::schema::{usage_names, usage_records};
use crate::db::{execute_prepared, DbConnection};
use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Binary, Bool, Integer, Nullable, Text};
use std::collections::{HashMap, HashSet};

pub fn millis(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_millis()
}

/// The time a record is stamped with, to the millisecond as it is stored
/// (so that a user's last use is exactly their last record's time).
pub fn now() -> NaiveDateTime {
    from_millis(millis(chrono::Utc::now().naive_utc()))
}

pub fn from_millis(ms: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .naive_utc()
}

/// `req_` and 32 lowercase hex digits as their 16 bytes; any other id as
/// text (Anthropic's, Azure's, a client's).
fn split_id(id: &str) -> (Option<Vec<u8>>, Option<String>) {
    let hex = id
        .strip_prefix("req_")
        .filter(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    // 32 hex digits are one u128 (the hex crate's decoder cost ten times more).
    match hex.and_then(|h| u128::from_str_radix(h, 16).ok()) {
        Some(n) => (Some(n.to_be_bytes().to_vec()), None),
        None => (None, Some(id.to_owned())),
    }
}

fn join_id(bytes: Option<Vec<u8>>, text: Option<String>) -> Option<String> {
    match bytes {
        Some(b) => Some(format!("req_{}", hex::encode(b))),
        None => text,
    }
}

/// The name a record's method and endpoint are stored under.
fn endpoint_name(into: &mut String, method: &str, endpoint: &str) {
    into.clear();
    into.push_str(method);
    into.push(' ');
    into.push_str(endpoint);
}

/// What the writer remembers between batches: the ids of the names it
/// has seen (names are never deleted or renamed, so a cached id stays
/// right), and for each recent millisecond the next place in it. Both are
/// emptied when they grow large (paths that name objects are many; a key
/// given twice then is caught as a conflict, and read back).
#[derive(Default)]
pub struct Cache {
    ids: foldhash::HashMap<Box<str>, i64>,
    places: foldhash::HashMap<i64, i64>,
    scratch: String,
}

const MAX_CACHED: usize = 100_000;
/// Records a millisecond holds; more (a thousand requests begun in one
/// millisecond) go on into the next one.
const PLACES: i64 = 1000;

/// The first key of millisecond `ms`.
fn key_of(ms: i64) -> i64 {
    ms.saturating_mul(PLACES)
}

/// The records of a time range: a range of keys.
fn within(
    range: Range,
) -> diesel::dsl::And<
    diesel::dsl::GtEq<usage_records::id, i64>,
    diesel::dsl::Lt<usage_records::id, i64>,
> {
    usage_records::id
        .ge(key_of(millis(range.since)))
        .and(usage_records::id.lt(key_of(millis(range.until))))
}

/// The key's time.
fn time_of(key: i64) -> NaiveDateTime {
    from_millis(key.div_euclid(PLACES))
}

impl Cache {
    /// A key for a record of time `at` that this writer has not given yet.
    fn key(&mut self, at: NaiveDateTime) -> i64 {
        if self.places.len() > MAX_CACHED {
            self.places.clear();
        }
        let mut ms = millis(at);
        loop {
            let next = self.places.entry(ms).or_insert(0);
            if *next < PLACES {
                *next += 1;
                return key_of(ms) + *next - 1;
            }
            ms += 1;
        }
    }

    /// Another writer (an instance on the same database, or this one
    /// after it forgot) took keys of the batch's milliseconds: their next
    /// places are read from the table, which is right again once the
    /// failed transaction is rolled back.
    fn read_places(&mut self, conn: &mut DbConnection, batch: &[UsageRecord]) -> QueryResult<()> {
        let mut seen = HashSet::new();
        for r in batch {
            let mut ms = millis(r.at);
            while seen.insert(ms) {
                let last: Option<i64> = usage_records::table
                    .filter(usage_records::id.ge(key_of(ms)))
                    .filter(usage_records::id.lt(key_of(ms + 1)))
                    .select(diesel::dsl::max(usage_records::id))
                    .first(conn)?;
                let next = last.map_or(0, |l| l.rem_euclid(PLACES) + 1);
                self.places.insert(ms, next);
                if next < PLACES {
                    break;
                }
                ms += 1;
            }
        }
        Ok(())
    }

    /// Gives every name `batch` uses an id, inserting new ones (committed
    /// at once, outside the batch's transaction: an id in the cache is
    /// always in the database, whatever becomes of the batch).
    pub fn learn(&mut self, conn: &mut DbConnection, batch: &[UsageRecord]) -> QueryResult<()> {
        let mut missing: HashSet<String> = HashSet::new();
        for r in batch {
            endpoint_name(&mut self.scratch, r.method, &r.endpoint);
            let names = [
                Some(&*r.user),
                Some(self.scratch.as_str()),
                r.model.as_deref(),
                r.upstream.as_deref(),
                (!r.client.is_empty()).then_some(r.client),
                (!r.key.is_empty()).then_some(&*r.key),
                r.team.as_deref(),
            ];
            for name in names.into_iter().flatten() {
                if !self.ids.contains_key(name) && !missing.contains(name) {
                    missing.insert(name.to_owned());
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if self.ids.len() + missing.len() > MAX_CACHED {
            self.ids.clear();
        }
        let missing: Vec<String> = missing.into_iter().collect();
        for chunk in missing.chunks(1000) {
            for name in chunk {
                // Another instance may have inserted it meanwhile: then its id is read.
                let inserted = diesel::insert_into(usage_names::table)
                    .values(usage_names::name.eq(name))
                    .execute(conn);
                match inserted {
                    Ok(_)
                    | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
                    Err(e) => return Err(e),
                }
            }
            let found: Vec<(i64, String)> = usage_names::table
                .filter(usage_names::name.eq_any(chunk))
                .select((usage_names::id, usage_names::name))
                .load(conn)?;
            for (id, name) in found {
                self.ids.insert(name.into_boxed_str(), id);
            }
        }
        Ok(())
    }

    fn id(&self, name: &str) -> QueryResult<i64> {
        self.ids
            .get(name)
            .copied()
            .ok_or_else(|| DieselError::QueryBuilderError(format!("no id for `{name}`").into()))
    }

    fn row(&mut self, r: &UsageRecord) -> QueryResult<NewRecord> {
        let id = self.key(r.at);
        endpoint_name(&mut self.scratch, r.method, &r.endpoint);
        let (request_hex, request_id) = match r.request_id.as_deref() {
            Some(id) => split_id(id),
            None => (None, None),
        };
        Ok(NewRecord {
            id,
            user_id: self.id(&r.user)?,
            endpoint_id: self.id(&self.scratch)?,
            model_id: r.model.as_deref().map(|m| self.id(m)).transpose()?,
            upstream_id: r.upstream.as_deref().map(|u| self.id(u)).transpose()?,
            status: i32::from(r.status),
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            cached_tokens: r.cached_tokens,
            cost_nano_usd: r.cost_nano_usd,
            estimated: r.estimated,
            stream: r.stream,
            latency_ms: r.latency_ms,
            request_hex,
            request_id,
            client_id: (!r.client.is_empty())
                .then(|| self.id(r.client))
                .transpose()?,
            key_id: (!r.key.is_empty()).then(|| self.id(&r.key)).transpose()?,
            team_id: r.team.as_deref().map(|t| self.id(t)).transpose()?,
        })
    }
}

/// A usage row as inserted.
struct NewRecord {
    id: i64,
    user_id: i64,
    endpoint_id: i64,
    model_id: Option<i64>,
    upstream_id: Option<i64>,
    status: i32,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    cached_tokens: Option<i64>,
    cost_nano_usd: Option<i64>,
    estimated: bool,
    stream: bool,
    latency_ms: i64,
    request_hex: Option<Vec<u8>>,
    request_id: Option<String>,
    client_id: Option<i64>,
    key_id: Option<i64>,
    team_id: Option<i64>,
}

/// `INSERT INTO usage_records (…) VALUES (…), … ` for `N` rows, written
/// out: diesel's own multi-row INSERT has no static query id, so every run
/// built its SQL text again (256 rows of placeholders) only to find the
/// prepared statement, and walked every row twice more. This one is found
/// by its type, and a run only binds the values.
struct InsertRows<'a, const N: usize>(&'a [NewRecord; N]);

/// The query id of `InsertRows<N>`: one prepared statement per `N`.
struct InsertRowsId<const N: usize>;

impl<const N: usize> QueryId for InsertRows<'_, N> {
    type QueryId = InsertRowsId<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, const N: usize> QueryFragment<DB> for InsertRows<'_, N>
where
    DB: Backend + diesel::sql_types::HasSqlType<Bool>,
    i64: ToSql<BigInt, DB>,
    i32: ToSql<Integer, DB>,
    bool: ToSql<Bool, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    Option<Vec<u8>>: ToSql<Nullable<Binary>, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO usage_records (id, user_id, endpoint_id, model_id, upstream_id, \
             status, prompt_tokens, completion_tokens, cached_tokens, cost_nano_usd, \
             estimated, stream, latency_ms, request_hex, request_id, client_id, key_id, \
             team_id) VALUES ",
        );
        for (i, r) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<BigInt, _>(&r.id)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&r.user_id)?;
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&r.endpoint_id)?;
            for n in [&r.model_id, &r.upstream_id] {
                out.push_sql(", ");
                out.push_bind_param::<Nullable<BigInt>, _>(n)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Integer, _>(&r.status)?;
            for n in [
                &r.prompt_tokens,
                &r.completion_tokens,
                &r.cached_tokens,
                &r.cost_nano_usd,
            ] {
                out.push_sql(", ");
                out.push_bind_param::<Nullable<BigInt>, _>(n)?;
            }
            for b in [&r.estimated, &r.stream] {
                out.push_sql(", ");
                out.push_bind_param::<Bool, _>(b)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(&r.latency_ms)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Binary>, _>(&r.request_hex)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Text>, _>(&r.request_id)?;
            for n in [&r.client_id, &r.key_id, &r.team_id] {
                out.push_sql(", ");
                out.push_bind_param::<Nullable<BigInt>, _>(n)?;
            }
            out.push_sql(")");
        }
        Ok(())
    }

    // Nothing in it changes from run to run but the values.
    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

/// Inserts the records (their names learned), in a transaction of the
/// caller's. A key another writer took makes the insert fail (a unique
/// violation): `after_conflict` then reads the places taken, and the
/// caller tries again.
pub fn insert(
    conn: &mut DbConnection,
    cache: &mut Cache,
    batch: &[UsageRecord],
) -> QueryResult<()> {
    let rows = batch
        .iter()
        .map(|r| cache.row(r))
        .collect::<QueryResult<Vec<_>>>()?;
    // Many rows per statement, in statements of a few fixed sizes: diesel
    // prepares each size once per connection and reuses it, where one of
    // any other size is built and parsed anew. 256 rows × 15 columns stays
    // well under SQLite's 32,766 bound parameters.
    let mut rest = &rows[..];
    rest = insert_fixed::<256>(conn, rest)?;
    rest = insert_fixed::<32>(conn, rest)?;
    rest = insert_fixed::<4>(conn, rest)?;
    insert_fixed::<1>(conn, rest)?;
    Ok(())
}

/// After a batch's keys were taken: reads the places its milliseconds
/// have left.
pub fn after_conflict(
    conn: &mut DbConnection,
    cache: &mut Cache,
    batch: &[UsageRecord],
) -> QueryResult<()> {
    cache.read_places(conn, batch)
}

/// Whether an error is a key taken by another writer.
pub fn is_conflict(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// Inserts `rows` in statements of `N` rows; returns the fewer than `N` left.
fn insert_fixed<'r, const N: usize>(
    conn: &mut DbConnection,
    rows: &'r [NewRecord],
) -> QueryResult<&'r [NewRecord]> {
    let mut chunks = rows.chunks_exact(N);
    for chunk in &mut chunks {
        let chunk: &[NewRecord; N] = chunk.try_into().expect("chunks_exact gives N rows");
        execute_prepared(conn, InsertRows(chunk))?;
    }
    Ok(chunks.remainder())
}

/// The names of `ids`, one query per thousand.
fn names_of(conn: &mut DbConnection, ids: HashSet<i64>) -> QueryResult<HashMap<i64, String>> {
    let ids: Vec<i64> = ids.into_iter().collect();
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(1000) {
        let rows: Vec<(i64, String)> = usage_names::table
            .filter(usage_names::id.eq_any(chunk))
            .select((usage_names::id, usage_names::name))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

/// The ids of `names` (those that have one).
fn ids_of(conn: &mut DbConnection, names: &[String]) -> QueryResult<Vec<i64>> {
    usage_names::table
        .filter(usage_names::name.eq_any(names))
        .select(usage_names::id)
        .load(conn)
}

type Row = (
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    i32,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    bool,
    bool,
    i64,
    Option<Vec<u8>>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// One record as read back, its names and request id restored.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: i64,
    pub at: NaiveDateTime,
    pub request_id: Option<String>,
    pub user: String,
    pub method: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub upstream: Option<String>,
    pub status: i32,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    pub cost_nano_usd: Option<i64>,
    pub estimated: bool,
    pub stream: bool,
    pub latency_ms: i64,
    /// The client family, where one was recorded.
    pub client: Option<String>,
    /// The label of the key it came through, where one was recorded.
    pub key: Option<String>,
    /// The team its user belonged to then.
    pub team: Option<String>,
}

impl Stored {
    /// Prompt and completion tokens together, where both were counted.
    pub fn total_tokens(&self) -> Option<i64> {
        Some(self.prompt_tokens? + self.completion_tokens?)
    }
}

/// The records in `range` (of `users` only, unless empty), oldest first.
pub fn load(conn: &mut DbConnection, range: Range, users: &[String]) -> QueryResult<Vec<Stored>> {
    use usage_records as t;
    let mut q = t::table
        .filter(within(range))
        .order(t::id.asc())
        .select((
            t::id,
            t::user_id,
            t::endpoint_id,
            t::model_id,
            t::upstream_id,
            t::status,
            t::prompt_tokens,
            t::completion_tokens,
            t::cached_tokens,
            t::cost_nano_usd,
            t::estimated,
            t::stream,
            t::latency_ms,
            t::request_hex,
            t::request_id,
            t::client_id,
            t::key_id,
            t::team_id,
        ))
        .into_boxed();
    if !users.is_empty() {
        q = q.filter(t::user_id.eq_any(ids_of(conn, users)?));
    }
    let rows: Vec<Row> = q.load(conn)?;
    let mut wanted = HashSet::new();
    for r in &rows {
        wanted.extend(
            [Some(r.1), Some(r.2), r.3, r.4, r.15, r.16, r.17]
                .into_iter()
                .flatten(),
        );
    }
    let names = names_of(conn, wanted)?;
    let name = |id: i64| names.get(&id).cloned().unwrap_or_default();
    Ok(rows
        .into_iter()
        .map(|r| {
            let route = name(r.2);
            let (method, path) = route.split_once(' ').unwrap_or(("", &route));
            Stored {
                id: r.0,
                at: time_of(r.0),
                user: name(r.1),
                method: method.to_owned(),
                endpoint: path.to_owned(),
                model: r.3.map(name),
                upstream: r.4.map(name),
                status: r.5,
                prompt_tokens: r.6,
                completion_tokens: r.7,
                cached_tokens: r.8,
                cost_nano_usd: r.9,
                estimated: r.10,
                stream: r.11,
                latency_ms: r.12,
                request_id: join_id(r.13, r.14),
                client: r.15.map(name),
                key: r.16.map(name),
                team: r.17.map(name),
            }
        })
        .collect())
}

/// What a report adds up of the records in `range` (of `users` only,
/// unless empty): their sums per day, user, model and upstream (reports
/// group by no finer time), read without a string per record.
pub fn sums_by_day(
    conn: &mut DbConnection,
    range: Range,
    users: &[String],
    teams: &[String],
) -> QueryResult<Vec<Part>> {
    use usage_records as t;
    let mut q = t::table
        .filter(within(range))
        .select((
            t::id,
            t::user_id,
            t::model_id,
            t::upstream_id,
            t::status,
            t::prompt_tokens,
            t::completion_tokens,
            t::cached_tokens,
            t::cost_nano_usd,
            t::estimated,
            t::endpoint_id,
            t::client_id,
            t::key_id,
            t::team_id,
        ))
        .into_boxed();
    if !users.is_empty() {
        q = q.filter(t::user_id.eq_any(ids_of(conn, users)?));
    }
    if !teams.is_empty() {
        q = q.filter(t::team_id.eq_any(ids_of(conn, teams)?));
    }
    type Summed = (
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        i32,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        bool,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    /// Day, user, model, upstream, endpoint, client, key, team.
    type DayKey = (
        chrono::NaiveDate,
        i64,
        Option<i64>,
        Option<i64>,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let mut days: HashMap<DayKey, Sums> = HashMap::new();
    // Row by row, not a vector of them all: a month holds millions.
    let rows = q.load_iter::<Summed, diesel::connection::DefaultLoadingMode>(conn)?;
    for row in rows {
        let (
            id,
            user,
            model,
            upstream,
            status,
            p,
            c,
            cached,
            cost,
            est,
            endpoint,
            client,
            key,
            team,
        ) = row?;
        let day = time_of(id).date();
        days.entry((day, user, model, upstream, endpoint, client, key, team))
            .or_default()
            .add(Sums {
                requests: 1,
                errors: i64::from(status >= 400),
                prompt_tokens: p.unwrap_or(0),
                completion_tokens: c.unwrap_or(0),
                estimated_requests: i64::from(est),
                cached_tokens: cached.unwrap_or(0),
                cost_nano_usd: cost.unwrap_or(0),
                priced_requests: i64::from(cost.is_some()),
            });
    }
    let mut wanted = HashSet::new();
    for (_, user, model, upstream, endpoint, client, key, team) in days.keys() {
        wanted.extend(
            [
                Some(*user),
                *model,
                *upstream,
                Some(*endpoint),
                *client,
                *key,
                *team,
            ]
            .into_iter()
            .flatten(),
        );
    }
    let names = names_of(conn, wanted)?;
    let name = |id: Option<i64>| id.and_then(|i| names.get(&i).cloned()).unwrap_or_default();
    Ok(days
        .into_iter()
        .map(
            |((day, user, model, upstream, endpoint, client, key, team), sums)| {
                // Reports name an endpoint without its method, as the log does.
                let route = name(Some(endpoint));
                let path = route.split_once(' ').map_or(route.as_str(), |(_, p)| p);
                Part {
                    at: super::range::midnight(day),
                    user: name(Some(user)),
                    model: name(model),
                    upstream: name(upstream),
                    endpoint: path.to_owned(),
                    client: name(client),
                    key: name(key),
                    team: name(team),
                    sums,
                }
            },
        )
        .collect())
}

/// Every record, oldest first.
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<Stored>> {
    let everything = Range {
        since: crate::db::beginning_of_time(),
        until: crate::db::end_of_time(),
    };
    load(conn, everything, &[])
}

/// How many per-request records lie before `before`.
pub fn count_before(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<i64> {
    usage_records::table
        .filter(usage_records::id.lt(key_of(millis(before))))
        .count()
        .get_result(conn)
}

/// Deletes the per-request records before `before`; daily totals stay.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(usage_records::table.filter(usage_records::id.lt(key_of(millis(before)))))
        .execute(conn)
}

/// Deletes up to `limit` of the records before `before` (the pruner's
/// chunks); returns how many.
pub fn prune_some(
    conn: &mut DbConnection,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<usize> {
    let end = key_of(millis(before));
    let last: Option<i64> = usage_records::table
        .filter(usage_records::id.lt(end))
        .order(usage_records::id.asc())
        .offset(limit - 1)
        .select(usage_records::id)
        .first(conn)
        .optional()?;
    let until = last.map_or(end, |l| l + 1);
    diesel::delete(usage_records::table.filter(usage_records::id.lt(until))).execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_round_trip() {
        for id in [
            "req_45e335096e208bc20000000000000000",
            "req_011CVabcXYZ",
            "req_45E335096E208BC20000000000000000",
            "req_45e335096e208bc2000000000000000",
            "chatcmpl-1",
            "",
        ] {
            let (bytes, text) = split_id(id);
            assert_eq!(bytes.is_some(), id.len() == 36 && id == id.to_lowercase());
            assert_eq!(join_id(bytes, text).as_deref(), Some(id));
        }
    }

    #[test]
    fn times_keep_milliseconds() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_milli_opt(17, 40, 42, 609)
            .unwrap();
        assert_eq!(from_millis(millis(t)), t);
        assert_eq!(millis(t) % 1000, 609);
    }
}
