//! Daily totals per user, model and upstream. The usage writer adds each
//! batch to them in the batch's own transaction; reports and limit periods
//! read them instead of every record.

use super::UsageRecord;
use crate::db::schema::usage_daily::dsl::*;
use crate::db::{execute_prepared, DbConnection};
use crate::limits::LimitPeriod;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::backend::Backend;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Date, Text};
use std::collections::{BTreeMap, HashMap};

/// The sums of one daily row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub estimated_requests: i64,
    pub cached_tokens: i64,
    pub cost_nano_usd: i64,
    /// Requests whose model had a price (a cost of 0 is then a cost).
    pub priced_requests: i64,
}

impl Sums {
    pub fn of(r: &UsageRecord) -> Sums {
        Sums {
            requests: 1,
            errors: i64::from(r.status >= 400),
            prompt_tokens: r.prompt_tokens.unwrap_or(0),
            completion_tokens: r.completion_tokens.unwrap_or(0),
            estimated_requests: i64::from(r.estimated),
            cached_tokens: r.cached_tokens.unwrap_or(0),
            cost_nano_usd: r.cost_nano_usd.unwrap_or(0),
            priced_requests: i64::from(r.cost_nano_usd.is_some()),
        }
    }

    pub fn add(&mut self, o: Sums) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.estimated_requests += o.estimated_requests;
        self.cached_tokens += o.cached_tokens;
        self.cost_nano_usd = self.cost_nano_usd.saturating_add(o.cost_nano_usd);
        self.priced_requests += o.priced_requests;
    }
}

/// What a report adds up: one record, or one day's total, of one user,
/// model and upstream (`""` where there is none).
#[derive(Debug, Clone)]
pub struct Part {
    pub at: NaiveDateTime,
    pub user: String,
    pub model: String,
    pub upstream: String,
    /// The endpoint and the client family: only records have them (the
    /// daily totals are per user, model and upstream); empty otherwise.
    pub endpoint: String,
    pub client: String,
    /// The key's label (records only) and the team ('' for none).
    pub key: String,
    pub team: String,
    pub sums: Sums,
}

type Key<'a> = (NaiveDate, &'a str, &'a str, &'a str, &'a str);

/// Adds a batch to the daily totals: one update (or insert) per key.
pub fn add_batch(conn: &mut DbConnection, batch: &[UsageRecord]) -> QueryResult<()> {
    let mut groups: BTreeMap<Key, Sums> = BTreeMap::new();
    for r in batch {
        let key = (
            r.at.date(),
            &*r.user,
            r.model.as_deref().unwrap_or(""),
            r.upstream.as_deref().unwrap_or(""),
            r.team.as_deref().unwrap_or(""),
        );
        groups.entry(key).or_default().add(Sums::of(r));
    }
    for ((d, u, m, up, t), s) in groups {
        // Update first; a missing row is inserted (within the transaction).
        // The update is prepared once; diesel's ON CONFLICT DO UPDATE would
        // be prepared anew every time, like its UPDATE.
        let update = AddToDay {
            key: (d, u, m, up, t),
            sums: s,
        };
        if execute_prepared(conn, update)? == 0 {
            let insert = diesel::insert_into(usage_daily).values((
                day.eq(d),
                user_name.eq(u),
                model.eq(m),
                upstream.eq(up),
                team.eq(t),
                requests.eq(s.requests),
                errors.eq(s.errors),
                prompt_tokens.eq(s.prompt_tokens),
                completion_tokens.eq(s.completion_tokens),
                estimated_requests.eq(s.estimated_requests),
                cached_tokens.eq(s.cached_tokens),
                cost_nano_usd.eq(s.cost_nano_usd),
                priced_requests.eq(s.priced_requests),
            ));
            execute_prepared(conn, insert)?;
        }
    }
    Ok(())
}

/// `UPDATE usage_daily SET requests = requests + ?, … WHERE day = ? AND …`,
/// written out because diesel never reuses a prepared UPDATE of its own
/// (a changeset may leave columns out); this one runs with every batch, and
/// preparing it anew was about a sixth of a small batch's time.
struct AddToDay<'a> {
    key: Key<'a>,
    sums: Sums,
}

impl<DB> QueryFragment<DB> for AddToDay<'_>
where
    DB: Backend,
    i64: ToSql<BigInt, DB>,
    str: ToSql<Text, DB>,
    NaiveDate: ToSql<Date, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        let s = &self.sums;
        let added = [
            ("requests", &s.requests),
            ("errors", &s.errors),
            ("prompt_tokens", &s.prompt_tokens),
            ("completion_tokens", &s.completion_tokens),
            ("estimated_requests", &s.estimated_requests),
            ("cached_tokens", &s.cached_tokens),
            ("cost_nano_usd", &s.cost_nano_usd),
            ("priced_requests", &s.priced_requests),
        ];
        out.push_sql("UPDATE usage_daily SET ");
        for (i, (column, n)) in added.into_iter().enumerate() {
            out.push_sql(if i == 0 { "" } else { ", " });
            out.push_sql(column);
            out.push_sql(" = ");
            out.push_sql(column);
            out.push_sql(" + ");
            out.push_bind_param::<BigInt, _>(n)?;
        }
        let (d, u, m, up, t) = &self.key;
        out.push_sql(" WHERE day = ");
        out.push_bind_param::<Date, _>(d)?;
        for (column, text) in [
            ("user_name", u),
            ("model", m),
            ("upstream", up),
            ("team", t),
        ] {
            out.push_sql(" AND ");
            out.push_sql(column);
            out.push_sql(" = ");
            out.push_bind_param::<Text, _>(*text)?;
        }
        Ok(())
    }
}

impl QueryId for AddToDay<'_> {
    type QueryId = AddToDay<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// Sets each limited user's ledger to what the daily totals say they used
/// in their current period.
pub fn refresh(
    conn: &mut DbConnection,
    ledgers: &crate::limits::Ledgers,
    now: chrono::NaiveDateTime,
) -> QueryResult<()> {
    refresh_of(conn, ledgers.users(), Of::Users, now)?;
    refresh_of(conn, ledgers.teams(), Of::Teams, now)
}

/// Whose daily totals: users' (by `user_name`) or teams' (by `team`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Of {
    Users,
    Teams,
}

fn refresh_of(
    conn: &mut DbConnection,
    ledgers: &crate::limits::ByName,
    of: Of,
    now: chrono::NaiveDateTime,
) -> QueryResult<()> {
    let limited = ledgers.limited();
    if limited.is_empty() {
        return Ok(());
    }
    let periods: Vec<_> = limited
        .iter()
        .map(|(name, limits, _)| (name.clone(), limits.period))
        .collect();
    let used = used_in_periods(conn, &periods, of, now)?;
    // Work that finishes later holds what it reserved until it is settled,
    // on every instance.
    let waiting = super::charges::held_by(conn, of)?;
    for (name, _, ledger) in &limited {
        let u = used.get(name).copied().unwrap_or_default();
        let [held_requests, held_tokens, held_usd] = waiting.get(name).copied().unwrap_or_default();
        ledger.set_used(
            u.requests.saturating_add(held_requests),
            u.tokens.saturating_add(held_tokens),
            u.nano_usd.saturating_add(held_usd),
        );
    }
    Ok(())
}

/// What `name` (a user, or a team) used in its current period, with
/// what work that finishes later holds: what its limits count, read
/// now (the lease keeper's, under the subject's lock).
pub fn used_now(
    conn: &mut DbConnection,
    name: &str,
    period: LimitPeriod,
    of: Of,
    now: chrono::NaiveDateTime,
) -> QueryResult<Used> {
    let used = used_in_periods(conn, &[(name.to_owned(), period)], of, now)?;
    let u = used.get(name).copied().unwrap_or_default();
    let waiting = super::charges::held_by(conn, of)?;
    let [r, t, usd] = waiting.get(name).copied().unwrap_or_default();
    Ok(Used {
        requests: u.requests.saturating_add(r),
        tokens: u.tokens.saturating_add(t),
        nano_usd: u.nano_usd.saturating_add(usd),
    })
}

/// What a user used in a stretch of days: what limits count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Queryable)]
pub struct Used {
    pub requests: i64,
    pub tokens: i64,
    pub nano_usd: i64,
}

/// What each user used in their own current period, from the daily
/// totals: one grouped query per kind of period, however many users.
pub fn used_this_period(
    conn: &mut DbConnection,
    users: &[(String, LimitPeriod)],
    now: chrono::NaiveDateTime,
) -> QueryResult<HashMap<String, Used>> {
    used_in_periods(conn, users, Of::Users, now)
}

/// What each team used in its own current period (the sum of what its
/// members used while in it).
pub fn used_by_teams_this_period(
    conn: &mut DbConnection,
    teams: &[(String, LimitPeriod)],
    now: chrono::NaiveDateTime,
) -> QueryResult<HashMap<String, Used>> {
    used_in_periods(conn, teams, Of::Teams, now)
}

fn used_in_periods(
    conn: &mut DbConnection,
    users: &[(String, LimitPeriod)],
    of: Of,
    now: chrono::NaiveDateTime,
) -> QueryResult<HashMap<String, Used>> {
    let mut out = HashMap::with_capacity(users.len());
    for period in [LimitPeriod::Total, LimitPeriod::Month, LimitPeriod::Day] {
        let names: Vec<String> = users
            .iter()
            .filter(|u| u.1 == period)
            .map(|u| u.0.clone())
            .collect();
        if names.is_empty() {
            continue;
        }
        for (name, used) in used_by(conn, &names, of, period.start(now).date(), None)? {
            out.insert(name, used);
        }
    }
    Ok(out)
}

/// What a user used from day `since` until before day `until`
/// (open-ended without), from the daily totals.
pub fn used_between(
    conn: &mut DbConnection,
    name: &str,
    since: NaiveDate,
    until: Option<NaiveDate>,
) -> QueryResult<Used> {
    let used = used_by(conn, &[name.to_owned()], Of::Users, since, until)?;
    Ok(used.first().map_or_else(Used::default, |(_, u)| *u))
}

/// What each of `names` that used anything used from day
/// `since` until before day `until`, from the daily totals. Requests the
/// gateway refused itself never reached an upstream and do not count; a
/// request counts against a request limit only if it reached a model
/// (model lists and object reads have none), its tokens and cost always.
pub fn used_by(
    conn: &mut DbConnection,
    names: &[String],
    of: Of,
    since: NaiveDate,
    until: Option<NaiveDate>,
) -> QueryResult<Vec<(String, Used)>> {
    let until = until.unwrap_or_else(|| crate::db::end_of_time().date());
    let d = conn.dialect();
    let sums = (
        sql::<BigInt>(&d.sum("CASE WHEN model <> '' THEN requests ELSE 0 END")),
        sql::<BigInt>(&d.sum("prompt_tokens + completion_tokens")),
        sql::<BigInt>(&d.sum("cost_nano_usd")),
    );
    // Many names are not bound one by one (SQLite takes at most 32,766
    // parameters): everyone's sums are read in the one query, and the
    // others dropped here.
    let many = names.len() > MANY_NAMES;
    macro_rules! sums_by {
        ($column:expr) => {{
            let mut q = usage_daily
                .filter(day.ge(since))
                .filter(day.lt(until))
                .filter(upstream.ne(""))
                .filter($column.ne(""))
                .group_by($column)
                .select(($column, sums))
                .into_boxed();
            if !many {
                q = q.filter($column.eq_any(names));
            }
            q.load::<(String, Used)>(conn)?
        }};
    }
    let rows = match of {
        Of::Users => sums_by!(user_name),
        Of::Teams => sums_by!(team),
    };
    if !many {
        return Ok(rows);
    }
    let wanted: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    Ok(rows
        .into_iter()
        .filter(|(name, _)| wanted.contains(name.as_str()))
        .collect())
}

/// Above this many names, a query reads every user's sums instead.
const MANY_NAMES: usize = 1000;
