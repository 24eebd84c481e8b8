//! Daily totals per user, model and upstream. The usage writer adds each
//! batch to them in the batch's own transaction; reports and limit periods
//! read them instead of every record.

use super::UsageRecord;
use crate::db::schema::usage_daily::dsl::*;
use crate::db::DbConnection;
use chrono::NaiveDate;
use diesel::prelude::*;
use std::collections::BTreeMap;

/// The sums of one daily row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sums {
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub estimated_requests: i64,
}

impl Sums {
    pub fn of(r: &UsageRecord) -> Sums {
        Sums {
            requests: 1,
            errors: i64::from(r.status >= 400),
            prompt_tokens: r.prompt_tokens.unwrap_or(0),
            completion_tokens: r.completion_tokens.unwrap_or(0),
            estimated_requests: i64::from(r.estimated),
        }
    }

    pub fn add(&mut self, o: Sums) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.estimated_requests += o.estimated_requests;
    }
}

type Key<'a> = (NaiveDate, &'a str, &'a str, &'a str);

/// Adds a batch to the daily totals: one update (or insert) per key.
pub fn add_batch(conn: &mut DbConnection, batch: &[UsageRecord]) -> QueryResult<()> {
    let mut groups: BTreeMap<Key, Sums> = BTreeMap::new();
    for r in batch {
        let key = (
            r.at.date(),
            &*r.user,
            r.model.as_deref().unwrap_or(""),
            r.upstream.as_deref().unwrap_or(""),
        );
        groups.entry(key).or_default().add(Sums::of(r));
    }
    for ((d, u, m, up), s) in groups {
        // No ON CONFLICT: it is not portable through MultiConnection.
        // Update first; a missing row is inserted (within the transaction).
        let updated = diesel::update(
            usage_daily
                .filter(day.eq(d))
                .filter(user_name.eq(u))
                .filter(model.eq(m))
                .filter(upstream.eq(up)),
        )
        .set((
            requests.eq(requests + s.requests),
            errors.eq(errors + s.errors),
            prompt_tokens.eq(prompt_tokens + s.prompt_tokens),
            completion_tokens.eq(completion_tokens + s.completion_tokens),
            estimated_requests.eq(estimated_requests + s.estimated_requests),
        ))
        .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(usage_daily)
                .values((
                    day.eq(d),
                    user_name.eq(u),
                    model.eq(m),
                    upstream.eq(up),
                    requests.eq(s.requests),
                    errors.eq(s.errors),
                    prompt_tokens.eq(s.prompt_tokens),
                    completion_tokens.eq(s.completion_tokens),
                    estimated_requests.eq(s.estimated_requests),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}
