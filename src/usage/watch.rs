//! What to watch in a reply for its usage: decided from the endpoint's
//! meter (the catalogue's), what the request asked for, and the reply's
//! status and media type.

use super::audio::Clip;
use super::{Extras, Tokens};
use crate::catalogue::Meter;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;

/// How the reply of a request is to be counted, as the request path knows
/// it before the reply comes.
#[derive(Debug, Clone, Default)]
pub struct Accounting {
    /// The endpoint's meter; `None`: nothing to count.
    pub meter: Option<Meter>,
    /// The gateway asked for stream usage that the client did not want.
    pub strip_usage: bool,
    /// The upstream keeps the reply (a stored response): if it is not
    /// final when its body ends, it is settled later from the stored one.
    pub later: bool,
    /// The request offered server-side tools: their calls are counted.
    pub tools: bool,
    /// How the reply reports its usage (Gemini's `usageMetadata`, or the
    /// others' `usage`).
    pub dialect: super::extract::Dialect,
    /// What only some requests need (boxed, so that a chat request's
    /// accounting stays small).
    pub more: Option<Box<More>>,
}

/// What a request asked for that its reply is measured by.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct More {
    /// What the request asked for that is charged beyond its tokens (the
    /// tier, characters to speak, images to make).
    pub asked: Extras,
    /// What the request's prompt and reply were guessed at: charged when a
    /// reply that is settled later never tells (a background job deleted
    /// before it finished).
    pub guess: Tokens,
    /// Text to speech: the audio format asked for (`mp3` by default).
    /// Transcriptions: the text format asked for.
    pub format: Option<Box<str>>,
    /// A transcription's audio, as the request sent it.
    pub clip: Option<Clip>,
}

impl Accounting {
    /// Whether tokens can be estimated from the texts when the upstream
    /// reports none.
    pub fn estimable(&self) -> bool {
        self.meter.is_some_and(Meter::estimable)
    }

    pub fn more(&self) -> More {
        self.more.as_deref().cloned().unwrap_or_default()
    }
}

pub fn is_event_stream(headers: &HeaderMap) -> bool {
    media_starts(headers, "text/event-stream")
}

fn media_starts(headers: &HeaderMap, prefix: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(prefix))
}

/// How a reply body is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// Nothing to count (model lists, error replies).
    Nothing,
    /// A JSON reply: its `usage` is read as it passes.
    Json { estimate: bool },
    /// Server-sent events: the usage chunk is read as it passes, and
    /// dropped when `strip_usage` (the client did not ask for it); the
    /// output text of every event is counted.
    Events { strip_usage: bool, estimate: bool },
    /// Audio (text to speech): its length is measured.
    Audio,
    /// Plain text (a transcript as text, SRT or VTT): kept for estimating.
    Text,
}

impl Watch {
    /// How to count a reply of this status and media type: only successes
    /// of endpoints that report usage, in a media type the meter reads.
    pub fn for_reply(a: &Accounting, status: StatusCode, headers: &HeaderMap) -> Watch {
        let Some(meter) = a.meter.filter(|m| m.counted()) else {
            return Watch::Nothing;
        };
        if !status.is_success() {
            return Watch::Nothing;
        }
        let estimate = a.estimable();
        if is_event_stream(headers) {
            return Watch::Events {
                strip_usage: a.strip_usage,
                estimate,
            };
        }
        if media_starts(headers, "application/json") {
            return Watch::Json { estimate };
        }
        match meter {
            Meter::Speech => Watch::Audio,
            Meter::Transcription => Watch::Text,
            // An endpoint that answers JSON answered something else: read
            // as JSON all the same (what it reports counts; if nothing, it
            // is estimated), never let through uncounted.
            _ => Watch::Json { estimate },
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
