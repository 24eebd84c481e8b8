//! `usage report`: usage grouped by user, model, day, month or upstream over
//! a time range. The range and grouping logic is pure and unit-tested; the
//! one query reads the records in the range.

pub use super::daily::Part;
use super::daily::Sums;
pub use super::range::{bound, midnight, period, resolve, Range};
use crate::db::DbConnection;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    User,
    Model,
    Day,
    Month,
    Upstream,
    /// The endpoint, named as the log line names it (`/chat/completions`).
    Endpoint,
    /// The client family (`claude-code`, `codex`, …).
    Client,
    /// The team the user belonged to (none: `null`).
    Team,
    /// The key, as `user/label`.
    Key,
}

impl GroupBy {
    pub const NAMES: [&'static str; 9] = [
        "user", "team", "key", "model", "day", "month", "upstream", "endpoint", "client",
    ];
    const ALL: [GroupBy; 9] = [
        GroupBy::Team,
        GroupBy::Key,
        GroupBy::User,
        GroupBy::Model,
        GroupBy::Day,
        GroupBy::Month,
        GroupBy::Upstream,
        GroupBy::Endpoint,
        GroupBy::Client,
    ];

    pub fn parse(s: &str) -> Result<GroupBy, String> {
        GroupBy::ALL
            .into_iter()
            .find(|g| g.name() == s)
            .ok_or_else(|| format!("`{s}` is not one of {}", GroupBy::NAMES.join(", ")))
    }

    pub fn name(self) -> &'static str {
        match self {
            GroupBy::User => "user",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
            GroupBy::Month => "month",
            GroupBy::Upstream => "upstream",
            GroupBy::Endpoint => "endpoint",
            GroupBy::Client => "client",
            GroupBy::Team => "team",
            GroupBy::Key => "key",
        }
    }

    /// Whether only the records have it (the daily totals do not).
    pub fn per_record(self) -> bool {
        matches!(self, GroupBy::Endpoint | GroupBy::Client | GroupBy::Key)
    }
}

/// What a report asks for: a range, whose usage (everyone's when empty),
/// and how it is grouped. The CLI builds it from its flags, the HTTP APIs
/// from `Params`.
#[derive(Debug, Clone)]
pub struct Query {
    pub range: Range,
    pub users: Vec<String>,
    /// Only these teams' usage (as made while the users were in them).
    pub teams: Vec<String>,
    pub by: Vec<GroupBy>,
}

/// A report's query string: `usage report`'s flags by the same names,
/// lists comma-separated (`by=day,model`); by default this month by user.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub since: Option<String>,
    pub until: Option<String>,
    pub period: Option<String>,
    pub user: Option<String>,
    pub team: Option<String>,
    pub by: Option<String>,
}

impl Params {
    pub fn into_query(self, now: NaiveDateTime) -> Result<Query, String> {
        let range = resolve(
            self.since.as_deref(),
            self.until.as_deref(),
            self.period.as_deref(),
            now,
        )?;
        let by = self
            .by
            .as_deref()
            .unwrap_or("user")
            .split(',')
            .map(|g| GroupBy::parse(g.trim()).map_err(|e| format!("`by`: {e}")))
            .collect::<Result<_, _>>()?;
        let list = |v: Option<String>| {
            v.map(|u| u.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        Ok(Query {
            range,
            users: list(self.user),
            teams: list(self.team),
            by,
        })
    }
}

/// The report: its parts loaded, then grouped (costs are the stored ones).
pub fn run(conn: &mut DbConnection, q: &Query) -> QueryResult<Vec<Row>> {
    let per_record = q.by.iter().any(|g| g.per_record());
    let parts = load(conn, q, per_record)?;
    Ok(aggregate(&parts, &q.by))
}

/// The usage in `range`: from the daily totals when the range is whole
/// days (so pruned records still count and long ranges read few rows),
/// from the records otherwise.
/// `per_record`: grouped by what only records keep (endpoint, client).
fn load(conn: &mut DbConnection, q: &Query, per_record: bool) -> QueryResult<Vec<Part>> {
    if q.range.whole_days() && !per_record {
        load_daily(conn, q.range, &q.users, &q.teams)
    } else {
        super::records::sums_by_day(conn, q.range, &q.users, &q.teams)
    }
}

fn load_daily(
    conn: &mut DbConnection,
    range: Range,
    users: &[String],
    teams: &[String],
) -> QueryResult<Vec<Part>> {
    use crate::db::schema::usage_daily::dsl::*;
    let mut q = usage_daily
        .filter(day.ge(range.since.date()))
        .filter(day.lt(range.until.date()))
        .select((
            day,
            user_name,
            model,
            upstream,
            requests,
            errors,
            prompt_tokens,
            completion_tokens,
            estimated_requests,
            cached_tokens,
            cost_nano_usd,
            priced_requests,
            team,
        ))
        .into_boxed();
    if !users.is_empty() {
        q = q.filter(user_name.eq_any(users));
    }
    if !teams.is_empty() {
        q = q.filter(team.eq_any(teams));
    }
    type Row = (
        NaiveDate,
        String,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        String,
    );
    let rows: Vec<Row> = q.load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(d, u, m, up, r, e, p, c, est, cached, cost, priced, t)| Part {
                at: midnight(d),
                user: u,
                model: m,
                upstream: up,
                endpoint: String::new(),
                client: String::new(),
                key: String::new(),
                team: t,
                sums: Sums {
                    requests: r,
                    errors: e,
                    prompt_tokens: p,
                    completion_tokens: c,
                    estimated_requests: est,
                    cached_tokens: cached,
                    cost_nano_usd: cost,
                    priced_requests: priced,
                },
            },
        )
        .collect())
}

/// One line of a report: the grouping keys, then the sums.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    #[serde(skip)]
    pub keys: Vec<String>,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub cached_tokens: i64,
    pub estimated_requests: i64,
    #[serde(rename = "cost_usd", serialize_with = "as_usd")]
    pub cost: Cost,
}

/// The stored costs of a row's requests, exact until shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub nano_usd: i64,
    /// How many of the requests had a price.
    pub priced: i64,
}

impl Cost {
    /// In USD; `None` when no request of the row had a price.
    pub fn usd(self) -> Option<f64> {
        (self.priced > 0).then(|| super::prices::usd(self.nano_usd))
    }
}

fn as_usd<S: serde::Serializer>(cost: &Cost, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&cost.usd(), s)
}

impl Row {
    fn empty(keys: Vec<String>) -> Row {
        Row {
            keys,
            requests: 0,
            errors: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            total_tokens: 0,
            cached_tokens: 0,
            estimated_requests: 0,
            cost: Cost::default(),
        }
    }

    /// One part as a row of its own, to merge into a group.
    fn of(part: &Part) -> Row {
        let s = part.sums;
        let (p, c) = (s.prompt_tokens, s.completion_tokens);
        Row {
            keys: Vec::new(),
            requests: s.requests,
            errors: s.errors,
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: p + c,
            cached_tokens: s.cached_tokens,
            estimated_requests: s.estimated_requests,
            cost: Cost {
                nano_usd: s.cost_nano_usd,
                priced: s.priced_requests,
            },
        }
    }

    fn merge(&mut self, other: &Row) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.total_tokens += other.total_tokens;
        self.cached_tokens += other.cached_tokens;
        self.estimated_requests += other.estimated_requests;
        self.cost.nano_usd = self.cost.nano_usd.saturating_add(other.cost.nano_usd);
        self.cost.priced += other.cost.priced;
    }

    /// The row as a JSON object with the contract's field names.
    pub fn to_json(&self, by: &[GroupBy]) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("a row serializes");
        let obj = v.as_object_mut().expect("an object");
        for (g, k) in by.iter().zip(&self.keys) {
            let value = if *g == GroupBy::Team && k.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(k.clone())
            };
            obj.insert(g.name().to_owned(), value);
        }
        v
    }
}

fn key(p: &Part, g: GroupBy) -> String {
    match g {
        GroupBy::User => p.user.clone(),
        GroupBy::Model => p.model.clone(),
        GroupBy::Day => p.at.format("%Y-%m-%d").to_string(),
        GroupBy::Month => p.at.format("%Y-%m").to_string(),
        GroupBy::Upstream => p.upstream.clone(),
        GroupBy::Endpoint => p.endpoint.clone(),
        GroupBy::Client => p.client.clone(),
        GroupBy::Team => p.team.clone(),
        // Records from before keys had labels came through the user's one
        // key, which became their `default`.
        GroupBy::Key => format!(
            "{}/{}",
            p.user,
            if p.key.is_empty() { "default" } else { &p.key }
        ),
    }
}

/// Groups records; rows come sorted by their keys.
pub fn aggregate(records: &[Part], by: &[GroupBy]) -> Vec<Row> {
    let mut groups: BTreeMap<Vec<String>, Row> = BTreeMap::new();
    for r in records {
        let keys: Vec<String> = by.iter().map(|g| key(r, *g)).collect();
        groups
            .entry(keys.clone())
            .or_insert_with(|| Row::empty(keys))
            .merge(&Row::of(r));
    }
    groups.into_values().collect()
}

/// Rows as JSON objects with the contract's field names.
pub fn to_json(rows: &[Row], by: &[GroupBy]) -> Vec<serde_json::Value> {
    rows.iter().map(|r| r.to_json(by)).collect()
}

pub fn totals(rows: &[Row]) -> Row {
    let mut t = Row::empty(Vec::new());
    for r in rows {
        t.merge(r);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// A record; gpt-4o ones cost a nano-dollar a token, others have no price.
    fn rec(when: &str, user: &str, model: &str, status: i32, p: i64, c: i64) -> Part {
        let priced = model == "gpt-4o";
        Part {
            at: at(when),
            user: user.into(),
            model: model.into(),
            upstream: "openai".into(),
            endpoint: "/chat/completions".into(),
            client: "other".into(),
            key: String::new(),
            team: String::new(),
            sums: Sums {
                requests: 1,
                errors: i64::from(status >= 400),
                prompt_tokens: p,
                completion_tokens: c,
                estimated_requests: i64::from(p == 1),
                cached_tokens: p / 10,
                cost_nano_usd: if priced { p + c } else { 0 },
                priced_requests: i64::from(priced),
            },
        }
    }

    #[test]
    fn groups_and_totals() {
        let records = vec![
            rec("2026-11-01 10:00:00", "alice", "gpt-4o", 200, 100, 50),
            rec("2026-11-01 11:00:00", "alice", "gpt-4o", 500, 0, 0),
            rec("2026-11-02 10:00:00", "bob", "gpt-4o-mini", 200, 1, 3),
            rec("2026-11-02 12:00:00", "alice", "gpt-4o-mini", 200, 10, 10),
        ];
        let rows = aggregate(&records, &[GroupBy::User, GroupBy::Day]);
        let keys: Vec<_> = rows.iter().map(|r| r.keys.join("/")).collect();
        assert_eq!(
            keys,
            ["alice/2026-11-01", "alice/2026-11-02", "bob/2026-11-02"]
        );
        assert_eq!(
            (rows[0].requests, rows[0].errors, rows[0].total_tokens),
            (2, 1, 150)
        );
        // The stored costs, summed exactly: 150 nano-dollars.
        assert_eq!(rows[0].cost.usd(), Some(150e-9));
        assert_eq!(rows[0].cached_tokens, 10);
        assert_eq!(rows[2].estimated_requests, 1);
        let t = totals(&rows);
        assert_eq!(
            (t.requests, t.prompt_tokens, t.completion_tokens),
            (4, 111, 63)
        );
        assert_eq!(
            t.cost,
            Cost {
                nano_usd: 150,
                priced: 2
            }
        );
        let json = rows[1].to_json(&[GroupBy::User, GroupBy::Day]);
        assert_eq!(json["user"], "alice");
        assert_eq!(json["day"], "2026-11-02");
        // No request of the row had a price: null, not 0.
        assert_eq!(json["cost_usd"], serde_json::Value::Null);
        let by_month = aggregate(&records, &[GroupBy::Month]);
        assert_eq!(by_month[0].keys, ["2026-11"]);
        assert_eq!(by_month[0].to_json(&[GroupBy::Month])["cost_usd"], 150e-9);
    }
}
