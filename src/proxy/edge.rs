//! What every reply passes on its way out: CORS for browser clients
//! (NextChat in the browser, extensions; preflights are answered without a
//! key, responses carry `Access-Control-Allow-Origin`; never for the admin
//! API), an `x-request-id` on every reply that has none yet, and
//! `X-Content-Type-Options: nosniff` on every reply, with a proxied reply
//! that a browser would render as a page sent as an attachment: the web
//! app keeps keys on this origin, so no upstream's content may run here.
//!
//! Hand-written rather than actix-cors: that crate refuses preflights asking
//! for headers outside its list, and the official SDKs send `x-stainless-*`
//! headers from the browser; here requested headers are reflected.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpResponse};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

pub const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// A request id of the gateway's own: `req_` and 32 hex digits, a random
/// prefix per process and a counter, so ids differ across instances and
/// restarts without a random draw per request.
pub fn request_id() -> HeaderValue {
    static PREFIX: LazyLock<u64> = LazyLock::new(rand::random);
    static COUNT: AtomicU64 = AtomicU64::new(0);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = *b"req_00000000000000000000000000000000";
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    for (i, word) in [*PREFIX, n].into_iter().enumerate() {
        for k in 0..16 {
            id[4 + i * 16 + k] = HEX[((word >> (60 - 4 * k)) & 0xf) as usize];
        }
    }
    HeaderValue::from_bytes(&id).expect("hex is a header value")
}

/// Names given explicitly: `*` does not cover `Authorization` (Fetch standard).
const ALLOWED_HEADERS: &str =
    "Authorization, api-key, x-api-key, anthropic-version, anthropic-beta, Content-Type";
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

pub struct Cors {
    any: bool,
    origins: Vec<String>,
}

impl Cors {
    pub fn new(origins: &[String]) -> Cors {
        Cors {
            any: origins.iter().any(|o| o == "*"),
            origins: origins.to_vec(),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        if self.any {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = origin?;
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o == text)
            .then(|| origin.clone())
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let admin = req.path() == "/admin" || req.path().starts_with("/admin/");
    let cors = req
        .app_data::<web::Data<Cors>>()
        .cloned()
        .filter(|_| !admin);
    let Some(cors) = cors else {
        let mut res = next.call(req).await?;
        with_request_id(res.headers_mut());
        no_sniffing(res.headers_mut(), false);
        return Ok(res.map_into_left_body());
    };
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allow = cors.allow_origin(origin.as_ref());
    let is_preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight {
        let mut res = HttpResponse::NoContent();
        if let Some(allow) = &allow {
            let requested = req
                .headers()
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.trim().is_empty());
            let headers = match requested {
                Some(r) => format!("{ALLOWED_HEADERS}, {r}"),
                None => ALLOWED_HEADERS.to_owned(),
            };
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, allow.clone()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, headers))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"));
        }
        if !cors.any {
            res.insert_header((header::VARY, "Origin"));
        }
        let mut res = res.finish();
        with_request_id(res.headers_mut());
        return Ok(req.into_response(res).map_into_right_body());
    }
    let proxied = is_proxied(req.path());
    let mut res = next.call(req).await?;
    if !proxied {
        with_request_id(res.headers_mut());
    }
    no_sniffing(res.headers_mut(), proxied);
    if let Some(allow) = allow {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("*"),
        );
        if !cors.any {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    Ok(res.map_into_left_body())
}

/// Whether the proxy answers `path` (it sets the reply's id itself, the one
/// its log line names): `/v1/…` but the gateway's own account endpoints.
fn is_proxied(path: &str) -> bool {
    path.strip_prefix("/v1/").is_some_and(|rest| {
        !(rest == "me" || rest.starts_with("me/") || rest.starts_with("dashboard/"))
    })
}

/// `nosniff` on every reply; a proxied reply of a type a browser renders
/// as a page (HTML, SVG, XML) goes as an attachment, never rendered on the
/// web app's origin (where `?token=` makes a plain link authenticate).
fn no_sniffing(headers: &mut header::HeaderMap, proxied: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !proxied {
        return;
    }
    let renders = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|t| {
            t == "text/html"
                || t == "image/svg+xml"
                || t == "application/xhtml+xml"
                || t == "text/xml"
                || t == "application/xml"
                || t.ends_with("+xml")
        });
    if renders {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
}

/// The proxy sets the upstream's id (or its own, logged with the request);
/// every other reply gets one here.
fn with_request_id(headers: &mut header::HeaderMap) {
    if !headers.contains_key(X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID, request_id());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_distinct_and_shaped_like_openais() {
        let (a, b) = (super::request_id(), super::request_id());
        assert_ne!(a, b);
        let a = a.to_str().unwrap();
        assert!(a.starts_with("req_") && a.len() == 36, "{a}");
        assert!(a[4..].bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
