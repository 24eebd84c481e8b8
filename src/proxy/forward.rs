//! Forwarding to an OpenAI-compatible upstream with awc: the client's key is
//! swapped for the upstream's, hop-by-hop headers are dropped, and bodies
//! stream in both directions.

use crate::error::ApiError;
use crate::upstream::client::Clients;
use crate::upstream::pool::PoolKey;
use crate::upstream::{Target, Upstream};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use awc::error::{ConnectError, SendRequestError};
use awc::ClientResponse;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

/// The request body as the handler read it.
pub enum RequestBody {
    None,
    /// Read whole to look at `model` (JSON); can be sent again.
    Buffered(Bytes),
    /// Passed through as it arrives (multipart uploads and the like); can
    /// be sent once.
    Stream(web::Payload),
    /// A stream already sent: no other attempt is possible.
    Consumed,
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus what the gateway sets itself.
fn is_dropped(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// Headers named in `Connection:` are hop-by-hop too.
fn connection_listed(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(name.as_str()))
}

/// The end-to-end headers of a message (requests and responses alike),
/// without those in `extra` either.
pub fn end_to_end<'a>(
    from: &'a HeaderMap,
    extra: &'a [HeaderName],
) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + 'a {
    from.iter().filter(move |(name, _)| {
        !(is_dropped(name) || extra.contains(name) || connection_listed(from, name))
    })
}

/// The query string without the `token=` parameter.
pub fn strip_token(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("token="))
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends the request to the first upstream and key that takes it. A key
/// answering 429 or 5xx (or unreachable) cools down and the next key, then
/// the next upstream, is tried; a key answering 401 is parked. All of that
/// only while nothing was sent to the client and the body can be sent again.
/// Returns the response and the upstream that gave it.
pub async fn with_failover<'u>(
    clients: &Clients,
    candidates: &[&'u Upstream],
    req: &HttpRequest,
    endpoint: &str,
    model: Option<&str>,
    body: &mut RequestBody,
    tried: &mut Option<Arc<str>>,
) -> Result<(ClientResponse, &'u Upstream), ApiError> {
    let mut last: Option<ApiError> = None;
    let mut not_served: Option<String> = None;
    for upstream in candidates {
        let Some(pool) = upstream.keys() else {
            continue;
        };
        let client = &clients.for_upstream(upstream);
        for i in pool.order(Instant::now()) {
            let key = pool.key(i);
            *tried = Some(upstream.name.clone());
            let began = Instant::now();
            let sent = send(client, upstream, key, req, endpoint, model, body).await;
            clients.observe(upstream, began.elapsed());
            let res = match sent {
                Ok(res) => res,
                Err(Failure::NotServed(why)) => {
                    not_served = Some(why);
                    break;
                }
                Err(Failure::Send(e)) => {
                    pool.cool_down(i, Instant::now());
                    last = Some(e);
                    if matches!(body, RequestBody::Consumed) {
                        break;
                    }
                    continue;
                }
            };
            let status = res.status();
            if status == StatusCode::UNAUTHORIZED {
                // The upstream refused *our* key; its message may quote it.
                pool.park(i);
                tracing::error!(upstream = %upstream.name, key = %key.hint,
                    "upstream rejected the key; parked until the configuration is reloaded");
                last = Some(ApiError::Upstream(format!(
                    "The upstream `{}` rejected the gateway's API key; tell the gateway's admin.",
                    upstream.name
                )));
            } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                let wait = pool.cool_down(i, Instant::now());
                tracing::warn!(upstream = %upstream.name, key = %key.hint, status = status.as_u16(),
                    cooldown_s = wait.as_secs(), "upstream key failed; trying the next");
                last = Some(ApiError::Upstream(format!(
                    "Every upstream failed; the last, `{}`, answered {}.",
                    upstream.name,
                    status.as_u16()
                )));
            } else {
                pool.succeeded(i);
                return Ok((res, upstream));
            }
            if matches!(body, RequestBody::Consumed) {
                break;
            }
        }
        if matches!(body, RequestBody::Consumed) && last.is_some() {
            break;
        }
    }
    Err(match (last, not_served) {
        (Some(e), _) => e,
        (None, Some(why)) => ApiError::NotServed(why),
        (None, None) => ApiError::Upstream(
            "Every key of the upstreams for this model is disabled (rejected earlier); tell the gateway's admin.".into(),
        ),
    })
}

/// Why an attempt did not give a response.
pub enum Failure {
    /// The upstream does not have this endpoint (Azure's classic API).
    NotServed(String),
    /// Sending failed (connect, timeout, …); another key or upstream may do.
    Send(ApiError),
}

/// One attempt: the client's request to `upstream` with its key `key`;
/// `endpoint` is the path after `/v1`.
pub async fn send(
    client: &awc::Client,
    upstream: &Upstream,
    key: &PoolKey,
    req: &HttpRequest,
    endpoint: &str,
    model: Option<&str>,
    body: &mut RequestBody,
) -> Result<ClientResponse, Failure> {
    let query = strip_token(req.query_string());
    let mut replace_model = None;
    let url = match &upstream.target {
        Target::OpenAi { base_url, .. } => {
            let mut url = String::with_capacity(base_url.len() + endpoint.len() + query.len() + 1);
            url.push_str(base_url);
            url.push_str(endpoint);
            if !query.is_empty() {
                url.push('?');
                url.push_str(&query);
            }
            url
        }
        Target::Azure { azure, .. } => {
            let route = azure
                .route(endpoint, &query, model)
                .map_err(Failure::NotServed)?;
            replace_model = route.model;
            format!("{}{}", azure.endpoint, route.path_and_query)
        }
        // Answered locally by the handler; never sent.
        Target::Echo(_) => return Err(Failure::NotServed("echo answers locally".into())),
    };
    let mut request = client
        .request(req.method().clone(), url.as_str())
        .no_decompress();
    // The client's own key never leaves; accept-encoding is left to us so
    // that the body can be read for accounting.
    let own = [
        header::AUTHORIZATION,
        HeaderName::from_static("api-key"),
        header::ACCEPT_ENCODING,
    ];
    let out = request.headers_mut();
    for (name, value) in end_to_end(req.headers(), &own) {
        out.append(name.clone(), value.clone());
    }
    out.insert(key.header.0.clone(), key.header.1.clone());
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
        RequestBody::Stream(payload) => request.send_stream(payload).await,
        RequestBody::Consumed => {
            return Err(Failure::Send(ApiError::Upstream(
                "The request body was already sent to another upstream.".into(),
            )))
        }
    };
    sent.map_err(|e| Failure::Send(upstream_error(&upstream.name, &key.hint, e)))
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
    fn token_parameter_is_stripped() {
        assert_eq!(strip_token("token=sk-x"), "");
        assert_eq!(strip_token("a=1&token=sk-x&b=2"), "a=1&b=2");
        assert_eq!(strip_token("tokens=5"), "tokens=5");
    }

    #[test]
    fn hop_by_hop_and_listed_headers_are_dropped() {
        let mut from = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("authorization", "Bearer sk-client"),
            ("content-type", "application/json"),
            ("openai-organization", "org"),
        ] {
            from.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let mut names: Vec<_> = end_to_end(&from, &[header::AUTHORIZATION])
            .map(|(k, _)| k.as_str().to_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["content-type", "openai-organization"]);
    }
}
