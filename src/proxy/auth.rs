//! Who is calling: the client key from the request, checked against the
//! in-memory key table.

use crate::error::{ApiError, NO_KEY, UNKNOWN_KEY};
use crate::keytable::{Caller, KeyTable};
use crate::state::Gateway;
use crate::users::rfc3339;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::HttpRequest;
use std::sync::Arc;
use std::time::Instant;

/// The key as `Authorization: Bearer KEY`, `api-key: KEY` (Azure's
/// clients), `x-api-key: KEY` (Anthropic's SDKs), `x-goog-api-key: KEY`
/// (Google's), `?token=KEY` or `?key=KEY` (Google's too).
pub fn presented_key<'a>(headers: &'a HeaderMap, query: &'a str) -> Option<&'a str> {
    if let Some(v) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        let key = match v.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ if v.eq_ignore_ascii_case("bearer") => "",
            _ => v,
        };
        if !key.is_empty() {
            return Some(key);
        }
    }
    for name in ["api-key", "x-api-key", GOOGLE_KEY_HEADER] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            if !v.trim().is_empty() {
                return Some(v.trim());
            }
        }
    }
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token=").or(pair.strip_prefix("key=")))
        .filter(|k| !k.is_empty())
}

const GOOGLE_KEY_HEADER: &str = "x-goog-api-key";

/// Whether the request carries its key the Google way (`x-goog-api-key`
/// or `?key=`): such a client reads Google's shapes.
pub fn google_style(headers: &HeaderMap, query: &str) -> bool {
    headers.contains_key(GOOGLE_KEY_HEADER) || query.split('&').any(|p| p.starts_with("key="))
}

/// `authenticate`, with failed attempts counted per client address: an
/// address with too many is refused (429) before its key is looked at.
pub fn authenticate_request(gw: &Gateway, req: &HttpRequest) -> Result<Arc<Caller>, ApiError> {
    let now = Instant::now();
    let addr = crate::throttle::client_address(req, &gw.live().trusted);
    if let Some(addr) = addr {
        gw.throttle.check(addr, now).map_err(ApiError::Throttled)?;
    }
    let caller = authenticate(&gw.keys, req.headers(), req.query_string());
    if let (Err(ApiError::InvalidKey(UNKNOWN_KEY)), Some(addr)) = (&caller, addr) {
        gw.throttle.failed(addr, now);
    }
    caller
}

pub fn authenticate(
    keys: &KeyTable,
    headers: &HeaderMap,
    query: &str,
) -> Result<Arc<Caller>, ApiError> {
    let key = presented_key(headers, query).ok_or(ApiError::InvalidKey(NO_KEY))?;
    let caller = keys
        .lookup(key.as_bytes())
        .ok_or(ApiError::InvalidKey(UNKNOWN_KEY))?;
    if caller.user.disabled {
        return Err(ApiError::UserDisabled);
    }
    if let Some(expiry) = caller.expires_at() {
        if expiry < chrono::Utc::now().naive_utc() {
            return Err(ApiError::KeyExpired(rfc3339(expiry)));
        }
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn every_key_form() {
        let h = headers(&[("authorization", "Bearer sk-a")]);
        assert_eq!(presented_key(&h, ""), Some("sk-a"));
        let h = headers(&[("api-key", "sk-b")]);
        assert_eq!(presented_key(&h, ""), Some("sk-b"));
        let h = headers(&[("x-api-key", "sk-d")]);
        assert_eq!(presented_key(&h, ""), Some("sk-d"));
        assert_eq!(
            presented_key(&HeaderMap::new(), "x=1&token=sk-c"),
            Some("sk-c")
        );
        assert_eq!(presented_key(&HeaderMap::new(), "x=1&token="), None);
        let h = headers(&[("x-goog-api-key", "sk-g")]);
        assert_eq!(presented_key(&h, ""), Some("sk-g"));
        assert!(google_style(&h, ""));
        assert_eq!(
            presented_key(&HeaderMap::new(), "alt=sse&key=sk-q"),
            Some("sk-q")
        );
        assert!(google_style(&HeaderMap::new(), "alt=sse&key=sk-q"));
        assert!(!google_style(&HeaderMap::new(), "token=sk-c&keys=1"));
        assert_eq!(
            presented_key(&headers(&[("authorization", "Bearer ")]), ""),
            None
        );
    }
}
