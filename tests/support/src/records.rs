//! Usage records as stored, for tests to compare.

use chatgate::db::Pool;

/// One stored usage record, as tests compare it.
#[derive(Debug, Clone, PartialEq, diesel::Queryable)]
pub struct Stored {
    pub user: String,
    pub endpoint: String,
    pub model: Option<String>,
    pub status: i32,
    pub prompt: Option<i64>,
    pub completion: Option<i64>,
    pub total: Option<i64>,
    pub estimated: bool,
    pub stream: bool,
}

/// Usage records of an endpoint, oldest first.
pub fn stored(pool: &Pool, endpoint_is: &str) -> Vec<Stored> {
    use chatgate::db::schema::usage_records::dsl::*;
    use diesel::prelude::*;
    let mut conn = pool.get().unwrap();
    usage_records
        .filter(endpoint.eq(endpoint_is))
        .order(id.asc())
        .select((
            user_name,
            endpoint,
            model,
            status,
            prompt_tokens,
            completion_tokens,
            total_tokens,
            estimated,
            stream,
        ))
        .load(&mut conn)
        .unwrap()
}

/// (cached tokens, cost in nano-dollars) of an endpoint's usage records,
/// oldest first.
pub fn stored_money(pool: &Pool, endpoint_is: &str) -> Vec<(Option<i64>, Option<i64>)> {
    use chatgate::db::schema::usage_records::dsl::*;
    use diesel::prelude::*;
    let mut conn = pool.get().unwrap();
    usage_records
        .filter(endpoint.eq(endpoint_is))
        .order(id.asc())
        .select((cached_tokens, cost_nano_usd))
        .load(&mut conn)
        .unwrap()
}

/// The cached tokens of an endpoint's usage records, oldest first.
pub fn stored_cached(pool: &Pool, endpoint_is: &str) -> Vec<Option<i64>> {
    stored_money(pool, endpoint_is)
        .into_iter()
        .map(|m| m.0)
        .collect()
}

/// The costs (nano-dollars) of an endpoint's usage records, oldest first.
pub fn stored_costs(pool: &Pool, endpoint_is: &str) -> Vec<Option<i64>> {
    stored_money(pool, endpoint_is)
        .into_iter()
        .map(|m| m.1)
        .collect()
}
