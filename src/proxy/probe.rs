//! The probe: one walk of a JSON request body that reads what the gateway
//! needs (model, stream, the sizes of the reply, what the reply will cost
//! extra) and every id of an account object it names, at any depth, so
//! that none goes out that is not the caller's. The walk builds no tree:
//! it keeps the few fields and the ids it finds, in time and memory
//! proportional to the body (serde_json bounds its depth at 128).
//!
//! Numbers that size a reply are checked so that none can slip past a
//! limit; the fields the gateway decides by may appear once.

use crate::error::ApiError;
use crate::objects::ObjectKind;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

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

/// An account object a request names: it must be the caller's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    pub kind: ObjectKind,
    pub id: String,
}

/// The keys whose values name account objects, wherever they appear: a
/// string, a list of strings, or an object with an `id`.
pub fn reference_kind(key: &str) -> Option<ObjectKind> {
    Some(match key {
        "file_id" | "file_ids" | "input_file_id" | "training_file" | "validation_file" => {
            ObjectKind::Files
        }
        "vector_store_id" | "vector_store_ids" => ObjectKind::VectorStores,
        "previous_response_id" | "response_id" => ObjectKind::Responses,
        "conversation" | "conversation_id" => ObjectKind::Conversations,
        "upload_id" => ObjectKind::Uploads,
        "part_ids" => ObjectKind::UploadParts,
        "container" | "container_id" => ObjectKind::Containers,
        // Gemini's (`cachedContents/…`).
        "cachedContent" | "cached_content" => ObjectKind::CachedContents,
        // Gemini's file search stores (a `fileSearch` tool's).
        "fileSearchStoreNames" | "file_search_store_names" => ObjectKind::FileSearchStores,
        _ => return None,
    })
}

/// The id of the account's file a `fileUri` names: its resource name
/// (`files/abc`) for Google's form (`https://…/v1beta/files/abc`, or the
/// name itself); anything else that mentions `files/` stays whole, which
/// names nobody's file (and is refused, as a guess must be).
fn gemini_file(uri: &str) -> String {
    let name = match uri.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i + 1..]).and_then(|path| {
            ["v1beta/", "v1/", "v1alpha/"]
                .iter()
                .find_map(|version| path.strip_prefix(version))
        }),
        None => Some(uri),
    };
    let is_file = |n: &&str| {
        n.strip_prefix("files/").is_some_and(|id| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    };
    name.filter(is_file).unwrap_or(uri).to_owned()
}

/// Server-side tools a request offers the model: billed per call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tools {
    pub web_search: bool,
    pub file_search: bool,
    pub code_interpreter: bool,
}

/// What the gateway read from a request.
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
    /// `store`: whether the upstream account keeps the reply.
    pub store: Option<bool>,
    /// `background: true`: the Responses API finishes the work later.
    pub background: bool,
    /// `service_tier` as asked (`priority`, `flex`, …).
    pub service_tier: Option<String>,
    /// Every account object the body names.
    pub refs: Vec<Ref>,
    /// Images given as parts (URLs, files, inline): each reserves an
    /// allowance, since a URL's size is not in the body.
    pub images: i64,
    pub tools: Tools,
    /// A prompt-cache write with a one-hour time to live (priced apart).
    pub cache_1h: bool,
    /// Characters of a string `input` (text to speech).
    pub input_chars: i64,
    /// A multipart body's `response_format` (transcriptions).
    pub response_format: Option<String>,
    /// A multipart body's audio, for measuring what it costs.
    pub audio: Option<crate::usage::audio::Clip>,
}

/// What a value is, where the walk meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Plain,
    /// Under a key that names account objects of this kind.
    Ref(ObjectKind),
    /// The value of a `type` key.
    Type,
    /// The value of a `ttl` key.
    Ttl,
    /// The top-level `input`.
    Input,
    /// `metadata`: the client's own strings, which no upstream reads as a
    /// reference; walked for its shape only.
    Inert,
    /// Gemini's `fileUri`: a file of the account's when it names one
    /// (`…/files/abc`), else a public URL.
    FileUri,
}

impl At {
    /// Where a map's value under `key` is, inside a value at `self`.
    fn under(self, key: &str) -> At {
        match self {
            At::Inert => At::Inert,
            // An object naming a reference by its `id` (`{"id": "conv_1"}`).
            At::Ref(kind) if key == "id" => At::Ref(kind),
            _ => match key {
                "type" => At::Type,
                "ttl" => At::Ttl,
                "metadata" => At::Inert,
                "fileUri" | "file_uri" => At::FileUri,
                _ => reference_kind(key).map_or(At::Plain, At::Ref),
            },
        }
    }

    /// Where a list's items are, inside a value at `self`.
    fn item(self) -> At {
        match self {
            At::Ref(_) | At::Inert => self,
            _ => At::Plain,
        }
    }
}

/// Walks any value, noting what it finds in `probe`.
struct Walk<'p> {
    probe: &'p mut Probe,
    at: At,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let p = self.probe;
        match self.at {
            At::Ref(kind) => p.refs.push(Ref {
                kind,
                id: v.to_owned(),
            }),
            At::Type => match v {
                "image_url" | "input_image" | "image" => p.images = p.images.saturating_add(1),
                "file_search" => p.tools.file_search = true,
                "code_interpreter" => p.tools.code_interpreter = true,
                t if t.starts_with("web_search") && !t.ends_with("_call") => {
                    p.tools.web_search = true
                }
                _ => {}
            },
            At::Ttl => p.cache_1h |= v == "1h",
            At::FileUri if v.contains("files/") => p.refs.push(Ref {
                kind: ObjectKind::GeminiFiles,
                id: gemini_file(v),
            }),
            At::FileUri => {}
            At::Input => p.input_chars = i64::try_from(v.chars().count()).unwrap_or(i64::MAX),
            At::Plain | At::Inert => {}
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.at.item();
        while seq
            .next_element_seed(Walk {
                probe: &mut *self.probe,
                at,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            // Gemini's search tools (`{"googleSearch": {}}`): each
            // grounded prompt is charged.
            if matches!(
                &*key,
                "googleSearch"
                    | "google_search"
                    | "googleSearchRetrieval"
                    | "google_search_retrieval"
            ) && self.at != At::Inert
            {
                self.probe.tools.web_search = true;
            }
            let at = self.at.under(&key);
            map.next_value_seed(Walk {
                probe: &mut *self.probe,
                at,
            })?;
        }
        Ok(())
    }
}

/// The top-level object: its fields the gateway decides by, read once
/// each; every value walked.
struct Top<'p>(&'p mut Fields);

#[derive(Default)]
struct Fields {
    probe: Probe,
    sizes: [Option<Size>; 7],
    /// A field named twice, if any: the upstream may read the other one.
    twice: Option<String>,
    /// Gemini's `generationConfig` (or `generation_config`) was read.
    generation_config: bool,
}

/// The sizes of a reply; the last two are Gemini's, inside its
/// `generationConfig` (in either spelling Google's JSON takes).
const SIZES: [&str; 7] = [
    "max_tokens",
    "max_completion_tokens",
    "max_output_tokens",
    "n",
    "best_of",
    "generationConfig.maxOutputTokens",
    "generationConfig.candidateCount",
];

/// Fields read once: a second mention is refused.
const ONCE: [&str; 7] = [
    "model",
    "stream",
    "stream_options",
    "store",
    "background",
    "service_tier",
    "input",
];

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let f = self.0;
        let mut seen = [false; ONCE.len() + SIZES.len()];
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let key: &str = &key;
            let once = ONCE.iter().chain(SIZES.iter()).position(|k| *k == key);
            if let Some(i) = once {
                if std::mem::replace(&mut seen[i], true) && f.twice.is_none() {
                    f.twice = Some(key.to_owned());
                }
            }
            let p = &mut f.probe;
            match key {
                "model" => {
                    let v: Option<Cow<'de, str>> = map.next_value()?;
                    p.model = v.map(Cow::into_owned);
                }
                "stream" => p.stream = map.next_value::<Option<bool>>()?.unwrap_or(false),
                "store" => p.store = map.next_value()?,
                "background" => p.background = map.next_value::<Option<bool>>()?.unwrap_or(false),
                "service_tier" => {
                    let v: Option<Cow<'de, str>> = map.next_value()?;
                    p.service_tier = v.map(Cow::into_owned);
                }
                "stream_options" => {
                    let v: Option<StreamOptions> = map.next_value()?;
                    p.include_usage = v.is_some_and(|o| o.include_usage == Some(true));
                }
                "input" => map.next_value_seed(Walk {
                    probe: p,
                    at: At::Input,
                })?,
                "generationConfig" | "generation_config" => {
                    if std::mem::replace(&mut f.generation_config, true) && f.twice.is_none() {
                        f.twice = Some("generationConfig".into());
                    }
                    let mut sizes = [None; 2];
                    map.next_value_seed(GenerationConfig {
                        probe: p,
                        sizes: &mut sizes,
                    })?;
                    f.sizes[5] = sizes[0];
                    f.sizes[6] = sizes[1];
                }
                k => match SIZES.iter().position(|s| *s == k) {
                    Some(i) => f.sizes[i] = map.next_value()?,
                    None => {
                        let at = At::Plain.under(k);
                        map.next_value_seed(Walk { probe: p, at })?
                    }
                },
            }
        }
        Ok(())
    }
}

/// Gemini's `generationConfig`: its reply sizes read (each once, in
/// either spelling), every value walked.
struct GenerationConfig<'p> {
    probe: &'p mut Probe,
    sizes: &'p mut [Option<Size>; 2],
}

impl<'de> DeserializeSeed<'de> for GenerationConfig<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for GenerationConfig<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a generation config")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let slot = match &*key {
                "maxOutputTokens" | "max_output_tokens" => Some(0),
                "candidateCount" | "candidate_count" => Some(1),
                _ => None,
            };
            match slot {
                Some(i) => {
                    let size: Option<Size> = map.next_value()?;
                    if self.sizes[i].is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "`generationConfig.{key}` is given twice"
                        )));
                    }
                    self.sizes[i] = size;
                }
                None => {
                    let at = At::Plain.under(&key);
                    map.next_value_seed(Walk {
                        probe: &mut *self.probe,
                        at,
                    })?
                }
            }
        }
        Ok(())
    }
}

/// `stream_options`: only `include_usage` matters, and nothing in it names
/// an object (a reference key there is walked all the same).
struct StreamOptions {
    include_usage: Option<bool>,
}

impl<'de> Deserialize<'de> for StreamOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StreamOptions;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("stream options")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StreamOptions, A::Error> {
                let mut include_usage = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "include_usage" {
                        include_usage = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(StreamOptions { include_usage })
            }
            fn visit_unit<E>(self) -> Result<StreamOptions, E> {
                Ok(StreamOptions {
                    include_usage: None,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Probe {
    /// Reads `body`; a body that is not a JSON object, names a field the
    /// gateway decides by twice or sizes its reply with anything but a
    /// non-negative integer is a 400 that names the field.
    pub fn read(body: &[u8]) -> Result<Probe, ApiError> {
        let mut f = Fields::default();
        let mut de = serde_json::Deserializer::from_slice(body);
        de.deserialize_map(Top(&mut f))
            .and_then(|()| de.end())
            .map_err(|e| {
                ApiError::BadRequest(format!("The request body is not valid JSON: {e}"))
            })?;
        if let Some(field) = f.twice {
            return Err(ApiError::BadRequest(format!(
                "The request names `{field}` more than once (duplicate field)."
            )));
        }
        let size = |i: usize| match f.sizes[i] {
            None => Ok(None),
            Some(Size::Fits(n)) => Ok(Some(n)),
            Some(Size::Not(what)) => Err(ApiError::BadRequest(format!(
                "`{}` must be a non-negative integer; it is {what}.",
                SIZES[i]
            ))),
        };
        // The largest of the reply sizes given: an upstream reads one of
        // them, and the gateway does not guess which.
        let max_reply = [size(0)?, size(1)?, size(2)?, size(5)?]
            .into_iter()
            .flatten()
            .max();
        let n = size(3)?.unwrap_or(1);
        let best_of = size(4)?.unwrap_or(1);
        let candidates = size(6)?.unwrap_or(1);
        let mut probe = f.probe;
        probe.max_reply = max_reply;
        probe.replies = n.max(best_of).max(candidates).max(1);
        Ok(probe)
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
    use serde_json::{json, Value};

    fn read(body: &str) -> Result<Probe, String> {
        Probe::read(body.as_bytes()).map_err(|e| e.to_string())
    }

    fn ids(p: &Probe) -> Vec<(ObjectKind, &str)> {
        p.refs.iter().map(|r| (r.kind, r.id.as_str())).collect()
    }

    #[test]
    fn a_file_uri_names_the_accounts_file_by_its_resource_name() {
        let file = |uri: &str| gemini_file(uri);
        for uri in [
            "https://generativelanguage.googleapis.com/v1beta/files/abc-1",
            "https://generativelanguage.googleapis.com/v1/files/abc-1",
            "files/abc-1",
        ] {
            assert_eq!(file(uri), "files/abc-1", "{uri}");
        }
        // Anything else that mentions files is kept whole: nobody's.
        for uri in [
            "https://example.com/files/abc-1",
            "https://generativelanguage.googleapis.com/v1beta/files/abc/../x",
            "files/",
            "gs://bucket/files/abc",
        ] {
            assert_eq!(file(uri), uri);
        }
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
        assert_eq!(
            ids(&p),
            [
                (ObjectKind::Responses, "resp_1"),
                (ObjectKind::Conversations, "conv_1")
            ]
        );
        let p = read(r#"{"model":"m","conversation":"conv_2","store":true,"background":true,"service_tier":"priority"}"#).unwrap();
        assert_eq!(ids(&p), [(ObjectKind::Conversations, "conv_2")]);
        assert_eq!(p.store, Some(true));
        assert!(p.background);
        assert_eq!(p.service_tier.as_deref(), Some("priority"));
        let p = read(r#"{"model":"tts-1","input":"héllo"}"#).unwrap();
        assert_eq!(p.input_chars, 5);
    }

    /// The references of the Responses and Chat Completions APIs, and of
    /// the object endpoints' bodies, wherever they sit.
    #[test]
    fn finds_every_reference_at_any_depth() {
        let body = json!({
            "model": "gpt-4o",
            "input": [{"role": "user", "content": [
                {"type": "input_file", "file_id": "file-a"},
                {"type": "input_image", "file_id": "file-b"},
                {"type": "input_image", "image_url": "https://x/y.png"},
                {"type": "input_text", "text": "see file-c and \"file_id\": \"file-d\""}
            ]}],
            "tools": [
                {"type": "file_search", "vector_store_ids": ["vs_1", "vs_2"]},
                {"type": "code_interpreter", "container": {"type": "auto", "file_ids": ["file-e"]}},
                {"type": "code_interpreter", "container": "cntr_1"},
                {"type": "web_search_preview"},
                {"type": "function", "name": "f", "parameters": {"type": "object",
                    "properties": {"file_id": {"type": "string"}}}}
            ],
            "metadata": {"file_id": "not-a-reference"},
            "messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-f"}}]}],
        });
        let p = Probe::read(body.to_string().as_bytes()).unwrap();
        let mut found: Vec<_> = p.refs.iter().map(|r| r.id.as_str()).collect();
        found.sort_unstable();
        assert_eq!(
            found,
            ["cntr_1", "file-a", "file-b", "file-e", "file-f", "vs_1", "vs_2"]
        );
        assert_eq!(p.images, 2);
        assert_eq!(
            p.tools,
            Tools {
                web_search: true,
                file_search: true,
                code_interpreter: true
            }
        );
        // Escaped keys are the keys they decode to; a key named twice is
        // read both times (an upstream may take either).
        let p =
            read(r#"{"file\u005fid":"file-1","x":{"file_id":"mine","file_id":"file-2"}}"#).unwrap();
        assert_eq!(
            ids(&p),
            [
                (ObjectKind::Files, "file-1"),
                (ObjectKind::Files, "mine"),
                (ObjectKind::Files, "file-2")
            ]
        );
        // Nested lists under a reference key are references all the way.
        let p = read(r#"{"file_ids":[["file-1"],[{"id":"file-2"}]]}"#).unwrap();
        assert_eq!(
            ids(&p),
            [(ObjectKind::Files, "file-1"), (ObjectKind::Files, "file-2")]
        );
        // A one-hour cache write.
        let p = read(r#"{"system":[{"type":"text","text":"x","cache_control":{"type":"ephemeral","ttl":"1h"}}]}"#).unwrap();
        assert!(p.cache_1h);
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
    fn a_field_named_twice_is_refused() {
        for body in [
            r#"{"model":"gpt-4o-mini","model":"o1-pro"}"#,
            r#"{"model":"m","max_tokens":1,"max_tokens":100000}"#,
            r#"{"model":"m","background":false,"background":true}"#,
        ] {
            let e = read(body).unwrap_err();
            assert!(e.contains("duplicate field"), "{e}");
        }
        assert!(read(r#"{"model":["o1-pro"]}"#).is_err());
        assert!(read("[1]").is_err());
        assert!(read(r#"{"model":"m"} {"model":"n"}"#).is_err());
    }

    /// A JSON tree with ids planted under reference keys at random depths
    /// (as strings, lists and `{"id": …}` objects) and look-alike text
    /// elsewhere.
    #[derive(Debug, Clone)]
    enum Node {
        Leaf(Value),
        Obj(Vec<(String, Node)>),
        Arr(Vec<Node>),
        /// A reference key and how its id is written (0: a string, 1: in a
        /// list, 2: an object's `id`).
        Planted(&'static str, u8),
    }

    const REF_KEYS: [&str; 8] = [
        "file_id",
        "file_ids",
        "vector_store_ids",
        "previous_response_id",
        "conversation",
        "container",
        "part_ids",
        "input_file_id",
    ];

    fn node() -> impl Strategy<Value = Node> {
        let leaf = prop_oneof![
            Just(Node::Leaf(json!("file-decoy text"))),
            Just(Node::Leaf(json!(1))),
            Just(Node::Leaf(Value::Null)),
            (prop::sample::select(REF_KEYS.to_vec()), 0u8..3)
                .prop_map(|(k, f)| Node::Planted(k, f)),
        ];
        leaf.prop_recursive(6, 64, 4, |inner| {
            prop_oneof![
                prop::collection::vec(
                    (
                        prop::sample::select(vec!["content", "input", "tools", "x", "type", "id"]),
                        inner.clone()
                    ),
                    0..4
                )
                .prop_map(|kv| Node::Obj(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
                prop::collection::vec(inner, 0..4).prop_map(Node::Arr),
            ]
        })
    }

    /// The JSON of a tree; `planted` gets every planted id.
    fn build(n: &Node, planted: &mut Vec<String>) -> Value {
        match n {
            Node::Leaf(v) => v.clone(),
            Node::Arr(items) => Value::Array(items.iter().map(|i| build(i, planted)).collect()),
            Node::Obj(kv) => {
                let mut m = serde_json::Map::new();
                for (k, v) in kv {
                    // A key given twice keeps its first value only (what
                    // is left out plants nothing).
                    if !m.contains_key(k) {
                        m.insert(k.clone(), build(v, planted));
                    }
                }
                Value::Object(m)
            }
            Node::Planted(key, form) => {
                let id = format!("FOREIGN-{}", planted.len());
                planted.push(id.clone());
                let value = match form {
                    0 => json!(id),
                    1 => json!(["", id]),
                    _ => json!({"id": id}),
                };
                json!({ *key: value })
            }
        }
    }

    proptest! {
        /// No foreign id planted in a reference position escapes the scan,
        /// at any depth, with the keys escaped or not; look-alike text is
        /// no reference.
        #[test]
        fn no_planted_reference_is_missed(tree in node(), escape in any::<bool>()) {
            let mut planted = Vec::new();
            let value = json!({"model": "m", "input": build(&tree, &mut planted)});
            let mut text = value.to_string();
            if escape {
                text = text.replace("\"file_id\"", "\"file\\u005fid\"")
                    .replace("\"conversation\"", "\"conversa\\u0074ion\"");
            }
            let p = Probe::read(text.as_bytes()).unwrap();
            for id in &planted {
                prop_assert!(p.refs.iter().any(|r| &r.id == id), "{} missed in {}", id, text);
            }
            prop_assert!(p.refs.iter().all(|r| r.id.starts_with("FOREIGN-") || r.id.is_empty()));
        }

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
