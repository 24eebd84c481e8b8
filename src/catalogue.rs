//! Every endpoint the gateway serves, on each API face, in one table: how
//! its model is read, how its reply is metered, which account objects it
//! creates, lists or names, what body it takes and whether it uses up a
//! request limit. The door finds a request's entry here; the probe, the
//! meter, ownership and the README's endpoint table all read the entry.
//! Nothing outside this table is forwarded (except the operator's
//! `endpoints.allow` prefixes, which are never metered).
//!
//! A body is always scanned for the ids of account objects it names, at
//! any depth (`proxy::probe`); a path names its objects with `Own`
//! segments; a list's cursors (`after`, `before`) must be the caller's own.

pub use crate::objects::ObjectKind;
use actix_web::http::Method;

/// The methods the API's endpoints take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    /// Gemini's updates (a cached content's expiry).
    Patch,
    Delete,
}

impl Verb {
    pub fn of(m: &Method) -> Option<Verb> {
        match *m {
            Method::GET => Some(Verb::Get),
            Method::POST => Some(Verb::Post),
            Method::PATCH => Some(Verb::Patch),
            Method::DELETE => Some(Verb::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }
}

/// Whose API an endpoint belongs to: its refusals take that API's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    OpenAi,
    Anthropic,
    /// Google's Gemini API: under `/v1beta` (and `/v1`), the model and
    /// the method in the path (`models/{model}:generateContent`).
    Gemini,
}

/// The version a request's path begins with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/v1`: OpenAI's and Anthropic's APIs, and Gemini's methods.
    V1,
    /// `/v1beta`: Gemini's API only.
    V1beta,
    /// `/upload/v1beta`: Gemini's file uploads only.
    Upload,
}

impl Api {
    /// The path's prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Api::V1 => "/v1",
            Api::V1beta => "/v1beta",
            Api::Upload => "/upload/v1beta",
        }
    }

    /// The version and the rest of a request's path (from its `/`), if it
    /// is under one.
    pub fn split(path: &str) -> Option<(Api, &str)> {
        if let Some(rest) = path.strip_prefix("/upload/v1beta") {
            return rest.starts_with('/').then_some((Api::Upload, rest));
        }
        if let Some(rest) = path.strip_prefix("/v1beta") {
            return rest.starts_with('/').then_some((Api::V1beta, rest));
        }
        let rest = path.strip_prefix("/v1")?;
        (rest.is_empty() || rest.starts_with('/')).then_some((Api::V1, rest))
    }
}

/// One segment of an endpoint's path (after `/v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    Lit(&'static str),
    /// The id of an account object that must be the caller's own.
    Own(ObjectKind),
    /// The id of something inside the object named before it (a vector
    /// store's file, a conversation's item): reached through that object.
    Inner,
    /// Gemini's `{model}:{method}`: the model the request is for, then
    /// this method.
    Call(&'static str),
}

/// What the gateway does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serve {
    /// Routed by its `model` to an upstream that serves it.
    Model,
    /// An account object: forwarded for its owner only, to the upstream
    /// that holds it.
    Object,
    /// `GET /v1/models`, answered from the upstreams' lists.
    ModelList,
    /// `GET /v1/models/{id}`.
    ModelInfo,
}

/// The body an endpoint takes; any other is refused (415) before anything
/// is forwarded, so the reference scan reads every body that goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Json,
    Form,
    JsonOrForm,
    /// Gemini's resumable upload: JSON to start one; then the file's
    /// bytes, of any type, to the upload the query names (data, which no
    /// upstream reads as a request).
    Upload,
}

/// How the reply's use is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meter {
    /// The reply's usage (JSON or its stream's usage events); where it
    /// reports none, estimated with the tokenizer from the request's text
    /// and every kind of output delivered. `stream_usage`: the gateway asks
    /// a stream for its usage chunk (Chat Completions).
    Tokens { stream_usage: bool },
    /// As `Tokens`; a reply that is not final (a background response, a
    /// stream cut before its end) while the upstream keeps it is settled
    /// later from the stored object, exactly once.
    TokensLater,
    /// Embeddings: the reply's usage, else estimated from the input.
    Input,
    /// Text to speech: the input's characters and tokens, the audio's
    /// length where its format says it; estimated.
    Speech,
    /// Transcriptions and translations: the reply's usage (tokens or
    /// seconds); for text, SRT and VTT replies the audio's length and the
    /// transcript, estimated.
    Transcription,
    /// Images: the reply's usage where it reports one, else per image.
    Images,
    /// The upstream does not charge for it (moderations): recorded.
    Free,
    /// A request, no tokens (counting tokens, object reads and writes,
    /// model lists).
    Request,
}

impl Meter {
    /// Whether the reply is read for its usage at all.
    pub fn counted(self) -> bool {
        !matches!(self, Meter::Free | Meter::Request)
    }

    /// Whether tokens can be estimated from the texts when the upstream
    /// reports none.
    pub fn estimable(self) -> bool {
        matches!(
            self,
            Meter::Tokens { .. } | Meter::TokensLater | Meter::Input
        )
    }
}

/// What an endpoint does with account objects beyond the ones it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objects {
    None,
    /// Its reply is a new object of this kind: its creator is recorded
    /// before the reply reaches the client.
    Creates(ObjectKind),
    /// An upload completed: the new file (`file.id` in the reply) is the
    /// uploader's.
    CompletesUpload,
    /// A list of the account's objects of this kind: cut down to the
    /// caller's own, cursors included.
    Lists(ObjectKind),
    /// Deletes the object it names: forgotten once the upstream confirms.
    Deletes,
    /// Gemini's resumable upload: a start makes an upload (its id in the
    /// `x-goog-upload-url` header), which is the starter's; the last part
    /// makes a file (`file.name`), the uploader's.
    UploadsGeminiFile,
}

/// One endpoint.
#[derive(Debug)]
pub struct Entry {
    pub method: Verb,
    pub path: &'static [Seg],
    pub face: Face,
    pub serve: Serve,
    pub body: Body,
    pub meter: Meter,
    pub objects: Objects,
    /// Whether it uses up a request limit: requests that reach a model do;
    /// model lists and object reads, lists and deletes are recorded and
    /// rate-limited but do not.
    pub uses_request: bool,
}

use Seg::{Call, Inner, Lit, Own};

const fn model(path: &'static [Seg], body: Body, meter: Meter, face: Face) -> Entry {
    Entry {
        method: Verb::Post,
        path,
        face,
        serve: Serve::Model,
        body,
        meter,
        objects: Objects::None,
        uses_request: true,
    }
}

const fn object(method: Verb, path: &'static [Seg], body: Body, objects: Objects) -> Entry {
    Entry {
        method,
        path,
        face: Face::OpenAi,
        serve: Serve::Object,
        body,
        meter: Meter::Request,
        objects,
        uses_request: false,
    }
}

const TOKENS: Meter = Meter::Tokens {
    stream_usage: false,
};
const F: ObjectKind = ObjectKind::Files;
const VS: ObjectKind = ObjectKind::VectorStores;
const RESP: ObjectKind = ObjectKind::Responses;
const CC: ObjectKind = ObjectKind::ChatCompletions;
const CONV: ObjectKind = ObjectKind::Conversations;
const UP: ObjectKind = ObjectKind::Uploads;

/// The most used entries first: the door tries them before the rest.
pub static TABLE: [Entry; 52] = [
    // Routed by model, metered.
    Entry {
        objects: Objects::Creates(CC), // only with `store: true`
        ..model(
            &[Lit("chat"), Lit("completions")],
            Body::Json,
            Meter::Tokens { stream_usage: true },
            Face::OpenAi,
        )
    },
    Entry {
        objects: Objects::Creates(RESP), // unless `store: false`
        ..model(
            &[Lit("responses")],
            Body::Json,
            Meter::TokensLater,
            Face::OpenAi,
        )
    },
    model(&[Lit("embeddings")], Body::Json, Meter::Input, Face::OpenAi),
    model(&[Lit("messages")], Body::Json, TOKENS, Face::Anthropic),
    model(&[Lit("completions")], Body::Json, TOKENS, Face::OpenAi),
    model(
        &[Lit("responses"), Lit("compact")],
        Body::Json,
        TOKENS,
        Face::OpenAi,
    ),
    model(
        &[Lit("responses"), Lit("input_tokens")],
        Body::Json,
        Meter::Request,
        Face::OpenAi,
    ),
    model(
        &[Lit("messages"), Lit("count_tokens")],
        Body::Json,
        Meter::Request,
        Face::Anthropic,
    ),
    model(&[Lit("moderations")], Body::Json, Meter::Free, Face::OpenAi),
    model(
        &[Lit("images"), Lit("generations")],
        Body::Json,
        Meter::Images,
        Face::OpenAi,
    ),
    model(
        &[Lit("images"), Lit("edits")],
        Body::JsonOrForm,
        Meter::Images,
        Face::OpenAi,
    ),
    model(
        &[Lit("images"), Lit("variations")],
        Body::Form,
        Meter::Images,
        Face::OpenAi,
    ),
    model(
        &[Lit("audio"), Lit("speech")],
        Body::Json,
        Meter::Speech,
        Face::OpenAi,
    ),
    model(
        &[Lit("audio"), Lit("transcriptions")],
        Body::Form,
        Meter::Transcription,
        Face::OpenAi,
    ),
    model(
        &[Lit("audio"), Lit("translations")],
        Body::Form,
        Meter::Transcription,
        Face::OpenAi,
    ),
    // Answered by the gateway.
    Entry {
        serve: Serve::ModelList,
        ..object(Verb::Get, &[Lit("models")], Body::None, Objects::None)
    },
    Entry {
        serve: Serve::ModelInfo,
        ..object(
            Verb::Get,
            &[Lit("models"), Inner],
            Body::None,
            Objects::None,
        )
    },
    // Account objects.
    object(Verb::Get, &[Lit("files")], Body::None, Objects::Lists(F)),
    object(Verb::Post, &[Lit("files")], Body::Form, Objects::Creates(F)),
    object(
        Verb::Get,
        &[Lit("files"), Own(F)],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Delete,
        &[Lit("files"), Own(F)],
        Body::None,
        Objects::Deletes,
    ),
    object(
        Verb::Get,
        &[Lit("files"), Own(F), Lit("content")],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("uploads")],
        Body::Json,
        Objects::Creates(UP),
    ),
    object(
        Verb::Post,
        &[Lit("uploads"), Own(UP), Lit("parts")],
        Body::Form,
        Objects::Creates(ObjectKind::UploadParts),
    ),
    object(
        Verb::Post,
        &[Lit("uploads"), Own(UP), Lit("complete")],
        Body::Json,
        Objects::CompletesUpload,
    ),
    object(
        Verb::Post,
        &[Lit("uploads"), Own(UP), Lit("cancel")],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[Lit("vector_stores")],
        Body::None,
        Objects::Lists(VS),
    ),
    object(
        Verb::Post,
        &[Lit("vector_stores")],
        Body::Json,
        Objects::Creates(VS),
    ),
    object(
        Verb::Get,
        &[Lit("vector_stores"), Own(VS)],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("vector_stores"), Own(VS)],
        Body::Json,
        Objects::None,
    ),
    object(
        Verb::Delete,
        &[Lit("vector_stores"), Own(VS)],
        Body::None,
        Objects::Deletes,
    ),
    object(
        Verb::Post,
        &[Lit("vector_stores"), Own(VS), Lit("search")],
        Body::Json,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[Lit("vector_stores"), Own(VS), Lit("files")],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("vector_stores"), Own(VS), Lit("files")],
        Body::Json,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[Lit("vector_stores"), Own(VS), Lit("files"), Own(F)],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("vector_stores"), Own(VS), Lit("files"), Own(F)],
        Body::Json,
        Objects::None,
    ),
    object(
        Verb::Delete,
        &[Lit("vector_stores"), Own(VS), Lit("files"), Own(F)],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[
            Lit("vector_stores"),
            Own(VS),
            Lit("files"),
            Own(F),
            Lit("content"),
        ],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("vector_stores"), Own(VS), Lit("file_batches")],
        Body::Json,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[Lit("vector_stores"), Own(VS), Lit("file_batches"), Inner],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[
            Lit("vector_stores"),
            Own(VS),
            Lit("file_batches"),
            Inner,
            Lit("cancel"),
        ],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[
            Lit("vector_stores"),
            Own(VS),
            Lit("file_batches"),
            Inner,
            Lit("files"),
        ],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[Lit("responses"), Own(RESP)],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Delete,
        &[Lit("responses"), Own(RESP)],
        Body::None,
        Objects::Deletes,
    ),
    object(
        Verb::Post,
        &[Lit("responses"), Own(RESP), Lit("cancel")],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[Lit("responses"), Own(RESP), Lit("input_items")],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[Lit("chat"), Lit("completions")],
        Body::None,
        Objects::Lists(CC),
    ),
    object(
        Verb::Get,
        &[Lit("chat"), Lit("completions"), Own(CC)],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("chat"), Lit("completions"), Own(CC)],
        Body::Json,
        Objects::None,
    ),
    object(
        Verb::Delete,
        &[Lit("chat"), Lit("completions"), Own(CC)],
        Body::None,
        Objects::Deletes,
    ),
    object(
        Verb::Get,
        &[Lit("chat"), Lit("completions"), Own(CC), Lit("messages")],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("conversations")],
        Body::Json,
        Objects::Creates(CONV),
    ),
];

/// The conversation endpoints: kept apart from `TABLE` only to keep its
/// length readable; `entries()` walks both.
pub static CONVERSATIONS: [Entry; 7] = [
    object(
        Verb::Get,
        &[Lit("conversations"), Own(CONV)],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("conversations"), Own(CONV)],
        Body::Json,
        Objects::None,
    ),
    object(
        Verb::Delete,
        &[Lit("conversations"), Own(CONV)],
        Body::None,
        Objects::Deletes,
    ),
    object(
        Verb::Get,
        &[Lit("conversations"), Own(CONV), Lit("items")],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Post,
        &[Lit("conversations"), Own(CONV), Lit("items")],
        Body::Json,
        Objects::None,
    ),
    object(
        Verb::Get,
        &[Lit("conversations"), Own(CONV), Lit("items"), Inner],
        Body::None,
        Objects::None,
    ),
    object(
        Verb::Delete,
        &[Lit("conversations"), Own(CONV), Lit("items"), Inner],
        Body::None,
        Objects::None,
    ),
];

const fn gemini(path: &'static [Seg], meter: Meter) -> Entry {
    model(path, Body::Json, meter, Face::Gemini)
}

/// A Gemini endpoint of the account's objects.
const fn gemini_object(method: Verb, path: &'static [Seg], objects: Objects) -> Entry {
    let body = match method {
        Verb::Post | Verb::Patch => Body::Json,
        Verb::Get | Verb::Delete => Body::None,
    };
    Entry {
        face: Face::Gemini,
        ..object(method, path, body, objects)
    }
}

const CACHED: ObjectKind = ObjectKind::CachedContents;
const GF: ObjectKind = ObjectKind::GeminiFiles;

/// Gemini's upload, alone under `/upload/v1beta`.
pub static GEMINI_UPLOAD: Entry = Entry {
    face: Face::Gemini,
    ..object(
        Verb::Post,
        &[Lit("files")],
        Body::Upload,
        Objects::UploadsGeminiFile,
    )
};

/// Gemini's API, under `/v1beta` and `/v1` alike (Google's SDKs use
/// either): the model is in the path. Cached contents are the account's
/// objects: each is its creator's (their use in a prompt is metered as
/// cached tokens; the hours they are kept are not).
pub static GEMINI: [Entry; 15] = [
    gemini(&[Lit("models"), Call("generateContent")], TOKENS),
    gemini(&[Lit("models"), Call("streamGenerateContent")], TOKENS),
    gemini(&[Lit("models"), Call("countTokens")], Meter::Request),
    gemini(&[Lit("models"), Call("embedContent")], Meter::Input),
    gemini(&[Lit("models"), Call("batchEmbedContents")], Meter::Input),
    Entry {
        serve: Serve::ModelList,
        face: Face::Gemini,
        ..object(Verb::Get, &[Lit("models")], Body::None, Objects::None)
    },
    Entry {
        serve: Serve::ModelInfo,
        face: Face::Gemini,
        ..object(
            Verb::Get,
            &[Lit("models"), Inner],
            Body::None,
            Objects::None,
        )
    },
    gemini_object(Verb::Get, &[Lit("cachedContents")], Objects::Lists(CACHED)),
    gemini_object(
        Verb::Post,
        &[Lit("cachedContents")],
        Objects::Creates(CACHED),
    ),
    gemini_object(
        Verb::Get,
        &[Lit("cachedContents"), Own(CACHED)],
        Objects::None,
    ),
    gemini_object(
        Verb::Patch,
        &[Lit("cachedContents"), Own(CACHED)],
        Objects::None,
    ),
    gemini_object(
        Verb::Delete,
        &[Lit("cachedContents"), Own(CACHED)],
        Objects::Deletes,
    ),
    gemini_object(Verb::Get, &[Lit("files")], Objects::Lists(GF)),
    gemini_object(Verb::Get, &[Lit("files"), Own(GF)], Objects::None),
    gemini_object(Verb::Delete, &[Lit("files"), Own(GF)], Objects::Deletes),
];

/// Every entry, in the door's order.
pub fn entries() -> impl Iterator<Item = &'static Entry> {
    TABLE
        .iter()
        .chain(CONVERSATIONS.iter())
        .chain(GEMINI.iter())
        .chain(std::iter::once(&GEMINI_UPLOAD))
}

/// The three requests that are most of the traffic, found without
/// splitting the path.
pub const CHAT: &Entry = &TABLE[0];
pub const RESPONSES: &Entry = &TABLE[1];
pub const EMBEDDINGS: &Entry = &TABLE[2];

/// Endpoints the gateway knows and keeps closed: their use cannot be
/// metered (batches, fine-tuning, runs) or hands out other credentials
/// (realtime client secrets).
pub const CLOSED: [&str; 8] = [
    "batches",
    "fine_tuning",
    "assistants",
    "threads",
    "realtime",
    "evals",
    "organization",
    "containers",
];

impl Entry {
    /// Whether `segments` (the path after `/v1/`, split at `/`) is this
    /// endpoint's path.
    pub fn matches(&self, segments: &[&str]) -> bool {
        self.path.len() == segments.len()
            && self.path.iter().zip(segments).all(|(seg, s)| match seg {
                Lit(lit) => lit == s,
                Own(_) | Inner => !s.is_empty(),
                Call(method) => s
                    .rsplit_once(':')
                    .is_some_and(|(model, m)| !model.is_empty() && m == *method),
            })
    }

    /// Gemini's method and the model its path names, for a `Call` entry.
    pub fn call<'p>(&self, segments: &[&'p str]) -> Option<(&'static str, &'p str)> {
        self.path
            .iter()
            .zip(segments)
            .find_map(|(seg, s)| match seg {
                Call(method) => Some((*method, s.rsplit_once(':')?.0)),
                _ => None,
            })
    }

    /// The name records and the log give it: the path without ids, as the
    /// catalogue shows it (`/files/{file}`), and a Gemini method as
    /// `:generateContent`.
    pub fn record_name(&self) -> String {
        match self.path.last() {
            Some(Call(method)) => format!(":{method}"),
            _ => {
                let shown = self.shown_path();
                shown[self.api_prefix().len()..].to_owned()
            }
        }
    }

    /// The version the catalogue shows its path under.
    fn api_prefix(&self) -> &'static str {
        match self.face {
            Face::Gemini if self.objects == Objects::UploadsGeminiFile => Api::Upload.prefix(),
            Face::Gemini => Api::V1beta.prefix(),
            _ => Api::V1.prefix(),
        }
    }

    /// How many of its segments are literal (all, but for ids).
    pub fn literal_len(&self) -> usize {
        self.path.iter().filter(|s| matches!(s, Lit(_))).count()
    }

    /// The path as the README shows it: `/v1/files/{file}`,
    /// `/v1beta/models/{model}:generateContent`.
    pub fn shown_path(&self) -> String {
        let mut out = String::from(self.api_prefix());
        for seg in self.path {
            out.push('/');
            match seg {
                Lit(lit) => out.push_str(lit),
                Own(kind) => {
                    out.push('{');
                    out.push_str(kind.singular());
                    out.push('}');
                }
                Inner => out.push_str("{id}"),
                Call(method) => {
                    out.push_str("{model}:");
                    out.push_str(method);
                }
            }
        }
        out
    }

    /// The ids of account objects the path names, with their kinds.
    pub fn owned_ids<'p>(&self, segments: &[&'p str]) -> Vec<(ObjectKind, &'p str)> {
        self.path
            .iter()
            .zip(segments)
            .filter_map(|(seg, s)| match seg {
                Own(kind) => Some((*kind, *s)),
                _ => None,
            })
            .collect()
    }
}

/// Whether a path (after the version) is Gemini's `models/{model}:{method}`.
pub fn is_gemini_call(endpoint: &str) -> bool {
    endpoint
        .strip_prefix("/models/")
        .is_some_and(|rest| !rest.contains('/') && rest.contains(':'))
}

/// The entry for `method` and the path after `/v1/` (or `/v1beta/`, where
/// only Gemini's API is), if the table has one.
pub fn find(method: &Method, api: Api, rest: &str) -> Option<&'static Entry> {
    let method = Verb::of(method)?;
    if method == Verb::Post && api == Api::V1 {
        match rest {
            "chat/completions" => return Some(CHAT),
            "responses" => return Some(RESPONSES),
            "embeddings" => return Some(EMBEDDINGS),
            _ => {}
        }
    }
    let mut segments = [""; 6];
    let mut count = 0;
    for s in rest.split('/') {
        if count == segments.len() {
            return None; // deeper than any entry
        }
        segments[count] = s;
        count += 1;
    }
    let segments = &segments[..count];
    let upload = |e: &Entry| e.objects == Objects::UploadsGeminiFile;
    entries().find(|e| {
        e.method == method
            && match api {
                Api::V1 => !upload(e),
                Api::V1beta => e.face == Face::Gemini && !upload(e),
                Api::Upload => upload(e),
            }
            && e.matches(segments)
    })
}

/// Whether some entry has this path with another method (a 405 in spirit;
/// answered as an unknown endpoint that says which methods it takes).
pub fn methods_for(rest: &str) -> Vec<&'static str> {
    let segments: Vec<&str> = rest.split('/').collect();
    let mut methods: Vec<&'static str> = Vec::new();
    for e in entries().filter(|e| e.matches(&segments)) {
        if !methods.contains(&e.method.as_str()) {
            methods.push(e.method.as_str());
        }
    }
    methods
}

/// The README's endpoint table, made from the catalogue (a test keeps the
/// README's copy equal to it).
pub fn markdown() -> String {
    let mut out = String::from(
        "| method | path | routed by | metered | objects | body | uses a request |\n|---|---|---|---|---|---|---|\n",
    );
    for e in entries() {
        let routed = match e.serve {
            Serve::Model => "`model`",
            Serve::Object => "owner",
            Serve::ModelList | Serve::ModelInfo => "gateway",
        };
        let metered = match e.meter {
            Meter::Tokens { .. } => "tokens (usage; else estimated)",
            Meter::TokensLater => "tokens; settled later if not final",
            Meter::Input => "tokens (usage; else estimated)",
            Meter::Speech => "characters, tokens, audio length (estimated)",
            Meter::Transcription => "usage; text replies estimated",
            Meter::Images => "usage, else per image",
            Meter::Free => "free upstream; recorded",
            Meter::Request => "a request",
        };
        let objects = match e.objects {
            Objects::None => String::from("-"),
            Objects::Creates(k) => format!("creates {}", k.singular()),
            Objects::CompletesUpload => "creates file".into(),
            Objects::Lists(k) => format!("lists own {}", k.as_str()),
            Objects::Deletes => "deletes".into(),
            Objects::UploadsGeminiFile => "creates upload, then gemini_file".into(),
        };
        let body = match e.body {
            Body::None => "-",
            Body::Json => "JSON",
            Body::Form => "form",
            Body::JsonOrForm => "JSON or form",
            Body::Upload => "JSON, then bytes",
        };
        out.push_str(&format!(
            "| {} | `{}` | {routed} | {metered} | {objects} | {body} | {} |\n",
            e.method.as_str(),
            e.shown_path(),
            if e.uses_request { "yes" } else { "no" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The whole table, checked as a class: every entry has a rule for its
    /// model, its metering, its body and its objects that fits what it
    /// does, and no two entries claim one request.
    #[test]
    fn every_entry_has_coherent_rules() {
        let mut seen = HashSet::new();
        for e in entries() {
            let name = format!("{} {}", e.method.as_str(), e.shown_path());
            assert!(seen.insert(name.clone()), "{name} twice");
            match e.serve {
                Serve::Model => {
                    assert_eq!(e.method, Verb::Post, "{name}");
                    assert_ne!(e.body, Body::None, "{name}: a model comes in a body");
                    assert!(e.uses_request, "{name}: reaches a model");
                    assert_eq!(e.path.iter().filter(|s| matches!(s, Own(_))).count(), 0);
                }
                Serve::Object | Serve::ModelList | Serve::ModelInfo => {
                    assert_eq!(e.meter, Meter::Request, "{name}: metered as a request");
                    assert!(!e.uses_request, "{name}: uses no request limit");
                }
            }
            // A body only where the method has one.
            if !matches!(e.method, Verb::Post | Verb::Patch) {
                assert_eq!(e.body, Body::None, "{name}");
            }
            match e.objects {
                Objects::Lists(_) => assert_eq!(e.method, Verb::Get, "{name}"),
                Objects::Deletes => {
                    assert_eq!(e.method, Verb::Delete, "{name}");
                    assert!(matches!(e.path.last(), Some(Own(_))), "{name}");
                }
                Objects::Creates(_) | Objects::CompletesUpload | Objects::UploadsGeminiFile => {
                    assert_eq!(e.method, Verb::Post, "{name}")
                }
                Objects::None => {}
            }
            // An object endpoint reaches objects only through one the caller owns.
            if e.serve == Serve::Object
                && !matches!(
                    e.objects,
                    Objects::Lists(_) | Objects::Creates(_) | Objects::UploadsGeminiFile
                )
            {
                assert!(
                    e.path.iter().any(|s| matches!(s, Own(_))),
                    "{name}: names no object of the caller's"
                );
            }
            // `Inner` only below an owned object (or a model's name).
            if let Some(i) = e.path.iter().position(|s| *s == Inner) {
                assert!(
                    e.serve == Serve::ModelInfo || e.path[..i].iter().any(|s| matches!(s, Own(_))),
                    "{name}"
                );
            }
        }
        // Every kind of object can be created here, so that one can own it.
        for kind in ObjectKind::ALL {
            assert!(
                entries().any(|e| e.objects == Objects::Creates(kind)
                    || (kind == ObjectKind::Files && e.objects == Objects::CompletesUpload)
                    || (kind == ObjectKind::GeminiFiles
                        && e.objects == Objects::UploadsGeminiFile)),
                "{kind:?} is never created"
            );
        }
    }

    /// The README's endpoint table is this table: regenerate it with
    /// `cargo test --lib catalogue -- --nocapture` when an entry changes.
    #[test]
    fn the_readme_shows_the_catalogue() {
        let table = markdown();
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&table),
            "README.md's endpoint table is stale; it should read:\n{table}"
        );
    }

    #[test]
    fn requests_find_their_entry() {
        let find = |m: Method, p: &str| find(&m, Api::V1, p).map(|e| e.shown_path());
        assert_eq!(
            find(Method::POST, "chat/completions").unwrap(),
            "/v1/chat/completions"
        );
        assert_eq!(
            find(Method::GET, "vector_stores/vs_1/files/file-2/content").unwrap(),
            "/v1/vector_stores/{vector_store}/files/{file}/content"
        );
        assert_eq!(
            find(Method::GET, "models/ft:gpt-4o").unwrap(),
            "/v1/models/{id}"
        );
        assert_eq!(find(Method::POST, "models"), None);
        assert_eq!(find(Method::GET, "embeddings"), None);
        assert_eq!(find(Method::PUT, "files"), None);
        assert_eq!(find(Method::GET, "files/file-1/content/more"), None);
        assert_eq!(find(Method::GET, "a/b/c/d/e/f/g"), None);
        // An empty id is no id.
        assert_eq!(find(Method::GET, "files/"), None);
        let e = super::find(&Method::GET, Api::V1, "vector_stores/vs_1/files/file-2").unwrap();
        assert_eq!(
            e.owned_ids(&["vector_stores", "vs_1", "files", "file-2"]),
            [(VS, "vs_1"), (F, "file-2")]
        );
        assert_eq!(methods_for("responses/resp_1"), ["GET", "DELETE"]);
    }

    #[test]
    fn geminis_methods_under_either_version() {
        let beta = |m: Method, p: &str| super::find(&m, Api::V1beta, p);
        let v1 = |m: Method, p: &str| super::find(&m, Api::V1, p);
        for api in [Api::V1, Api::V1beta] {
            let e = super::find(
                &Method::POST,
                api,
                "models/gemini-2.5-flash:generateContent",
            )
            .unwrap();
            assert_eq!(e.face, Face::Gemini);
            let segments = ["models", "gemini-2.5-flash:generateContent"];
            assert_eq!(
                e.call(&segments),
                Some(("generateContent", "gemini-2.5-flash"))
            );
            assert_eq!(e.record_name(), ":generateContent");
        }
        assert_eq!(
            beta(Method::POST, "models/m:streamGenerateContent")
                .unwrap()
                .shown_path(),
            "/v1beta/models/{model}:streamGenerateContent"
        );
        // Only Gemini's API is under /v1beta; a method needs a model.
        assert!(beta(Method::POST, "chat/completions").is_none());
        assert!(beta(Method::POST, "models/:generateContent").is_none());
        assert!(beta(Method::POST, "models/m:deleteEverything").is_none());
        // (A GET asks for a model by that name.)
        assert_eq!(
            beta(Method::GET, "models/m:generateContent").unwrap().serve,
            Serve::ModelInfo
        );
        // The model lists: OpenAI's first under /v1, Gemini's under /v1beta.
        assert_eq!(v1(Method::GET, "models").unwrap().face, Face::OpenAi);
        assert_eq!(beta(Method::GET, "models").unwrap().face, Face::Gemini);
        assert_eq!(
            v1(Method::GET, "models/ft:gpt-4o").unwrap().face,
            Face::OpenAi
        );
        assert_eq!(
            v1(Method::GET, "files/file-1").unwrap().record_name(),
            "/files/{file}"
        );
        assert_eq!(Api::split("/v1beta/models"), Some((Api::V1beta, "/models")));
        assert_eq!(Api::split("/v1/models"), Some((Api::V1, "/models")));
        assert_eq!(Api::split("/v1betax/models"), None);
        assert_eq!(Api::split("/v2/models"), None);
    }
}
