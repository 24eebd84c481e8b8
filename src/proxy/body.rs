//! Request bodies: held to `limits.max_body_bytes` and
//! `limits.client_body_timeout` however they arrive. A model-aware
//! endpoint's body is read whole (JSON for the probe, a multipart form for
//! its `model` field); any other body streams through to the upstream.

use super::probe::{reference_kind, Probe, Ref};
use crate::catalogue;
use crate::error::ApiError;
use crate::upstream::failover::ClientStream;
pub use crate::upstream::failover::RequestBody;
use actix_web::error::PayloadError;
use actix_web::http::{header, Version};
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::time::{Instant, Sleep};

/// Which limit a body broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    TooLarge(usize),
    TooSlow,
}

impl Trip {
    pub fn error(self) -> ApiError {
        match self {
            Trip::TooLarge(max) => ApiError::TooLarge(max),
            Trip::TooSlow => ApiError::BodyTimeout,
        }
    }
}

/// The client's body as it arrives, cut off with an error once it is
/// larger than allowed or has not arrived by the deadline. Which of the two
/// happened is kept in `tripped`, for the error reply.
pub struct Incoming {
    first: Option<Bytes>,
    payload: web::Payload,
    left: usize,
    max: usize,
    deadline: Instant,
    /// Made only when the body makes the request wait: most bodies arrive
    /// with their headers, and need no timer.
    timer: Option<Pin<Box<Sleep>>>,
    tripped: Rc<Cell<Option<Trip>>>,
}

impl Incoming {
    pub fn new(payload: web::Payload, max: usize, deadline: Instant) -> Incoming {
        Incoming {
            first: None,
            payload,
            left: max,
            max,
            deadline,
            timer: None,
            tripped: Rc::default(),
        }
    }

    /// The body to stream to an upstream, telling which limit stopped it.
    pub fn into_stream(self) -> ClientStream {
        let tripped = self.tripped.clone();
        ClientStream {
            broke: Box::new(move || tripped.get().map(Trip::error)),
            body: Box::pin(self),
        }
    }

    fn trip(&mut self, t: Trip) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.tripped.set(Some(t));
        let e = match t {
            Trip::TooLarge(_) => PayloadError::Overflow,
            Trip::TooSlow => PayloadError::Io(std::io::ErrorKind::TimedOut.into()),
        };
        Poll::Ready(Some(Err(e)))
    }
}

impl Stream for Incoming {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        if this.tripped.get().is_some() {
            return Poll::Ready(None);
        }
        match this.payload.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if chunk.len() > this.left {
                    let max = this.max;
                    return this.trip(Trip::TooLarge(max));
                }
                this.left -= chunk.len();
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    return this.trip(Trip::TooSlow);
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

/// What a request body is, by its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    Json,
    Form,
    /// Another media type (as given), or none.
    Other(Option<String>),
}

/// The media type of a request: type and subtype compared without case,
/// parameters (`; charset=utf-8`) allowed.
pub fn media(req: &HttpRequest) -> Media {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Media::Other(None);
    };
    let bytes = value.as_bytes();
    let essence = &bytes[..memchr::memchr(b';', bytes).unwrap_or(bytes.len())];
    let essence = essence.trim_ascii();
    if essence.eq_ignore_ascii_case(b"application/json") {
        Media::Json
    } else if essence.eq_ignore_ascii_case(b"multipart/form-data") {
        Media::Form
    } else {
        let shown = String::from_utf8_lossy(essence);
        Media::Other(Some(shown.chars().take(100).collect()))
    }
}

fn content_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The body read whole; empty when there is none. HTTP/2 requests may
/// carry a body without a `Content-Length`: it is read all the same.
pub async fn read_whole(req: &HttpRequest, mut body: Incoming) -> Result<Bytes, ApiError> {
    let length = content_length(req);
    if length.is_some_and(|len| len > body.max) {
        return Err(ApiError::TooLarge(body.max));
    }
    let hint = length.unwrap_or(8192).min(body.max);
    let mut buf = BytesMut::with_capacity(hint);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| match body.tripped.get() {
            Some(t) => t.error(),
            None => ApiError::BadRequest(format!("Cannot read the request body: {e}")),
        })?;
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// A body to pass through: none when the request has none, else streamed.
pub async fn pass_through(req: &HttpRequest, mut body: Incoming) -> Result<RequestBody, ApiError> {
    match content_length(req) {
        Some(0) => return Ok(RequestBody::None),
        Some(len) if len > body.max => return Err(ApiError::TooLarge(body.max)),
        Some(_) => return Ok(RequestBody::Stream(body.into_stream())),
        None => {}
    }
    if req.version() < Version::HTTP_2 {
        // HTTP/1: without a length, only a chunked request has a body.
        let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
        return Ok(if chunked {
            RequestBody::Stream(body.into_stream())
        } else {
            RequestBody::None
        });
    }
    // HTTP/2 says nothing before the first frame: look at it.
    match body.next().await {
        None => Ok(RequestBody::None),
        Some(Err(e)) => Err(match body.tripped.get() {
            Some(t) => t.error(),
            None => ApiError::BadRequest(format!("Cannot read the request body: {e}")),
        }),
        Some(Ok(first)) => {
            body.first = Some(first);
            Ok(RequestBody::Stream(body.into_stream()))
        }
    }
}

/// A body read whole and probed, by the catalogue's rule for its endpoint:
/// JSON, a multipart form, or either; any other media type is refused
/// (415) before anything is forwarded, so the reference scan reads every
/// body that goes out.
pub struct Probed {
    pub bytes: Bytes,
    pub media: Media,
    pub probe: Probe,
}

pub async fn read_probed(
    req: &HttpRequest,
    rule: catalogue::Body,
    incoming: Incoming,
) -> Result<Probed, ApiError> {
    let media = media(req);
    let rule = match rule {
        catalogue::Body::Upload if names_upload(req) => {
            // A part of a begun upload: the file's bytes, of whatever
            // type, which no upstream reads as a request.
            let bytes = read_whole(req, incoming).await?;
            return Ok(Probed {
                bytes,
                media,
                probe: Probe::default(),
            });
        }
        // Beginning one: JSON, scanned as any.
        catalogue::Body::Upload => catalogue::Body::Json,
        rule => rule,
    };
    let fits = matches!(
        (&media, rule),
        (_, catalogue::Body::None)
            | (
                Media::Json,
                catalogue::Body::Json | catalogue::Body::JsonOrForm
            )
            | (
                Media::Form,
                catalogue::Body::Form | catalogue::Body::JsonOrForm
            )
    );
    if !fits {
        let takes = match rule {
            catalogue::Body::Form => "a multipart form (Content-Type: multipart/form-data)",
            catalogue::Body::JsonOrForm => {
                "a JSON body (Content-Type: application/json) or a multipart form"
            }
            _ => "a JSON body (Content-Type: application/json)",
        };
        let given = match &media {
            Media::Json => "JSON".to_owned(),
            Media::Form => "a multipart form".to_owned(),
            Media::Other(m) => m
                .as_deref()
                .map_or("of no media type".into(), |m| format!("`{m}`")),
        };
        return Err(ApiError::UnsupportedMedia(format!(
            "{} takes {takes}; this request's body is {given}.",
            req.path()
        )));
    }
    if rule == catalogue::Body::None {
        return Ok(Probed {
            bytes: Bytes::new(),
            media,
            probe: Probe::default(),
        });
    }
    let bytes = read_whole(req, incoming).await?;
    let probe = match media {
        Media::Form => form_probe(req, &bytes).await?,
        _ => Probe::read(&bytes)?,
    };
    Ok(Probed {
        bytes,
        media,
        probe,
    })
}

/// Whether the query names an upload (a part of a begun one).
fn names_upload(req: &HttpRequest) -> bool {
    url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(name, _)| name == "upload_id")
}

/// A body of an opened (`endpoints.allow`) path: JSON and forms are
/// scanned for references like any other; a body of another media type
/// cannot be, and is refused.
pub async fn read_extra(
    req: &HttpRequest,
    endpoint: &str,
    incoming: Incoming,
) -> Result<(RequestBody, Probe), ApiError> {
    let body = pass_through(req, incoming).await?;
    let RequestBody::Stream(stream) = body else {
        return Ok((RequestBody::None, Probe::default()));
    };
    let rule = match media(req) {
        Media::Json => catalogue::Body::Json,
        Media::Form => catalogue::Body::Form,
        Media::Other(given) => {
            return Err(ApiError::UnsupportedMedia(format!(
                "/v1{endpoint} is forwarded with a JSON body or a multipart form only (the gateway checks the objects a body names); this request's body is {}.",
                given.as_deref().map_or("of no media type".into(), |m| format!("`{m}`"))
            )))
        }
    };
    let mut bytes = BytesMut::new();
    let ClientStream { mut body, broke } = stream;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            broke().unwrap_or_else(|| {
                ApiError::BadRequest(format!("Cannot read the request body: {e}"))
            })
        })?;
        bytes.extend_from_slice(&chunk);
    }
    let bytes = bytes.freeze();
    let probe = match rule {
        catalogue::Body::Form => form_probe(req, &bytes).await?,
        _ => Probe::read(&bytes)?,
    };
    Ok((RequestBody::Buffered(bytes), probe))
}

/// The longest text field of a form that is read (a model, an id, a
/// format).
const MAX_FORM_TEXT: usize = 1024;

/// What a multipart form says (audio, image edits, file uploads): its
/// `model` (named once), `n`, `response_format`, every field that names an
/// account object (also nested, as SDKs write `tools[0][file_ids][]`), and
/// the audio it carries. Form fields are what the upstream reads, so a
/// form that does not parse is refused.
pub async fn form_probe(req: &HttpRequest, form: &Bytes) -> Result<Probe, ApiError> {
    let bad = |e: String| ApiError::BadRequest(format!("The multipart body is not valid: {e}"));
    let source = futures_util::stream::iter([Ok::<_, PayloadError>(form.clone())]);
    let mut fields = actix_multipart::Multipart::new(req.headers(), source);
    let mut probe = Probe {
        replies: 1,
        ..Probe::default()
    };
    let mut fields_seen = 0usize;
    while let Some(field) = fields.next().await {
        let mut field = field.map_err(|e| bad(e.to_string()))?;
        fields_seen += 1;
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field
            .content_disposition()
            .is_some_and(|d| d.get_filename().is_some());
        if is_file {
            let mut head = Vec::new();
            let mut size = 0u64;
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|e| bad(e.to_string()))?;
                if head.len() < 64 {
                    head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len())]);
                }
                size += chunk.len() as u64;
            }
            if name == "file" {
                probe.audio = Some(crate::usage::audio::Clip::of(&head, size));
            }
            continue;
        }
        let mut value = BytesMut::new();
        while let Some(chunk) = field.next().await {
            value.extend_from_slice(&chunk.map_err(|e| bad(e.to_string()))?);
            if value.len() > MAX_FORM_TEXT {
                return Err(ApiError::BadRequest(format!(
                    "The form's `{}` field is longer than {MAX_FORM_TEXT} bytes.",
                    name.chars().take(64).collect::<String>()
                )));
            }
        }
        let text = String::from_utf8(value.to_vec()).map_err(|_| {
            ApiError::BadRequest(format!(
                "The form's `{}` field is not UTF-8.",
                name.chars().take(64).collect::<String>()
            ))
        })?;
        let text = text.trim();
        match name.as_str() {
            "model" => {
                if probe.model.is_some() {
                    return Err(ApiError::BadRequest(
                        "The form names `model` more than once.".into(),
                    ));
                }
                probe.model = Some(text.to_owned());
            }
            "n" => {
                probe.replies = text
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        ApiError::BadRequest("`n` must be a non-negative integer.".into())
                    })?
                    .max(1);
            }
            "response_format" => probe.response_format = Some(text.to_owned()),
            _ => {
                if let Some(kind) = form_reference(&name) {
                    probe.refs.push(Ref {
                        kind,
                        id: text.to_owned(),
                    });
                }
            }
        }
    }
    if fields_seen == 0 && !form.is_empty() {
        return Err(bad("it holds no field".into()));
    }
    Ok(probe)
}

/// The kind of account object a form field names: its name's last part
/// that is not an index (`tools[0][vector_store_ids][]`), unless it sits
/// under `metadata`.
fn form_reference(name: &str) -> Option<crate::objects::ObjectKind> {
    let parts: Vec<&str> = name.split(['[', ']']).filter(|p| !p.is_empty()).collect();
    if parts.contains(&"metadata") {
        return None;
    }
    let last = parts
        .iter()
        .rev()
        .find(|p| !p.bytes().all(|b| b.is_ascii_digit()))?;
    reference_kind(last)
}

/// The request body with `stream_options.include_usage` set, so that the
/// upstream reports a stream's usage in a last chunk.
pub fn with_include_usage(body: &Bytes) -> Option<Bytes> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn added(body: &str) -> Value {
        let out = with_include_usage(&Bytes::from(body.to_owned())).expect("changed");
        serde_json::from_slice(&out).expect("still JSON")
    }

    #[test]
    fn form_fields_name_objects_however_nested() {
        use crate::objects::ObjectKind::*;
        assert_eq!(form_reference("file_id"), Some(Files));
        assert_eq!(form_reference("file_ids[]"), Some(Files));
        assert_eq!(
            form_reference("tools[0][vector_store_ids][1]"),
            Some(VectorStores)
        );
        assert_eq!(form_reference("metadata[file_id]"), None);
        assert_eq!(form_reference("purpose"), None);
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
