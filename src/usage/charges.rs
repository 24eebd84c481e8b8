//! Charges: usage records of work that finishes after its reply (a
//! background response, a stored response whose stream was cut), waiting
//! for the real usage. Each row keeps its record (with the tokens to
//! charge if the real ones never come) and what it holds of its user's
//! limits, which every instance counts as used until it is settled. A row
//! is settled exactly once: it is deleted in the transaction that writes
//! its record, and a transaction that finds it gone writes nothing.

use super::{Extras, Tokens, UsageRecord};
use crate::db::moment::At;
use crate::db::schema::charges;
use crate::db::DbConnection;
use chrono::{Duration, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// How long a charge waits for its real usage before it is settled with
/// its fallback (a background job runs for minutes, rarely hours).
pub const SETTLE_WITHIN: Duration = Duration::hours(24);

/// The longest wait between two looks at one charge: a finished job is
/// charged within this (and a tick) of finishing.
pub const MAX_POLL_GAP: std::time::Duration = std::time::Duration::from_secs(20);

/// A record as it waits: every field needed to write it later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Waiting {
    at: NaiveDateTime,
    request_id: Option<String>,
    method: String,
    endpoint: String,
    model: Option<String>,
    status: u16,
    stream: bool,
    latency_ms: i64,
    /// What to charge if the real usage never comes (the estimate of what
    /// was delivered, or the reservation's guess).
    fallback: Option<[i64; 4]>,
    extras: Extras,
    sized: Vec<String>,
    #[serde(default)]
    client: String,
    #[serde(default)]
    key: String,
}

/// A charge due to be looked at.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: String,
    pub upstream: String,
    pub created_at: NaiveDateTime,
}

/// The real usage of a charge's object, as the upstream reports it once
/// the work is done; `None`: it cannot be had (deleted, never reported,
/// too late), so the fallback is charged, marked estimated.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub id: Box<str>,
    pub usage: Option<(Tokens, Extras)>,
}

/// Adds waiting records (`r.later` set) with what their reservations
/// hold: one row each, keyed by the object they wait for. A second record
/// for the same object (a replayed reply) leaves the first.
pub fn insert(
    conn: &mut DbConnection,
    records: &[&UsageRecord],
    now: NaiveDateTime,
) -> QueryResult<()> {
    for r in records {
        let Some(id) = &r.later else { continue };
        let waiting = Waiting {
            at: r.at,
            request_id: r.request_id.as_deref().map(str::to_owned),
            method: r.method.to_owned(),
            endpoint: r.endpoint.clone(),
            model: r.model.clone(),
            status: r.status,
            stream: r.stream,
            latency_ms: r.latency_ms,
            fallback: r.prompt_tokens.map(|p| {
                [
                    p,
                    r.completion_tokens.unwrap_or(0),
                    r.cached_tokens.unwrap_or(0),
                    r.cache_written_tokens.unwrap_or(0),
                ]
            }),
            extras: r.extras.as_deref().copied().unwrap_or_default(),
            sized: r.sized.iter().map(|s| s.to_string()).collect(),
            client: r.client.to_owned(),
            key: r.key.to_string(),
        };
        let (tokens, nano_usd) = r.reservation.as_ref().map_or((0, 0), |h| h.held());
        let row = (
            charges::id.eq(&**id),
            charges::user_name.eq(&*r.user),
            charges::team_name.eq(r.team.as_deref().unwrap_or_default()),
            charges::upstream.eq(r.upstream.as_deref().unwrap_or_default()),
            charges::record.eq(serde_json::to_string(&waiting).expect("a record serializes")),
            charges::reserved_tokens.eq(tokens),
            charges::reserved_nano_usd.eq(nano_usd),
            charges::created_at.eq(At(now)),
            charges::next_poll_at.eq(At(now + Duration::seconds(1))),
            charges::polls.eq(0),
        );
        let exists = charges::table
            .filter(charges::id.eq(&**id))
            .count()
            .get_result::<i64>(conn)?
            > 0;
        if !exists {
            diesel::insert_into(charges::table)
                .values(row)
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Takes up to `limit` charges due at `now` for this instance to look at:
/// each one's next look is moved on (backing off from 1 s to
/// `MAX_POLL_GAP`), so that other instances leave it meanwhile.
pub fn take_due(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<Due>> {
    let rows: Vec<(String, String, NaiveDateTime, i64, NaiveDateTime)> = charges::table
        .filter(charges::next_poll_at.le(At(now)))
        .order(charges::next_poll_at.asc())
        .limit(limit)
        .select((
            charges::id,
            charges::upstream,
            charges::created_at,
            charges::polls,
            charges::next_poll_at,
        ))
        .load(conn)?;
    let mut due = Vec::with_capacity(rows.len());
    for (id, upstream, created_at, polls, was) in rows {
        let gap = std::time::Duration::from_secs(1u64 << polls.clamp(0, 5)).min(MAX_POLL_GAP);
        let next = now + Duration::from_std(gap).unwrap_or(Duration::seconds(20));
        // Taken only if no other instance moved it first.
        let took = diesel::update(
            charges::table
                .filter(charges::id.eq(&id))
                .filter(charges::next_poll_at.eq(At(was))),
        )
        .set((
            charges::next_poll_at.eq(At(next)),
            charges::polls.eq(polls + 1),
        ))
        .execute(conn)?;
        if took == 1 {
            due.push(Due {
                id,
                upstream,
                created_at,
            });
        }
    }
    Ok(due)
}

/// The records of `settled` charges that still wait, with their real
/// usage (or their fallback, estimated), ready to be written; read before
/// the transaction that writes them (and `claim`s them).
pub fn records(conn: &mut DbConnection, settled: &[Settlement]) -> QueryResult<Vec<UsageRecord>> {
    let ids: Vec<&str> = settled.iter().map(|s| &*s.id).collect();
    let rows: Vec<(String, String, String, String, String)> = charges::table
        .filter(charges::id.eq_any(&ids))
        .select((
            charges::id,
            charges::user_name,
            charges::upstream,
            charges::record,
            charges::team_name,
        ))
        .load(conn)?;
    let by_id: HashMap<&str, &Settlement> = settled.iter().map(|s| (&*s.id, s)).collect();
    let mut out = Vec::with_capacity(rows.len());
    for (id, user, upstream, record, team) in rows {
        let Ok(w) = serde_json::from_str::<Waiting>(&record) else {
            tracing::error!(charge = %id, "a waiting usage record cannot be read; dropped");
            continue;
        };
        let Some(settlement) = by_id.get(id.as_str()) else {
            continue;
        };
        let mut r = UsageRecord {
            at: w.at,
            request_id: w.request_id.map(Box::from),
            user: Arc::from(user.as_str()),
            key: Arc::from(w.key.as_str()),
            team: (!team.is_empty()).then(|| Arc::from(team.as_str())),
            client: super::client::FAMILIES
                .into_iter()
                .find(|f| *f == w.client)
                .unwrap_or(""),
            method: method_name(&w.method),
            endpoint: w.endpoint,
            model: w.model,
            upstream: (!upstream.is_empty()).then(|| Arc::from(upstream.as_str())),
            status: w.status,
            stream: w.stream,
            latency_ms: w.latency_ms,
            later: Some(Box::from(id.as_str())),
            // The response it waited for is sized by it too.
            sized: w
                .sized
                .into_iter()
                .map(Box::from)
                .chain(std::iter::once(Box::from(id.as_str())))
                .collect(),
            ..UsageRecord::default()
        };
        match settlement.usage {
            Some((tokens, extras)) => {
                r.set_tokens(tokens);
                r.extras = Some(Box::new(extras));
            }
            None => {
                let [prompt, completion, cached, cache_written] = w.fallback.unwrap_or_default();
                r.set_tokens(Tokens {
                    prompt,
                    completion,
                    cached,
                    cache_written,
                });
                r.extras = Some(Box::new(w.extras));
                r.estimated = true;
            }
        }
        out.push(r);
    }
    Ok(out)
}

/// Claims the charge of `id` for the transaction that writes its record:
/// whether it was still waiting (false: another writer settled it).
pub fn claim(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    Ok(diesel::delete(charges::table.filter(charges::id.eq(id))).execute(conn)? == 1)
}

/// What every user's (or team's) waiting charges hold: (requests,
/// tokens, nano-USD).
pub fn held_by(
    conn: &mut DbConnection,
    of: super::daily::Of,
) -> QueryResult<HashMap<String, [i64; 3]>> {
    let d = conn.dialect();
    let sums = (
        sql::<BigInt>(&d.int("COUNT(*)")),
        sql::<BigInt>(&d.sum("reserved_tokens")),
        sql::<BigInt>(&d.sum("reserved_nano_usd")),
    );
    let rows: Vec<(String, i64, i64, i64)> = match of {
        super::daily::Of::Users => charges::table
            .group_by(charges::user_name)
            .select((charges::user_name, sums.0, sums.1, sums.2))
            .load(conn)?,
        super::daily::Of::Teams => charges::table
            .filter(charges::team_name.ne(""))
            .group_by(charges::team_name)
            .select((charges::team_name, sums.0, sums.1, sums.2))
            .load(conn)?,
    };
    Ok(rows
        .into_iter()
        .map(|(user, n, tokens, usd)| (user, [n, tokens, usd]))
        .collect())
}

/// How many charges wait (for `/metrics` and tests).
pub fn waiting(conn: &mut DbConnection) -> QueryResult<i64> {
    charges::table.count().get_result(conn)
}

fn method_name(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "DELETE" => "DELETE",
        _ => "OTHER",
    }
}
