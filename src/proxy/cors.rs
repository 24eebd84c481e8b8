//! CORS for browser clients (NextChat in the browser, extensions): preflights
//! are answered without a key; responses carry `Access-Control-Allow-Origin`.
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

/// Names given explicitly: `*` does not cover `Authorization` (Fetch standard).
const ALLOWED_HEADERS: &str = "Authorization, api-key, Content-Type";
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
    let Some(cors) = req.app_data::<web::Data<Cors>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_left_body());
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
        return Ok(req.into_response(res.finish()).map_into_right_body());
    }
    let mut res = next.call(req).await?;
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
