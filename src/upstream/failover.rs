//! Failover: forwarding to an OpenAI-compatible upstream with awc: the client's key is
//! swapped for the upstream's, headers cross by the table in `headers`,
//! bodies stream in both directions, and failover moves on to the next key
//! or upstream while nothing was sent to the client.

use super::client::Clients;
use super::pool::PoolKey;
use super::{Target, Upstream};
use crate::catalogue::Api;
use crate::error::ApiError;
use crate::upstream::headers::{self, Direction};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use awc::error::{ConnectError, SendRequestError};
use awc::ClientResponse;
use bytes::Bytes;
use futures_util::stream::LocalBoxStream;
use std::sync::Arc;
use std::time::Instant;

/// The largest error body read from an upstream (to check and scrub it).
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// The query string without credential parameters (`token=` among them,
/// the way a client passes its gateway key).
pub fn strip_credentials(query: &str) -> String {
    query
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or_default();
            // Never forwarded, so that no client can make an upstream
            // reject the operator's key (and park it).
            !p.is_empty() && !crate::keys::is_secret_parameter(name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// What goes to an upstream: the client's request (method and headers),
/// the version its path began with and the path after it, the query
/// (credentials stripped) and the model it was routed by.
pub struct Outgoing<'r> {
    pub req: &'r HttpRequest,
    pub api: Api,
    pub endpoint: &'r str,
    pub query: String,
    pub model: Option<&'r str>,
}

impl<'r> Outgoing<'r> {
    pub fn new(req: &'r HttpRequest, endpoint: &'r str, model: Option<&'r str>) -> Outgoing<'r> {
        Outgoing {
            req,
            api: Api::split(req.path()).map_or(Api::V1, |(api, _)| api),
            endpoint,
            query: strip_credentials(req.query_string()),
            model,
        }
    }
}

/// The client's request body, as it is sent.
pub enum RequestBody {
    None,
    /// Read whole: can be sent again to another upstream.
    Buffered(Bytes),
    /// Passed through as it arrives; can be sent once.
    Stream(ClientStream),
    /// A stream already sent: no other attempt is possible.
    Consumed,
}

/// A body streamed from the client, and why it was cut off when it broke
/// one of the client's limits (which no other upstream would mend).
pub struct ClientStream {
    pub body: LocalBoxStream<'static, Result<Bytes, PayloadError>>,
    pub broke: Box<dyn Fn() -> Option<ApiError>>,
}

/// What an upstream answered.
pub enum Answer {
    /// A success, its body still to come.
    Live(ClientResponse),
    /// An error reply, read whole and scrubbed of every upstream key.
    Read {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
}

/// Sends the request to the first upstream and key that takes it. A key
/// answering 429 or 5xx (or unreachable) cools down and the next key, then
/// the next upstream, is tried; a key the upstream itself calls invalid is
/// parked; any other 401 or 403 moves on without blaming the key (no
/// client can switch a pool off). All of that only while nothing was sent
/// to the client and the body can be sent again. Other answers (a client's
/// 400) come back at once. Returns the answer and the upstream it came from.
pub async fn with_failover<'u>(
    clients: &Clients,
    candidates: &[&'u Upstream],
    scrub: &dyn Fn(&[u8]) -> Bytes,
    out: &Outgoing<'_>,
    body: &mut RequestBody,
) -> Result<(Answer, &'u Upstream), (ApiError, Option<Arc<str>>)> {
    let mut last: Option<ApiError> = None;
    let mut refused: Option<(Answer, &'u Upstream)> = None;
    let mut not_served: Option<String> = None;
    let mut tried: Option<Arc<str>> = None;
    'upstreams: for upstream in candidates {
        let Some(pool) = upstream.keys() else {
            continue;
        };
        let client = &clients.for_upstream(upstream);
        for i in pool.order(Instant::now()) {
            let key = pool.key(i);
            tried = Some(upstream.name.clone());
            let began = Instant::now();
            let sent = send(client, upstream, key, out, body).await;
            clients.observe(upstream, began.elapsed());
            let mut res = match sent {
                Ok(res) => res,
                Err(Failure::NotServed(why)) => {
                    not_served = Some(why);
                    break;
                }
                Err(Failure::Client(e)) => return Err((e, tried)),
                Err(Failure::Send(e)) => {
                    pool.cool_down(i, Instant::now());
                    last = Some(e);
                    if matches!(body, RequestBody::Consumed) {
                        break 'upstreams;
                    }
                    continue;
                }
            };
            let status = res.status();
            if status.is_success() || status.is_redirection() || status.is_informational() {
                pool.succeeded(i);
                return Ok((Answer::Live(res), upstream));
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                let wait = pool.cool_down(i, Instant::now());
                tracing::warn!(upstream = %upstream.name, key = %key.hint, status = status.as_u16(),
                    cooldown_s = wait.as_secs(), "upstream key failed; trying the next");
                last = Some(ApiError::Upstream(format!(
                    "Every upstream failed; the last, `{}`, answered {}.",
                    upstream.name,
                    status.as_u16()
                )));
            } else {
                let text = read_error(&mut res, &upstream.name).await;
                let text = match text {
                    Ok(t) => t,
                    Err(e) => return Err((e, tried)),
                };
                let answer = Answer::Read {
                    status,
                    headers: res.headers().clone(),
                    body: scrub(&text),
                };
                let rejects = upstream.rejects_key(status, &text);
                if !rejects && !matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    // The client's own error (a bad parameter): as it is.
                    return Ok((answer, upstream));
                }
                if rejects {
                    pool.park(i);
                    tracing::error!(upstream = %upstream.name, key = %key.hint,
                        "upstream rejected the key; parked until the configuration is reloaded");
                    last = Some(ApiError::Upstream(format!(
                        "The upstream `{}` rejected the gateway's API key; tell the gateway's admin.",
                        upstream.name
                    )));
                } else {
                    tracing::warn!(upstream = %upstream.name, key = %key.hint, status = status.as_u16(),
                        "upstream refused the request; trying the next (the key stays in use)");
                    refused = Some((answer, upstream));
                    last = None;
                }
            }
            if matches!(body, RequestBody::Consumed) {
                break 'upstreams;
            }
        }
    }
    if let (Some(answer), None) = (refused, &last) {
        return Ok(answer);
    }
    let e = match (last, not_served) {
        (Some(e), _) => e,
        (None, Some(why)) => ApiError::NotServed(why),
        (None, None) => ApiError::Upstream(
            "Every key of the upstreams for this model is disabled (rejected earlier); tell the gateway's admin.".into(),
        ),
    };
    Err((e, tried))
}

/// An error body, read up to `MAX_ERROR_BODY` (error path only).
async fn read_error(res: &mut ClientResponse, upstream: &str) -> Result<Bytes, ApiError> {
    res.body().limit(MAX_ERROR_BODY).await.map_err(|e| {
        ApiError::Upstream(format!(
            "Cannot read the error reply of the upstream `{upstream}`: {e}."
        ))
    })
}

/// Why an attempt did not give a response.
pub enum Failure {
    /// The upstream does not have this endpoint (Azure's classic API).
    NotServed(String),
    /// Sending failed (connect, timeout, …); another key or upstream may do.
    Send(ApiError),
    /// The client's body broke a limit while it was sent: no retry helps.
    Client(ApiError),
}

/// Where a request for `endpoint` (after `api`'s prefix) with `query` goes
/// on `upstream`, with which key header, and the model name its body must
/// carry there (Azure's v1 deployments).
pub struct Address {
    pub url: String,
    pub key: (HeaderName, HeaderValue),
    pub replace_model: Option<String>,
}

pub fn address(
    upstream: &Upstream,
    key: &PoolKey,
    (api, endpoint): (Api, &str),
    query: &str,
    model: Option<&str>,
) -> Result<Address, Failure> {
    let mut replace_model = None;
    let mut key_header = (key.header.0.clone(), key.header.1.clone());
    let joined = |parts: &[&str]| {
        let mut url = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 1);
        parts.iter().for_each(|p| url.push_str(p));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    };
    let url = match &upstream.target {
        Target::OpenAi { base_url, .. } => joined(&[base_url, endpoint]),
        Target::Anthropic { base_url, .. } => {
            // Anthropic's own API takes `x-api-key`; its OpenAI-compatible
            // endpoints take the same key as a Bearer token.
            if !endpoint.starts_with("/messages") {
                key_header = bearer(&key.header.1);
            }
            joined(&[base_url, "/v1", endpoint])
        }
        Target::Azure { azure, .. } => {
            let route = azure.route(endpoint, query, model).map_err(|e| match e {
                super::azure::NoRoute::NotServed(why) => Failure::NotServed(why),
                super::azure::NoRoute::NoDeployment(why) => {
                    Failure::Client(ApiError::ModelNotFound(why))
                }
            })?;
            replace_model = route.model;
            format!("{}{}", azure.endpoint, route.path_and_query)
        }
        Target::Gemini { base_url, .. } => {
            // Gemini's own API in the client's version; anything else to
            // its OpenAI-compatible endpoints, with the key as a Bearer.
            if api != Api::V1 || crate::catalogue::is_gemini_call(endpoint) {
                joined(&[base_url, api.prefix(), endpoint])
            } else {
                key_header = bearer(&key.header.1);
                joined(&[base_url, "/v1beta/openai", endpoint])
            }
        }
        // Answered locally by the handler; never sent.
        Target::Echo(_) => return Err(Failure::NotServed("echo answers locally".into())),
    };
    Ok(Address {
        url,
        key: key_header,
        replace_model,
    })
}

/// A `GET` of the gateway's own (settling a charge): `endpoint` on
/// `upstream` with its first usable key, no client headers.
pub async fn fetch(
    client: &awc::Client,
    upstream: &Upstream,
    endpoint: &str,
) -> Result<ClientResponse, ApiError> {
    let pool = upstream
        .keys()
        .ok_or_else(|| ApiError::NotServed("the echo upstream keeps no objects".into()))?;
    let i = *pool
        .order(Instant::now())
        .first()
        .ok_or_else(|| ApiError::Upstream(format!("every key of `{}` is parked", upstream.name)))?;
    let key = pool.key(i);
    let to = match address(upstream, key, (Api::V1, endpoint), "", None) {
        Ok(a) => a,
        Err(Failure::NotServed(why)) => return Err(ApiError::NotServed(why)),
        Err(Failure::Send(e) | Failure::Client(e)) => return Err(e),
    };
    let mut request = client.get(to.url.as_str()).no_decompress();
    let headers = request.headers_mut();
    for (name, value) in &upstream.account_headers {
        headers.insert(name.clone(), value.clone());
    }
    headers.insert(to.key.0, to.key.1);
    request
        .send()
        .await
        .map_err(|e| upstream_error(&upstream.name, &key.hint, e))
}

/// One attempt: the client's request to `upstream` with its key `key`.
pub async fn send(
    client: &awc::Client,
    upstream: &Upstream,
    key: &PoolKey,
    out: &Outgoing<'_>,
    body: &mut RequestBody,
) -> Result<ClientResponse, Failure> {
    let req = out.req;
    let Address {
        url,
        key: key_header,
        replace_model,
    } = address(
        upstream,
        key,
        (out.api, out.endpoint),
        &out.query,
        out.model,
    )?;
    let mut request = client
        .request(req.method().clone(), url.as_str())
        .no_decompress();
    let out = request.headers_mut();
    for (name, value) in headers::passed(req.headers(), Direction::Request) {
        out.append(name.clone(), value.clone());
    }
    for (name, value) in &upstream.account_headers {
        out.insert(name.clone(), value.clone());
    }
    out.insert(key_header.0, key_header.1);
    let mut broke = None;
    let sent = match std::mem::replace(body, RequestBody::Consumed) {
        RequestBody::None => {
            *body = RequestBody::None;
            request.send().await
        }
        RequestBody::Buffered(bytes) => {
            *body = RequestBody::Buffered(bytes.clone());
            let bytes = match &replace_model {
                Some(m) => with_model(&bytes, m).unwrap_or(bytes),
                None => bytes,
            };
            request.send_body(bytes).await
        }
        RequestBody::Stream(client) => {
            broke = Some(client.broke);
            request.send_stream(client.body).await
        }
        RequestBody::Consumed => {
            return Err(Failure::Send(ApiError::Upstream(
                "The request body was already sent to another upstream.".into(),
            )))
        }
    };
    sent.map_err(|e| {
        match broke.and_then(|b| b()) {
            // The client's body was too large or too slow: say so.
            Some(e) => Failure::Client(e),
            None => Failure::Send(upstream_error(&upstream.name, &key.hint, e)),
        }
    })
}

/// `Authorization: Bearer KEY` for a key kept as a bare header value.
fn bearer(key: &HeaderValue) -> (HeaderName, HeaderValue) {
    let mut text = b"Bearer ".to_vec();
    text.extend_from_slice(key.as_bytes());
    let mut value = HeaderValue::from_bytes(&text).expect("a key that was a header value still is");
    value.set_sensitive(true);
    (header::AUTHORIZATION, value)
}

/// The JSON body with `model` set to `model` (Azure v1 deployments).
fn with_model(body: &Bytes, model: &str) -> Option<Bytes> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    *v.get_mut("model")? = serde_json::Value::String(model.to_owned());
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

fn upstream_error(name: &str, key_hint: &str, e: SendRequestError) -> ApiError {
    tracing::warn!(
        upstream = name,
        key = key_hint,
        "upstream request failed: {e}"
    );
    match e {
        SendRequestError::Timeout => ApiError::UpstreamTimeout(name.to_owned()),
        SendRequestError::Connect(ConnectError::Timeout) => ApiError::Upstream(format!(
            "Could not connect to the upstream `{name}` in time."
        )),
        SendRequestError::Connect(e) => {
            ApiError::Upstream(format!("Could not connect to the upstream `{name}`: {e}."))
        }
        e => ApiError::Upstream(format!("The upstream `{name}` failed: {e}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_parameters_are_stripped() {
        assert_eq!(strip_credentials("token=sk-x"), "");
        assert_eq!(strip_credentials("a=1&token=sk-x&b=2"), "a=1&b=2");
        assert_eq!(strip_credentials("tokens=5"), "tokens=5");
        assert_eq!(
            strip_credentials("api-version=2024-10-21&Key=x&api_key=y&limit=5"),
            "api-version=2024-10-21&limit=5"
        );
    }
}
