//! Usage accounting: one record per proxied request, handed to a writer
//! thread that stores them in batches, off the request path.

pub mod audio;
pub mod charges;
pub mod client;
pub mod daily;
pub mod estimate;
pub mod estimator;
pub mod extract;
pub mod gemini;
pub mod last_used;
pub mod meter;
pub mod prices;
pub mod pruner;
pub mod range;
pub mod records;
pub mod report;
pub mod watch;
pub mod writer;

use chrono::NaiveDateTime;
use std::sync::Arc;

/// What one request used. Token counts stay `None` where nothing reported them.
/// `Default` is for tests; the request path spells every field out.
#[derive(Debug, Default)]
pub struct UsageRecord {
    pub at: NaiveDateTime,
    /// The upstream's `x-request-id`, else the gateway's own.
    pub request_id: Option<Box<str>>,
    pub user: Arc<str>,
    /// The label of the key it came through (empty where none: a refused
    /// key, a record from before keys had labels).
    pub key: Arc<str>,
    /// The team the user belonged to when it was made.
    pub team: Option<Arc<str>>,
    /// The client family (`claude-code`, `codex`, …; `client::family`);
    /// empty where none was read.
    pub client: &'static str,
    pub method: &'static str,
    pub endpoint: String,
    pub model: Option<String>,
    /// Whether `model` may label metric series (an upstream names or lists
    /// it); decided once, when the record is handed over.
    pub model_known: bool,
    /// `None` when the gateway refused the request itself.
    pub upstream: Option<Arc<str>>,
    pub status: u16,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cached_tokens: Option<i64>,
    /// Written to the prompt cache: priced apart, not stored.
    pub cache_written_tokens: Option<i64>,
    /// What the tokens cost at the prices in force when the record is
    /// written; `None` when the model has no price.
    pub cost_nano_usd: Option<i64>,
    pub estimated: bool,
    pub stream: bool,
    pub latency_ms: i64,
    /// An estimate left to the writer thread, off the request path.
    pub work: Option<Box<TokenWork>>,
    /// What the request holds of its user's limits; given back once its
    /// usage is committed and re-read.
    pub reservation: Option<crate::limits::Reservation>,
    /// What it is charged beyond its tokens (a service tier, one-hour
    /// cache writes, characters, audio, images, server-side tool calls):
    /// priced when written, not stored apart.
    pub extras: Option<Box<Extras>>,
    /// The object whose final usage settles this record: work that
    /// finishes after its reply (a background response, a stored response
    /// whose stream was cut). The record waits as a charge until then.
    pub later: Option<Box<str>>,
    /// Objects that bring this request's prompt and reply into a prompt
    /// that names them (the stored response it created, the conversation
    /// it added to): their size is set when it is written.
    pub sized: Vec<Box<str>>,
}

/// The service tier a reply was served at (OpenAI's `service_tier`,
/// Anthropic's `usage.service_tier`): priced at its own rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Standard,
    Priority,
    Flex,
    Batch,
}

impl Tier {
    /// As replies and requests name it; `auto`, `default`, `scale` and
    /// anything unknown are the standard rates.
    pub fn parse(name: &str) -> Tier {
        match name {
            "priority" => Tier::Priority,
            "flex" => Tier::Flex,
            "batch" => Tier::Batch,
            _ => Tier::Standard,
        }
    }
}

/// How large a web search's context was (OpenAI prices its searches by it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchSize {
    Low,
    #[default]
    Medium,
    High,
}

/// What a request is charged beyond its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Extras {
    pub tier: Tier,
    /// Of the tokens written to the prompt cache, those kept for an hour.
    pub cache_written_1h: i64,
    /// Characters of text to speech.
    pub characters: i64,
    /// Audio heard (transcriptions) and spoken (speech), in milliseconds.
    pub audio_in_ms: i64,
    pub audio_out_ms: i64,
    /// Images made, where no token usage was reported.
    pub images: i64,
    pub web_searches: i64,
    pub search_size: SearchSize,
    pub file_searches: i64,
    pub code_sessions: i64,
}

/// What a kept reply is, for estimating its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Json,
    /// The text of every output delta of a stream (text, reasoning,
    /// tool-call arguments, refusals, transcripts), extracted as it
    /// passed.
    StreamText,
    /// Plain text (a transcript as text, SRT or VTT).
    Text,
}

/// A reply that reported no usage, to be estimated with the tokenizer.
#[derive(Debug, Clone)]
pub struct TokenWork {
    /// The reply, or its first part (`MAX_KEPT`).
    pub reply: bytes::Bytes,
    /// The whole reply's length.
    pub reply_len: usize,
    /// The JSON request.
    pub request: bytes::Bytes,
    /// What `reply` holds.
    pub reply_kind: ReplyKind,
    /// The prompt's tokens (and cached ones) when the reply reported them
    /// but not its own: only the reply is estimated.
    pub prompt: Option<Tokens>,
}

impl UsageRecord {
    /// Estimates the tokens of a reply that reported none (on the writer:
    /// the tokenizer is too slow for the request path).
    pub fn estimate_tokens(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        self.estimated = true;
        let model = self.model.as_deref().unwrap_or("gpt-4o");
        let mut tokens = estimate::estimate(
            model,
            &work.request,
            &work.reply,
            work.reply_len,
            work.reply_kind,
        );
        if let Some(known) = work.prompt {
            tokens.prompt = known.prompt;
            tokens.cached = known.cached;
        }
        self.set_tokens(tokens);
    }

    /// About four bytes a token: when the estimator is too far behind.
    pub fn guess_tokens(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        self.estimated = true;
        let guess = |n: usize| i64::try_from(n / 4).unwrap_or(i64::MAX);
        self.set_tokens(Tokens {
            prompt: guess(work.request.len()),
            completion: guess(work.reply_len),
            cached: 0,
            cache_written: 0,
        });
    }

    /// Prices the record's tokens with `prices` (on the writer, when it
    /// is written: a later change of prices does not rewrite it).
    pub fn price(&mut self, prices: &prices::Prices) {
        if prices.is_empty() {
            return;
        }
        let (Some(model), Some(prompt), Some(completion)) =
            (&self.model, self.prompt_tokens, self.completion_tokens)
        else {
            return;
        };
        let extras = self.extras.as_deref().copied().unwrap_or_default();
        let waits = self.later.is_some() && self.reservation.is_some();
        self.cost_nano_usd = prices.rate(model).map(|rate| {
            rate.cost(
                Tokens {
                    prompt,
                    completion,
                    cached: self.cached_tokens.unwrap_or(0),
                    cache_written: self.cache_written_tokens.unwrap_or(0),
                },
                &extras,
            )
        });
        if let (Some(r), false) = (&mut self.reservation, waits) {
            r.hold_cost(self.cost_nano_usd.unwrap_or(0));
        }
    }

    /// Sets the tokens; the request's reservation now holds exactly
    /// those (unless the record waits for its real usage: then it keeps
    /// holding what it reserved).
    pub fn set_tokens(&mut self, t: Tokens) {
        self.set_fallback(t);
        if let (Some(r), None) = (&mut self.reservation, &self.later) {
            r.hold(t.prompt.saturating_add(t.completion));
        }
    }

    /// Sets the tokens, leaving the reservation as it is.
    pub fn set_fallback(&mut self, t: Tokens) {
        self.prompt_tokens = Some(t.prompt);
        self.completion_tokens = Some(t.completion);
        self.total_tokens = Some(t.prompt.saturating_add(t.completion));
        self.cached_tokens = Some(t.cached);
        self.cache_written_tokens = Some(t.cache_written);
    }

    /// Adds to what the record is charged beyond its tokens.
    pub fn extras_mut(&mut self) -> &mut Extras {
        self.extras.get_or_insert_with(Box::default)
    }
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    /// Every prompt token, cached ones included.
    pub prompt: i64,
    pub completion: i64,
    /// Of the prompt, the tokens read from the upstream's prompt cache.
    pub cached: i64,
    /// Of the prompt, the tokens written to the cache (Anthropic's
    /// `cache_creation_input_tokens`): priced apart, not stored.
    pub cache_written: i64,
}

#[cfg(test)]
impl Tokens {
    /// Reported tokens, none written to a cache (for tests' expectations).
    pub fn read(prompt: i64, completion: i64, cached: i64) -> Option<Tokens> {
        Some(Tokens {
            prompt,
            completion,
            cached,
            cache_written: 0,
        })
    }
}

/// Counts tokens the way the model's own tokenizer does (tiktoken); models
/// it does not know are counted with o200k_base, the encoding of current
/// OpenAI models.
pub fn count_tokens(model: &str, text: &str) -> i64 {
    let bpe =
        tiktoken_rs::bpe_for_model(model).unwrap_or_else(|_| tiktoken_rs::o200k_base_singleton());
    i64::try_from(bpe.encode_with_special_tokens(text).len()).unwrap_or(i64::MAX)
}
