//! Reading token usage out of upstream replies (pure logic, no I/O): the
//! `usage` object of a JSON reply, the usage events of a stream (OpenAI's
//! usage chunk, Anthropic's `message_start` and `message_delta`), cached
//! tokens in each dialect (the estimate when they report none is in
//! `estimate`).
//!
//! Longer than 450 lines only with its unit tests: the code is the first
//! 420 lines; the tests drive private steps, so they stay beside it.

use super::Tokens;
use bytes::{Bytes, BytesMut};
use memchr::memmem::{Finder, FinderRev};
use serde::Deserialize;
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
}

impl Reported {
    /// What `later` reports, else what was reported before.
    pub fn then(self, later: Reported) -> Reported {
        Reported {
            prompt: later.prompt.or(self.prompt),
            completion: later.completion.or(self.completion),
            cached: later.cached.or(self.cached),
            cache_written: later.cache_written.or(self.cache_written),
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
        }
    }

    fn tokens(&self) -> Option<Tokens> {
        self.reported().tokens()
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
}

impl WithUsage {
    fn reported(&self) -> Reported {
        if let Some(u) = &self.usage {
            return u.reported();
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
/// reply of many chunks the same way as it passes).
pub fn from_json(body: &[u8]) -> Option<Tokens> {
    let mut end = body.len();
    while let Some(key) = USAGE_FINDER_REV.rfind(&body[..end]) {
        end = key;
        let after = key + USAGE_KEY.len();
        let Some(at) = object_start(&body[after..]) else {
            continue;
        };
        let mut object = serde_json::Deserializer::from_slice(&body[after + at..]);
        if let Some(t) = UsageField::deserialize(&mut object)
            .ok()
            .and_then(|u| u.tokens())
        {
            return Some(t);
        }
    }
    None
}

const USAGE_KEY: &[u8] = b"\"usage\"";

// Built once: `memmem::find` would build its searcher again for every
// chunk of every stream.
static USAGE_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(USAGE_KEY));
static USAGE_FINDER_REV: LazyLock<FinderRev<'static>> = LazyLock::new(|| FinderRev::new(USAGE_KEY));

/// The largest usage object read; a bigger one is not the reply's own.
const MAX_USAGE_OBJECT: usize = 64 * 1024;

/// Finds a JSON reply's own `usage` as the reply streams by, in bounded
/// memory, whatever the reply's size: only `"usage": {…}` objects are
/// kept and parsed. The reply's own comes after its `choices`, `data` or
/// `output` (in the order OpenAI writes and in sorted order alike), so the
/// last one with token counts wins. A key inside a string cannot match
/// (its quotes are escaped there).
#[derive(Default)]
pub struct UsageScanner {
    state: ScanState,
    /// The end of the last chunk: a key may straddle two chunks.
    carry: Vec<u8>,
    found: Option<Tokens>,
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
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut i = 0;
        let carried = std::mem::take(&mut self.carry);
        if matches!(self.state, ScanState::Searching) && !carried.is_empty() {
            // A key that began in the last chunk and ends in this one.
            let mut seam = carried.clone();
            seam.extend_from_slice(&chunk[..chunk.len().min(USAGE_KEY.len() - 1)]);
            if let Some(at) = USAGE_FINDER.find(&seam) {
                if at < carried.len() {
                    i = at + USAGE_KEY.len() - carried.len();
                    self.state = ScanState::AfterKey;
                }
            }
        }
        while i < chunk.len() {
            match &mut self.state {
                ScanState::Searching => match USAGE_FINDER.find(&chunk[i..]) {
                    Some(at) => {
                        i += at + USAGE_KEY.len();
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
                            let tokens = UsageField::deserialize(
                                &mut serde_json::Deserializer::from_slice(&text),
                            )
                            .ok()
                            .and_then(|u| u.tokens());
                            self.found = tokens.or(self.found);
                        }
                    }
                    None => self.state = ScanState::Searching,
                },
            }
        }
        if matches!(self.state, ScanState::Searching) {
            // Keep the last bytes, short of a whole key, for the seam.
            let keep = USAGE_KEY.len() - 1;
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

    /// The tokens of the last usage object that had them.
    pub fn tokens(&self) -> Option<Tokens> {
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
        let mut i = self.tail.len().saturating_sub(3);
        self.tail.extend_from_slice(chunk);
        let mut start = 0;
        let buf = &self.tail[..];
        while i + 1 < buf.len() {
            let end = if buf[i] == b'\n' && buf[i + 1] == b'\n' {
                Some(i + 2)
            } else if buf[i..].starts_with(b"\r\n\r\n") {
                Some(i + 4)
            } else {
                None
            };
            if let Some(end) = end {
                each(&buf[start..end]);
                start = end;
                i = end;
            } else {
                i += 1;
            }
        }
        let _ = self.tail.split_to(start);
    }

    pub fn is_empty(&self) -> bool {
        self.tail.is_empty()
    }

    /// What is left: an event that never got its blank line.
    pub fn into_tail(self) -> Bytes {
        self.tail.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reported tokens, none written to a cache.
    fn t(prompt: i64, completion: i64, cached: i64) -> Option<Tokens> {
        Some(Tokens {
            prompt,
            completion,
            cached,
            cache_written: 0,
        })
    }

    #[test]
    fn usage_from_chat_embeddings_and_responses_json() {
        let chat = br#"{"choices":[{"message":{"content":"usage"}}],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}"#;
        assert_eq!(from_json(chat), t(7, 2, 0));
        let emb = br#"{"data":[],"usage":{"prompt_tokens":3,"total_tokens":3}}"#;
        assert_eq!(from_json(emb), t(3, 0, 0));
        let resp = br#"{"id":"r","usage":{"input_tokens":5,"output_tokens":4,"total_tokens":9}}"#;
        assert_eq!(from_json(resp), t(5, 4, 0));
        assert_eq!(from_json(br#"{"usage":null}"#), None);
        assert_eq!(from_json(b"not json"), None);
    }

    #[test]
    fn only_the_replys_own_usage_object_counts() {
        let t = |prompt, completion| t(prompt, completion, 0);
        // A "usage" inside a string has escaped quotes: no match.
        let quoted = br#"{"choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 99}"}}],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#;
        assert_eq!(from_json(quoted), t(7, 2));
        // An item's own usage comes before the reply's.
        let nested = br#"{"output":[{"type":"compaction","usage":{"input_tokens":50,"output_tokens":5}}],"usage":{"input_tokens":8,"output_tokens":3}}"#;
        assert_eq!(from_json(nested), t(8, 3));
        // Nested in `response`, as the Responses API's events carry it.
        let wrapped = br#"{"type":"response.completed","response":{"output":[],"usage": {"input_tokens":2,"output_tokens":1}}}"#;
        assert_eq!(from_json(wrapped), t(2, 1));
        // A last "usage" object without token counts: the whole reply is read.
        let later = br#"{"usage":{"prompt_tokens":3,"completion_tokens":1},"meta":{"usage":{"seconds":1}}}"#;
        assert_eq!(from_json(later), t(3, 1));
        // Audio's duration usage has no tokens.
        assert_eq!(
            from_json(br#"{"text":"x","usage":{"type":"duration","seconds":1}}"#),
            None
        );
        // Truncated after the key: nothing, and no panic.
        assert_eq!(from_json(br#"{"usage":"#), None);
        assert_eq!(from_json(br#"{"usage": {"prompt_tokens":"#), None);
    }

    #[test]
    fn the_scanner_finds_usage_across_any_chunk_seams() {
        let reply = br#"{"data":[{"usage":"x","embedding":[0.1,0.2]}],"usage" :
            {"prompt_tokens":12,"completion_tokens":3,"details":{"a":[1,{"b":"}"}]}}}"#;
        let want = t(12, 3, 0);
        assert_eq!(from_json(reply), want);
        for size in 1..reply.len() {
            let mut scanner = UsageScanner::default();
            for chunk in reply.chunks(size) {
                scanner.feed(chunk);
            }
            assert_eq!(scanner.tokens(), want, "chunks of {size}");
        }
        // An oversized "usage" object is not kept whole; memory stays bounded.
        let mut scanner = UsageScanner::default();
        scanner.feed(br#"{"usage":{"prompt_tokens":1,"pad":""#);
        for _ in 0..100 {
            scanner.feed(&[b'x'; 1024]);
        }
        scanner.feed(br#""}}"#);
        assert_eq!(scanner.tokens(), None);
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
        assert_eq!(from_json(chat), t(100, 5, 64));
        // Anthropic counts cache reads and writes apart from the input.
        let anthropic = br#"{"type":"message","usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":7}}"#;
        let written = Tokens {
            cache_written: 20,
            ..t(130, 7, 100).unwrap()
        };
        assert_eq!(from_json(anthropic), Some(written));
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
