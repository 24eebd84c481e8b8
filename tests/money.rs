//! Money: each record priced when it is written, with the prices then in
//! force (cached prompt tokens at their own price), reports summing what
//! is stored.

use chatgate::config::Price;
use chatgate_testkit::*;
use serde_json::{json, Value};
use std::time::Duration;

fn price(input: f64, output: f64, cached_input: Option<f64>) -> Price {
    Price {
        input,
        output,
        cached_input,
        cache_write: None,
    }
}

/// Nano-dollars of (plain prompt, cached prompt, completion) tokens at
/// gpt-4o's test prices: $2.50, $1.25 cached, $10 per 1M.
fn gpt4o_cost(plain: i64, cached: i64, completion: i64) -> i64 {
    plain * 2500 + cached * 1250 + completion * 10_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_record_is_priced_with_its_cached_tokens() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.prices = [("gpt-4o".to_string(), price(2.5, 10.0, Some(1.25)))].into();
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let chat = |model: &str, stream: bool| json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post_json(&app, &key, "/chat/completions", &chat("gpt-4o", false))
            .await
            .status(),
        200
    );
    mock.state.release.add_permits(1);
    let streamed = post_json(&app, &key, "/chat/completions", &chat("gpt-4o", true)).await;
    streamed.bytes().await.unwrap();
    let r = post_json(
        &app,
        &key,
        "/responses",
        &json!({"model": "gpt-4o", "input": "hi"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // A model without a price has no cost (not a cost of 0).
    assert_eq!(
        post_json(&app, &key, "/chat/completions", &chat("o1", false))
            .await
            .status(),
        200
    );

    let pool = app.stop().await;
    let plain = gpt4o_cost(7 - CACHED_TOKENS, CACHED_TOKENS, 2);
    let stream = gpt4o_cost(
        STREAM_USAGE.0 - CACHED_TOKENS,
        CACHED_TOKENS,
        STREAM_USAGE.1,
    );
    assert_eq!(
        stored_money(&pool, "/chat/completions"),
        [
            (Some(CACHED_TOKENS), Some(plain)),
            (Some(CACHED_TOKENS), Some(stream)),
            (Some(CACHED_TOKENS), None)
        ]
    );
    let responses = gpt4o_cost(6 - CACHED_TOKENS, CACHED_TOKENS, 2);
    assert_eq!(stored_costs(&pool, "/responses"), [Some(responses)]);

    // The report sums what is stored, in dollars; an unpriced row is null.
    let mut conn = pool.get().unwrap();
    let query = chatgate::usage::report::Query {
        range: chatgate::usage::range::resolve(
            None,
            None,
            Some("today"),
            chrono::Utc::now().naive_utc(),
        )
        .unwrap(),
        users: Vec::new(),
        by: vec![chatgate::usage::report::GroupBy::Model],
    };
    let rows = chatgate::usage::report::run(&mut conn, &query).unwrap();
    let row = |m: &str| {
        rows.iter()
            .find(|r| r.keys == [m])
            .unwrap()
            .to_json(&query.by)
    };
    let dollars = (plain + stream + responses) as f64 / 1e9;
    assert!((row("gpt-4o")["cost_usd"].as_f64().unwrap() - dollars).abs() < 1e-12);
    assert_eq!(row("gpt-4o")["cached_tokens"], 3 * CACHED_TOKENS);
    assert_eq!(row("o1")["cost_usd"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_change_applies_to_later_records_only() {
    let mock = start_mock();
    let yaml = |input: u32| {
        format!(
            "{}prices:\n  \"gpt-*\": {{ input: {input}, output: {input} }}\n",
            upstream_yaml(&mock.url, UPSTREAM_KEY)
        )
    };
    let mut server = serve_binary(&yaml(1), &[]).await;
    let pool = chatgate::db::open(&server.db_url).unwrap();
    let send = || async {
        let r = http()
            .post(format!("{}/v1/chat/completions", server.base))
            .bearer_auth("sk-alice-test-key")
            .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    send().await;
    // 9 tokens at $1 per 1M (cached ones too: no cached_input price).
    let first = eventually(Duration::from_secs(10), || async {
        stored_costs(&pool, "/chat/completions") == [Some(9_000)]
    })
    .await;
    assert!(first, "{:?}", stored_costs(&pool, "/chat/completions"));

    std::fs::write(
        &server.config,
        std::fs::read_to_string(&server.config)
            .unwrap()
            .replace(&yaml(1), &yaml(100)),
    )
    .unwrap();
    server.signal("HUP");
    let repriced = eventually(Duration::from_secs(10), || async {
        send().await;
        stored_costs(&pool, "/chat/completions").last() == Some(&Some(900_000))
    })
    .await;
    assert!(repriced, "{:?}", stored_costs(&pool, "/chat/completions"));
    // The first record keeps the price it was written with.
    assert_eq!(stored_costs(&pool, "/chat/completions")[0], Some(9_000));
    server.signal("TERM");
    assert!(server.exit().await);
}
