//! Wraps a response body so that its usage record is sent when the body is
//! done: fully delivered, failed, or dropped because the client went away.
//! The chunks pass through untouched, as they arrive.

use super::writer::UsageSink;
use super::UsageRecord;
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// A usage record waiting for its request to finish.
pub struct Pending {
    pub record: UsageRecord,
    started: Instant,
    sink: UsageSink,
}

impl Pending {
    pub fn new(record: UsageRecord, started: Instant, sink: UsageSink) -> Pending {
        Pending {
            record,
            started,
            sink,
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

pub struct Metered<S> {
    inner: S,
    pending: Option<Pending>,
}

impl<S> Metered<S> {
    pub fn new(inner: S, pending: Pending) -> Self {
        Metered {
            inner,
            pending: Some(pending),
        }
    }

    fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            p.finish();
        }
    }
}

impl<S, E> Stream for Metered<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = polled {
            self.finish();
        }
        polled
    }
}

impl<S> Drop for Metered<S> {
    fn drop(&mut self) {
        self.finish();
    }
}
