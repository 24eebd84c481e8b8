//! Streaming latency client for `bench/run.sh`: keeps CONNECTIONS chat
//! streams going for SECONDS against URL and reports, per stream, the time
//! to the first chunk, and per chunk, how long it took from the mock
//! upstream (`bench_upstream` with a delay stamps each chunk's `created`
//! with its send time in µs) to this client. wrk cannot tell either: it
//! times whole responses.
//!
//! Usage: bench_stream URL KEY MODEL CONNECTIONS SECONDS
//! Prints: streams first_chunk_p50_ms first_chunk_p99_ms chunk_p50_ms chunk_p99_ms

use futures_util::StreamExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Default)]
struct Samples {
    streams: u64,
    first_chunk_us: Vec<u64>,
    chunk_us: Vec<u64>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as u64
}

/// The send stamps of the chunks in `bytes`: every `"created":N` with a
/// plausible N (the mock's non-stamped chunks say 1).
fn stamps(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    const TAG: &[u8] = b"\"created\":";
    bytes
        .windows(TAG.len())
        .enumerate()
        .filter(|(_, w)| *w == TAG)
        .filter_map(move |(i, _)| {
            let digits = bytes[i + TAG.len()..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u64, |n, b| n * 10 + u64::from(b - b'0'));
            (digits > 1).then_some(digits)
        })
}

async fn one_connection(url: String, key: String, body: String, until: Instant) -> Samples {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let mut s = Samples::default();
    while Instant::now() < until {
        let began = Instant::now();
        let res = client
            .post(&url)
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert!(res.status().is_success(), "status {}", res.status());
        let mut body = res.bytes_stream();
        let mut first = true;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.expect("body");
            let at = now_us();
            if first && !chunk.is_empty() {
                s.first_chunk_us.push(began.elapsed().as_micros() as u64);
                first = false;
            }
            s.chunk_us
                .extend(stamps(&chunk).map(|sent| at.saturating_sub(sent)));
        }
        s.streams += 1;
    }
    s
}

fn percentile_ms(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i] as f64 / 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, key, model, connections, seconds] = &args[..] else {
        eprintln!("usage: bench_stream URL KEY MODEL CONNECTIONS SECONDS");
        std::process::exit(2);
    };
    let connections: usize = connections.parse().expect("CONNECTIONS");
    let until = Instant::now() + Duration::from_secs(seconds.parse().expect("SECONDS"));
    let body = format!(
        r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"Hello there"}}]}}"#
    );
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(one_connection(
                url.clone(),
                key.clone(),
                body.clone(),
                until,
            ))
        })
        .collect();
    let mut all = Samples::default();
    for t in tasks {
        let s = t.await.expect("connection task");
        all.streams += s.streams;
        all.first_chunk_us.extend(s.first_chunk_us);
        all.chunk_us.extend(s.chunk_us);
    }
    if all.chunk_us.is_empty() {
        eprintln!(
            "bench_stream: no stamped chunks arrived (is the mock running with CHUNK_DELAY_MS?)"
        );
        std::process::exit(1);
    }
    println!(
        "{} {:.3} {:.3} {:.3} {:.3}",
        all.streams,
        percentile_ms(&mut all.first_chunk_us, 0.5),
        percentile_ms(&mut all.first_chunk_us, 0.99),
        percentile_ms(&mut all.chunk_us, 0.5),
        percentile_ms(&mut all.chunk_us, 0.99),
    );
}
