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
        ..Price::default()
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
    config.prices = [
        ("gpt-4o".to_string(), price(2.5, 10.0, Some(1.25))),
        (NO_USAGE_MODEL.to_string(), price(1.0, 1.0, None)),
    ]
    .into();
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
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
    // A reply without usage is estimated, and so is its cost.
    let r = post_json(
        &app,
        &key,
        "/chat/completions",
        &chat(NO_USAGE_MODEL, false),
    )
    .await;
    assert_eq!(r.status(), 200);

    let pool = app.stop().await;
    let plain = gpt4o_cost(7 - CACHED_TOKENS, CACHED_TOKENS, 2);
    let stream = gpt4o_cost(
        STREAM_USAGE.0 - CACHED_TOKENS,
        CACHED_TOKENS,
        STREAM_USAGE.1,
    );
    let chats = stored_money(&pool, "/chat/completions");
    assert_eq!(
        chats[..3],
        [
            (Some(CACHED_TOKENS), Some(plain)),
            (Some(CACHED_TOKENS), Some(stream)),
            (Some(CACHED_TOKENS), None)
        ]
    );
    let responses = gpt4o_cost(6 - CACHED_TOKENS, CACHED_TOKENS, 2);
    assert_eq!(stored_costs(&pool, "/responses"), [Some(responses)]);
    let estimated = &stored(&pool, "/chat/completions")[3];
    assert!(estimated.estimated);
    // $1 per 1M tokens: 1,000 nano-dollars a token.
    assert_eq!(chats[3].1, Some(estimated.total.unwrap() * 1000));

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
        teams: Vec::new(),
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

const ADMIN: &str = "adm-money-test";

/// A gateway with gpt-4o priced ($2.50 / $10 per 1M) and the admin API.
async fn priced_app() -> (Mock, TestApp) {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.prices = [("gpt-4o".to_string(), price(2.5, 10.0, None))].into();
    config.admin = Some(chatgate::config::AdminConfig {
        token: Some(ADMIN.into()),
    });
    config.endpoints.allow = vec!["/batches".into()];
    (mock, spawn_app(config, dir))
}

fn budget(usd: &str) -> chatgate::users::UserSettings {
    chatgate::users::UserSettings {
        budget: Some(chatgate::users::parse_usd(usd).unwrap()),
        ..Default::default()
    }
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 3,
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn admin(method: reqwest::Method, app: &TestApp, path: &str, body: Value) -> Value {
    let r = http()
        .request(method, app.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_concurrent_requests_only_get_what_the_budget_reserves() {
    let (mock, app) = priced_app().await;
    // What one streamed request reserves: its prompt guess (body bytes / 4)
    // at the input price, its max_tokens at the output price.
    let body = chat("gpt-4o", true);
    let guess = (serde_json::to_vec(&body).unwrap().len() / 4) as i64;
    let reserved = guess * 2500 + 3 * 10_000;
    let five = format!("{:.9}", 5.0 * reserved as f64 / 1e9);
    let key = app.add_user_with("alice", budget(&five)).await;
    let results: Vec<_> = futures_util::future::join_all((0..30).map(|_| async {
        let r = post_json(&app, &key, "/chat/completions", &body).await;
        (r.status().as_u16(), r)
    }))
    .await;
    let admitted = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(
        admitted,
        5,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    mock.state.release.add_permits(admitted);
    for (status, r) in results {
        if status == 200 {
            r.bytes().await.unwrap();
        } else {
            assert_eq!(r.headers()["x-should-retry"], "false");
            let (status, code, msg) = error_parts(r).await;
            assert_eq!((status, code.as_str()), (429, "insufficient_quota"));
            assert!(msg.contains("budget of $"), "{msg}");
        }
    }
    let pool = app.stop().await;
    let spent: i64 = stored_costs(&pool, "/chat/completions")
        .iter()
        .flatten()
        .sum();
    let (p, c) = STREAM_USAGE;
    assert_eq!(
        spent,
        5 * (p * 2500 + c * 10_000),
        "five settled at their real cost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_refuses_until_a_dollar_top_up() {
    let (_mock, app) = priced_app().await;
    // Less than one request's real cost ($0.0000375).
    let key = app.add_user_with("bob", budget("0.00001")).await;
    assert_eq!(
        post_json(&app, &key, "/chat/completions", &chat("gpt-4o", false))
            .await
            .status(),
        200
    );
    let refused = eventually(Duration::from_secs(10), || async {
        let r = post_json(&app, &key, "/chat/completions", &chat("gpt-4o", false)).await;
        r.status() == 429
    })
    .await;
    assert!(refused, "the spent budget never refused");
    let (_, code, msg) =
        error_parts(post_json(&app, &key, "/chat/completions", &chat("gpt-4o", false)).await).await;
    assert_eq!(code, "insufficient_quota");
    assert!(
        msg.contains("budget of $0.00001") && msg.contains("top-up"),
        "{msg}"
    );

    // The admin API shows it and tops it up by a dollar.
    let user = admin(reqwest::Method::GET, &app, "/admin/users/bob", Value::Null).await;
    assert_eq!(user["budget_usd"], 0.00001);
    assert!(user["spent_usd"].as_f64().unwrap() >= 0.0000375);
    let user = admin(
        reqwest::Method::POST,
        &app,
        "/admin/users/bob/recharge",
        json!({"usd": 1}),
    )
    .await;
    assert_eq!(user["budget_usd"], 1.00001);
    let lifted = eventually(Duration::from_secs(10), || async {
        post_json(&app, &key, "/chat/completions", &chat("gpt-4o", false))
            .await
            .status()
            == 200
    })
    .await;
    assert!(lifted, "the top-up never reached the running server");

    // The billing endpoints report real dollars: the budget, and the
    // spent cost in cents.
    let sub = get_json(app.url("/dashboard/billing/subscription"), &key).await;
    assert_eq!(sub["hard_limit_usd"], 1.00001);
    let usage = get_json(app.url("/v1/dashboard/billing/usage"), &key).await;
    let spent = get_json(app.url("/v1/me"), &key).await["spent_usd"]
        .as_f64()
        .unwrap();
    assert!((usage["total_usage"].as_f64().unwrap() - spent * 100.0).abs() < 1e-9);

    // Set and cleared through PATCH, as `user edit --budget-usd` does.
    let user = admin(
        reqwest::Method::PATCH,
        &app,
        "/admin/users/bob",
        json!({"budget_usd": 2.5}),
    )
    .await;
    assert_eq!(user["budget_usd"], 2.5);
    let user = admin(
        reqwest::Method::PATCH,
        &app,
        "/admin/users/bob",
        json!({"budget_usd": null}),
    )
    .await;
    assert_eq!(user["budget_usd"], Value::Null);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_user_may_use_only_priced_models() {
    let (_mock, app) = priced_app().await;
    let key = app.add_user_with("carol", budget("5")).await;
    let (status, code, msg) =
        error_parts(post_json(&app, &key, "/chat/completions", &chat("o1", false)).await).await;
    assert_eq!((status, code.as_str()), (403, "model_not_allowed"));
    assert!(msg.contains("`o1` has no price"), "{msg}");
    assert_eq!(
        post_json(&app, &key, "/chat/completions", &chat("gpt-4o", false))
            .await
            .status(),
        200
    );
    // Nor a path opened with endpoints.allow: its use cannot be priced.
    let (status, code, _) = error_parts(post_json(&app, &key, "/batches", &json!({})).await).await;
    assert_eq!((status, code.as_str()), (403, "endpoint_not_allowed"));
    // A user without a budget may use both.
    let free = app.add_user("dave").await;
    for path in ["/chat/completions", "/batches"] {
        let r = post_json(&app, &free, path, &chat("o1", false)).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    app.stop().await;
}

/// The web app's cost of a reply (`/v1/me/cost`) is the gateway's price of
/// those tokens, the same arithmetic a record gets; null when unpriced.
#[tokio::test]
async fn the_caller_can_price_a_replys_tokens_as_its_record_is_priced() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.prices = [("gpt-4o".to_string(), price(2.5, 10.0, Some(1.25)))].into();
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let cost = |q: &'static str| {
        let (app, key) = (&app, key.clone());
        async move { get_json(app.url(&format!("/v1/me/cost?{q}")), &key).await }
    };
    let priced =
        cost("model=gpt-4o&prompt_tokens=1000&completion_tokens=200&cached_tokens=400").await;
    let want = gpt4o_cost(600, 400, 200) as f64 / 1e9;
    assert!(
        (priced["cost_usd"].as_f64().unwrap() - want).abs() < 1e-12,
        "{priced} vs {want}"
    );
    assert_eq!(
        cost("model=o1&prompt_tokens=5").await["cost_usd"],
        Value::Null
    );
    let r = http()
        .get(app.url("/v1/me/cost?model=gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "only for a caller with a key or a session");
}
