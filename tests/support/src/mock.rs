//! The mock upstream: an in-process OpenAI-compatible server that records
//! what it receives and is as lenient as real upstreams are (it decodes
//! `%2F`, parses any body, keeps account objects per account).

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// The upstream key the gateway is configured with.
pub const UPSTREAM_KEY: &str = "sk-upstream-secret-0001";

/// One request as the mock upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Seen {
    /// The request as a mock upstream received it.
    pub fn of(req: &HttpRequest, body: &Bytes) -> Seen {
        Seen {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: body.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
pub struct MockState {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// A streamed reply sends its first chunk, then waits for a permit here.
    pub release: Arc<Semaphore>,
    /// `…/hang` waits here for ever.
    pub hang: Arc<Semaphore>,
    /// What the account keeps (files, responses, …), shared by every key
    /// as OpenAI keeps them: (id, object), oldest first.
    pub objects: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    /// Ids handed out so far (never one twice, as upstreams do).
    pub made: Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for MockState {
    fn default() -> Self {
        MockState {
            seen: Arc::default(),
            release: Arc::new(Semaphore::new(0)),
            hang: Arc::new(Semaphore::new(0)),
            objects: Arc::default(),
            made: Arc::default(),
        }
    }
}

pub struct Mock {
    pub url: String,
    pub state: MockState,
}

impl Mock {
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the mock saw no request")
    }
}

/// The path as lenient servers read it: percent-escapes decoded, `//`
/// merged, dot segments resolved. The gateway must refuse every path that
/// would read differently here from what it took it for.
pub fn lenient_path(raw: &str) -> String {
    let decoded = url::form_urlencoded::parse(format!("p={}", raw.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
        .replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Model names that make the mock answer in particular ways.
pub mod models {
    /// 400 with a message quoting the upstream key (as some servers do).
    pub const BAD_REQUEST: &str = "mock-bad-request";
    /// 401 `invalid_api_key`: the upstream says the key itself is bad.
    pub const KEY_REJECTED: &str = "mock-key-rejected";
    /// 403 that is not about the key (a region, an organization).
    pub const FORBIDDEN: &str = "mock-forbidden";
    /// Never answers (until the test ends): for upstream timeouts.
    pub const HANG: &str = "mock-hang";
    /// A stream that sends one chunk and then stalls.
    pub const STALL: &str = "mock-stall";
    /// A JSON reply of about 20 MiB, usage at its end.
    pub const HUGE: &str = "mock-huge";
    /// An SSE reply with a `Content-Length`, usage only when asked.
    pub const SSE_LENGTH: &str = "mock-sse-length";
    /// A stream whose one event never ends (3 MiB without a blank line).
    pub const ENDLESS_EVENT: &str = "mock-endless-event";
}

/// The organization the mock's account accepts; any other is a 401, as
/// OpenAI answers a bogus `OpenAI-Organization`.
pub const MOCK_ORGANIZATION: &str = "org-mock";

async fn record(req: HttpRequest, body: Bytes, state: web::Data<MockState>) -> HttpResponse {
    state.seen.lock().unwrap().push(Seen::of(&req, &body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    // Model `no-usage` behaves like compatible servers that report none.
    let reports_usage = json["model"] != NO_USAGE_MODEL;
    // Keys named like this make the mock answer like a bad or busy key.
    let key = [
        req.headers().get("authorization"),
        req.headers().get("api-key"),
    ]
    .into_iter()
    .flatten()
    .map(|v| v.to_str().unwrap_or("").to_owned())
    .collect::<String>();
    if key.contains("bad401") || json["model"] == models::KEY_REJECTED {
        return HttpResponse::Unauthorized().json(serde_json::json!({"error": {
            "message": format!("Incorrect API key provided: {}.", key.trim_start_matches("Bearer ")),
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}));
    }
    if key.contains("busy429") {
        return HttpResponse::TooManyRequests()
            .json(serde_json::json!({"error": {"message": "Rate limit reached"}}));
    }
    if let Some(org) = req.headers().get("openai-organization") {
        if org != MOCK_ORGANIZATION {
            return HttpResponse::Unauthorized().json(serde_json::json!({"error": {
                "message": "No such organization.", "type": "invalid_request_error",
                "param": null, "code": "invalid_organization"}}));
        }
    }
    if json["model"] == models::FORBIDDEN {
        return HttpResponse::Forbidden().json(serde_json::json!({"error": {
            "message": "Country, region, or territory not supported",
            "type": "request_forbidden", "param": null, "code": "unsupported_country_region_territory"}}));
    }
    if json["model"] == models::BAD_REQUEST {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": {
            "message": format!("bad parameter (key {UPSTREAM_KEY})"),
            "type": "invalid_request_error", "param": "x", "code": null}}));
    }
    if json["model"] == models::HANG {
        let _ = state.hang.acquire().await;
        return HttpResponse::Ok().finish();
    }
    if json["model"] == models::STALL {
        let hang = state.hang.clone();
        let body = futures_util::stream::unfold(0, move |i| {
            let hang = hang.clone();
            async move {
                if i > 0 {
                    let _ = hang.acquire().await;
                    return None;
                }
                Some((Ok::<_, std::convert::Infallible>(sse(chunk("Hello"))), 1))
            }
        });
        return HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(body);
    }
    if json["model"] == models::ENDLESS_EVENT {
        let part = Bytes::from(vec![b'x'; 64 * 1024]);
        let chunks = std::iter::once(Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"",
        ))
        .chain(std::iter::repeat_n(part, 48))
        .map(Ok::<_, std::convert::Infallible>);
        return HttpResponse::Ok()
            .content_type("text/event-stream")
            .streaming(futures_util::stream::iter(chunks));
    }
    if json["model"] == models::HUGE {
        // 20 MiB of embeddings, the usage object last.
        let mut reply = String::with_capacity(21 << 20);
        reply.push_str(r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":["#);
        while reply.len() < 20 << 20 {
            reply.push_str("0.0123456789,");
        }
        reply.push_str(r#"0.5]}],"model":"m","usage":{"prompt_tokens":1234,"total_tokens":1234}}"#);
        return HttpResponse::Ok()
            .content_type("application/json")
            .body(reply);
    }
    if json["model"] == models::SSE_LENGTH {
        let usage = json["stream_options"]["include_usage"] == true;
        let mut text = String::new();
        text.push_str(&String::from_utf8_lossy(&sse(chunk("Hello"))));
        if usage {
            text.push_str(&String::from_utf8_lossy(&sse(serde_json::json!({
                "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}))));
        }
        text.push_str("data: [DONE]\n\n");
        return HttpResponse::Ok()
            .content_type("text/event-stream")
            .insert_header(("set-cookie", "upstream-session=1"))
            .insert_header(("openai-organization", "org-operator-secret"))
            .body(text);
    }
    // Azure's paths end like OpenAI's; the route is chosen by the suffix
    // of the path as a lenient server reads it.
    let lenient = lenient_path(req.path());
    if let Some(reply) = crate::account::serve(
        &state,
        req.method().as_str(),
        &lenient,
        req.query_string(),
        &json,
        &body,
    ) {
        return reply;
    }
    let path = [
        "/chat/completions",
        "/embeddings",
        "/models",
        "/audio/transcriptions",
        "/audio/speech",
    ]
    .into_iter()
    .find(|p| lenient.ends_with(p))
    .map(|p| format!("/v1{p}"))
    .unwrap_or(lenient);
    match path.as_str() {
        "/v1/chat/completions" if json["stream"] == true => {
            let usage = reports_usage && json["stream_options"]["include_usage"] == true;
            stream_reply(&state, usage)
        }
        "/v1/chat/completions" => {
            let tier = json["service_tier"].as_str().unwrap_or("default");
            let mut reply = serde_json::json!({
                "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": json["model"],
                "service_tier": tier,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "mock reply"}}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9,
                          "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS}}
            });
            if !reports_usage {
                reply.as_object_mut().unwrap().remove("usage");
            }
            HttpResponse::Ok()
                .insert_header(("x-request-id", "req_mock_upstream"))
                .insert_header(("set-cookie", "upstream-session=1"))
                .insert_header(("openai-organization", "org-operator-secret"))
                // The whole account's limits, as OpenAI sends them.
                .insert_header(("x-ratelimit-limit-requests", "10000"))
                .insert_header(("x-ratelimit-remaining-requests", "9999"))
                .json(reply)
        }
        "/v1/embeddings" => HttpResponse::Ok().json(serde_json::json!({
            "object": "list", "model": json["model"],
            "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}],
            "usage": {"prompt_tokens": 3, "total_tokens": 3}
        })),
        // As OpenAI answers: JSON by default; the text formats as text.
        "/v1/audio/transcriptions" if form_says(&body, "response_format", "text") => {
            HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body(TRANSCRIPT)
        }
        "/v1/audio/transcriptions" => HttpResponse::Ok().json(serde_json::json!({
            "text": format!("{} bytes", body.len()),
            "usage": {"type": "duration", "seconds": 1}
        })),
        // Two seconds of MP3 at 64 kbps.
        "/v1/audio/speech" => {
            let mut audio = vec![0xff, 0xfb, 0x50, 0x00];
            audio.resize(SPEECH_BYTES, 0);
            HttpResponse::Ok().content_type("audio/mpeg").body(audio)
        }
        "/v1/models" => HttpResponse::Ok().json(serde_json::json!({
            "object": "list",
            "data": MOCK_MODELS.iter().map(|m| serde_json::json!({"id": m, "object": "model"})).collect::<Vec<_>>()
        })),
        _ => HttpResponse::Ok()
            .insert_header(("x-request-id", "req_mock_upstream"))
            .insert_header(("set-cookie", "upstream-session=1"))
            .insert_header(("openai-organization", "org-operator-secret"))
            .json(serde_json::json!({"path": path})),
    }
}

pub(crate) fn sse(v: serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

fn chunk(text: &str) -> serde_json::Value {
    serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
}

/// What the mock transcribes any audio to, as text.
pub const TRANSCRIPT: &str = "one two three four five six seven eight nine ten";

/// The bytes of the mock's speech: 2 s of MP3 at 64 kbps.
pub const SPEECH_BYTES: usize = 16_000;

/// Whether a multipart form's field `name` is `value` (as lenient servers
/// read it).
fn form_says(body: &[u8], name: &str, value: &str) -> bool {
    let field = format!("name=\"{name}\"\r\n\r\n{value}\r\n");
    String::from_utf8_lossy(body).contains(&field)
}

/// What the mock's `GET /v1/models` lists.
pub const MOCK_MODELS: [&str; 3] = ["gpt-4o", "gpt-4o-mini", "o1"];

/// The model name for which the mock reports no usage.
pub const NO_USAGE_MODEL: &str = "no-usage";

/// The usage the mock reports at the end of a stream, when asked.
pub const STREAM_USAGE: (i64, i64) = (5, 2);

/// Of the prompt tokens the mock reports (chat, streamed chat, the
/// Responses API), how many came from its prompt cache.
pub const CACHED_TOKENS: i64 = 4;

/// `Hello` at once; ` world`, the finish chunk, the usage chunk (when asked)
/// and `[DONE]` only after release.
fn stream_reply(state: &MockState, usage: bool) -> HttpResponse {
    let release = state.release.clone();
    let body = async_stream(release, usage);
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(body)
}

fn async_stream(
    release: Arc<Semaphore>,
    usage: bool,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    let mut items = vec![
        sse(chunk("Hello")),
        sse(chunk(" world")),
        sse(
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
            "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ),
    ];
    if usage {
        items.push(sse(
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk",
            "created": 1, "model": "m", "choices": [],
            "usage": {"prompt_tokens": STREAM_USAGE.0, "completion_tokens": STREAM_USAGE.1,
                      "total_tokens": STREAM_USAGE.0 + STREAM_USAGE.1,
                      "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS}}}),
        ));
    }
    items.push(Bytes::from_static(b"data: [DONE]\n\n"));
    futures_util::stream::unfold((0usize, items), move |(i, items)| {
        let release = release.clone();
        async move {
            if i == 1 {
                release.acquire().await.unwrap().forget();
            }
            let item = items.get(i)?.clone();
            Some((Ok(item), (i + 1, items)))
        }
    })
}

pub fn start_mock() -> Mock {
    let state = MockState::default();
    let port = serve(&state, record);
    Mock {
        url: format!("http://127.0.0.1:{port}/v1"),
        state,
    }
}

/// Runs a mock upstream on a port of its own, every request to `handler`;
/// answers the port.
pub(crate) fn serve<H>(state: &MockState, handler: H) -> u16
where
    H: actix_web::Handler<(HttpRequest, Bytes, web::Data<MockState>)> + Clone + Send + 'static,
    H::Output: actix_web::Responder + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::new(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .default_service(web::to(handler.clone()))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    port
}
