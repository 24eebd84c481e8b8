//! What came back, turned into the client's reply: the upstream's status
//! and headers (by the table in `headers`), its body streamed through the
//! meter under the whole-reply deadline, or an answer of the gateway's own.

use super::edge;
use super::owned;
use crate::error::ApiError;
use crate::state::Gateway;
use crate::upstream::echo;
use crate::upstream::failover::Answer;
use crate::upstream::headers::{self, Direction};
use crate::usage::meter::{is_event_stream, Accounting, Metered, Pending, Watch};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use bytes::Bytes;

/// The reply's `x-request-id`: the upstream's if it sent one, else ours.
pub fn with_id(mut res: HttpResponse, id: HeaderValue) -> HttpResponse {
    if !res.headers().contains_key(edge::X_REQUEST_ID) {
        res.headers_mut().insert(edge::X_REQUEST_ID, id);
    }
    res
}

/// An upstream's request id, if it is one worth keeping.
fn upstream_id(headers: &HeaderMap) -> Option<Box<str>> {
    let id = headers.get(edge::X_REQUEST_ID)?.to_str().ok()?;
    (!id.is_empty() && id.len() <= 128).then(|| Box::from(id))
}

/// What came back, before it is metered and sent.
pub enum Reply {
    /// An upstream's answer; a reply that creates an account object is
    /// held until its creator is recorded (`owned::Claiming`).
    Upstream(Answer, Accounting, Option<owned::Claim>),
    Local(echo::LocalReply),
}

impl Reply {
    pub fn into_response(self, mut pending: Pending, gw: &Gateway) -> HttpResponse {
        let pace = std::mem::take(&mut pending.pace);
        let mut res = self.respond(pending, gw);
        let headers = res.headers_mut();
        for (name, value) in pace {
            headers.insert(name, value);
        }
        res
    }

    fn respond(self, mut pending: Pending, gw: &Gateway) -> HttpResponse {
        match self {
            Reply::Upstream(Answer::Live(res), accounting, claim) => {
                let status = res.status();
                let watch = if pending.counts() {
                    Watch::for_reply(&accounting, status, res.headers())
                } else {
                    Watch::Nothing
                };
                pending.record.status = status.as_u16();
                if let Some(id) = upstream_id(res.headers()) {
                    pending.record.request_id = Some(id);
                }
                let mut out = HttpResponse::build(status);
                for (name, value) in headers::passed(res.headers(), Direction::Response) {
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
                // A stream whose usage chunk is left out is shorter than
                // the upstream said: it goes out chunked.
                if let (Some(len), false) = (length, watch.changes_body()) {
                    out.no_chunking(len);
                }
                let deadline = tokio::time::Instant::from_std(pending_deadline(&pending, gw));
                match claim {
                    Some(claim) if status.is_success() => {
                        pending.created = Some(claim.created.clone());
                        out.streaming(
                            Metered::new(
                                owned::Claiming::new(res, claim),
                                pending,
                                watch,
                                accounting,
                            )
                            .until(deadline),
                        )
                    }
                    _ => {
                        out.streaming(Metered::new(res, pending, watch, accounting).until(deadline))
                    }
                }
            }
            Reply::Upstream(
                Answer::Read {
                    status,
                    headers: from,
                    body,
                },
                _,
                _,
            ) => {
                pending.record.status = status.as_u16();
                if let Some(id) = upstream_id(&from) {
                    pending.record.request_id = Some(id);
                }
                let mut out = HttpResponse::build(status);
                for (name, value) in headers::passed(&from, Direction::Response) {
                    out.append_header((name.clone(), value.clone()));
                }
                out.no_chunking(body.len() as u64);
                out.streaming(Metered::new(
                    once(body),
                    pending,
                    Watch::Nothing,
                    Accounting::default(),
                ))
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
                        out.streaming(Metered::new(
                            once(bytes),
                            pending,
                            Watch::Nothing,
                            Accounting::default(),
                        ))
                    }
                    echo::Body::Events(chunks) => {
                        out.content_type("text/event-stream")
                            .insert_header((header::CACHE_CONTROL, "no-cache"))
                            .insert_header(("x-accel-buffering", "no"));
                        let stream = futures_util::stream::iter(
                            chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
                        );
                        out.streaming(Metered::new(
                            stream,
                            pending,
                            Watch::Nothing,
                            Accounting::default(),
                        ))
                    }
                }
            }
        }
    }
}

/// The largest account-object reply read whole (a list, a new object).
const MAX_OBJECT_REPLY: usize = 16 * 1024 * 1024;

/// A successful object reply, read whole to look at it.
pub async fn read_whole(
    mut res: awc::ClientResponse,
) -> Result<(StatusCode, HeaderMap, Bytes), ApiError> {
    let text = res
        .body()
        .limit(MAX_OBJECT_REPLY)
        .await
        .map_err(|e| ApiError::Upstream(format!("Cannot read the upstream's reply: {e}.")))?;
    Ok((res.status(), res.headers().clone(), text))
}

pub fn read_reply(status: StatusCode, headers: HeaderMap, body: Bytes) -> Reply {
    Reply::Upstream(
        Answer::Read {
            status,
            headers,
            body,
        },
        Accounting::default(),
        None,
    )
}

/// When the whole reply must be done: `limits.upstream_timeout` after the
/// request began.
fn pending_deadline(pending: &Pending, gw: &Gateway) -> std::time::Instant {
    pending.started_at() + gw.live().config.limits.upstream_timeout
}

fn once(
    bytes: Bytes,
) -> futures_util::stream::Iter<std::iter::Once<Result<Bytes, std::convert::Infallible>>> {
    futures_util::stream::iter(std::iter::once(Ok(bytes)))
}
