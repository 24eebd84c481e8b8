//! What headers cross the gateway, each way, in one table.
//!
//! Dropped both ways: hop-by-hop headers (RFC 9110 §7.6.1, and those a
//! `Connection` header names) and the framing the gateway sets itself.
//! Towards the upstream: the client's own key, and whatever would change
//! what the upstream account does (cookies, organization and project: the
//! operator sets those per upstream). Towards the client: what describes
//! the operator's account (its rate limits among it) or sets state.

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → upstream.
    Request,
    /// Upstream → client.
    Response,
}

/// Whether `name` stops at the gateway when going `way`.
fn dropped(name: &HeaderName, way: Direction) -> bool {
    let both = matches!(
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
    );
    both || match way {
        Direction::Request => matches!(
            name.as_str(),
            // The client's key, in each of the places clients put it.
            "authorization" | "api-key" | "x-api-key" | "x-goog-api-key"
            // The reply is read for accounting: no encoding the gateway
            // did not choose.
            | "accept-encoding"
            | "cookie"
            | "openai-organization"
            | "openai-project"
            // Google: bill another project, or act as another principal.
            | "x-goog-user-project"
            | "x-goog-request-params"
        ),
        Direction::Response => {
            matches!(
                name.as_str(),
                "set-cookie" | "openai-organization" | "openai-project"
            )
            // The shared account's limits are not the caller's (the
            // gateway sends the caller's own).
            || name.as_str().starts_with("x-ratelimit-")
                || name.as_str().starts_with("anthropic-ratelimit-")
        }
    }
}

/// Headers named in `Connection:` are hop-by-hop too.
fn connection_listed(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(name.as_str()))
}

/// The headers of `from` that go on `way`.
pub fn passed(
    from: &HeaderMap,
    way: Direction,
) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> + '_ {
    let listed = from.contains_key(header::CONNECTION);
    from.iter()
        .filter(move |(name, _)| !(dropped(name, way) || listed && connection_listed(from, name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap, way: Direction) -> Vec<String> {
        let mut n: Vec<_> = passed(h, way).map(|(k, _)| k.to_string()).collect();
        n.sort();
        n
    }

    #[test]
    fn the_table_each_way() {
        let h = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("authorization", "Bearer sk-client"),
            ("api-key", "sk-client"),
            ("x-api-key", "sk-client"),
            ("x-goog-api-key", "sk-client"),
            ("x-goog-user-project", "someone-elses"),
            ("cookie", "session=1"),
            ("openai-organization", "org-bogus"),
            ("openai-project", "proj_x"),
            ("set-cookie", "a=1"),
            ("content-type", "application/json"),
            ("openai-beta", "assistants=v2"),
            ("x-request-id", "req_1"),
        ]);
        assert_eq!(
            names(&h, Direction::Request),
            ["content-type", "openai-beta", "set-cookie", "x-request-id"]
        );
        assert_eq!(
            names(&h, Direction::Response),
            [
                "api-key",
                "authorization",
                "content-type",
                "cookie",
                "openai-beta",
                "x-api-key",
                "x-goog-api-key",
                "x-goog-user-project",
                "x-request-id"
            ]
        );
    }

    proptest! {
        /// Whatever the headers, no client key, cookie or account header
        /// ever goes upstream, and no account header comes back.
        #[test]
        fn nothing_sensitive_crosses(
            names in prop::collection::vec(
                prop::sample::select(vec![
                    "authorization", "Api-Key", "X-API-KEY", "X-Goog-Api-Key", "cookie", "OpenAI-Organization",
                    "openai-project", "connection", "x-other", "content-type", "set-cookie",
                ]),
                0..12,
            ),
        ) {
            let mut h = HeaderMap::new();
            for n in &names {
                h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_static("x-other"));
            }
            for (k, _) in passed(&h, Direction::Request) {
                prop_assert!(!matches!(k.as_str(), "authorization" | "api-key" | "x-api-key" | "x-goog-api-key" | "cookie" | "openai-organization" | "openai-project"));
                prop_assert!(k.as_str() != "x-other" || !h.contains_key("connection"));
            }
            for (k, _) in passed(&h, Direction::Response) {
                prop_assert!(!matches!(k.as_str(), "set-cookie" | "openai-organization" | "openai-project"));
            }
        }
    }
}
