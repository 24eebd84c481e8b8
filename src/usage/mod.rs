//! Usage accounting: one record per proxied request, handed to a writer
//! thread that stores them in batches, off the request path.

pub mod meter;
pub mod writer;

use chrono::NaiveDateTime;
use std::sync::Arc;

/// What one request used. Token counts stay `None` where nothing reported them.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub at: NaiveDateTime,
    pub user: Arc<str>,
    pub method: &'static str,
    pub endpoint: String,
    pub model: Option<String>,
    /// `None` when the gateway refused the request itself.
    pub upstream: Option<Arc<str>>,
    pub status: u16,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub estimated: bool,
    pub stream: bool,
    pub latency_ms: i64,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    pub prompt: i64,
    pub completion: i64,
}

/// Counts tokens the way the model's own tokenizer does (tiktoken); models
/// it does not know are counted with o200k_base, the encoding of current
/// OpenAI models.
pub fn count_tokens(model: &str, text: &str) -> i64 {
    let bpe =
        tiktoken_rs::bpe_for_model(model).unwrap_or_else(|_| tiktoken_rs::o200k_base_singleton());
    i64::try_from(bpe.encode_with_special_tokens(text).len()).unwrap_or(i64::MAX)
}
