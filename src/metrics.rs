//! Prometheus metrics (`GET /metrics`, text format), one registry per
//! server: requests by status, model and upstream; tokens; upstream
//! response time; requests in flight; the usage writer's queue.

use arc_swap::ArcSwap;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::collections::HashSet;
use std::sync::Arc;

/// The most model names `/metrics` labels by; the rest are `other`.
const MAX_MODEL_LABELS: usize = 1000;

pub struct Metrics {
    registry: Registry,
    /// Model names that label series: the upstreams' configured and listed
    /// models only, so that no client can grow the label sets.
    models: ArcSwap<HashSet<Box<str>>>,
    pub requests: IntCounterVec,
    pub tokens: IntCounterVec,
    pub upstream_seconds: HistogramVec,
    pub in_flight: IntGauge,
    pub usage_queue: IntGauge,
    pub usage_write_failures: IntCounter,
    /// Requests refused while `usage.buffer_records` records waited.
    pub usage_full: IntCounter,
    pub usage_batches: IntCounter,
    /// Charges settled: work that finished after its reply, charged its
    /// real usage (or its fallback).
    pub usage_settled: IntCounter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let requests = IntCounterVec::new(
            Opts::new(
                "chatgate_requests_total",
                "Requests by status, model and upstream",
            ),
            &["status", "model", "upstream"],
        )
        .expect("valid metric");
        let tokens = IntCounterVec::new(
            Opts::new(
                "chatgate_tokens_total",
                "Tokens by kind (prompt, completion), model and upstream",
            ),
            &["kind", "model", "upstream"],
        )
        .expect("valid metric");
        let upstream_seconds = HistogramVec::new(
            HistogramOpts::new(
                "chatgate_upstream_response_seconds",
                "Time until an upstream's response head, per attempt",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["upstream"],
        )
        .expect("valid metric");
        let in_flight = IntGauge::new("chatgate_requests_in_flight", "Requests being served")
            .expect("valid metric");
        let usage_queue = IntGauge::new(
            "chatgate_usage_queue_depth",
            "Usage records waiting for the writer",
        )
        .expect("valid metric");
        let usage_write_failures = IntCounter::new(
            "chatgate_usage_write_failures_total",
            "Failed attempts to write a usage batch (retried)",
        )
        .expect("valid metric");
        let usage_full = IntCounter::new(
            "chatgate_usage_buffer_full_total",
            "Requests refused because usage.buffer_records records waited for the database",
        )
        .expect("valid metric");
        let usage_batches = IntCounter::new(
            "chatgate_usage_batches_total",
            "Batches of usage records committed (records per batch: requests / batches)",
        )
        .expect("valid metric");
        let usage_settled = IntCounter::new(
            "chatgate_usage_settled_total",
            "Charges settled: background and cut-short stored responses charged once finished",
        )
        .expect("valid metric");
        let registry = Registry::new();
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(tokens.clone()),
            Box::new(upstream_seconds.clone()),
            Box::new(in_flight.clone()),
            Box::new(usage_queue.clone()),
            Box::new(usage_write_failures.clone()),
            Box::new(usage_full.clone()),
            Box::new(usage_batches.clone()),
            Box::new(usage_settled.clone()),
        ] {
            registry.register(m).expect("metric names are unique");
        }
        Metrics {
            registry,
            models: ArcSwap::default(),
            requests,
            tokens,
            upstream_seconds,
            in_flight,
            usage_queue,
            usage_write_failures,
            usage_full,
            usage_batches,
            usage_settled,
        }
    }

    /// A request ended with `status`; `model` and `upstream` where it was
    /// routed. Returns the model's label.
    pub fn request_ended<'a>(
        &self,
        status: u16,
        model: Option<&'a str>,
        upstream: Option<&str>,
    ) -> &'a str {
        // Only routed requests name their model: a refused request's model
        // is whatever the client wrote, which must not grow the label set.
        let model = match (upstream, model) {
            (Some(_), Some(model)) => self.model_label(model),
            _ => "-",
        };
        self.requests
            .with_label_values(&[
                itoa::Buffer::new().format(status),
                model,
                upstream.unwrap_or("-"),
            ])
            .inc();
        model
    }

    /// The label for `model`: itself if an upstream names or lists it,
    /// else `other`.
    pub fn model_label<'a>(&self, model: &'a str) -> &'a str {
        if model == "-" || self.models.load().contains(model) {
            model
        } else {
            "other"
        }
    }

    /// Makes these model names labels (configured lists at start and
    /// reload, live lists when an upstream is asked), up to a bound.
    pub fn know_models<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let current = self.models.load();
        let new: Vec<&str> = names
            .into_iter()
            .filter(|n| !current.contains(*n))
            .collect();
        if new.is_empty() || current.len() >= MAX_MODEL_LABELS {
            return;
        }
        self.models.rcu(|known| {
            let mut next: HashSet<Box<str>> = (**known).clone();
            for n in &new {
                if next.len() >= MAX_MODEL_LABELS {
                    break;
                }
                next.insert(Box::from(*n));
            }
            Arc::new(next)
        });
    }

    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding does not fail");
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
