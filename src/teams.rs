//! Teams (SPEC §9): a user's rules shared by their members, so a
//! department can have one budget. The CLI and the admin API (and through
//! it the web console) call these.
//!
//! A change to a team bumps every member's `touched` in the same
//! transaction: the revision triggers then tell running servers to reload
//! those users, with the team as it is now.

use crate::audit::{self, Action, Actor};
use crate::db::moment::At;
use crate::db::schema::{teams, users};
use crate::db::{self, rfc3339, DbConnection};
use crate::limits::{LimitPeriod, Limits};
use crate::users::{decode_models, encode_models, Setting, TopUp, UserError, UserSettings};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// A row of `teams`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = teams)]
pub struct TeamRow {
    pub id: i64,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub token_limit: Option<i64>,
    pub request_limit: Option<i64>,
    pub budget_nano_usd: Option<i64>,
    pub limit_period: String,
    pub models: Option<String>,
    pub rpm: Option<i64>,
    pub max_parallel: Option<i64>,
    pub note: Option<String>,
}

impl TeamRow {
    pub fn limits(&self) -> Limits {
        Limits {
            tokens: self.token_limit,
            requests: self.request_limit,
            budget: self.budget_nano_usd,
            period: LimitPeriod::from_db(&self.limit_period),
            rpm: self.rpm,
            parallel: self.max_parallel,
        }
    }
}

/// A team as shown (the team JSON fields of SPEC §9).
#[derive(Debug, Clone, Serialize)]
pub struct TeamView {
    pub name: String,
    pub note: Option<String>,
    pub created_at: String,
    pub token_limit: Option<i64>,
    pub request_limit: Option<i64>,
    pub limit_period: LimitPeriod,
    pub models: Option<Vec<String>>,
    pub rpm: Option<i64>,
    pub max_parallel: Option<i64>,
    pub budget_usd: Option<f64>,
    pub members: Vec<String>,
    pub tokens_used: i64,
    pub requests_used: i64,
    pub spent_usd: f64,
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = teams)]
struct TeamChanges {
    token_limit: Option<Option<i64>>,
    request_limit: Option<Option<i64>>,
    budget_nano_usd: Option<Option<i64>>,
    limit_period: Option<String>,
    models: Option<Option<String>>,
    rpm: Option<Option<i64>>,
    max_parallel: Option<Option<i64>>,
    note: Option<Option<String>>,
}

/// A team's settings: a user's, less what only a user has.
fn changes(s: UserSettings) -> Result<TeamChanges, UserError> {
    let only_users = [
        ("expires", s.expires.is_some()),
        ("disabled", s.disabled.is_some()),
        ("team", s.team.is_some()),
    ];
    if let Some((field, _)) = only_users.iter().find(|(_, given)| *given) {
        return Err(UserError::NotForTeams(field));
    }
    let set = |v: Option<Setting<i64>>| v.map(Setting::into_option);
    Ok(TeamChanges {
        token_limit: set(s.token_limit),
        request_limit: set(s.request_limit),
        budget_nano_usd: set(s.budget),
        limit_period: s.limit_period.map(|p| p.as_str().to_owned()),
        models: s
            .models
            .map(|m| m.into_option().map(|l: Vec<String>| encode_models(&l))),
        rpm: set(s.rpm),
        max_parallel: set(s.max_parallel),
        note: s.note.map(Setting::into_option),
    })
}

fn find_row(conn: &mut DbConnection, name: &str) -> Result<TeamRow, UserError> {
    teams::table
        .filter(teams::name.eq(name))
        .select(TeamRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| UserError::TeamNotFound(name.to_owned()))
}

/// The id of the team `name`.
pub fn id_of(conn: &mut DbConnection, name: &str) -> Result<i64, UserError> {
    find_row(conn, name).map(|t| t.id)
}

/// Every team's name by id.
pub fn names(conn: &mut DbConnection) -> QueryResult<HashMap<i64, String>> {
    let rows: Vec<(i64, String)> = teams::table.select((teams::id, teams::name)).load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Every team row (for the server's key table).
pub fn all_rows(conn: &mut DbConnection) -> QueryResult<Vec<TeamRow>> {
    teams::table.select(TeamRow::as_select()).load(conn)
}

/// Tells running servers to reload the team's members.
fn touch_members(conn: &mut DbConnection, id: i64) -> QueryResult<()> {
    diesel::update(users::table.filter(users::team_id.eq(id)))
        .set(users::touched.eq(users::touched + 1))
        .execute(conn)
        .map(drop)
}

pub fn add(
    conn: &mut DbConnection,
    by: &Actor,
    name: &str,
    settings: UserSettings,
) -> Result<TeamView, UserError> {
    let name = crate::users::UserName::parse(name)
        .map_err(|e| UserError::BadTeamName(e.replace("user name", "team name")))?;
    let name = name.as_str();
    let changes = changes(settings)?;
    audit::transaction(conn, by, |conn, trail| {
        if find_row(conn, name).is_ok() {
            return Err(UserError::TeamExists(name.to_owned()));
        }
        diesel::insert_into(teams::table)
            .values((teams::name.eq(name), teams::created_at.eq(At(db::now()))))
            .execute(conn)?;
        update_row(conn, name, changes)?;
        let new = show(conn, name)?;
        trail.record_views(Action::TeamAdd, (name, None), None, Some(&new));
        Ok(new)
    })
}

fn update_row(conn: &mut DbConnection, name: &str, c: TeamChanges) -> Result<(), UserError> {
    let row = find_row(conn, name)?;
    let empty = c.token_limit.is_none()
        && c.request_limit.is_none()
        && c.budget_nano_usd.is_none()
        && c.limit_period.is_none()
        && c.models.is_none()
        && c.rpm.is_none()
        && c.max_parallel.is_none()
        && c.note.is_none();
    if !empty {
        diesel::update(teams::table.filter(teams::id.eq(row.id)))
            .set(c)
            .execute(conn)?;
        touch_members(conn, row.id)?;
    }
    Ok(())
}

/// Changes a team's rules, all or nothing.
pub fn update(
    conn: &mut DbConnection,
    by: &Actor,
    name: &str,
    settings: UserSettings,
) -> Result<TeamView, UserError> {
    let changes = changes(settings)?;
    audit::transaction(conn, by, |conn, trail| {
        let old = show(conn, name)?;
        update_row(conn, name, changes)?;
        let new = show(conn, name)?;
        trail.record_views(Action::TeamEdit, (name, None), Some(&old), Some(&new));
        Ok(new)
    })
}

/// Raises a team's limits (a top-up), as `user recharge` does a user's.
pub fn recharge(
    conn: &mut DbConnection,
    by: &Actor,
    name: &str,
    top_up: TopUp,
) -> Result<TeamView, UserError> {
    top_up.raise(name, [Some(0); 3])?;
    audit::transaction(conn, by, |conn, trail| {
        let row = find_row(conn, name)?;
        let old = show(conn, name)?;
        let [tokens, requests, budget] = top_up.raise(
            name,
            [row.token_limit, row.request_limit, row.budget_nano_usd],
        )?;
        diesel::update(teams::table.filter(teams::id.eq(row.id)))
            .set((
                teams::token_limit.eq(tokens),
                teams::request_limit.eq(requests),
                teams::budget_nano_usd.eq(budget),
            ))
            .execute(conn)?;
        touch_members(conn, row.id)?;
        let new = show(conn, name)?;
        trail.record_views(Action::TeamRecharge, (name, None), Some(&old), Some(&new));
        Ok(new)
    })
}

/// Deletes a team that has no members; refused, naming them, otherwise.
/// Its usage stays in reports under its name.
pub fn remove(conn: &mut DbConnection, by: &Actor, name: &str) -> Result<(), UserError> {
    audit::transaction(conn, by, |conn, trail| {
        let row = find_row(conn, name)?;
        let old = show(conn, name)?;
        trail.record_views(Action::TeamRemove, (name, None), Some(&old), None);
        let members = members_of(conn, row.id)?;
        if !members.is_empty() {
            return Err(UserError::TeamNotEmpty {
                name: name.to_owned(),
                members,
            });
        }
        diesel::delete(teams::table.filter(teams::id.eq(row.id))).execute(conn)?;
        Ok(())
    })
}

fn members_of(conn: &mut DbConnection, id: i64) -> QueryResult<Vec<String>> {
    users::table
        .filter(users::team_id.eq(id))
        .order(users::name.asc())
        .select(users::name)
        .load(conn)
}

pub fn show(conn: &mut DbConnection, name: &str) -> Result<TeamView, UserError> {
    let row = find_row(conn, name)?;
    Ok(views(conn, vec![row])?.remove(0))
}

/// Every team, by name.
pub fn list(conn: &mut DbConnection) -> Result<Vec<TeamView>, UserError> {
    let rows = teams::table
        .order(teams::name.asc())
        .select(TeamRow::as_select())
        .load(conn)?;
    Ok(views(conn, rows)?)
}

fn views(conn: &mut DbConnection, rows: Vec<TeamRow>) -> QueryResult<Vec<TeamView>> {
    let now = db::now();
    let periods: Vec<_> = rows
        .iter()
        .map(|r| (r.name.clone(), r.limits().period))
        .collect();
    let used = crate::usage::daily::used_by_teams_this_period(conn, &periods, now)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let used = used.get(&row.name).copied().unwrap_or_default();
        out.push(TeamView {
            members: members_of(conn, row.id)?,
            created_at: rfc3339(row.created_at),
            limit_period: row.limits().period,
            models: decode_models(row.models.as_deref()),
            budget_usd: row.budget_nano_usd.map(crate::usage::prices::usd),
            tokens_used: used.tokens,
            requests_used: used.requests,
            spent_usd: crate::usage::prices::usd(used.nano_usd),
            name: row.name,
            note: row.note,
            token_limit: row.token_limit,
            request_limit: row.request_limit,
            rpm: row.rpm,
            max_parallel: row.max_parallel,
        });
    }
    Ok(out)
}
