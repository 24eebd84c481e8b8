//! Usage records as stored, for tests to compare.

use chatgate::db::Pool;

/// One stored usage record, as tests compare it.
#[derive(Debug, Clone, PartialEq)]
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

/// A chat completion's usage record as the writer takes it: `user` asked
/// gpt-4o through the upstream `mock` at `at`, and it answered.
pub fn chat_record(
    user: &str,
    at: chrono::NaiveDateTime,
    prompt: i64,
    completion: i64,
) -> chatgate::usage::UsageRecord {
    chatgate::usage::UsageRecord {
        at,
        user: user.into(),
        method: "POST",
        endpoint: "/chat/completions".into(),
        model: Some("gpt-4o".into()),
        upstream: Some("mock".into()),
        status: 200,
        prompt_tokens: Some(prompt),
        completion_tokens: Some(completion),
        ..Default::default()
    }
}

/// Every usage record as read back, oldest first.
pub fn all_records(pool: &Pool) -> Vec<chatgate::usage::records::Stored> {
    chatgate::usage::records::all(&mut pool.get().unwrap()).unwrap()
}

/// Usage records of an endpoint, oldest first.
pub fn stored(pool: &Pool, endpoint_is: &str) -> Vec<Stored> {
    all_records(pool)
        .into_iter()
        .filter(|r| r.endpoint == endpoint_is)
        .map(|r| Stored {
            total: r.total_tokens(),
            user: r.user,
            endpoint: r.endpoint,
            model: r.model,
            status: r.status,
            prompt: r.prompt_tokens,
            completion: r.completion_tokens,
            estimated: r.estimated,
            stream: r.stream,
        })
        .collect()
}

/// (cached tokens, cost in nano-dollars) of an endpoint's usage records,
/// oldest first.
pub fn stored_money(pool: &Pool, endpoint_is: &str) -> Vec<(Option<i64>, Option<i64>)> {
    all_records(pool)
        .into_iter()
        .filter(|r| r.endpoint == endpoint_is)
        .map(|r| (r.cached_tokens, r.cost_nano_usd))
        .collect()
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
