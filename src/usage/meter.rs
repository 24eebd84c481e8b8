//! Wraps a response body so that its usage record is sent when the body is
//! done: fully delivered, failed, or dropped because the client went away.
//!
//! Chunks pass through as they arrive. On the way the meter reads the usage
//! chunk of a chat stream (dropping it again when only the gateway asked for
//! it) and keeps references to the chunks of a reply; parsing JSON replies
//! and estimating tokens happen later, on the usage writer thread.

use super::extract::{self, SseSplitter};
use super::writer::UsageSink;
use super::{TokenWork, Tokens, UsageRecord};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// Replies larger than this are not kept for counting.
const MAX_KEPT: usize = 16 * 1024 * 1024;

/// A usage record waiting for its request to finish.
pub struct Pending {
    pub record: UsageRecord,
    started: Instant,
    sink: UsageSink,
    /// The JSON request body, for estimating prompt tokens.
    pub request: Option<Bytes>,
}

impl Pending {
    pub fn new(record: UsageRecord, started: Instant, sink: UsageSink) -> Pending {
        Pending {
            record,
            started,
            sink,
            request: None,
        }
    }

    pub fn finish(mut self) {
        let r = &mut self.record;
        r.latency_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        // The one log line per request: never a key, never a body.
        tracing::info!(
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

/// How a reply body is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Nothing to count (model lists, error replies).
    Nothing,
    /// A JSON reply: its `usage` is read at the end.
    Json { estimate: bool },
    /// Server-sent events: the usage chunk is read as it passes, and
    /// dropped when `strip_usage` (the client did not ask for it).
    Events { strip_usage: bool, estimate: bool },
}

pub struct Metered<S> {
    inner: S,
    pending: Option<Pending>,
    watch: Watch,
    splitter: SseSplitter,
    kept: Vec<Bytes>,
    kept_len: usize,
    reported: Option<Tokens>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, pending: Pending, watch: Watch) -> Self {
        Metered {
            inner,
            pending: Some(pending),
            watch,
            splitter: SseSplitter::default(),
            kept: Vec::new(),
            kept_len: 0,
            reported: None,
        }
    }

    fn keep(&mut self, chunk: &Bytes) {
        if self.kept_len <= MAX_KEPT {
            self.kept_len += chunk.len();
            self.kept.push(chunk.clone());
        }
    }

    /// Looks at a chunk; returns what to send on (`None`: nothing yet).
    fn observe(&mut self, chunk: Bytes) -> Option<Bytes> {
        match self.watch {
            Watch::Nothing => Some(chunk),
            Watch::Json { .. } => {
                self.keep(&chunk);
                Some(chunk)
            }
            Watch::Events { strip_usage, .. } => {
                self.keep(&chunk);
                let mut reported = None;
                if !strip_usage {
                    self.splitter.feed(&chunk, |e| {
                        reported = extract::inspect_event(e).tokens.or(reported);
                    });
                    self.reported = reported.or(self.reported);
                    return Some(chunk);
                }
                let mut out = BytesMut::with_capacity(chunk.len());
                self.splitter.feed(&chunk, |e| {
                    let event = extract::inspect_event(e);
                    reported = event.tokens.or(reported);
                    if !event.usage_only {
                        out.extend_from_slice(e);
                    }
                });
                self.reported = reported.or(self.reported);
                (!out.is_empty()).then(|| out.freeze())
            }
        }
    }

    fn finish(&mut self) {
        let Some(mut p) = self.pending.take() else {
            return;
        };
        if let Some(t) = self.reported {
            p.record.set_tokens(t);
        } else {
            let (estimate, streamed) = match self.watch {
                Watch::Nothing => (false, false),
                Watch::Json { estimate } => (estimate, false),
                Watch::Events { estimate, .. } => (estimate, true),
            };
            let parse = matches!(self.watch, Watch::Json { .. });
            if (parse || estimate) && self.kept_len <= MAX_KEPT {
                p.record.work = Some(Box::new(TokenWork {
                    reply: extract::concat(&self.kept),
                    request: if estimate { p.request.take() } else { None },
                    streamed,
                }));
            }
        }
        self.kept = Vec::new();
        p.finish();
    }
}

impl<S, E> Stream for Metered<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(out) = self.observe(chunk) {
                        return Poll::Ready(Some(Ok(out)));
                    }
                    // Only part of an event so far: wait for the rest.
                }
                Poll::Ready(None) => {
                    if !self.splitter.is_empty() {
                        // A last event without its blank line: send it as it is.
                        let rest = std::mem::take(&mut self.splitter).into_tail();
                        self.finish();
                        return Poll::Ready(Some(Ok(rest)));
                    }
                    self.finish();
                    return Poll::Ready(None);
                }
                other => return other,
            }
        }
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        self.finish();
    }
}
