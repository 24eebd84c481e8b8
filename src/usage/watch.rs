//! What to watch in a reply for its usage: decided from the endpoint (as
//! the request path knows it) and the reply's status and media type.

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;

/// How the reply of a request is to be counted, as the request path knows
/// it before the reply comes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Accounting {
    /// The endpoint reports usage (chat, embeddings, images, audio, …).
    pub counted: bool,
    /// Tokens can be estimated from text when the upstream reports none.
    pub estimable: bool,
    /// The gateway asked for stream usage that the client did not want.
    pub strip_usage: bool,
}

pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// How a reply body is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Nothing to count (model lists, error replies).
    Nothing,
    /// A JSON reply: its `usage` is read as it passes.
    Json { estimate: bool },
    /// Server-sent events: the usage chunk is read as it passes, and
    /// dropped when `strip_usage` (the client did not ask for it).
    Events { strip_usage: bool, estimate: bool },
}

impl Watch {
    /// How to count a reply of this status and media type: only successes
    /// of endpoints that report usage, and only JSON or server-sent events.
    pub fn for_reply(a: Accounting, status: StatusCode, headers: &HeaderMap) -> Watch {
        if !a.counted || !status.is_success() {
            return Watch::Nothing;
        }
        if is_event_stream(headers) {
            return Watch::Events {
                strip_usage: a.strip_usage,
                estimate: a.estimable,
            };
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if json {
            Watch::Json {
                estimate: a.estimable,
            }
        } else {
            Watch::Nothing
        }
    }

    /// Whether the bytes the client gets may differ from the upstream's
    /// (so a `Content-Length` of the upstream's no longer holds).
    pub fn changes_body(self) -> bool {
        matches!(
            self,
            Watch::Events {
                strip_usage: true,
                ..
            }
        )
    }
}
