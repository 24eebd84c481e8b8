//! Account objects on the request path: whose an object is, recording the
//! creator of a new one before its reply reaches the client, and lists cut
//! down to the caller's own. Every database call runs off the worker, and
//! only requests that touch account objects make one.

use crate::db::{self, Pool};
use crate::error::ApiError;
use crate::objects::{self, ObjectKind, Owner};
use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use futures_util::Stream;
use serde_json::Value;
use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};

/// How far into a reply its object's `id` is looked for.
const MAX_ID_SCAN: usize = 64 * 1024;

/// The owner of `id`, if that is `user`; anyone else's (or an unknown)
/// object is 404 `not_found`, so that ids of others are not confirmed.
pub async fn own(pool: &Pool, user: &str, id: &str) -> Result<Owner, ApiError> {
    let lookup = id.to_owned();
    let owner = db::query(pool, move |c| objects::owner(c, &lookup)).await?;
    match owner {
        Some(o) if o.user == user => Ok(o),
        _ => Err(ApiError::NotFound(format!(
            "No object `{}` of yours exists.",
            id.chars().take(100).collect::<String>()
        ))),
    }
}

/// Records `user` as the creator of `id` (at `upstream`).
pub async fn claim(
    pool: &Pool,
    id: String,
    kind: ObjectKind,
    user: String,
    upstream: String,
) -> Result<(), ApiError> {
    let at = crate::db::now();
    Ok(db::query(pool, move |c| {
        objects::claim(c, &id, kind, &user, &upstream, at)
    })
    .await?)
}

pub async fn forget(pool: &Pool, id: String) -> Result<(), ApiError> {
    Ok(db::query(pool, move |c| objects::forget(c, &id)).await?)
}

/// The ids of `user`'s objects of `kind`.
pub async fn owned(pool: &Pool, user: &str, kind: ObjectKind) -> Result<HashSet<String>, ApiError> {
    let user = user.to_owned();
    Ok(db::query(pool, move |c| objects::owned(c, &user, kind)).await?)
}

/// The id of a reply's object: the first `"id"` key's string value (an
/// object reply and a stream's first event both begin with their own).
pub fn first_id(bytes: &[u8]) -> Option<&str> {
    let bytes = &bytes[..bytes.len().min(MAX_ID_SCAN)];
    let mut from = 0;
    while let Some(at) = memchr::memmem::find(&bytes[from..], b"\"id\"") {
        let rest = &bytes[from + at + 4..];
        from += at + 4;
        let value = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .filter(|&i| rest[i] == b':')
            .map(|i| &rest[i + 1..]);
        let Some(value) = value else { continue };
        let start = value.iter().position(|b| !b.is_ascii_whitespace())?;
        if value[start] != b'"' {
            continue;
        }
        let text = &value[start + 1..];
        let end = memchr::memchr(b'"', text)?;
        let id = std::str::from_utf8(&text[..end]).ok()?;
        return (!id.is_empty() && !id.contains('\\')).then_some(id);
    }
    None
}

/// The id of the file an upload was completed into.
pub fn completed_file(reply: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(reply).ok()?;
    v["file"]["id"].as_str().map(str::to_owned)
}

/// A list reply with only `own` entries in its `data`. Paging fields
/// (`has_more`, `first_id`, `last_id`) stay as the upstream sent them, so
/// `after=last_id` goes on where the upstream's page ended.
pub fn only_own(reply: &[u8], own: &HashSet<String>) -> Option<Bytes> {
    let mut v: Value = serde_json::from_slice(reply).ok()?;
    let data = v.get_mut("data")?.as_array_mut()?;
    data.retain(|entry| entry["id"].as_str().is_some_and(|id| own.contains(id)));
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// What a creating request's reply is recorded as.
pub struct Claim {
    pub pool: Pool,
    pub kind: ObjectKind,
    pub user: String,
    pub upstream: String,
}

enum State {
    /// Holding the reply's first bytes until its id shows.
    Scanning(BytesMut),
    /// The owner is being written; the held bytes follow once it is.
    Writing(Bytes, LocalBoxFuture<'static, ()>),
    Passing,
}

/// A reply that creates an object (a stored response, a stored chat
/// completion), held back until its creator is recorded: the object's
/// owner is known to every instance before the client can name it.
pub struct Claiming<S> {
    inner: S,
    claim: Option<Claim>,
    state: State,
}

impl<S> Claiming<S> {
    pub fn new(inner: S, claim: Claim) -> Self {
        Claiming {
            inner,
            claim: Some(claim),
            state: State::Scanning(BytesMut::new()),
        }
    }
}

impl<S, E> Stream for Claiming<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Passing => return Pin::new(&mut this.inner).poll_next(cx),
                State::Writing(_, write) => {
                    if write.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let State::Writing(held, _) =
                        std::mem::replace(&mut this.state, State::Passing)
                    else {
                        unreachable!()
                    };
                    return Poll::Ready(Some(Ok(held)));
                }
                State::Scanning(held) => match Pin::new(&mut this.inner).poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => {
                        held.extend_from_slice(&chunk);
                        let id = first_id(held).map(str::to_owned);
                        let held_len = held.len();
                        match (id, this.claim.take()) {
                            (Some(id), Some(c)) => {
                                let held = std::mem::take(held).freeze();
                                let write = Box::pin(async move {
                                    let _ = claim(&c.pool, id, c.kind, c.user, c.upstream).await;
                                });
                                this.state = State::Writing(held, write);
                            }
                            (None, claim) if held_len <= MAX_ID_SCAN => this.claim = claim,
                            _ => {
                                let held = std::mem::take(held).freeze();
                                this.state = State::Passing;
                                return Poll::Ready(Some(Ok(held)));
                            }
                        }
                    }
                    Poll::Ready(None) => {
                        let held = std::mem::take(held).freeze();
                        this.state = State::Passing;
                        return Poll::Ready((!held.is_empty()).then_some(Ok(held)));
                    }
                    other => return other,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_id_key_is_the_objects() {
        assert_eq!(
            first_id(br#"{"id":"file-1","object":"file"}"#),
            Some("file-1")
        );
        assert_eq!(
            first_id(b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\" : \"resp_9\"}}"),
            Some("resp_9")
        );
        assert_eq!(first_id(br#"{"object":"x","ids":[1],"id":"a"}"#), Some("a"));
        assert_eq!(first_id(br#"{"id":1,"x":{"id":"b"}}"#), Some("b"));
        assert_eq!(first_id(br#"{"id":"#), None);
        assert_eq!(first_id(br#"{"text":"say \"id\": \"x\""}"#), None);
    }

    #[test]
    fn lists_keep_only_the_callers_entries() {
        let own: HashSet<String> = ["file-1".to_string()].into();
        let list = br#"{"object":"list","data":[{"id":"file-1"},{"id":"file-2"}],"has_more":true,"last_id":"file-2"}"#;
        let v: Value = serde_json::from_slice(&only_own(list, &own).unwrap()).unwrap();
        assert_eq!(v["data"], serde_json::json!([{"id": "file-1"}]));
        assert_eq!(
            (v["has_more"].clone(), v["last_id"].clone()),
            (true.into(), "file-2".into())
        );
        assert_eq!(
            completed_file(br#"{"id":"upload_1","file":{"id":"file-9"}}"#).as_deref(),
            Some("file-9")
        );
    }
}
