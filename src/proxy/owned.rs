//! Account objects on the request path: whose the objects a request names
//! are (in its path, query and body, all in one lookup), recording the
//! creator of a new one before its reply reaches the client. Every
//! database call runs off the worker, and only requests that name or make
//! account objects make one.

use super::probe::Ref;
use crate::db::{self, Pool};
use crate::error::ApiError;
use crate::objects::{self, Known, ObjectKind};
use crate::usage::meter::Created;
use bytes::{Bytes, BytesMut};
use futures_util::future::LocalBoxFuture;
use futures_util::Stream;
use serde_json::Value;
use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};

/// How far into a reply its object's `id` is looked for.
const MAX_ID_SCAN: usize = 64 * 1024;

/// The objects a request names, each the caller's own.
#[derive(Debug, Default)]
pub struct Named {
    pub objects: Vec<(Ref, Known)>,
}

impl Named {
    /// The tokens the named objects bring into the prompt: a stored
    /// response's or conversation's recorded prompt and reply, a file's
    /// size (`unknown` for one whose size the gateway never learnt).
    pub fn prompt_tokens(&self, unknown: i64) -> i64 {
        self.objects
            .iter()
            .filter(|(r, _)| {
                matches!(
                    r.kind,
                    ObjectKind::Responses | ObjectKind::Conversations | ObjectKind::Files
                )
            })
            .map(|(_, k)| k.tokens.unwrap_or(unknown))
            .fold(0i64, i64::saturating_add)
    }

    /// The upstream that holds the first named object.
    pub fn holder(&self) -> Option<&str> {
        self.objects.first().map(|(_, k)| k.owner.upstream.as_str())
    }
}

/// Every object `refs` name must be `user`'s own and of the kind named;
/// anyone else's (or an unknown one, or one of another kind) is 404
/// `not_found` naming the id, so that ids of others are not confirmed.
/// One lookup for them all; none when there are none.
pub async fn check(pool: &Pool, user: &str, refs: Vec<Ref>) -> Result<Named, ApiError> {
    if refs.is_empty() {
        return Ok(Named::default());
    }
    let ids: Vec<String> = refs.iter().map(|r| r.id.clone()).collect();
    let known = db::query(pool, move |c| {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        objects::known(c, &ids)
    })
    .await?;
    let mut named = Named::default();
    let mut seen = HashSet::new();
    for r in refs {
        let k = known
            .get(&r.id)
            .filter(|k| k.owner.user == user && k.kind == r.kind)
            .ok_or_else(|| not_found(&r.id))?;
        if seen.insert(r.id.clone()) {
            named.objects.push((r, k.clone()));
        }
    }
    Ok(named)
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "No object `{}` of yours exists.",
        id.chars().take(100).collect::<String>()
    ))
}

/// Records `user` as the creator of `id` (at `upstream`), bringing
/// `tokens` into a prompt that names it.
pub async fn claim(
    pool: &Pool,
    id: String,
    kind: ObjectKind,
    user: String,
    upstream: String,
    tokens: Option<i64>,
) -> Result<(), ApiError> {
    let at = crate::db::now();
    Ok(db::query(pool, move |c| {
        objects::claim(c, &id, kind, &user, &upstream, at, tokens)
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

/// What a new object brings into a prompt that names it, by its reply: a
/// file's size, at four bytes a token (an over-estimate for text).
pub fn tokens_of(object: &Value) -> Option<i64> {
    object["bytes"]
        .as_i64()
        .map(|b| b.max(0) / 4)
        // Gemini's cached content counts its own.
        .or_else(|| object["usageMetadata"]["totalTokenCount"].as_i64())
}

/// The id a creating request's reply gives its new object: Gemini's
/// resource name (`cachedContents/abc`), else OpenAI's `id`.
pub fn created_id<'a>(kind: ObjectKind, object: &'a Value, reply: &'a [u8]) -> Option<&'a str> {
    match kind {
        ObjectKind::CachedContents => object["name"].as_str().filter(|n| {
            n.strip_prefix("cachedContents/")
                .is_some_and(|id| !id.is_empty())
        }),
        _ => first_id(reply),
    }
}

/// The file an upload was completed into: its id, and its size's tokens.
pub fn completed_file(reply: &[u8]) -> Option<(String, Option<i64>)> {
    let v: Value = serde_json::from_slice(reply).ok()?;
    let file = &v["file"];
    Some((file["id"].as_str()?.to_owned(), tokens_of(file)))
}

/// What a creating request's reply is recorded as; `created` learns the
/// id (for the usage record, which sizes the object or settles from it).
pub struct Claim {
    pub pool: Pool,
    pub kind: ObjectKind,
    pub user: String,
    pub upstream: String,
    pub created: Created,
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
                                *c.created.borrow_mut() = Some(Box::from(id.as_str()));
                                let write = Box::pin(async move {
                                    let _ =
                                        claim(&c.pool, id, c.kind, c.user, c.upstream, None).await;
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
    fn a_completed_upload_names_its_file_and_size() {
        assert_eq!(
            completed_file(br#"{"id":"upload_1","file":{"id":"file-9","bytes":4000}}"#),
            Some(("file-9".into(), Some(1000)))
        );
    }
}
