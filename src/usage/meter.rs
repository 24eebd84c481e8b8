//! Wraps a response body so that its usage record is sent when the body is
//! done: fully delivered, failed, timed out, or dropped because the client
//! went away.
//!
//! Chunks pass through as they arrive. On the way the meter reads the
//! reply's usage in bounded memory (a JSON reply's `usage` object as it
//! streams by, a stream's usage event), drops the usage chunk of a chat
//! stream again when only the gateway asked for it, and counts what it
//! needs to estimate the reply if no usage comes: every kind of output
//! text a stream carries, as it passes (a bounded sample for the tokenizer
//! and the length of the rest), the first part of a JSON or text reply,
//! the length of audio. Estimating happens later, off the request path. A
//! reply the upstream keeps and finishes later (a background response, a
//! stored response cut short) is left to be settled from the stored one.

use super::audio;
use super::extract::{self, SseSplitter, ToolCalls, UsageScanner};
pub use super::watch::{is_event_stream, Accounting, Watch};
use super::writer::UsageSink;
use super::{ReplyKind, TokenWork, Tokens, UsageRecord};
use crate::catalogue::Meter;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

/// The most of a reply kept for estimating its tokens (the tokenizer reads
/// no more than this; the rest is extrapolated by length).
const MAX_KEPT: usize = crate::usage::estimate::ESTIMATE_TEXT;
/// The most of a stream's output text kept for the tokenizer, held for as
/// long as the stream runs (minutes, for a long answer): the rest is
/// counted by its length and extrapolated, so 2,000 long streams hold 32
/// MiB of it rather than 512.
const MAX_KEPT_STREAMED: usize = 16 * 1024;

/// The largest server-sent event read: a longer one (no blank line in
/// sight) ends the stream with an error event, so that no upstream can
/// make the gateway hold a reply whole.
pub const MAX_EVENT: usize = 1024 * 1024;

/// What a stream whose event outgrew `MAX_EVENT` ends with.
const EVENT_TOO_LARGE: &[u8] = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"upstream_error\",\"code\":\"upstream_error\",\"message\":\"The upstream sent an event larger than 1 MiB; the gateway ended the stream.\"}}\n\n";

/// The id of the object a reply creates, once its first bytes name it
/// (`proxy::owned::Claiming` sets it).
pub type Created = Rc<RefCell<Option<Box<str>>>>;

/// A usage record waiting for its request to finish.
pub struct Pending {
    pub record: UsageRecord,
    started: Instant,
    sink: UsageSink,
    /// The JSON request body, for estimating prompt tokens.
    pub request: Option<Bytes>,
    /// The user's parallel slot: free again when the request ends.
    pub running: crate::limits::Pair<crate::limits::Running>,
    /// The object the reply creates, if it creates one.
    pub created: Option<Created>,
    /// What the log line names instead of the record's endpoint: the
    /// beginning of a path the gateway refused as unknown.
    pub log_path: Option<String>,
    /// Headers telling the caller what is left of their limits.
    pub pace: Vec<(
        actix_web::http::header::HeaderName,
        actix_web::http::header::HeaderValue,
    )>,
}

impl Pending {
    pub fn new(record: UsageRecord, started: Instant, sink: UsageSink) -> Pending {
        sink.started();
        Pending {
            record,
            started,
            sink,
            request: None,
            running: Default::default(),
            created: None,
            log_path: None,
            pace: Vec::new(),
        }
    }

    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// Whether the reply is to be watched for its usage.
    pub fn counts(&self) -> bool {
        self.sink.counts()
    }

    pub fn finish(mut self) {
        self.running.clear();
        let r = &mut self.record;
        r.latency_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        log_line(r, self.log_path.as_deref());
        self.sink.record(self.record);
    }
}

/// The one log line per request: never a key, never a body. Its own
/// target, so that `log.level: info,chatgate::request=off` turns it off
/// (nginx's `access_log off`) and keeps the rest. `path`: what to name
/// instead of the record's endpoint (a refused path's beginning).
fn log_line(r: &UsageRecord, path: Option<&str>) {
    tracing::info!(
        target: "chatgate::request",
        request_id = %r.request_id.as_deref().unwrap_or("-"),
        user = &*r.user,
        method = r.method,
        endpoint = %path.unwrap_or(&r.endpoint),
        model = r.model.as_deref().unwrap_or("-"),
        upstream = r.upstream.as_deref().unwrap_or("-"),
        status = r.status,
        tokens = r.total_tokens.unwrap_or(0),
        latency_ms = r.latency_ms,
        "request"
    );
}

/// The log line of a request refused before it had a user (a wrong key)
/// or an endpoint (a path outside the API): user `-`, the path's first 100
/// characters, so that an operator sees a misconfigured client.
pub fn log_refused(
    request_id: &str,
    method: &'static str,
    path: &str,
    status: u16,
    started: Instant,
) {
    let r = UsageRecord {
        request_id: Some(Box::from(request_id)),
        user: std::sync::Arc::from("-"),
        method,
        status,
        latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        ..UsageRecord::default()
    };
    let shown: String = path.chars().take(100).collect();
    log_line(&r, Some(&shown));
}

/// The error a metered body ends with when its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the upstream did not finish its reply in time")]
pub struct ReplyTimedOut;

/// A stream's output text: a sample for the tokenizer, and the length of
/// all of it.
#[derive(Default)]
struct OutputText {
    sample: String,
    len: usize,
}

impl OutputText {
    fn push(&mut self, t: &str) {
        self.len += t.len();
        let room = MAX_KEPT_STREAMED.saturating_sub(self.sample.len());
        if room == 0 {
            return;
        }
        let mut cut = room.min(t.len());
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        self.sample.push_str(&t[..cut]);
    }
}

pub struct Metered<S> {
    inner: S,
    pending: Option<Pending>,
    watch: Watch,
    accounting: Accounting,
    splitter: SseSplitter,
    scanner: UsageScanner,
    /// The first part of a JSON or text reply, for estimating at the end.
    kept: Vec<Bytes>,
    kept_len: usize,
    /// The whole reply's length so far.
    reply_len: usize,
    /// A stream's output text.
    text: OutputText,
    /// What the stream's usage events reported so far.
    reported: extract::Reported,
    /// Tool calls a stream's final event or a JSON reply made.
    tools: ToolCalls,
    /// A stored response's stream reached its final event (with or without
    /// usage): nothing is left to settle later.
    ended: bool,
    /// An event outgrew `MAX_EVENT`: the stream ended with an error event.
    overflowed: bool,
    /// A JSON reply's first chunk, while it is the only one.
    first: Option<Bytes>,
    /// Audio's first bytes (its header).
    head: Vec<u8>,
    /// When the whole reply must be done (`limits.upstream_timeout`).
    deadline: Option<tokio::time::Instant>,
    /// Made only once the reply makes the client wait.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, pending: Pending, watch: Watch, accounting: Accounting) -> Self {
        let dialect = accounting.dialect;
        Metered {
            inner,
            pending: Some(pending),
            watch,
            accounting,
            splitter: SseSplitter::default(),
            scanner: UsageScanner::new(dialect),
            kept: Vec::new(),
            kept_len: 0,
            reply_len: 0,
            text: OutputText::default(),
            reported: extract::Reported::default(),
            tools: ToolCalls::default(),
            ended: false,
            overflowed: false,
            first: None,
            head: Vec::new(),
            deadline: None,
            timer: None,
        }
    }

    /// The body ends with an error if it is not done by `deadline`.
    pub fn until(mut self, deadline: tokio::time::Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    fn keep(&mut self, chunk: &Bytes, most: usize) {
        self.reply_len += chunk.len();
        let room = most.saturating_sub(self.kept_len);
        if room == 0 {
            return;
        }
        let part = chunk.slice(..chunk.len().min(room));
        self.kept_len += part.len();
        self.kept.push(part);
    }

    /// Looks at a chunk; returns what to send on (`None`: nothing yet).
    fn observe(&mut self, chunk: Bytes) -> Option<Bytes> {
        let (strip_usage, estimate) = match self.watch {
            Watch::Nothing => return Some(chunk),
            Watch::Audio => {
                if self.head.len() < 64 {
                    let take = (64 - self.head.len()).min(chunk.len());
                    self.head.extend_from_slice(&chunk[..take]);
                }
                self.reply_len += chunk.len();
                return Some(chunk);
            }
            Watch::Text => {
                self.keep(&chunk, MAX_KEPT);
                return Some(chunk);
            }
            Watch::Json { estimate } => {
                // Most replies come in one chunk: it is read at the end, in
                // place. From a second chunk on, the scanner reads as they
                // pass, so memory stays bounded whatever the size.
                match self.first.take() {
                    None if self.reply_len == 0 => self.first = Some(chunk.clone()),
                    first => {
                        if let Some(first) = first {
                            self.scanner.feed(&first);
                        }
                        self.scanner.feed(&chunk);
                    }
                }
                if self.accounting.tools {
                    let calls = ToolCalls::count(&chunk);
                    self.tools.web_searches += calls.web_searches;
                    self.tools.file_searches += calls.file_searches;
                    self.tools.code_sessions = self.tools.code_sessions.max(calls.code_sessions);
                }
                if estimate || self.accounting.meter == Some(Meter::Transcription) {
                    self.keep(&chunk, MAX_KEPT);
                } else {
                    self.reply_len += chunk.len();
                }
                return Some(chunk);
            }
            Watch::Events {
                strip_usage,
                estimate,
            } => (strip_usage, estimate),
        };
        self.reply_len += chunk.len();
        let whole = self.splitter.is_empty() && chunk.ends_with(b"\n\n");
        // The common case when nothing needs the events' text: whole events
        // and no usage object in them. The chunk goes on as it is, without
        // copying or parsing.
        let dialect = self.accounting.dialect;
        if whole && !estimate && !dialect.has_usage_object(&chunk) {
            return Some(chunk);
        }
        let tools = self.accounting.tools;
        let later = self.accounting.later;
        let mut reported = self.reported;
        let mut calls = self.tools;
        let mut ended = self.ended;
        let text = &mut self.text;
        let mut look = |e: &[u8]| {
            if later && !ended {
                ended = [
                    &b"response.completed"[..],
                    b"response.incomplete",
                    b"response.failed",
                ]
                .iter()
                .any(|t| memchr::memmem::find(e, t).is_some());
            }
            let event = dialect.inspect_event(e);
            if tools && event.reported.tokens().is_some() {
                // The final event holds every output item once.
                calls = calls.max(ToolCalls::count(e));
            }
            reported = reported.then(event.reported);
            if estimate {
                dialect.output_text(e, &mut |t| text.push(t));
            }
            !event.usage_only
        };
        if !strip_usage {
            // Only watching: the bytes go on unchanged.
            if whole {
                extract::each_event(&chunk, |e| {
                    look(e);
                });
            } else {
                self.splitter.feed(&chunk, |e| {
                    look(e);
                });
            }
            self.reported = reported;
            self.tools = calls;
            self.ended = ended;
            if self.splitter.held() > MAX_EVENT {
                return Some(self.overflow());
            }
            return Some(chunk);
        }
        // Removing the usage chunk: send on whole events only, so that one
        // can be left out; a partial event waits for its end.
        let mut out = BytesMut::with_capacity(chunk.len());
        self.splitter.feed(&chunk, |e| {
            if look(e) {
                out.extend_from_slice(e);
            }
        });
        self.reported = reported;
        self.tools = calls;
        self.ended = ended;
        if self.splitter.held() > MAX_EVENT {
            out.extend_from_slice(&self.overflow());
        }
        (!out.is_empty()).then(|| out.freeze())
    }

    /// An event outgrew `MAX_EVENT`: what it held is dropped, the record
    /// says 502, and the client gets an error event (the stream ends next).
    fn overflow(&mut self) -> Bytes {
        self.splitter = SseSplitter::default();
        self.overflowed = true;
        if let Some(p) = &mut self.pending {
            p.record.status = 502;
            tracing::warn!(
                upstream = p.record.upstream.as_deref().unwrap_or("-"),
                "the upstream sent an event larger than 1 MiB; the stream was ended"
            );
        }
        Bytes::from_static(EVENT_TOO_LARGE)
    }

    /// At the end of the body: bytes still held back, if any. Only a
    /// stripping meter holds bytes back; a watching one sent them already.
    fn held_back(&mut self) -> Option<Bytes> {
        let held = std::mem::take(&mut self.splitter).into_tail();
        (self.watch.changes_body() && !held.is_empty()).then_some(held)
    }

    fn finish(&mut self) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        let created = p.created.as_ref().and_then(|c| c.borrow().clone());
        self.count(&mut p, created);
        self.kept = Vec::new();
        p.finish();
    }

    /// What the reply used, set on the record.
    fn count(&mut self, p: &mut Pending, created: Option<Box<str>>) {
        if self.watch == Watch::Nothing {
            return;
        }
        let a = &self.accounting;
        let more = a.more();
        let mut extras = more.asked;
        self.tools.add_to(&mut extras);
        // A stream's usage counts once it names the reply's tokens too; an
        // Anthropic stream cut off before its last `message_delta` knows
        // only the prompt's, and the reply is estimated.
        let from_events = self.reported;
        let reported = from_events
            .complete()
            .map(|_| from_events)
            .or_else(|| {
                let one = self.first.take()?;
                a.dialect.from_json(&one)
            })
            .or_else(|| self.scanner.reported());
        let record = &mut p.record;
        if let Some(r) = reported.filter(|r| r.tokens().is_some()) {
            if let Some(t) = r.tokens() {
                record.set_tokens(t);
            }
            let extras = r.extras(extras);
            set_extras(record, extras);
            if let Some(id) = created {
                record.sized.push(id);
            }
            return;
        }
        let request = p.request.take().unwrap_or_default();
        let kept = crate::usage::estimate::concat(&std::mem::take(&mut self.kept));
        let work = |reply: Bytes, reply_len: usize, reply_kind: ReplyKind| {
            Some(Box::new(TokenWork {
                reply,
                reply_len,
                request: request.clone(),
                reply_kind,
                prompt: from_events.tokens(),
            }))
        };
        match (a.meter, self.watch) {
            (Some(Meter::Images), _) => {
                // Counted by the image, where no tokens were reported.
                record.set_tokens(Tokens::default());
            }
            (Some(Meter::Speech), _) => {
                let format = more.format.as_deref().unwrap_or("mp3");
                let (ms, _) = audio::speech_ms(format, &self.head, self.reply_len as u64);
                extras.audio_out_ms = ms;
                record.work = work(Bytes::new(), 0, ReplyKind::Json);
            }
            (Some(Meter::Transcription), watch) => {
                let (ms, reply_kind) = if watch == Watch::Text {
                    let text = String::from_utf8_lossy(&kept);
                    let clip = more.clip.unwrap_or_default();
                    let ms = audio::cues_ms(&text)
                        .or(clip.exact_ms)
                        .unwrap_or_else(|| clip.ms().max(audio::words_ms(&text)));
                    (ms, ReplyKind::Text)
                } else {
                    let v: serde_json::Value = serde_json::from_slice(&kept).unwrap_or_default();
                    let seconds = v["usage"]["seconds"].as_f64().or(v["duration"].as_f64());
                    let ms = seconds.map_or_else(
                        || more.clip.map_or(0, |c| c.ms()),
                        |s| (s * 1000.0).round() as i64,
                    );
                    (ms, ReplyKind::Json)
                };
                extras.audio_in_ms = ms;
                record.work = work(kept, self.reply_len, reply_kind);
            }
            (_, Watch::Events { estimate, .. }) => {
                let text = std::mem::take(&mut self.text);
                let later = a.later && !self.ended;
                if later && text.len == 0 {
                    set_later(record, created, more.guess);
                } else {
                    if later {
                        record.later = created;
                    }
                    if estimate {
                        record.work =
                            work(Bytes::from(text.sample), text.len, ReplyKind::StreamText);
                    } else if let Some(t) = from_events.tokens() {
                        record.set_tokens(t);
                    }
                }
            }
            (_, Watch::Json { estimate }) => {
                let v: serde_json::Value = serde_json::from_slice(&kept).unwrap_or_default();
                if a.later && matches!(v["status"].as_str(), Some("queued" | "in_progress")) {
                    // Not final (a background response): nothing delivered
                    // yet to estimate.
                    set_later(record, created, more.guess);
                } else if estimate {
                    record.work = work(kept, self.reply_len, ReplyKind::Json);
                }
            }
            _ => {}
        }
        set_extras(record, extras);
    }

    /// The deadline passed: the record says 504, the body ends in an error.
    fn timed_out(&mut self) {
        if let Some(p) = &mut self.pending {
            p.record.status = 504;
            tracing::warn!(
                upstream = p.record.upstream.as_deref().unwrap_or("-"),
                "the upstream's reply outran limits.upstream_timeout; cut off"
            );
        }
        self.finish();
    }
}

/// The record waits for `created`'s final usage, charging `guess` if it
/// never comes; without an id to look it up by, `guess` is charged now.
fn set_later(record: &mut UsageRecord, created: Option<Box<str>>, guess: Tokens) {
    record.set_fallback(guess);
    record.estimated = true;
    record.later = created;
}

fn set_extras(record: &mut UsageRecord, extras: super::Extras) {
    if extras != super::Extras::default() {
        record.extras = Some(Box::new(extras));
    }
}

impl<S, E> Stream for Metered<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error>>,
{
    type Item = Result<Bytes, Box<dyn std::error::Error>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.overflowed {
            self.finish();
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(out) = self.observe(chunk) {
                        return Poll::Ready(Some(Ok(out)));
                    }
                    // Only part of an event so far: wait for the rest.
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => {
                    // A last event without its blank line goes on as it is.
                    let held = self.held_back();
                    self.finish();
                    return Poll::Ready(held.map(Ok));
                }
                Poll::Pending => {
                    let Some(deadline) = self.deadline else {
                        return Poll::Pending;
                    };
                    if self.pending.is_none() {
                        return Poll::Ready(None);
                    }
                    let timer = self
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.timed_out();
                    return Poll::Ready(Some(Err(Box::new(ReplyTimedOut))));
                }
            }
        }
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::writer::UsageSink;
    use futures_util::StreamExt;

    fn record() -> UsageRecord {
        UsageRecord {
            at: crate::db::now(),
            user: "alice".into(),
            method: "POST",
            endpoint: "/chat/completions".into(),
            model: Some("gpt-4o".into()),
            upstream: Some("up".into()),
            status: 200,
            stream: true,
            ..UsageRecord::default()
        }
    }

    /// Runs `chunks` through a meter; returns what the client got and the record.
    async fn run(chunks: &[&'static str], watch: Watch) -> (String, UsageRecord) {
        let (sink, records) = UsageSink::channel();
        let mut pending = Pending::new(record(), Instant::now(), sink);
        pending.request = Some(Bytes::from_static(REQUEST.as_bytes()));
        let inner = futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, std::convert::Infallible>(Bytes::from_static(c.as_bytes()))),
        );
        let accounting = Accounting {
            meter: Some(Meter::Tokens { stream_usage: true }),
            ..Accounting::default()
        };
        let out: Vec<Bytes> = Metered::new(inner, pending, watch, accounting)
            .map(|c| c.ok().unwrap())
            .collect()
            .await;
        let text = String::from_utf8(crate::usage::estimate::concat(&out).to_vec()).unwrap();
        (text, records.try_recv().expect("a record"))
    }

    const REQUEST: &str = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;
    const CONTENT: &str =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n";
    const USAGE: &str =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    #[actix_web::test]
    async fn strips_the_usage_chunk_and_records_it() {
        let watch = Watch::Events {
            strip_usage: true,
            estimate: true,
        };
        // Events split across chunks, the usage event among them.
        let (text, r) = run(&[&CONTENT[..10], &CONTENT[10..], USAGE, DONE], watch).await;
        assert_eq!(text, format!("{CONTENT}{DONE}"));
        assert_eq!((r.prompt_tokens, r.completion_tokens), (Some(4), Some(1)));
        assert!(r.work.is_none(), "reported usage needs no further work");
    }

    #[actix_web::test]
    async fn watching_passes_every_byte_once() {
        let watch = Watch::Events {
            strip_usage: false,
            estimate: true,
        };
        // The stream ends inside an event: nothing may be sent twice.
        let (text, r) = run(&[CONTENT, USAGE, "data: [DO"], watch).await;
        assert_eq!(text, format!("{CONTENT}{USAGE}data: [DO"));
        assert_eq!(r.total_tokens, Some(5));
    }

    #[actix_web::test]
    async fn unreported_streams_leave_work_for_the_writer() {
        let watch = Watch::Events {
            strip_usage: true,
            estimate: true,
        };
        let (text, r) = run(&[CONTENT, DONE], watch).await;
        assert_eq!(text, format!("{CONTENT}{DONE}"));
        assert_eq!(r.total_tokens, None);
        let work = r.work.expect("estimation work");
        assert_eq!(work.reply_kind, ReplyKind::StreamText);
        assert_eq!(&work.reply[..], b"Hi", "the output text, as it passed");
        assert_eq!(&work.request[..], REQUEST.as_bytes());
    }

    /// A long stream keeps its first 16 KiB for estimating, and the
    /// estimate from them, extrapolated, is within 2 % of the whole's.
    #[actix_web::test]
    async fn a_long_unreported_stream_is_estimated_from_its_first_part() {
        let watch = Watch::Events {
            strip_usage: true,
            estimate: true,
        };
        let events: Vec<&'static str> = (0..3000)
            .map(|i| match i % 3 {
                0 => "data: {\"choices\":[{\"delta\":{\"content\":\" hello\"}}]}\n\n",
                1 => "data: {\"choices\":[{\"delta\":{\"content\":\" there,\"}}]}\n\n",
                _ => "data: {\"choices\":[{\"delta\":{\"content\":\" friend\"}}]}\n\n",
            })
            .collect();
        let whole = events.concat();
        let (text, r) = run(&events, watch).await;
        assert_eq!(text, whole);
        let work = r.work.expect("estimation work");
        let all_text = " hello there, friend".repeat(1000);
        assert_eq!(
            work.reply_len,
            all_text.len(),
            "every delta's text, counted as it passed"
        );
        assert_eq!(work.reply.len(), MAX_KEPT_STREAMED);
        let estimate = |reply: &[u8]| {
            let kind = ReplyKind::StreamText;
            crate::usage::estimate::estimate(
                "gpt-4o",
                REQUEST.as_bytes(),
                reply,
                all_text.len(),
                kind,
            )
            .completion as f64
        };
        let (part, all) = (estimate(&work.reply), estimate(all_text.as_bytes()));
        assert!(
            (part - all).abs() < all / 50.0,
            "{part} from the first part, {all} from all"
        );
    }

    #[actix_web::test]
    async fn a_json_reply_is_counted_at_once() {
        let reply = r#"{"choices":[{"message":{"content":"Hi"}}],"usage":{"prompt_tokens":4,"completion_tokens":1}}"#;
        let (_, r) = run(
            &[&reply[..20], &reply[20..]],
            Watch::Json { estimate: true },
        )
        .await;
        // Known before the record leaves: the log line shows it.
        assert_eq!(r.total_tokens, Some(5));
        assert!(r.work.is_none(), "reported usage needs no further work");
        let (_, r) = run(&[r#"{"choices":[]}"#], Watch::Json { estimate: true }).await;
        assert_eq!(r.total_tokens, None);
        assert_eq!(r.work.expect("estimation work").reply_kind, ReplyKind::Json);
    }

    /// A stream cut short is estimated from every kind of output it
    /// carried: Anthropic's thinking and tool input, not only its text.
    #[actix_web::test]
    async fn a_cut_thinking_stream_counts_its_thinking() {
        let watch = Watch::Events {
            strip_usage: false,
            estimate: true,
        };
        let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n";
        let thinking = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me think about this carefully. \"}}\n\n";
        let chunks: Vec<&'static str> = std::iter::once(start)
            .chain(std::iter::repeat_n(thinking, 200))
            .collect();
        let (_, r) = run(&chunks, watch).await;
        let work = r.work.expect("estimation work");
        assert_eq!(
            work.prompt.map(|t| t.prompt),
            Some(12),
            "the prompt as reported"
        );
        let per = "Let me think about this carefully. ".len();
        assert_eq!(work.reply_len, 200 * per);
    }

    /// An event that never ends is not held whole: past 1 MiB the stream
    /// ends with an error event, and the record says 502.
    #[actix_web::test]
    async fn an_endless_event_ends_the_stream() {
        let watch = Watch::Events {
            strip_usage: false,
            estimate: true,
        };
        let part: &'static str = Box::leak("x".repeat(64 * 1024).into_boxed_str());
        let mut chunks = vec!["data: {\"choices\":[{\"delta\":{\"content\":\""];
        chunks.extend(std::iter::repeat_n(part, 40)); // 2.5 MiB, no blank line
        let (text, r) = run(&chunks, watch).await;
        assert!(
            text.len() < 1100 * 1024 + 200,
            "{} bytes passed",
            text.len()
        );
        assert!(text.ends_with("the gateway ended the stream.\"}}\n\n"));
        assert_eq!(r.status, 502);
    }

    #[actix_web::test]
    async fn a_dropped_body_still_sends_its_record() {
        let (sink, records) = UsageSink::channel();
        let pending = Pending::new(record(), Instant::now(), sink);
        let inner = futures_util::stream::pending::<Result<Bytes, std::convert::Infallible>>();
        drop(Metered::new(
            inner,
            pending,
            Watch::Nothing,
            Accounting::default(),
        ));
        assert_eq!(records.try_recv().unwrap().status, 200);
    }
}
