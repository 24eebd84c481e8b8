//! Reading token usage out of upstream replies (pure logic, no I/O): the
//! `usage` object of a JSON reply, the usage events of a stream (OpenAI's
//! usage chunk, Anthropic's `message_start` and `message_delta`), cached
//! tokens in each dialect, the service tier, one-hour cache writes and web
//! searches a reply reports, and the output text of each stream event (for
//! the estimate when they report none, in `estimate`).
//!
//! Longer than 450 lines only with its unit tests: the code is the first
//! 560 lines; the tests drive private steps, so they stay beside it.

use super::{Extras, Tier, Tokens};
use bytes::{Bytes, BytesMut};
use memchr::memmem::{Finder, FinderRev};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::LazyLock;

#[derive(Deserialize)]
struct UsageField {
    #[serde(default)]
    prompt_tokens: Option<i64>,
    #[serde(default)]
    input_tokens: Option<i64>,
    #[serde(default)]
    completion_tokens: Option<i64>,
    #[serde(default)]
    output_tokens: Option<i64>,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
    #[serde(default)]
    input_tokens_details: Option<Details>,
    /// Anthropic counts these apart from `input_tokens`.
    #[serde(default)]
    cache_read_input_tokens: Option<i64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<i64>,
    /// Anthropic: the cache writes by time to live.
    #[serde(default)]
    cache_creation: Option<CacheCreation>,
    /// Anthropic: server-side tool calls (web searches).
    #[serde(default)]
    server_tool_use: Option<ServerToolUse>,
    /// Anthropic reports its tier in the usage object.
    #[serde(default)]
    service_tier: Option<String>,
}

/// Tool calls a finished reply made, by kind: web searches, file searches,
/// and whether it ran code (a container session).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolCalls {
    pub web_searches: i64,
    pub file_searches: i64,
    pub code_sessions: i64,
}

impl ToolCalls {
    /// Counts the output items of a finished Responses reply (a JSON
    /// reply, or a stream's `response.completed` event) by their type, and
    /// Gemini's grounded candidates (their `webSearchQueries`); an item
    /// type inside a string has escaped quotes and does not match.
    pub fn count(bytes: &[u8]) -> ToolCalls {
        let n = |needle: &[u8]| memchr::memmem::find_iter(bytes, needle).count() as i64;
        ToolCalls {
            web_searches: n(b"\"web_search_call\"") + n(b"\"webSearchQueries\""),
            file_searches: n(b"\"file_search_call\""),
            code_sessions: n(b"\"code_interpreter_call\"").min(1),
        }
    }

    /// The larger count of each kind: what a stream's events showed at
    /// most (Responses' final event holds every item; Gemini may ground
    /// any chunk).
    pub fn max(self, other: ToolCalls) -> ToolCalls {
        ToolCalls {
            web_searches: self.web_searches.max(other.web_searches),
            file_searches: self.file_searches.max(other.file_searches),
            code_sessions: self.code_sessions.max(other.code_sessions),
        }
    }

    pub fn add_to(self, extras: &mut Extras) {
        extras.web_searches = extras.web_searches.max(self.web_searches);
        extras.file_searches = extras.file_searches.max(self.file_searches);
        extras.code_sessions = extras.code_sessions.max(self.code_sessions);
    }
}

#[derive(Deserialize)]
struct CacheCreation {
    #[serde(default)]
    ephemeral_1h_input_tokens: Option<i64>,
}

#[derive(Deserialize)]
struct ServerToolUse {
    #[serde(default)]
    web_search_requests: Option<i64>,
}

#[derive(Deserialize)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<i64>,
}

/// Token counts as usage objects report them. A stream may spread them
/// over several: Anthropic's `message_start` has the input, its last
/// `message_delta` the output (and, in newer versions, the input again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    prompt: Option<i64>,
    completion: Option<i64>,
    cached: Option<i64>,
    cache_written: Option<i64>,
    cache_written_1h: Option<i64>,
    web_searches: Option<i64>,
    tier: Option<Tier>,
}

impl Reported {
    /// Counts as a dialect without its own fields reports them (Gemini's
    /// `usageMetadata`, read in `usage::gemini`).
    pub fn counted(prompt: Option<i64>, completion: Option<i64>, cached: Option<i64>) -> Reported {
        Reported {
            prompt,
            completion,
            cached,
            ..Reported::default()
        }
    }

    /// What `later` reports, else what was reported before.
    pub fn then(self, later: Reported) -> Reported {
        Reported {
            prompt: later.prompt.or(self.prompt),
            completion: later.completion.or(self.completion),
            cached: later.cached.or(self.cached),
            cache_written: later.cache_written.or(self.cache_written),
            cache_written_1h: later.cache_written_1h.or(self.cache_written_1h),
            web_searches: later.web_searches.or(self.web_searches),
            tier: later.tier.or(self.tier),
        }
    }

    /// The tier the reply names, if it names one.
    pub fn tier(&self) -> Option<Tier> {
        self.tier
    }

    pub fn with_tier(self, tier: Option<Tier>) -> Reported {
        Reported {
            tier: self.tier.or(tier),
            ..self
        }
    }

    /// What the reply reports beyond its tokens, over `asked`.
    pub fn extras(&self, asked: Extras) -> Extras {
        Extras {
            tier: self.tier.unwrap_or(asked.tier),
            cache_written_1h: self.cache_written_1h.unwrap_or(asked.cache_written_1h),
            web_searches: self.web_searches.unwrap_or(asked.web_searches),
            ..asked
        }
    }

    /// The tokens, once the prompt's and the reply's are known.
    pub fn complete(self) -> Option<Tokens> {
        self.completion?;
        self.tokens()
    }

    /// The tokens, once the prompt's are known.
    pub fn tokens(self) -> Option<Tokens> {
        Some(Tokens {
            prompt: self.prompt?,
            completion: self.completion.unwrap_or(0),
            cached: self.cached.unwrap_or(0),
            cache_written: self.cache_written.unwrap_or(0),
        })
    }
}

impl UsageField {
    /// Chat and embeddings say prompt/completion; the Responses API and
    /// Anthropic say input/output. Anthropic's input excludes what was
    /// read from or written to the cache, so those are added to it.
    fn reported(&self) -> Reported {
        let anthropic_cache = self
            .cache_read_input_tokens
            .unwrap_or(0)
            .saturating_add(self.cache_creation_input_tokens.unwrap_or(0));
        let details = self
            .prompt_tokens_details
            .as_ref()
            .or(self.input_tokens_details.as_ref());
        Reported {
            prompt: self
                .prompt_tokens
                .or(self.input_tokens)
                .map(|p| p.saturating_add(anthropic_cache)),
            completion: self.completion_tokens.or(self.output_tokens),
            cached: details
                .and_then(|d| d.cached_tokens)
                .or(self.cache_read_input_tokens),
            cache_written: self.cache_creation_input_tokens,
            cache_written_1h: self
                .cache_creation
                .as_ref()
                .and_then(|c| c.ephemeral_1h_input_tokens),
            web_searches: self
                .server_tool_use
                .as_ref()
                .and_then(|s| s.web_search_requests),
            tier: self.service_tier.as_deref().map(Tier::parse),
        }
    }
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<UsageField>,
    /// The Responses API nests it in `response`, Anthropic's
    /// `message_start` in `message`.
    #[serde(default)]
    response: Option<Box<WithUsage>>,
    #[serde(default)]
    message: Option<Box<WithUsage>>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
    /// OpenAI's tier, beside the usage.
    #[serde(default)]
    service_tier: Option<String>,
}

impl WithUsage {
    fn reported(&self) -> Reported {
        let tier = self.service_tier.as_deref().map(Tier::parse);
        if let Some(u) = &self.usage {
            return u.reported().with_tier(tier);
        }
        if let Some(inner) = &self.response {
            return inner.reported();
        }
        // `message_start`: its `output_tokens` is a placeholder; the
        // reply's count comes with the last `message_delta`.
        self.message
            .as_ref()
            .map_or_else(Reported::default, |inner| Reported {
                completion: None,
                ..inner.reported()
            })
    }
}

/// The usage of a whole JSON reply, read in place: the last `"usage"` key
/// holding an object with token counts (see `UsageScanner`, which reads a
/// reply of many chunks the same way as it passes), with the reply's
/// service tier.
pub fn from_json(body: &[u8]) -> Option<Reported> {
    let mut end = body.len();
    while let Some(key) = USAGE_FINDER_REV.rfind(&body[..end]) {
        end = key;
        let after = key + USAGE_KEY.len();
        let Some(at) = object_start(&body[after..]) else {
            continue;
        };
        let mut object = serde_json::Deserializer::from_slice(&body[after + at..]);
        if let Some(r) = UsageField::deserialize(&mut object)
            .ok()
            .map(|u| u.reported())
            .filter(|r| r.tokens().is_some())
        {
            return Some(r.with_tier(service_tier(body)));
        }
    }
    None
}

static TIER_FINDER_REV: LazyLock<FinderRev<'static>> =
    LazyLock::new(|| FinderRev::new(b"\"service_tier\""));

/// The last `"service_tier": "…"` of a JSON reply (OpenAI's, beside its
/// usage).
pub fn service_tier(body: &[u8]) -> Option<Tier> {
    let key = TIER_FINDER_REV.rfind(body)?;
    let rest = &body[key + b"\"service_tier\"".len()..];
    let at = rest
        .iter()
        .position(|b| !(b.is_ascii_whitespace() || *b == b':'))?;
    let value = rest[at..].strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', value)?;
    std::str::from_utf8(&value[..end]).ok().map(Tier::parse)
}

const USAGE_KEY: &[u8] = b"\"usage\"";

// Built once: `memmem::find` would build its searcher again for every
// chunk of every stream.
static USAGE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(USAGE_KEY));
static USAGE_FINDER_REV: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(USAGE_KEY));

/// The largest usage object read; a bigger one is not the reply's own.
const MAX_USAGE_OBJECT: usize = 64 * 1024;

/// How a reply reports its usage: OpenAI's and Anthropic's `"usage"`, or
/// Gemini's `"usageMetadata"` (`usage::gemini`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    Usage,
    Gemini,
}

static METADATA_FINDER: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(super::gemini::USAGE_KEY));
static METADATA_FINDER_REV: LazyLock<FinderRev<'static>> =
    LazyLock::new(|| FinderRev::new(super::gemini::USAGE_KEY));

impl Dialect {
    fn key(self) -> &'static [u8] {
        match self {
            Dialect::Usage => USAGE_KEY,
            Dialect::Gemini => super::gemini::USAGE_KEY,
        }
    }

    fn finder(self) -> &'static Finder<'static> {
        match self {
            Dialect::Usage => &USAGE_FINDER,
            Dialect::Gemini => &METADATA_FINDER,
        }
    }

    /// The counts of one usage object, if it has token counts.
    fn parse(self, object: &[u8]) -> Option<Reported> {
        let reported = match self {
            Dialect::Usage => {
                UsageField::deserialize(&mut serde_json::Deserializer::from_slice(object))
                    .ok()
                    .map(|u| u.reported())
            }
            Dialect::Gemini => super::gemini::parse(object),
        };
        reported.filter(|r| r.tokens().is_some())
    }

    /// The usage of a whole JSON reply (`from_json` in this dialect).
    pub fn from_json(self, body: &[u8]) -> Option<Reported> {
        match self {
            Dialect::Usage => from_json(body),
            Dialect::Gemini => {
                let mut end = body.len();
                while let Some(key) = METADATA_FINDER_REV.rfind(&body[..end]) {
                    end = key;
                    let after = key + self.key().len();
                    let Some(at) = object_start(&body[after..]) else {
                        continue;
                    };
                    // Read from its start; what follows it is not read.
                    if let Some(r) = self.parse(&body[after + at..]) {
                        return Some(r);
                    }
                }
                None
            }
        }
    }

    /// Whether the bytes hold a usage object (no parsing).
    pub fn has_usage_object(self, bytes: &[u8]) -> bool {
        let key = self.key().len();
        self.finder()
            .find_iter(bytes)
            .any(|at| object_start(&bytes[at + key..]).is_some())
    }

    /// One event's usage (`inspect_event` in this dialect).
    pub fn inspect_event(self, event: &[u8]) -> Event {
        match self {
            Dialect::Usage => inspect_event(event),
            Dialect::Gemini => Event {
                reported: if self.has_usage_object(event) {
                    self.from_json(&event_data(event)).unwrap_or_default()
                } else {
                    Reported::default()
                },
                usage_only: false,
            },
        }
    }

    /// One event's output (`output_text` in this dialect).
    pub fn output_text(self, event: &[u8], each: &mut impl FnMut(&str)) {
        match self {
            Dialect::Usage => output_text(event, each),
            Dialect::Gemini => super::gemini::output_text(&data_of(event), each),
        }
    }
}

/// Finds a JSON reply's own `usage` as the reply streams by, in bounded
/// memory, whatever the reply's size: only `"usage": {…}` objects are
/// kept and parsed. The reply's own comes after its `choices`, `data` or
/// `output` (in the order OpenAI writes and in sorted order alike), so the
/// last one with token counts wins. A key inside a string cannot match
/// (its quotes are escaped there).
#[derive(Default)]
pub struct UsageScanner {
    dialect: Dialect,
    state: ScanState,
    /// The end of the last chunk: a key may straddle two chunks.
    carry: Vec<u8>,
    found: Option<Reported>,
}

#[derive(Default)]
enum ScanState {
    #[default]
    Searching,
    /// After a `"usage"` key: skipping `:` and blanks to its value.
    AfterKey,
    Object(Capture),
}

#[derive(Default)]
struct Capture {
    text: Vec<u8>,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Capture {
    /// Takes bytes of the object (from its `{`); returns how many it took
    /// and whether the object ended, or `None` if it grew too large.
    fn take(&mut self, bytes: &[u8]) -> Option<(usize, bool)> {
        for (i, &b) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                    _ => {}
                }
            }
            if self.depth == 0 {
                self.text.extend_from_slice(&bytes[..=i]);
                return Some((i + 1, true));
            }
        }
        if self.text.len() + bytes.len() > MAX_USAGE_OBJECT {
            return None;
        }
        self.text.extend_from_slice(bytes);
        Some((bytes.len(), false))
    }
}

impl UsageScanner {
    pub fn new(dialect: Dialect) -> UsageScanner {
        UsageScanner {
            dialect,
            ..UsageScanner::default()
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        let (key, finder) = (self.dialect.key(), self.dialect.finder());
        let mut i = 0;
        let carried = std::mem::take(&mut self.carry);
        if matches!(self.state, ScanState::Searching) && !carried.is_empty() {
            // A key that began in the last chunk and ends in this one.
            let mut seam = carried.clone();
            seam.extend_from_slice(&chunk[..chunk.len().min(key.len() - 1)]);
            if let Some(at) = finder.find(&seam) {
                if at < carried.len() {
                    i = at + key.len() - carried.len();
                    self.state = ScanState::AfterKey;
                }
            }
        }
        while i < chunk.len() {
            match &mut self.state {
                ScanState::Searching => match finder.find(&chunk[i..]) {
                    Some(at) => {
                        i += at + key.len();
                        self.state = ScanState::AfterKey;
                    }
                    None => break,
                },
                ScanState::AfterKey => {
                    let rest = &chunk[i..];
                    match rest
                        .iter()
                        .position(|b| !(b.is_ascii_whitespace() || *b == b':'))
                    {
                        None => i = chunk.len(),
                        Some(at) if rest[at] == b'{' => {
                            i += at;
                            self.state = ScanState::Object(Capture::default());
                        }
                        Some(at) => {
                            i += at;
                            self.state = ScanState::Searching;
                        }
                    }
                }
                ScanState::Object(capture) => match capture.take(&chunk[i..]) {
                    Some((took, done)) => {
                        i += took;
                        if done {
                            let text = std::mem::take(&mut capture.text);
                            self.state = ScanState::Searching;
                            let reported = self.dialect.parse(&text);
                            self.found = reported.or(self.found);
                        }
                    }
                    None => self.state = ScanState::Searching,
                },
            }
        }
        if matches!(self.state, ScanState::Searching) {
            // Keep the last bytes, short of a whole key, for the seam.
            let keep = key.len() - 1;
            let mut tail = if chunk.len() >= keep {
                Vec::new()
            } else {
                carried
            };
            tail.extend_from_slice(&chunk[chunk.len().saturating_sub(keep)..]);
            let excess = tail.len().saturating_sub(keep);
            tail.drain(..excess);
            self.carry = tail;
        }
    }

    /// The last usage object that had tokens.
    pub fn reported(&self) -> Option<Reported> {
        self.found
    }
}

/// Where the value of the first `"usage"` key holding an object starts.
fn object_start(rest: &[u8]) -> Option<usize> {
    rest.iter()
        .position(|b| !(b.is_ascii_whitespace() || *b == b':'))
        .filter(|&i| rest[i] == b'{')
}

/// What one server-sent event carried.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub reported: Reported,
    /// A chunk that only carries usage (`"choices": []`), as OpenAI sends
    /// when `stream_options.include_usage` is set.
    pub usage_only: bool,
}

pub fn event_data(event: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"data:") {
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
        }
    }
    data
}

/// Whether the bytes hold a `"usage": {` object. With `include_usage` every
/// chunk carries `"usage":null`; only the last one, with an object, is
/// worth parsing. A cheap scan, no JSON parsing.
pub fn has_usage_object(bytes: &[u8]) -> bool {
    USAGE_FINDER
        .find_iter(bytes)
        .any(|at| object_start(&bytes[at + USAGE_KEY.len()..]).is_some())
}

/// Looks at one event; only events with a usage object are parsed.
pub fn inspect_event(event: &[u8]) -> Event {
    let none = Event {
        reported: Reported::default(),
        usage_only: false,
    };
    if !has_usage_object(event) {
        return none;
    }
    let data = event_data(event);
    let Ok(parsed) = serde_json::from_slice::<WithUsage>(&data) else {
        return none;
    };
    let reported = parsed.reported();
    Event {
        usage_only: reported.prompt.is_some() && parsed.choices.as_ref().is_some_and(Vec::is_empty),
        reported,
    }
}

/// A string where one is expected, and nothing otherwise (a provider that
/// sends `null` or another shape loses no other text).
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("text")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_unit<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Text<'de>, E> {
                Ok(Text(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Text<'de>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Text<'de>, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A stream event's output, in any of the APIs' shapes.
#[derive(Deserialize)]
struct OutputEvent<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Text<'a>>,
    /// The Responses API's `*.delta` string, or Anthropic's delta object.
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
}

enum Delta<'a> {
    Text(Cow<'a, str>),
    Block(Vec<Cow<'a, str>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Delta<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Delta<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a delta")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Delta<'de>, E> {
                Ok(Delta::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Delta<'de>, E> {
                Ok(Delta::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_unit<E>(self) -> Result<Delta<'de>, E> {
                Ok(Delta::Block(Vec::new()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Delta<'de>, A::Error> {
                // Anthropic's `content_block_delta`: text, thinking and a
                // tool call's input as it grows (not the signature).
                let mut texts = Vec::new();
                while let Some(key) = m.next_key::<Cow<'de, str>>()? {
                    if matches!(&*key, "text" | "thinking" | "partial_json") {
                        if let Some(t) = m.next_value::<Text<'de>>()?.0 {
                            texts.push(t);
                        }
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Delta::Block(texts))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<ChatDelta<'a>>,
    #[serde(borrow, default)]
    text: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ChatDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Text<'a>>,
    #[serde(borrow, default)]
    reasoning: Option<Text<'a>>,
    #[serde(borrow, default)]
    refusal: Option<Text<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(borrow, default)]
    function_call: Option<Arguments<'a>>,
    #[serde(borrow, default)]
    audio: Option<Transcript<'a>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Arguments<'a>>,
}

#[derive(Deserialize)]
struct Arguments<'a> {
    #[serde(borrow, default)]
    arguments: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Transcript<'a> {
    #[serde(borrow, default)]
    transcript: Option<Text<'a>>,
}

/// The `data` of an event: borrowed when it is one line, as it mostly is.
fn data_of(event: &[u8]) -> Cow<'_, [u8]> {
    let mut lines = event
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter_map(|l| l.strip_prefix(b"data:"));
    let Some(first) = lines.next() else {
        return Cow::Borrowed(&[]);
    };
    let first = first.strip_prefix(b" ").unwrap_or(first);
    match lines.next() {
        None => Cow::Borrowed(first),
        Some(_) => Cow::Owned(event_data(event)),
    }
}

/// Calls `each` with every piece of output one stream event carries: Chat
/// Completions' deltas (content, reasoning, refusals, tool-call arguments,
/// audio transcripts), Completions' text, the Responses API's `*.delta`
/// events (text, reasoning and its summaries, arguments, transcripts; not
/// audio itself), Anthropic's `content_block_delta` (text, thinking, tool
/// input). Finished texts repeated at the end (`.done`) are not counted.
pub fn output_text(event: &[u8], each: &mut impl FnMut(&str)) {
    let data = data_of(event);
    if data.first() != Some(&b'{') {
        return; // `[DONE]`, a comment, nothing
    }
    let Ok(e) = serde_json::from_slice::<OutputEvent>(&data) else {
        return;
    };
    let kind = e.kind.and_then(|k| k.0);
    match e.delta {
        Some(Delta::Text(t)) => {
            let kind = kind.as_deref().unwrap_or_default();
            if kind.ends_with(".delta") && kind != "response.audio.delta" {
                each(&t);
            }
        }
        Some(Delta::Block(texts)) => texts.iter().for_each(|t| each(t)),
        None => {}
    }
    for c in e.choices.into_iter().flatten() {
        if let Some(t) = c.text.and_then(|t| t.0) {
            each(&t);
        }
        let Some(d) = c.delta else { continue };
        for t in [d.content, d.reasoning_content, d.reasoning, d.refusal]
            .into_iter()
            .flatten()
            .filter_map(|t| t.0)
        {
            each(&t);
        }
        let arguments = d
            .tool_calls
            .into_iter()
            .flatten()
            .filter_map(|c| c.function)
            .chain(d.function_call)
            .filter_map(|f| f.arguments.and_then(|a| a.0));
        for t in arguments {
            each(&t);
        }
        if let Some(t) = d.audio.and_then(|a| a.transcript).and_then(|t| t.0) {
            each(&t);
        }
    }
}

/// Calls `each` with every complete event in `buf` from `from` on (an
/// event ends in a blank line); returns where the incomplete rest begins.
/// `scan` is where to start looking for an event's end.
fn events_in(buf: &[u8], mut scan: usize, each: &mut impl FnMut(&[u8])) -> usize {
    let mut start = 0;
    while scan + 1 < buf.len() {
        let end = if buf[scan] == b'\n' && buf[scan + 1] == b'\n' {
            Some(scan + 2)
        } else if buf[scan..].starts_with(b"\r\n\r\n") {
            Some(scan + 4)
        } else {
            None
        };
        if let Some(end) = end {
            each(&buf[start..end]);
            start = end;
            scan = end;
        } else {
            scan += 1;
        }
    }
    start
}

/// Calls `each` with every event of a chunk made of whole events, in
/// place.
pub fn each_event(chunk: &[u8], mut each: impl FnMut(&[u8])) {
    events_in(chunk, 0, &mut each);
}

/// Splits a byte stream into complete server-sent events (ending in a blank
/// line), keeping an incomplete tail for the next chunk.
#[derive(Default)]
pub struct SseSplitter {
    tail: BytesMut,
}

impl SseSplitter {
    /// Calls `each` with every event completed by `chunk`, in order, each
    /// with its terminating blank line.
    pub fn feed(&mut self, chunk: &[u8], mut each: impl FnMut(&[u8])) {
        // The tail held no event end; only its last 3 bytes can begin one.
        let scan = self.tail.len().saturating_sub(3);
        self.tail.extend_from_slice(chunk);
        let start = events_in(&self.tail, scan, &mut each);
        let _ = self.tail.split_to(start);
    }

    pub fn is_empty(&self) -> bool {
        self.tail.is_empty()
    }

    /// The bytes held: an event not ended yet.
    pub fn held(&self) -> usize {
        self.tail.len()
    }

    /// What is left: an event that never got its blank line.
    pub fn into_tail(self) -> Bytes {
        self.tail.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_tokens(body: &[u8]) -> Option<Tokens> {
        from_json(body).and_then(|r| r.tokens())
    }

    fn t(prompt: i64, completion: i64, cached: i64) -> Option<Tokens> {
        Tokens::read(prompt, completion, cached)
    }

    #[test]
    fn usage_from_chat_embeddings_and_responses_json() {
        let chat = br#"{"choices":[{"message":{"content":"usage"}}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}"#;
        assert_eq!(json_tokens(chat), t(7, 2, 0));
        let emb = br#"{"data":[],"usage":{"prompt_tokens":3,"total_tokens":3}}"#;
        assert_eq!(json_tokens(emb), t(3, 0, 0));
        let resp = br#"{"id":"r","usage":{"input_tokens":5,"output_tokens":4,"total_tokens":9}}"#;
        assert_eq!(json_tokens(resp), t(5, 4, 0));
        assert_eq!(json_tokens(br#"{"usage":null}"#), None);
        assert_eq!(json_tokens(b"not json"), None);
    }

    #[test]
    fn only_the_replys_own_usage_object_counts() {
        let t = |prompt, completion| t(prompt, completion, 0);
        // A "usage" inside a string has escaped quotes: no match.
        let quoted = br#"{"choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 99}"}}],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        assert_eq!(json_tokens(quoted), t(7, 2));
        // An item's own usage comes before the reply's.
        let nested = br#"{"output":[{"type":"compaction","usage":{"input_tokens":50,"output_tokens":5}}],"usage":{"input_tokens":8,"output_tokens":3}}"#;
        assert_eq!(json_tokens(nested), t(8, 3));
        // Nested in `response`, as the Responses API's events carry it.
        let wrapped = br#"{"type":"response.completed","response":{"output":[],"usage": {"input_tokens":2,"output_tokens":1}}}"#;
        assert_eq!(json_tokens(wrapped), t(2, 1));
        // A last "usage" object without token counts: the whole reply is read.
        let later = br#"{"usage":{"prompt_tokens":3,"completion_tokens":1},"meta":{"usage":{"seconds":1}}}"#;
        assert_eq!(json_tokens(later), t(3, 1));
        // Audio's duration usage has no tokens.
        assert_eq!(
            json_tokens(br#"{"text":"x","usage":{"type":"duration","seconds":1}}"#),
            None
        );
        // Truncated after the key: nothing, and no panic.
        assert_eq!(json_tokens(br#"{"usage":"#), None);
        assert_eq!(json_tokens(br#"{"usage": {"prompt_tokens":"#), None);
    }

    #[test]
    fn the_scanner_finds_usage_across_any_chunk_seams() {
        let reply = br#"{"data":[{"usage":"x","embedding":[0.1,0.2]}],"usage" :
            {"prompt_tokens":12,"completion_tokens":3,"details":{"a":[1,{"b":"}"}]}}}"#;
        let want = t(12, 3, 0);
        assert_eq!(json_tokens(reply), want);
        for size in 1..reply.len() {
            let mut scanner = UsageScanner::default();
            for chunk in reply.chunks(size) {
                scanner.feed(chunk);
            }
            assert_eq!(
                scanner.reported().and_then(|r| r.tokens()),
                want,
                "chunks of {size}"
            );
        }
        // An oversized "usage" object is not kept whole; memory stays bounded.
        let mut scanner = UsageScanner::default();
        scanner.feed(br#"{"usage":{"prompt_tokens":1,"pad":""#);
        for _ in 0..100 {
            scanner.feed(&[b'x'; 1024]);
        }
        scanner.feed(br#""}}"#);
        assert_eq!(scanner.reported().and_then(|r| r.tokens()), None);
    }

    #[test]
    fn usage_chunk_is_recognised() {
        let usage =
            b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n\n";
        let event = inspect_event(usage);
        assert_eq!(
            (event.reported.complete(), event.usage_only),
            (t(4, 6, 0), true)
        );
        let content = b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n";
        let event = inspect_event(content);
        assert_eq!(
            (event.reported, event.usage_only),
            (Reported::default(), false)
        );
        let done = b"data: [DONE]\n\n";
        assert_eq!(inspect_event(done).reported.tokens(), None);
        let responses = b"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":2,\"input_tokens_details\":{\"cached_tokens\":1},\"output_tokens\":3}}}\n\n";
        assert_eq!(inspect_event(responses).reported.complete(), t(2, 3, 1));
    }

    #[test]
    fn cached_tokens_in_each_dialect() {
        let chat = br#"{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":64}}}"#;
        assert_eq!(json_tokens(chat), t(100, 5, 64));
        // Anthropic counts cache reads and writes apart from the input.
        let anthropic = br#"{"type":"message","usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":7}}"#;
        let written = Tokens {
            cache_written: 20,
            ..t(130, 7, 100).unwrap()
        };
        assert_eq!(json_tokens(anthropic), Some(written));
        // Streamed: the input at message_start, the output at the last
        // message_delta; message_start's output count is a placeholder.
        let start = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n";
        let delta = b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n";
        let started = inspect_event(start).reported;
        assert_eq!(started.complete(), None);
        assert_eq!(started.tokens(), t(110, 0, 100));
        let done = started.then(inspect_event(delta).reported);
        assert_eq!(done.complete(), t(110, 15, 100));
        assert!(!inspect_event(start).usage_only && !inspect_event(delta).usage_only);
    }

    #[test]
    fn tiers_hour_long_cache_writes_and_searches_are_read() {
        let chat =
            br#"{"service_tier":"priority","usage":{"prompt_tokens":3,"completion_tokens":1}}"#;
        assert_eq!(from_json(chat).unwrap().tier(), Some(Tier::Priority));
        let anthropic =
            br#"{"usage":{"input_tokens":10,"output_tokens":2,"cache_creation_input_tokens":20,
            "cache_creation":{"ephemeral_5m_input_tokens":5,"ephemeral_1h_input_tokens":15},
            "server_tool_use":{"web_search_requests":3},"service_tier":"priority"}}"#;
        let extras = from_json(anthropic).unwrap().extras(Extras::default());
        assert_eq!(
            (extras.tier, extras.cache_written_1h, extras.web_searches),
            (Tier::Priority, 15, 3)
        );
        let streamed = b"data: {\"service_tier\":\"flex\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":6}}\n\n";
        assert_eq!(inspect_event(streamed).reported.tier(), Some(Tier::Flex));
    }

    /// Every kind of output a stream event carries, in each API's shape.
    #[test]
    fn output_text_of_every_kind() {
        let text = |event: &str| {
            let mut out = String::new();
            output_text(event.as_bytes(), &mut |t| out.push_str(t));
            out
        };
        assert_eq!(
            text(
                r#"data: {"choices":[{"delta":{"content":"a","reasoning_content":"b","refusal":"c","tool_calls":[{"function":{"arguments":"d"}}],"audio":{"transcript":"e"}}}]}"#
            ),
            "abcde"
        );
        assert_eq!(text(r#"data: {"choices":[{"text":"t"}]}"#), "t");
        assert_eq!(
            text("event: response.reasoning_summary_text.delta\ndata: {\"type\":\"response.reasoning_summary_text.delta\",\"delta\":\"r\"}"),
            "r"
        );
        assert_eq!(
            text(r#"data: {"type":"response.function_call_arguments.delta","delta":"{\"x\":1}"}"#),
            "{\"x\":1}"
        );
        // Audio itself is not text; its transcript is.
        assert_eq!(
            text(r#"data: {"type":"response.audio.delta","delta":"AAAA"}"#),
            ""
        );
        assert_eq!(
            text(
                r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#
            ),
            "hmm"
        );
        assert_eq!(
            text(
                r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#
            ),
            "{\"a\""
        );
        // The finished text again (`.done`) is not counted twice.
        assert_eq!(
            text(r#"data: {"type":"response.output_text.done","text":"whole"}"#),
            ""
        );
        assert_eq!(text("data: [DONE]"), "");
    }

    #[test]
    fn only_usage_objects_count() {
        assert!(has_usage_object(br#"{"usage": {"prompt_tokens":1}}"#));
        assert!(!has_usage_object(br#"{"usage":null,"x":1}"#));
        assert!(!has_usage_object(br#"{"content":"usage"}"#));
        assert!(has_usage_object(
            br#"{"usage":null,"response":{"usage":{}}}"#
        ));
    }

    #[test]
    fn splitter_handles_events_across_chunks() {
        let mut s = SseSplitter::default();
        let mut seen: Vec<String> = Vec::new();
        for part in [
            "data: a\n",
            "\ndata: b\n\ndata:",
            " c\r\n\r",
            "\n",
            "data: d",
        ] {
            s.feed(part.as_bytes(), |e| {
                seen.push(String::from_utf8(e.to_vec()).unwrap())
            });
        }
        assert_eq!(seen, ["data: a\n\n", "data: b\n\n", "data: c\r\n\r\n"]);
        assert!(!s.is_empty());
    }
}
