//! Forwarding to an OpenAI-compatible upstream with awc: the client's key is
//! swapped for the upstream's, hop-by-hop headers are dropped, and bodies
//! stream in both directions.

use crate::error::ApiError;
use crate::upstream::OpenAi;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest};
use awc::error::{ConnectError, SendRequestError};
use awc::ClientResponse;
use bytes::Bytes;

/// The request body as the handler read it.
pub enum RequestBody {
    None,
    /// Read whole to look at `model` (JSON).
    Buffered(Bytes),
    /// Passed through as it arrives (multipart uploads and the like).
    Stream(web::Payload),
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

/// Sends the client's request to `target`; `endpoint` is the path after `/v1`.
pub async fn send(
    client: &awc::Client,
    upstream_name: &str,
    target: &OpenAi,
    req: &HttpRequest,
    endpoint: &str,
    body: RequestBody,
) -> Result<ClientResponse, ApiError> {
    let (method, headers) = (req.method(), req.headers());
    let query = strip_token(req.query_string());
    let mut url = String::with_capacity(target.base_url.len() + endpoint.len() + query.len() + 1);
    url.push_str(&target.base_url);
    url.push_str(endpoint);
    if !query.is_empty() {
        url.push('?');
        url.push_str(&query);
    }
    let mut request = client.request(method.clone(), url.as_str()).no_decompress();
    // The client's own key never leaves; accept-encoding is left to us so
    // that the body can be read for accounting.
    let own = [
        header::AUTHORIZATION,
        HeaderName::from_static("api-key"),
        header::ACCEPT_ENCODING,
    ];
    let out = request.headers_mut();
    for (name, value) in end_to_end(headers, &own) {
        out.append(name.clone(), value.clone());
    }
    request
        .headers_mut()
        .insert(header::AUTHORIZATION, target.key().clone());
    let sent = match body {
        RequestBody::None => request.send().await,
        RequestBody::Buffered(bytes) => request.send_body(bytes).await,
        RequestBody::Stream(payload) => request.send_stream(payload).await,
    };
    sent.map_err(|e| upstream_error(upstream_name, e))
}

fn upstream_error(name: &str, e: SendRequestError) -> ApiError {
    tracing::warn!(upstream = name, "upstream request failed: {e}");
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
