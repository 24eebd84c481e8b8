//! Errors the gateway answers with, in OpenAI's shape so clients show them:
//! `{"error": {"message", "type", "code"}}`.
//!
//! Rules: inside the request path, a typed `ApiError`; at the CLI edge,
//! `anyhow` with context; database code returns Diesel's `QueryResult`.
//! No message ever carries a key, the admin token or a message body.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidKey(&'static str),
    #[error("This API key expired on {0}.")]
    KeyExpired(String),
    #[error("This API key belongs to a disabled user.")]
    UserDisabled,
    #[error("You are not allowed to use the model `{0}`.")]
    ModelNotAllowed(String),
    /// A user with a USD budget asked for a model without a price.
    #[error("The model `{0}` has no price, and your key spends from a USD budget: ask the gateway's admin to price it.")]
    ModelUnpriced(String),
    /// A user with a USD budget asked for a surcharge without a price.
    #[error("The request asks for {what}, which has no price for the model `{model}`, and your key spends from a USD budget: leave it out or ask the gateway's admin to price it.")]
    SurchargeUnpriced { model: String, what: &'static str },
    #[error("{0}")]
    BadRequest(String),
    #[error("The request body is larger than {0} bytes.")]
    TooLarge(usize),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("The request body did not arrive in time.")]
    BodyTimeout,
    #[error("{0}")]
    UnknownEndpoint(String),
    #[error("{0}")]
    EndpointNotAllowed(String),
    /// Another user's account object (or none at all).
    #[error("{0}")]
    NotFound(String),
    /// A parallel limit (the user's or their team's) is reached.
    #[error("{0}")]
    Parallel(String),
    #[error("{0}")]
    Quota(String),
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    /// Too many failed key attempts from the client's address.
    #[error("Too many failed attempts from your address; try again in {0} s.")]
    Throttled(u64),
    #[error("{0}")]
    ModelNotFound(String),
    /// An endpoint the upstream does not have (Azure's classic API).
    #[error("{0}")]
    NotServed(String),
    #[error("{0}")]
    Upstream(String),
    #[error("The upstream `{0}` did not answer in time.")]
    UpstreamTimeout(String),
    #[error("{0}")]
    Unavailable(String),
    /// A change made with the session cookie but without the page's token.
    #[error("This change needs the page's CSRF token (header x-csrf-token): reload the page and try again.")]
    Csrf,
    #[error("Keys are handed out by the gateway's admin here (keys.self_service is off).")]
    SelfServiceDisabled,
}

pub const NO_KEY: &str = "You didn't provide an API key. Pass it as `Authorization: Bearer KEY`, `api-key: KEY`, `x-api-key: KEY`, `x-goog-api-key: KEY` or `?token=KEY`.";
pub const UNKNOWN_KEY: &str = "Incorrect API key provided.";

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidKey(_) => "invalid_api_key",
            ApiError::KeyExpired(_) => "key_expired",
            ApiError::UserDisabled => "user_disabled",
            ApiError::ModelNotAllowed(_)
            | ApiError::ModelUnpriced(_)
            | ApiError::SurchargeUnpriced { .. } => "model_not_allowed",
            ApiError::BadRequest(_) => "invalid_request_error",
            ApiError::TooLarge(_) => "request_too_large",
            ApiError::UnsupportedMedia(_) => "unsupported_media_type",
            ApiError::BodyTimeout => "request_timeout",
            ApiError::UnknownEndpoint(_) => "unknown_endpoint",
            ApiError::EndpointNotAllowed(_) => "endpoint_not_allowed",
            ApiError::NotFound(_) => "not_found",
            ApiError::Parallel(_) => "rate_limit_exceeded",
            ApiError::Quota(_) => "insufficient_quota",
            ApiError::RateLimited { .. } | ApiError::Throttled(_) => "rate_limit_exceeded",
            ApiError::ModelNotFound(_) => "model_not_found",
            ApiError::NotServed(_) => "unknown_url",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::UpstreamTimeout(_) => "upstream_timeout",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Csrf => "csrf_failed",
            ApiError::SelfServiceDisabled => "self_service_disabled",
        }
    }

    /// OpenAI's `type` field.
    fn kind(&self) -> &'static str {
        match self {
            ApiError::InvalidKey(_) | ApiError::KeyExpired(_) | ApiError::UserDisabled => {
                "invalid_request_error"
            }
            ApiError::ModelNotAllowed(_)
            | ApiError::ModelUnpriced(_)
            | ApiError::SurchargeUnpriced { .. } => "permission_error",
            // OpenAI's own types. Clients read them to tell a spent quota
            // (permanent: async-openai's retry layer gives up on it) from a
            // requests-per-minute limit (retried after `Retry-After`).
            ApiError::Quota(_) => "insufficient_quota",
            ApiError::RateLimited { .. } | ApiError::Parallel(_) | ApiError::Throttled(_) => {
                "requests"
            }
            ApiError::EndpointNotAllowed(_) | ApiError::Csrf | ApiError::SelfServiceDisabled => {
                "permission_error"
            }
            ApiError::BadRequest(_)
            | ApiError::TooLarge(_)
            | ApiError::UnsupportedMedia(_)
            | ApiError::BodyTimeout
            | ApiError::UnknownEndpoint(_)
            | ApiError::NotFound(_)
            | ApiError::ModelNotFound(_)
            | ApiError::NotServed(_) => "invalid_request_error",
            ApiError::Upstream(_) | ApiError::UpstreamTimeout(_) | ApiError::Unavailable(_) => {
                "api_error"
            }
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidKey(_) | ApiError::KeyExpired(_) | ApiError::UserDisabled => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::ModelNotAllowed(_)
            | ApiError::ModelUnpriced(_)
            | ApiError::SurchargeUnpriced { .. }
            | ApiError::EndpointNotAllowed(_)
            | ApiError::Csrf
            | ApiError::SelfServiceDisabled => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Quota(_)
            | ApiError::RateLimited { .. }
            | ApiError::Parallel(_)
            | ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::ModelNotFound(_)
            | ApiError::NotServed(_)
            | ApiError::UnknownEndpoint(_)
            | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = error_body(
            self.status_code(),
            &self.to_string(),
            self.kind(),
            self.code(),
        );
        self.add_headers(&mut res);
        res
    }
}

impl ApiError {
    /// The same refusal in Anthropic's shape, `{"type": "error", "error":
    /// {"type", "message"}}`, for `/v1/messages`: Anthropic's SDKs raise
    /// their own error class by it and Claude Code prints the message.
    pub fn anthropic_response(&self) -> HttpResponse {
        let status = self.status_code();
        let kind = match status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            500.. => "api_error",
            _ => "invalid_request_error",
        };
        let body = serde_json::json!({
            "type": "error",
            "error": {"type": kind, "message": self.to_string()},
        });
        let mut res = HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(body.to_string());
        self.add_headers(&mut res);
        res
    }

    /// Google's shape, for Gemini's face: `{"error": {"code", "message",
    /// "status", "details"}}`, the gateway's code as the `ErrorInfo`
    /// reason (`insufficient_quota`, `model_not_allowed`, …).
    pub fn google_response(&self) -> HttpResponse {
        let status = self.status_code();
        let name = match status.as_u16() {
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            408 | 504 => "DEADLINE_EXCEEDED",
            429 => "RESOURCE_EXHAUSTED",
            502 | 503 => "UNAVAILABLE",
            500.. => "INTERNAL",
            _ => "INVALID_ARGUMENT",
        };
        let body = serde_json::json!({"error": {
            "code": status.as_u16(),
            "message": self.to_string(),
            "status": name,
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": self.code(),
                "domain": "chatgate",
            }],
        }});
        let mut res = HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(body.to_string());
        self.add_headers(&mut res);
        res
    }

    /// The response in `face`'s API's shape.
    pub fn response_for(&self, face: crate::catalogue::Face) -> HttpResponse {
        use crate::catalogue::Face;
        match face {
            Face::OpenAi => self.error_response(),
            Face::Anthropic => self.anthropic_response(),
            Face::Gemini => self.google_response(),
        }
    }

    fn add_headers(&self, res: &mut HttpResponse) {
        add_headers(self, res.headers_mut());
    }
}

/// `Retry-After` where waiting helps, and `x-should-retry: false` on every
/// refusal a retry cannot fix (401, 403, 404, a spent quota or budget): the
/// OpenAI, Anthropic and Google SDKs, and the agents built on them, then
/// stop at once instead of retrying for minutes.
fn add_headers(e: &ApiError, headers: &mut header::HeaderMap) {
    match e {
        ApiError::RateLimited { retry_after, .. } | ApiError::Throttled(retry_after) => {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from(*retry_after));
        }
        // One of the user's own requests ends soon.
        ApiError::Parallel(_) => {
            headers.insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        _ => {}
    }
    let permanent =
        matches!(e, ApiError::Quota(_)) || matches!(e.status_code().as_u16(), 401 | 403 | 404);
    if permanent {
        headers.insert(
            header::HeaderName::from_static("x-should-retry"),
            header::HeaderValue::from_static("false"),
        );
    }
}

/// OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`:
/// what the proxy, the admin API and the echo upstream answer with, and
/// what an upstream's error is read as.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetails,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ErrorDetails {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>, kind: &str, code: Option<&str>) -> ErrorBody {
        ErrorBody {
            error: ErrorDetails {
                message: message.into(),
                kind: kind.to_owned(),
                param: None,
                code: code.map(str::to_owned),
            },
        }
    }

    /// Reads an upstream's error reply; anything else reads as empty.
    pub fn parse(body: &[u8]) -> ErrorBody {
        serde_json::from_slice(body).unwrap_or_default()
    }

    pub fn with_param(mut self, param: &str) -> ErrorBody {
        self.error.param = Some(param.to_owned());
        self
    }

    pub fn to_bytes(&self) -> bytes::Bytes {
        serde_json::to_vec(self)
            .expect("an error body serializes")
            .into()
    }

    pub fn response(&self, status: StatusCode) -> HttpResponse {
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(self.to_bytes())
    }
}

/// An OpenAI-shaped error response.
pub fn error_body(status: StatusCode, message: &str, kind: &str, code: &str) -> HttpResponse {
    ErrorBody::new(message, kind, Some(code)).response(status)
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> ApiError {
        tracing::error!("{e}");
        ApiError::Unavailable("The gateway's database is not reachable.".into())
    }
}

impl From<crate::limits::Refusal> for ApiError {
    fn from(r: crate::limits::Refusal) -> ApiError {
        match r {
            crate::limits::Refusal::Quota(m) => ApiError::Quota(m),
            crate::limits::Refusal::Rate {
                message,
                retry_after,
            } => ApiError::RateLimited {
                message,
                retry_after,
            },
            crate::limits::Refusal::Share(short) => short.refused(1),
        }
    }
}

impl crate::limits::Shortfall {
    /// The refusal when no share is to be had: the limit is used up
    /// across the instances.
    pub fn refused(&self, retry_after: u64) -> ApiError {
        use crate::limits::ShareKind;
        match self.kind {
            ShareKind::Rpm => self.rate_refusal(retry_after).into(),
            ShareKind::Parallel => ApiError::parallel(self.limit, self.team.as_deref()),
            ShareKind::Requests | ShareKind::Tokens | ShareKind::Usd => {
                self.quota_refusal(crate::db::now()).into()
            }
        }
    }
}

impl ApiError {
    /// A parallel limit (the caller's, or their team's) is full.
    pub fn parallel(limit: i64, team: Option<&str>) -> ApiError {
        ApiError::Parallel(match team {
            None => format!(
                "You have {limit} requests running, your parallel limit; wait for one to finish."
            ),
            Some(t) => format!(
                "Your team `{t}` has {limit} requests running, its parallel limit; wait for one to finish."
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal keeps its status in Anthropic's shape, with the type
    /// Anthropic's SDKs map to their error classes, and its headers.
    #[actix_web::test]
    async fn each_refusal_in_anthropics_shape() {
        let quota = ApiError::Quota("spent".into());
        for (e, status, kind) in [
            (ApiError::InvalidKey(NO_KEY), 401, "authentication_error"),
            (ApiError::UserDisabled, 401, "authentication_error"),
            (
                ApiError::ModelNotAllowed("m".into()),
                403,
                "permission_error",
            ),
            (ApiError::ModelUnpriced("m".into()), 403, "permission_error"),
            (
                ApiError::BadRequest("x".into()),
                400,
                "invalid_request_error",
            ),
            (ApiError::BodyTimeout, 408, "invalid_request_error"),
            (ApiError::TooLarge(1), 413, "request_too_large"),
            (
                ApiError::UnsupportedMedia("x".into()),
                415,
                "invalid_request_error",
            ),
            (ApiError::ModelNotFound("x".into()), 404, "not_found_error"),
            (ApiError::Parallel("x".into()), 429, "rate_limit_error"),
            (ApiError::Upstream("x".into()), 502, "api_error"),
            (ApiError::UpstreamTimeout("u".into()), 504, "api_error"),
            (ApiError::Unavailable("db".into()), 503, "api_error"),
        ] {
            let res = e.anthropic_response();
            assert_eq!(res.status().as_u16(), status, "{e:?}");
            let body = actix_web::body::to_bytes(res.into_body()).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                (v["type"].as_str(), v["error"]["type"].as_str()),
                (Some("error"), Some(kind))
            );
            assert_eq!(v["error"]["message"], e.to_string());
        }
        let res = quota.anthropic_response();
        assert_eq!(res.headers().get("x-should-retry").unwrap(), "false");
        let res = ApiError::RateLimited {
            message: "slow".into(),
            retry_after: 7,
        }
        .anthropic_response();
        assert_eq!(res.headers().get("retry-after").unwrap(), "7");
    }
}
