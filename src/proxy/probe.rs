//! The probe: the few fields of a JSON request body that the gateway
//! needs (model, stream, the sizes of the reply), read without parsing the
//! rest, and checked so that no number can slip past a limit.

use crate::error::ApiError;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

#[derive(Deserialize, Default)]
struct Fields<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    max_tokens: Option<Size>,
    #[serde(default)]
    max_completion_tokens: Option<Size>,
    #[serde(default)]
    max_output_tokens: Option<Size>,
    #[serde(default)]
    n: Option<Size>,
    /// Completions: the upstream generates `best_of` replies and bills them.
    #[serde(default)]
    best_of: Option<Size>,
    /// Chat completions: whether the upstream account keeps the reply.
    #[serde(default)]
    store: Option<bool>,
    #[serde(default)]
    previous_response_id: Option<String>,
    #[serde(default)]
    conversation: Option<Conversation>,
}

/// The Responses API names a conversation by its id or as `{"id": …}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Conversation {
    Id(String),
    Object { id: String },
}

#[derive(Deserialize, Default)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// A number that sizes a reply, as the client wrote it: a non-negative
/// integer that fits, or what else it was (kept for the error message).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Size {
    Fits(i64),
    Not(&'static str),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        d.deserialize_any(SizeVisitor)
    }
}

struct SizeVisitor;

impl<'de> Visitor<'de> for SizeVisitor {
    type Value = Size;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative integer")
    }
    fn visit_u64<E>(self, v: u64) -> Result<Size, E> {
        Ok(i64::try_from(v).map_or(Size::Not("a number too large"), Size::Fits))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Size, E> {
        Ok(if v < 0 {
            Size::Not("a negative number")
        } else {
            Size::Fits(v)
        })
    }
    fn visit_f64<E>(self, _: f64) -> Result<Size, E> {
        Ok(Size::Not("not a whole number"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Size, E> {
        Ok(Size::Not("a boolean"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Size, E> {
        Ok(Size::Not("a string"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Size, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Size::Not("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Size, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Size::Not("an object"))
    }
}

/// What the gateway read from a JSON request.
#[derive(Debug, Default, PartialEq)]
pub struct Probe {
    pub model: Option<String>,
    pub stream: bool,
    /// For a stream: whether the client asked for its usage chunk itself.
    pub include_usage: bool,
    /// The most one reply may use, if the request says.
    pub max_reply: Option<i64>,
    /// How many replies the upstream generates (`n`, `best_of`): at least 1.
    pub replies: i64,
    /// `store: true`: the upstream account keeps the reply.
    pub store: Option<bool>,
    /// Account objects the request builds on: `previous_response_id`,
    /// `conversation`. They must be the caller's own.
    pub refers_to: Vec<String>,
}

impl Probe {
    /// Reads `body`; a body that is not a JSON object, names a field twice
    /// or sizes its reply with anything but a non-negative integer is a 400
    /// that names the field.
    pub fn read(body: &[u8]) -> Result<Probe, ApiError> {
        let f: Fields = serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("The request body is not valid JSON: {e}"))
        })?;
        let size = |v: Option<Size>, name: &str| match v {
            None => Ok(None),
            Some(Size::Fits(n)) => Ok(Some(n)),
            Some(Size::Not(what)) => Err(ApiError::BadRequest(format!(
                "`{name}` must be a non-negative integer; it is {what}."
            ))),
        };
        // The largest of the reply sizes given: an upstream reads one of
        // them, and the gateway does not guess which.
        let max_reply = [
            size(f.max_tokens, "max_tokens")?,
            size(f.max_completion_tokens, "max_completion_tokens")?,
            size(f.max_output_tokens, "max_output_tokens")?,
        ]
        .into_iter()
        .flatten()
        .max();
        let n = size(f.n, "n")?.unwrap_or(1);
        let best_of = size(f.best_of, "best_of")?.unwrap_or(1);
        let conversation = f.conversation.map(|c| match c {
            Conversation::Id(id) | Conversation::Object { id } => id,
        });
        Ok(Probe {
            store: f.store,
            refers_to: f
                .previous_response_id
                .into_iter()
                .chain(conversation)
                .collect(),
            model: f.model.map(Cow::into_owned),
            stream: f.stream.unwrap_or(false),
            include_usage: f
                .stream_options
                .is_some_and(|o| o.include_usage == Some(true)),
            max_reply,
            replies: n.max(best_of).max(1),
        })
    }

    /// The tokens a request holds while it runs: its prompt guess plus a
    /// full reply for each reply it asks for. Saturating: never wraps.
    pub fn reservation(&self, prompt_guess: i64, default_reply: i64) -> i64 {
        prompt_guess.saturating_add(self.reply_tokens(default_reply))
    }

    /// A full reply for each reply asked for. Saturating.
    pub fn reply_tokens(&self, default_reply: i64) -> i64 {
        let reply = self.max_reply.unwrap_or(default_reply);
        self.replies.saturating_mul(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(body: &str) -> Result<Probe, String> {
        Probe::read(body.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_what_routing_and_limits_need() {
        let p = read(
            r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},
                "messages":[{"role":"user","content":"{\"model\":\"o1\"}"}],"max_tokens":100,"n":3}"#,
        )
        .unwrap();
        assert_eq!(p.model.as_deref(), Some("gpt-4o"));
        assert!(p.stream && p.include_usage);
        assert_eq!((p.max_reply, p.replies), (Some(100), 3));
        assert_eq!(p.reservation(10, 1024), 310);
        let p = read(r#"{"model":"m","max_tokens":5,"max_completion_tokens":50}"#).unwrap();
        assert_eq!(p.max_reply, Some(50), "the largest size counts");
        assert_eq!(read(r#"{"model":"m","n":null}"#).unwrap().replies, 1);
        let p =
            read(r#"{"model":"m","previous_response_id":"resp_1","conversation":{"id":"conv_1"}}"#)
                .unwrap();
        assert_eq!(p.refers_to, ["resp_1", "conv_1"]);
        let p = read(r#"{"model":"m","conversation":"conv_2","store":true}"#).unwrap();
        assert_eq!(
            (p.refers_to, p.store),
            (vec!["conv_2".to_string()], Some(true))
        );
    }

    #[test]
    fn odd_numbers_are_refused_naming_the_field() {
        for (body, field) in [
            (r#"{"max_tokens":-100000000}"#, "max_tokens"),
            (r#"{"max_tokens":1.5}"#, "max_tokens"),
            (r#"{"max_tokens":"100"}"#, "max_tokens"),
            (
                r#"{"max_completion_tokens":18446744073709551615}"#,
                "max_completion_tokens",
            ),
            (
                r#"{"max_output_tokens":99999999999999999999999}"#,
                "max_output_tokens",
            ),
            (r#"{"n":-1}"#, "n"),
            (r#"{"n":[1]}"#, "n"),
            (r#"{"best_of":{"a":1}}"#, "best_of"),
        ] {
            let e = read(body).unwrap_err();
            assert!(e.contains(&format!("`{field}`")), "{body}: {e}");
        }
    }

    #[test]
    fn the_largest_numbers_saturate() {
        let p = read(r#"{"max_tokens":9223372036854775807,"n":9223372036854775807}"#).unwrap();
        assert_eq!(p.reservation(i64::MAX, 1), i64::MAX);
    }

    #[test]
    fn a_model_named_twice_is_refused() {
        let e = read(r#"{"model":"gpt-4o-mini","model":"o1-pro"}"#).unwrap_err();
        assert!(e.contains("duplicate field"), "{e}");
        assert!(read(r#"{"model":["o1-pro"]}"#).is_err());
        assert!(read("[1]").is_err());
    }

    proptest! {
        /// Any body: no panic, and whatever is admitted holds a
        /// non-negative reservation.
        #[test]
        fn any_body_is_read_or_refused(body in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(p) = Probe::read(&body) {
                prop_assert!(p.reservation(0, 1024) >= 0);
            }
        }

        #[test]
        fn any_sizes_reserve_without_wrapping(
            max in any::<i64>(), n in any::<i64>(), prompt in 0i64..=i64::MAX,
        ) {
            let body = format!(r#"{{"model":"m","max_tokens":{max},"n":{n}}}"#);
            match Probe::read(body.as_bytes()) {
                Ok(p) => {
                    prop_assert!(max >= 0 && n >= 0);
                    prop_assert!(p.reservation(prompt, 1) >= prompt);
                }
                Err(_) => prop_assert!(max < 0 || n < 0),
            }
        }
    }
}
