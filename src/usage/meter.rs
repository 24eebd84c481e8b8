//! Wraps a response body so that its usage record is sent when the body is
//! done: fully delivered, failed, timed out, or dropped because the client
//! went away.
//!
//! Chunks pass through as they arrive. On the way the meter reads the
//! reply's usage in bounded memory (a JSON reply's `usage` object as it
//! streams by, a stream's usage event), drops the usage chunk of a chat
//! stream again when only the gateway asked for it, and keeps the first
//! part of a reply that may need estimating; estimating happens later, off
//! the request path.

use super::extract::{self, SseSplitter, UsageScanner};
pub use super::watch::{is_event_stream, Accounting, Watch};
use super::writer::UsageSink;
use super::{TokenWork, UsageRecord};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// The most of a reply kept for estimating its tokens (the tokenizer reads
/// no more than this; the rest is extrapolated by length).
const MAX_KEPT: usize = crate::usage::estimate::ESTIMATE_TEXT;
/// The same for a stream, which holds it for as long as it runs (minutes,
/// for a long answer): its events repeat one shape, so their first 16 KiB
/// (some hundreds of events) extrapolate well, and 2,000 long streams hold
/// 32 MiB of it rather than 512.
const MAX_KEPT_STREAMED: usize = 16 * 1024;

/// A usage record waiting for its request to finish.
pub struct Pending {
    pub record: UsageRecord,
    started: Instant,
    sink: UsageSink,
    /// The JSON request body, for estimating prompt tokens.
    pub request: Option<Bytes>,
    /// The user's parallel slot: free again when the request ends.
    pub running: Option<crate::limits::Running>,
}

impl Pending {
    pub fn new(record: UsageRecord, started: Instant, sink: UsageSink) -> Pending {
        sink.started();
        Pending {
            record,
            started,
            sink,
            request: None,
            running: None,
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
        self.running.take();
        let r = &mut self.record;
        r.latency_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        // The one log line per request: never a key, never a body. Its own
        // target, so that `log.level: info,chatgate::request=off` turns it
        // off (nginx's `access_log off`) and keeps the rest.
        tracing::info!(
            target: "chatgate::request",
            request_id = %r.request_id.as_deref().unwrap_or("-"),
            user = &*r.user,
            method = r.method,
            endpoint = %r.endpoint,
            model = r.model.as_deref().unwrap_or("-"),
            upstream = r.upstream.as_deref().unwrap_or("-"),
            status = r.status,
            tokens = r.total_tokens.unwrap_or(0),
            latency_ms = r.latency_ms,
            "request"
        );
        self.sink.record(self.record);
    }
}

/// The error a metered body ends with when its deadline passed.
#[derive(Debug, thiserror::Error)]
#[error("the upstream did not finish its reply in time")]
pub struct ReplyTimedOut;

pub struct Metered<S> {
    inner: S,
    pending: Option<Pending>,
    watch: Watch,
    splitter: SseSplitter,
    scanner: UsageScanner,
    /// The first part of the reply, for estimating at the end.
    kept: Vec<Bytes>,
    kept_len: usize,
    /// The whole reply's length so far.
    reply_len: usize,
    /// What the stream's usage events reported so far.
    reported: extract::Reported,
    /// A JSON reply's first chunk, while it is the only one.
    first: Option<Bytes>,
    /// When the whole reply must be done (`limits.upstream_timeout`).
    deadline: Option<tokio::time::Instant>,
    /// Made only once the reply makes the client wait.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, pending: Pending, watch: Watch) -> Self {
        Metered {
            inner,
            pending: Some(pending),
            watch,
            splitter: SseSplitter::default(),
            scanner: UsageScanner::default(),
            kept: Vec::new(),
            kept_len: 0,
            reply_len: 0,
            reported: extract::Reported::default(),
            first: None,
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
                if estimate {
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
        if estimate {
            self.keep(&chunk, MAX_KEPT_STREAMED);
        }
        // The common case: whole events and no usage object in them. The
        // chunk goes on as it is, without copying or parsing.
        if self.splitter.is_empty()
            && chunk.ends_with(b"\n\n")
            && !extract::has_usage_object(&chunk)
        {
            return Some(chunk);
        }
        let mut reported = self.reported;
        if !strip_usage {
            // Only watching: the bytes go on unchanged.
            self.splitter.feed(&chunk, |e| {
                reported = reported.then(extract::inspect_event(e).reported);
            });
            self.reported = reported;
            return Some(chunk);
        }
        // Removing the usage chunk: send on whole events only, so that one
        // can be left out; a partial event waits for its end.
        let mut out = BytesMut::with_capacity(chunk.len());
        self.splitter.feed(&chunk, |e| {
            let event = extract::inspect_event(e);
            reported = reported.then(event.reported);
            if !event.usage_only {
                out.extend_from_slice(e);
            }
        });
        self.reported = reported;
        (!out.is_empty()).then(|| out.freeze())
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
        // A stream's usage counts once it names the reply's tokens too; an
        // Anthropic stream cut off before its last `message_delta` knows
        // only the prompt's, and the reply is estimated.
        let from_events = self.reported;
        let reported = from_events
            .complete()
            .or_else(|| self.first.take().and_then(|one| extract::from_json(&one)))
            .or_else(|| self.scanner.tokens());
        let (estimate, streamed) = match self.watch {
            Watch::Nothing => (false, false),
            Watch::Json { estimate } => (estimate, false),
            Watch::Events { estimate, .. } => (estimate, true),
        };
        match (reported, p.request.take()) {
            (Some(t), _) => p.record.set_tokens(t),
            (None, Some(request)) if estimate => {
                p.record.work = Some(Box::new(TokenWork {
                    reply: crate::usage::estimate::concat(&std::mem::take(&mut self.kept)),
                    reply_len: self.reply_len,
                    request,
                    streamed,
                    prompt: from_events.tokens(),
                }))
            }
            (None, _) => {
                if let Some(t) = from_events.tokens() {
                    p.record.set_tokens(t);
                }
            }
        }
        self.kept = Vec::new();
        p.finish();
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

impl<S, E> Stream for Metered<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<Box<dyn std::error::Error>>,
{
    type Item = Result<Bytes, Box<dyn std::error::Error>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
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
        let out: Vec<Bytes> = Metered::new(inner, pending, watch)
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
        assert!(work.streamed);
        assert_eq!(&work.reply[..], format!("{CONTENT}{DONE}").as_bytes());
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
        assert_eq!(work.reply_len, whole.len());
        assert!(work.reply.len() == MAX_KEPT_STREAMED && whole.len() > 8 * MAX_KEPT_STREAMED);
        let estimate = |reply: &[u8]| {
            crate::usage::estimate::estimate("gpt-4o", REQUEST.as_bytes(), reply, whole.len(), true)
                .completion as f64
        };
        let (part, all) = (estimate(&work.reply), estimate(whole.as_bytes()));
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
        assert!(!r.work.expect("estimation work").streamed);
    }

    #[actix_web::test]
    async fn a_dropped_body_still_sends_its_record() {
        let (sink, records) = UsageSink::channel();
        let pending = Pending::new(record(), Instant::now(), sink);
        let inner = futures_util::stream::pending::<Result<Bytes, std::convert::Infallible>>();
        drop(Metered::new(inner, pending, Watch::Nothing));
        assert_eq!(records.try_recv().unwrap().status, 200);
    }
}
