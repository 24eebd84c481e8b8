//! Every token charged (#29): work that finishes after its reply,
//! prompts given by reference, streams cut short, replies that are not
//! JSON, surcharges the client chooses, and requests that do not reach a
//! model, each against an upstream that behaves like the real one.

use chatgate::config::{Price, TierPrice};
use chatgate::users::{Setting, UserSettings};
use chatgate_testkit::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

fn price(input: f64, output: f64) -> Price {
    Price {
        input,
        output,
        ..Price::default()
    }
}

fn budget(usd: &str) -> UserSettings {
    UserSettings {
        budget: Some(chatgate::users::parse_usd(usd).unwrap()),
        ..Default::default()
    }
}

async fn post(app: &TestApp, key: &str, path: &str, body: Value) -> reqwest::Response {
    http()
        .post(format!("{}{path}", app.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Usage records of `/responses` once `n` of them are written (the settler
/// polls every few seconds: a finished job is charged within 30 s).
async fn settled(app: &TestApp, endpoint: &str, n: usize) -> Vec<Stored> {
    let done = eventually(Duration::from_secs(30), || async {
        stored(&app.pool, endpoint).len() >= n
    })
    .await;
    let records = stored(&app.pool, endpoint);
    assert!(
        done,
        "{} of {n} records written: {records:?}",
        records.len()
    );
    records
}

/// Five deep-research jobs (250k input and 60k output tokens each) started
/// in the background: each is charged its real usage exactly once when it
/// finishes, whether or not anyone fetches it, across a restart; their
/// reservations are held meanwhile, so the user cannot start more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_responses_are_charged_when_they_finish() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    // $2 / $8 per 1M tokens: a job costs $0.50 + $0.48.
    config.prices = [(account_models::DEEP.to_string(), price(2.0, 8.0))].into();
    let app = spawn_app(config.clone(), dir);
    let key = app
        .add_user_with(
            "alice",
            UserSettings {
                token_limit: Some(Setting::Set(5000)),
                ..budget("0.50")
            },
        )
        .await;
    let job =
        json!({"model": account_models::DEEP, "input": "Research the market", "background": true});
    let mut ids = Vec::new();
    for _ in 0..5 {
        let r = post(&app, &key, "/responses", job.clone()).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["status"].clone(), v["usage"].clone()),
            (json!("queued"), Value::Null)
        );
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    // What they reserved stays held while they run: no sixth job, and
    // none of them is charged a guess of a few tokens.
    let r = post(&app, &key, "/responses", job.clone()).await;
    assert_eq!(error_parts(r).await.0, 429);
    assert!(stored(&app.pool, "/responses").is_empty());
    // Across a restart: the charges wait in the database.
    let app = app.restart(config).await;
    let r = post(&app, &key, "/responses", job.clone()).await;
    assert_eq!(
        error_parts(r).await.0,
        429,
        "the held reservations were lost"
    );

    finish_background(&mock.state);
    // Refused requests leave records too (the two 429s above): wait for
    // all seven, or the count could be met before every job settled.
    let records = settled(&app, "/responses", 7).await;
    // The jobs are the 200s.
    let jobs: Vec<_> = records.iter().filter(|r| r.status == 200).collect();
    assert_eq!(jobs.len(), 5, "{records:?}");
    for r in &jobs {
        assert_eq!((r.prompt, r.completion), (Some(250_000), Some(60_000)));
        assert!(!r.estimated, "settled from the finished job, exactly");
    }
    let costs: Vec<_> = stored_costs(&app.pool, "/responses")
        .into_iter()
        .flatten()
        .filter(|c| *c > 0)
        .collect();
    assert_eq!(costs, [980_000_000; 5]);
    // Fetching a finished job, and more polls, charge nothing again.
    for id in &ids {
        let r = http()
            .get(format!("{}/responses/{id}", app.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again: Vec<_> = stored(&app.pool, "/responses")
        .into_iter()
        .filter(|r| r.status == 200)
        .collect();
    assert_eq!(again.len(), 5, "a job was charged twice");
    // Spent: refused from now on.
    let r = post(&app, &key, "/responses", job).await;
    assert_eq!(error_parts(r).await.1, "insufficient_quota");
}

/// Follow-ups that build on a 100k-token response by `previous_response_id`
/// reserve what it brings: with twenty at once against a budget that
/// admits one, one runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_given_by_reference_reserve_what_they_bring() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.prices = [
        (account_models::BIG.to_string(), price(2.5, 10.0)),
        ("gpt-4o".to_string(), price(2.5, 10.0)),
    ]
    .into();
    let app = spawn_app(config, dir);
    let key = app.add_user_with("alice", budget("0.60")).await;
    let base = post(
        &app,
        &key,
        "/responses",
        json!({"model": account_models::BIG, "input": "long"}),
    )
    .await;
    assert_eq!(base.status(), 200);
    let base: Value = base.json().await.unwrap();
    let base_id = base["id"].as_str().unwrap().to_owned();
    // Its cost ($0.25) is written, and so is what it brings to a follow-up.
    assert_eq!(
        settled(&app, "/responses", 1).await[0].prompt,
        Some(100_000)
    );
    let spent = eventually(Duration::from_secs(5), || async {
        let me = get_json(app.url("/v1/me"), &key).await;
        me["spent_usd"].as_f64().is_some_and(|s| s >= 0.25)
    })
    .await;
    assert!(spent);
    let follow = json!({"model": "gpt-4o", "input": "and then?", "previous_response_id": base_id});
    let replies = futures_util::future::join_all(
        (0..20).map(|_| post(&app, &key, "/responses", follow.clone())),
    )
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    // What it cost, in the end: within the budget.
    let total: i64 = stored_costs(&app.pool, "/responses")
        .into_iter()
        .flatten()
        .sum();
    assert!(
        total <= 600_000_000,
        "spent {total} nano-USD of 600,000,000"
    );
}

/// A reasoning stream of a stored response that the client stops reading
/// before its usage event is settled from the stored response: exactly,
/// its hidden reasoning included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_of_a_stored_response_is_settled_from_it() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let key = app.add_user_with("alice", token_limited(1_000_000)).await;
    let r = post(
        &app,
        &key,
        "/responses",
        json!({"model": account_models::REASONING, "input": "think hard", "stream": true}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Read the reasoning summaries, then give up: the stream stalls.
    let mut body = r.bytes_stream();
    let mut text = String::new();
    while text.matches("reasoning_summary_text.delta").count() < 20 {
        let chunk = body.next().await.unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(body);
    let records = settled(&app, "/responses", 1).await;
    assert_eq!(
        (records[0].prompt, records[0].completion),
        (Some(10), Some(REASONING_OUTPUT))
    );
    assert!(!records[0].estimated);
}

/// An Anthropic stream cut off while thinking is charged for its thinking
/// (the estimate reads every kind of output, not only text).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_thinking_stream_is_charged_for_its_thinking() {
    let mock = start_anthropic_mock();
    let (config, dir) = test_config(vec![anthropic_upstream(
        "anthropic",
        &mock.url,
        &["claude-*"],
    )]);
    let app = spawn_app(config, dir);
    let key = app.add_user("alice").await;
    let r = http()
        .post(format!("{}/messages", app.base))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": ANTHROPIC_THINKING, "max_tokens": 32000, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 20000},
            "messages": [{"role": "user", "content": "Plan it"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let mut seen = 0;
    while seen < THINKING_DELTAS {
        let chunk = body.next().await.unwrap().unwrap();
        seen += String::from_utf8_lossy(&chunk)
            .matches("thinking_delta")
            .count();
    }
    drop(body);
    let records = settled(&app, "/messages", 1).await;
    let thought =
        chatgate::usage::count_tokens(ANTHROPIC_THINKING, &THINKING_TEXT.repeat(THINKING_DELTAS));
    let completion = records[0].completion.unwrap();
    assert!(records[0].estimated);
    assert_eq!(records[0].prompt, Some(12), "the prompt as reported");
    assert!(
        (completion - thought).abs() <= thought / 50,
        "{completion} completion tokens for {thought} of thinking"
    );
}

/// Replies that are neither JSON nor SSE are charged: speech by its input
/// (characters, tokens) and its audio's length; a transcript as text by
/// its words and its audio's length; marked estimated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_replies_are_charged() {
    let mock = start_mock();
    let (mut config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    config.prices = [
        (
            "tts-1".to_string(),
            Price {
                per_million_characters: Some(15.0),
                ..Price::default()
            },
        ),
        (
            "whisper-1".to_string(),
            Price {
                per_minute_audio_in: Some(0.006),
                ..Price::default()
            },
        ),
    ]
    .into();
    let app = spawn_app(config, dir);
    // A user with 100 tokens: the first speech uses them up.
    let limited = app.add_user_with("alice", token_limited(100)).await;
    let input = "The quick brown fox jumps over the lazy dog. ".repeat(20);
    let speech = json!({"model": "tts-1", "voice": "alloy", "input": input});
    let r = post(&app, &limited, "/audio/speech", speech.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), SPEECH_BYTES);
    let records = settled(&app, "/audio/speech", 1).await;
    let tokens = chatgate::usage::count_tokens("tts-1", &input);
    assert_eq!(records[0].prompt, Some(tokens));
    assert!(records[0].estimated);
    // Its cost: 900 characters at $15 per 1M.
    assert_eq!(stored_costs(&app.pool, "/audio/speech"), [Some(13_500_000)]);
    let refused = eventually(Duration::from_secs(5), || async {
        post(&app, &limited, "/audio/speech", speech.clone())
            .await
            .status()
            == 429
    })
    .await;
    assert!(refused, "the spent token limit never refused speech");

    // A transcript as text: three seconds of WAV at $0.006 a minute.
    let carol = app.add_user_with("carol", budget("1")).await;
    let mut wav =
        b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x80\x3e\0\0\0\x7d\0\0\x02\0\x10\0data\0\0\0\0"
            .to_vec();
    wav.resize(44 + 3 * 32_000, 0);
    let form = reqwest::multipart::Form::new()
        .text("model", "whisper-1")
        .text("response_format", "text")
        .part(
            "file",
            reqwest::multipart::Part::bytes(wav).file_name("a.wav"),
        );
    let r = http()
        .post(format!("{}/audio/transcriptions", app.base))
        .bearer_auth(&carol)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), TRANSCRIPT);
    let records = settled(&app, "/audio/transcriptions", 1).await;
    let words = chatgate::usage::count_tokens("whisper-1", TRANSCRIPT);
    assert_eq!(
        (records[0].prompt, records[0].completion),
        (Some(0), Some(words))
    );
    assert!(records[0].estimated);
    assert_eq!(
        stored_costs(&app.pool, "/audio/transcriptions"),
        [Some(300_000)]
    );
}

/// What the client chooses that costs more is priced at its own rates:
/// the priority tier, web searches, a long prompt and one-hour cache
/// writes; a USD-budget user is refused a surcharge without a price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surcharges_are_priced_and_unpriced_ones_refused() {
    let mock = start_mock();
    let anthropic = start_anthropic_mock();
    let (mut config, dir) = test_config(vec![
        anthropic_upstream("anthropic", &anthropic.url, &["claude-*"]),
        openai_upstream("mock", &mock.url, &["*"]),
    ]);
    let tier = TierPrice {
        input: 5.0,
        output: 20.0,
        cached_input: None,
        cache_write: None,
    };
    config.prices = [
        (
            "gpt-4o".to_string(),
            Price {
                priority: Some(tier),
                per_thousand_web_searches: Some(10.0),
                ..price(2.5, 10.0)
            },
        ),
        ("gpt-4o-mini".to_string(), price(0.15, 0.6)),
        (
            "claude-long".to_string(),
            Price {
                above_200k: Some(TierPrice {
                    input: 6.0,
                    output: 22.5,
                    cached_input: None,
                    cache_write: Some(7.5),
                }),
                cache_write_1h: Some(12.0),
                ..price(3.0, 15.0)
            },
        ),
    ]
    .into();
    let app = spawn_app(config, dir);
    let key = app.add_user_with("alice", budget("100")).await;
    // Priority: 7 prompt tokens (4 of them cached) and 2 out, at $5/$20.
    let r = post(
        &app,
        &key,
        "/chat/completions",
        json!({"model": "gpt-4o", "service_tier": "priority", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // A web search: $0.01 on top of the tokens (8 in, 2 out).
    let r = post(
        &app,
        &key,
        "/responses",
        json!({"model": "gpt-4o", "input": "news?", "tools": [{"type": "web_search"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    // 210,000 prompt tokens, 1,000 written for an hour: every token at the
    // long rates, the hour's writes at theirs.
    let r = http()
        .post(format!("{}/messages", app.base))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-long", "max_tokens": 100, "messages": [{"role": "user", "content": "read"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    settled(&app, "/messages", 1).await;
    settled(&app, "/responses", 1).await;
    let chat = settled(&app, "/chat/completions", 1).await;
    assert_eq!((chat[0].prompt, chat[0].completion), (Some(7), Some(2)));
    assert_eq!(
        stored_costs(&app.pool, "/chat/completions"),
        [Some(7 * 5_000 + 2 * 20_000)]
    );
    assert_eq!(
        stored_costs(&app.pool, "/responses"),
        [Some(6 * 2_500 + 2 * 10_000 + 10_000_000)]
    );
    assert_eq!(
        stored_costs(&app.pool, "/messages"),
        [Some(209_000 * 6_000 + 1_000 * 12_000 + 10 * 22_500)]
    );
    // Unpriced surcharges are refused to a budget, and nothing is sent.
    let before = mock.seen().len();
    for body in [
        json!({"model": "gpt-4o-mini", "service_tier": "priority", "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "gpt-4o-mini", "input": "hi", "tools": [{"type": "web_search_preview"}]}),
    ] {
        let path = if body.get("messages").is_some() {
            "/chat/completions"
        } else {
            "/responses"
        };
        let (status, code, message) = error_parts(post(&app, &key, path, body).await).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "model_not_allowed"),
            "{message}"
        );
        assert!(message.contains("no price"), "{message}");
    }
    assert_eq!(mock.seen().len(), before);
}

/// A request limit counts the requests that reach a model: model lists,
/// `/v1/me`, the billing endpoints and object reads are recorded and
/// rate-limited, but use none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_requests_that_reach_a_model_use_up_a_request_limit() {
    let mock = start_mock();
    let (config, dir) = test_config(vec![openai_upstream("mock", &mock.url, &["*"])]);
    let app = spawn_app(config, dir);
    let key = app
        .add_user_with(
            "alice",
            UserSettings {
                request_limit: Some(Setting::Set(1)),
                ..Default::default()
            },
        )
        .await;
    let get = |path: &str| {
        http()
            .get(format!("{}{path}", app.base))
            .bearer_auth(&key)
            .send()
    };
    for path in ["/models", "/models", "/me", "/files", "/models/gpt-4o"] {
        assert_eq!(get(path).await.unwrap().status(), 200, "{path}");
    }
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post(&app, &key, "/chat/completions", chat.clone())
            .await
            .status(),
        200
    );
    let refused = eventually(Duration::from_secs(5), || async {
        post(&app, &key, "/chat/completions", chat.clone())
            .await
            .status()
            == 429
    })
    .await;
    assert!(refused);
    // Signing in to the web app again still lists the models.
    assert_eq!(get("/models").await.unwrap().status(), 200);
    let me = get_json(app.url("/v1/me"), &key).await;
    assert_eq!(me["requests_used"], 1, "{me}");
}
