//! The hot path: authenticate → read what routing needs → check the rules
//! → route → forward (or answer locally) → stream back, metered.

pub mod auth;
pub mod cors;
pub mod forward;
pub mod keytable;
pub mod models;

use crate::error::ApiError;
use crate::limits;
use crate::server::Gateway;
use crate::upstream::client::Clients;
use crate::upstream::{echo, Target};
use crate::usage::meter::{Metered, Pending, Watch};
use crate::usage::UsageRecord;
use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::{Bytes, BytesMut};
use forward::RequestBody;
use futures_util::StreamExt;
use serde::Deserialize;
use std::borrow::Cow;
use std::time::Instant;

/// The few request fields the gateway needs; the rest is skipped unparsed.
#[derive(Deserialize, Default)]
struct Probe<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// The most the reply may use: `max_tokens` (chat, completions), its
    /// newer name `max_completion_tokens`, or `max_output_tokens` (responses).
    #[serde(default)]
    max_tokens: Option<i64>,
    #[serde(default)]
    max_completion_tokens: Option<i64>,
    #[serde(default)]
    max_output_tokens: Option<i64>,
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// How the reply of a request is to be counted.
#[derive(Clone, Copy, Default)]
struct Accounting {
    /// The endpoint reports usage (chat, embeddings, images, audio, …).
    counted: bool,
    /// Tokens can be estimated from text when the upstream reports none.
    estimable: bool,
    /// The gateway asked for stream usage that the client did not want.
    strip_usage: bool,
}

impl Accounting {
    fn for_endpoint(endpoint: &str) -> Accounting {
        let estimable = matches!(
            endpoint,
            "/chat/completions" | "/completions" | "/embeddings" | "/responses"
        );
        let counted = estimable
            || endpoint == "/moderations"
            || endpoint.starts_with("/images/")
            || endpoint.starts_with("/audio/");
        Accounting {
            counted,
            estimable,
            strip_usage: false,
        }
    }

    fn watch(self, status: StatusCode, headers: &header::HeaderMap) -> Watch {
        if !self.counted || !status.is_success() {
            return Watch::Nothing;
        }
        if is_event_stream(headers) {
            return Watch::Events {
                strip_usage: self.strip_usage,
                estimate: self.estimable,
            };
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            Watch::Json {
                estimate: self.estimable,
            }
        } else {
            Watch::Nothing
        }
    }
}

/// The request body with `stream_options.include_usage` set, so that the
/// upstream reports a stream's usage in a last chunk.
fn with_include_usage(body: &Bytes) -> Option<Bytes> {
    let mentions_options = body.windows(16).any(|w| w == b"\"stream_options\"");
    if !mentions_options {
        // Splice the field in after the opening brace: no re-serialisation.
        let open = body.iter().position(|b| *b == b'{')?;
        let rest = &body[open + 1..];
        let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        let field: &[u8] = if empty {
            br#""stream_options":{"include_usage":true}"#
        } else {
            br#""stream_options":{"include_usage":true},"#
        };
        let mut out = BytesMut::with_capacity(body.len() + field.len());
        out.extend_from_slice(&body[..=open]);
        out.extend_from_slice(field);
        out.extend_from_slice(rest);
        return Some(out.freeze());
    }
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let options = v.get_mut("stream_options")?;
    if !options.is_object() {
        *options = serde_json::json!({});
    }
    options["include_usage"] = serde_json::Value::Bool(true);
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    gw: web::Data<Gateway>,
    clients: web::Data<Clients>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let caller =
        auth::authenticate(&gw.keys, req.headers(), req.query_string()).inspect_err(|e| {
            // No user, so no usage record; still counted for operators.
            let status = e.status_code();
            gw.metrics
                .requests
                .with_label_values(&[status.as_str(), "-", "-"])
                .inc();
        })?;
    let endpoint = req.path().strip_prefix("/v1").unwrap_or(req.path());
    let mut pending = Pending::new(
        UsageRecord {
            at: crate::db::now(),
            user: caller.name.clone(),
            method: method_name(req.method()),
            endpoint: endpoint.to_owned(),
            model: None,
            upstream: None,
            status: 0,
            prompt_tokens: None,
            completion_tokens: None,
            total_tokens: None,
            estimated: false,
            stream: false,
            latency_ms: 0,
            work: None,
            reservation: None,
        },
        started,
        gw.usage.clone(),
    );
    match route_and_send(
        &req,
        payload,
        &gw,
        &clients,
        &caller,
        endpoint,
        &mut pending,
    )
    .await
    {
        Ok(reply) => Ok(reply.into_response(pending)),
        Err(e) => {
            pending.record.status = e.status_code().as_u16();
            pending.finish();
            Err(e)
        }
    }
}

/// What came back, before it is metered and sent.
enum Reply {
    Upstream(awc::ClientResponse, Accounting),
    Local(echo::LocalReply),
}

impl Reply {
    fn into_response(self, mut pending: Pending) -> HttpResponse {
        match self {
            Reply::Upstream(res, accounting) => {
                let status = res.status();
                let watch = if pending.counts() {
                    accounting.watch(status, res.headers())
                } else {
                    Watch::Nothing
                };
                pending.record.status = status.as_u16();
                let mut out = HttpResponse::build(status);
                for (name, value) in forward::end_to_end(res.headers(), &[]) {
                    out.append_header((name.clone(), value.clone()));
                }
                if is_event_stream(res.headers()) {
                    // Tell a buffering reverse proxy (nginx) to pass events on at once.
                    out.insert_header(("x-accel-buffering", "no"));
                }
                let length = res
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if let Some(len) = length {
                    out.no_chunking(len);
                }
                out.streaming(Metered::new(res, pending, watch))
            }
            Reply::Local(reply) => {
                pending.record.status = reply.status.as_u16();
                if let Some(t) = reply.tokens {
                    pending.record.set_tokens(t);
                }
                let mut out = HttpResponse::build(reply.status);
                match reply.body {
                    echo::Body::Full(bytes) => {
                        out.content_type("application/json");
                        let len = bytes.len() as u64;
                        out.no_chunking(len);
                        out.streaming(Metered::new(once(bytes), pending, Watch::Nothing))
                    }
                    echo::Body::Events(chunks) => {
                        out.content_type("text/event-stream")
                            .insert_header((header::CACHE_CONTROL, "no-cache"))
                            .insert_header(("x-accel-buffering", "no"));
                        let stream = futures_util::stream::iter(
                            chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
                        );
                        out.streaming(Metered::new(stream, pending, Watch::Nothing))
                    }
                }
            }
        }
    }
}

fn once(
    bytes: Bytes,
) -> futures_util::stream::Iter<std::iter::Once<Result<Bytes, std::convert::Infallible>>> {
    futures_util::stream::iter(std::iter::once(Ok(bytes)))
}

fn is_event_stream(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn route_and_send(
    req: &HttpRequest,
    payload: web::Payload,
    gw: &Gateway,
    clients: &Clients,
    caller: &keytable::Caller,
    endpoint: &str,
    pending: &mut Pending,
) -> Result<Reply, ApiError> {
    let live = gw.live();
    let max = live.config.limits.max_body_bytes;
    let mut body = read_body(req, payload, max).await?;
    let mut accounting = Accounting::for_endpoint(endpoint);
    // For a streamed chat: whether the client asked for usage itself.
    let mut wants_usage = None;
    let mut max_reply = None;
    let model = match &body {
        RequestBody::Buffered(bytes) if is_json(req) => {
            let probe: Probe = serde_json::from_slice(bytes).map_err(|e| {
                ApiError::BadRequest(format!("The request body is not valid JSON: {e}"))
            })?;
            pending.record.stream = probe.stream.unwrap_or(false);
            // Without accounting nothing would hide an added usage chunk.
            if pending.record.stream && endpoint == "/chat/completions" && pending.counts() {
                wants_usage = Some(
                    probe
                        .stream_options
                        .is_some_and(|o| o.include_usage == Some(true)),
                );
            }
            if accounting.estimable {
                pending.request = Some(bytes.clone());
            }
            max_reply = probe
                .max_tokens
                .or(probe.max_completion_tokens)
                .or(probe.max_output_tokens);
            probe.model.map(Cow::into_owned)
        }
        _ => None,
    };
    let record = &mut pending.record;
    record.model = model.clone();
    if let Some(m) = &model {
        if !caller.may_use(m) {
            return Err(ApiError::ModelNotAllowed(m.clone()));
        }
    }
    let lists_models = endpoint == "/models" && req.method() == Method::GET;
    let candidates = live.upstreams.candidates(model.as_deref());
    if candidates.is_empty() {
        return Err(ApiError::ModelNotFound(format!(
            "The model `{}` does not exist or no upstream serves it.",
            model.as_deref().unwrap_or("")
        )));
    }
    if caller.limits.rpm.is_some() || caller.limits.counts_usage() {
        let want = if accounting.counted {
            let prompt = match &body {
                RequestBody::Buffered(b) => limits::prompt_guess(b.len()),
                _ => 0,
            };
            prompt + max_reply.unwrap_or(live.config.limits.reserve_completion_tokens)
        } else {
            0
        };
        record.reservation = caller
            .ledger
            .admit(&caller.limits, want, record.at, Instant::now())
            .map_err(ApiError::from)?;
    }
    if lists_models {
        let (list, asked) = models::list(&live.upstreams, clients, req, caller).await?;
        record.upstream = asked;
        return Ok(Reply::Local(echo::LocalReply {
            status: StatusCode::OK,
            body: echo::Body::Full(Bytes::from(list.to_string())),
            tokens: None,
        }));
    }
    if let Target::Echo(e) = &candidates[0].target {
        record.upstream = Some(candidates[0].name.clone());
        let bytes = match &body {
            RequestBody::Buffered(b) => Some(&b[..]),
            _ => None,
        };
        return Ok(Reply::Local(e.respond(req.method(), endpoint, bytes)));
    }
    if let (Some(false), RequestBody::Buffered(bytes)) = (wants_usage, &body) {
        if let Some(changed) = with_include_usage(bytes) {
            body = RequestBody::Buffered(changed);
            accounting.strip_usage = true;
        }
    }
    let (res, _) = forward::with_failover(
        clients,
        &candidates,
        req,
        endpoint,
        model.as_deref(),
        &mut body,
        &mut record.upstream,
    )
    .await?;
    Ok(Reply::Upstream(res, accounting))
}

fn content_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim_start();
            v.len() >= 16 && v[..16].eq_ignore_ascii_case("application/json")
        })
}

/// JSON bodies are read whole (to route by model); others stream through.
/// Either way a body over `max` bytes is refused with 413.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<RequestBody, ApiError> {
    let length = content_length(req);
    if length.is_some_and(|l| l > max) {
        return Err(ApiError::TooLarge(max));
    }
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if !chunked && length.unwrap_or(0) == 0 {
        return Ok(RequestBody::None);
    }
    if !is_json(req) {
        if length.is_none() {
            // Without a length the size is only known at the end: read it.
            return read_all(&mut payload, max, 8192)
                .await
                .map(RequestBody::Buffered);
        }
        return Ok(RequestBody::Stream(payload));
    }
    read_all(&mut payload, max, length.unwrap_or(8192))
        .await
        .map(RequestBody::Buffered)
}

async fn read_all(payload: &mut web::Payload, max: usize, hint: usize) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::with_capacity(hint.min(max));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("Cannot read the request body: {e}")))?;
        if buf.len() + chunk.len() > max {
            return Err(ApiError::TooLarge(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn added(body: &str) -> Value {
        let out = with_include_usage(&Bytes::from(body.to_owned())).expect("changed");
        serde_json::from_slice(&out).expect("still JSON")
    }

    #[test]
    fn include_usage_is_added_without_losing_anything() {
        let v = added(r#" {"model":"m","stream":true}"#);
        assert_eq!(
            v,
            json!({"model": "m", "stream": true, "stream_options": {"include_usage": true}})
        );
        assert_eq!(
            added("{ }"),
            json!({"stream_options": {"include_usage": true}})
        );
        // An existing stream_options (even null or false) is changed, never duplicated.
        for options in ["null", r#"{"include_usage":false,"x":1}"#] {
            let body = format!(r#"{{"model":"m","stream_options":{options}}}"#);
            let out = with_include_usage(&Bytes::from(body)).unwrap();
            let text = String::from_utf8(out.to_vec()).unwrap();
            assert_eq!(text.matches("stream_options").count(), 1, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["stream_options"]["include_usage"], true);
        }
    }
}
