//! A user as stored (`UserRow`) and as shown to the admin (`UserView`, the
//! field names of the contract), with what they used this period.

use crate::db::schema::users;
use crate::db::{rfc3339, DbConnection};
use crate::limits::LimitPeriod;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub disabled: bool,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub token_limit: Option<i64>,
    pub request_limit: Option<i64>,
    pub limit_period: String,
    pub models: Option<String>,
    pub rpm: Option<i64>,
    pub note: Option<String>,
    pub max_parallel: Option<i64>,
    pub budget_nano_usd: Option<i64>,
    pub team_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Disabled,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::Expired => "expired",
        }
    }
}

impl UserRow {
    pub fn status(&self, now: NaiveDateTime) -> Status {
        if self.disabled {
            Status::Disabled
        } else if self.expires_at.is_some_and(|e| e < now) {
            Status::Expired
        } else {
            Status::Active
        }
    }

    pub fn period(&self) -> LimitPeriod {
        LimitPeriod::from_db(&self.limit_period)
    }
}

/// The models list as stored: a JSON array.
pub fn encode_models(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

pub fn decode_models(text: Option<&str>) -> Option<Vec<String>> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// A user as shown to the admin (`--format json` and the admin API):
/// the field names of the contract.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    pub name: String,
    pub status: Status,
    pub key_hint: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub token_limit: Option<i64>,
    pub request_limit: Option<i64>,
    pub limit_period: LimitPeriod,
    pub tokens_used: i64,
    pub requests_used: i64,
    pub models: Option<Vec<String>>,
    pub rpm: Option<i64>,
    pub note: Option<String>,
    pub max_parallel: Option<i64>,
    pub budget_usd: Option<f64>,
    /// The cost of what the user used this period.
    pub spent_usd: f64,
    pub team: Option<String>,
}

/// The views of `rows`, with what each used in their own period: the
/// usage of all of them read in one go.
pub(super) fn views(
    conn: &mut DbConnection,
    rows: Vec<UserRow>,
    now: NaiveDateTime,
) -> QueryResult<Vec<UserView>> {
    let periods: Vec<_> = rows.iter().map(|r| (r.name.clone(), r.period())).collect();
    let used = crate::usage::daily::used_this_period(conn, &periods, now)?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let hints = first_hints(conn, &ids)?;
    let teams = crate::teams::names(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let used = used.get(&row.name).copied().unwrap_or_default();
            let key_hint = hints.get(&row.id).cloned().unwrap_or_default();
            let team = row.team_id.and_then(|t| teams.get(&t).cloned());
            UserView {
                status: row.status(now),
                created_at: rfc3339(row.created_at),
                expires_at: row.expires_at.map(rfc3339),
                last_used_at: row.last_used_at.map(rfc3339),
                limit_period: row.period(),
                models: decode_models(row.models.as_deref()),
                tokens_used: used.tokens,
                requests_used: used.requests,
                budget_usd: row.budget_nano_usd.map(crate::usage::prices::usd),
                spent_usd: crate::usage::prices::usd(used.nano_usd),
                name: row.name,
                key_hint,
                team,
                token_limit: row.token_limit,
                request_limit: row.request_limit,
                rpm: row.rpm,
                note: row.note,
                max_parallel: row.max_parallel,
            }
        })
        .collect())
}

/// The hint of each user's `default` key (else of their oldest): the
/// one `key_hint` of the user fields. The defaults first (most users have
/// one), then the oldest key of those without.
fn first_hints(
    conn: &mut DbConnection,
    ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, String>> {
    use crate::db::schema::keys;
    let hints = |conn: &mut DbConnection, ids: &[i64], default: bool| {
        let mut q = keys::table
            .select((keys::user_id, keys::key_hint))
            .order(keys::id.desc())
            .into_boxed();
        if default {
            q = q.filter(keys::label.eq(super::keys::DEFAULT_LABEL));
        }
        // Everyone's, read whole, when asked for many (a bound
        // parameter per id would pass SQLite's limit).
        if ids.len() <= 1000 {
            q = q.filter(keys::user_id.eq_any(ids.to_vec()));
        }
        q.load::<(i64, String)>(conn)
    };
    let mut out: std::collections::HashMap<i64, String> =
        hints(conn, ids, true)?.into_iter().collect();
    let rest: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !out.contains_key(id))
        .collect();
    for chunk in rest.chunks(1000) {
        // Newest first, so the oldest is inserted last and kept.
        out.extend(hints(conn, chunk, false)?);
    }
    Ok(out)
}
