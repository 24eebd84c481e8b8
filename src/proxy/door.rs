//! The door: every `/v1` request is parsed once, from its raw path and
//! method, into an `Endpoint`. That one value decides how the request is
//! routed, how its model is read, how its reply is metered and whether it
//! is forwarded at all. Nothing is decoded or normalised: a path that is
//! not exactly one of the table's is refused, so no spelling of a path can
//! reach the upstream as a metered endpoint while the gateway took it for
//! something else (upstreams decode `%2F`, merge `//` and resolve `..`).

pub use crate::objects::ObjectKind;
use crate::paths::check_path;
use actix_web::http::Method;

/// What a request is, as the gateway treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// A model-aware endpoint (`POST`): routed by model, limited, metered.
    Metered(Metered),
    /// `GET /v1/models`: answered by the gateway.
    ModelList,
    /// `GET /v1/models/{id}`: answered by the gateway.
    Model,
    /// An object the upstream account keeps (files, stored responses, …).
    Object(ObjectKind),
    /// A path the operator opened with `endpoints.allow`: forwarded as it
    /// is, counted as a request only.
    Extra,
}

/// The model-aware endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metered {
    ChatCompletions,
    Completions,
    Embeddings,
    Responses,
    Moderations,
    Images,
    Audio,
    /// Anthropic's Messages API.
    Messages,
    /// `messages/count_tokens`: a request, not tokens.
    CountTokens,
}

impl Metered {
    /// Whether the reply reports token usage worth reading.
    pub fn counted(self) -> bool {
        self != Metered::CountTokens
    }

    /// Whether tokens can be estimated from the texts when the upstream
    /// reports none.
    pub fn estimable(self) -> bool {
        matches!(
            self,
            Metered::ChatCompletions
                | Metered::Completions
                | Metered::Embeddings
                | Metered::Responses
                | Metered::Messages
        )
    }
}

/// Why the door did not let a request in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The path is malformed; the text says how.
    BadPath(String),
    /// A known endpoint the gateway does not forward unless opened.
    NotAllowed(&'static str),
    /// Not an endpoint of the API, or not with this method.
    Unknown,
}

/// Endpoints the gateway knows and keeps closed: their use cannot be
/// metered (batches, fine-tuning, runs) or hands out other credentials
/// (realtime client secrets).
const CLOSED: [&str; 7] = [
    "batches",
    "fine_tuning",
    "assistants",
    "threads",
    "realtime",
    "evals",
    "organization",
];

/// Decides what `path` (the raw request path, `/v1` included) is.
/// `allowed` are the operator's extra prefixes (`/batches`), already
/// checked with `paths::check_prefix`; they open only what the table
/// refuses, never change what it decides.
pub fn enter(method: &Method, path: &str, allowed: &[String]) -> Result<Endpoint, Refused> {
    check_path(path).map_err(Refused::BadPath)?;
    let Some(rest) = path.strip_prefix("/v1/") else {
        return Err(Refused::Unknown);
    };
    match classify(method, rest) {
        Ok(e) => Ok(e),
        Err(refused) => {
            let after = &path[3..];
            let opened = allowed.iter().any(|p| {
                after
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.is_empty() || r.starts_with('/'))
            });
            if opened {
                Ok(Endpoint::Extra)
            } else {
                Err(refused)
            }
        }
    }
}

/// The table, on the segments after `/v1/`.
fn classify(method: &Method, rest: &str) -> Result<Endpoint, Refused> {
    // The most common requests, without splitting the path.
    if *method == Method::POST {
        match rest {
            "chat/completions" => return Ok(Endpoint::Metered(Metered::ChatCompletions)),
            "responses" => return Ok(Endpoint::Metered(Metered::Responses)),
            "embeddings" => return Ok(Endpoint::Metered(Metered::Embeddings)),
            _ => {}
        }
    }
    let mut segments = [""; 4];
    let mut count = 0;
    for s in rest.split('/') {
        if count == segments.len() {
            count += 1;
            break;
        }
        segments[count] = s;
        count += 1;
    }
    // Deeper paths than four segments keep their first four; only object
    // paths go that deep, and they match on their first two.
    let segments = &segments[..count.min(4)];
    let post = *method == Method::POST;
    let get = *method == Method::GET;
    let metered = |m: Metered| {
        if post {
            Ok(Endpoint::Metered(m))
        } else {
            Err(Refused::Unknown)
        }
    };
    let object = |kind: ObjectKind| {
        if matches!(*method, Method::GET | Method::POST | Method::DELETE) {
            Ok(Endpoint::Object(kind))
        } else {
            Err(Refused::Unknown)
        }
    };
    match *segments {
        ["chat", "completions"] if post => metered(Metered::ChatCompletions),
        // GET lists the stored chat completions.
        ["chat", "completions"] if get => object(ObjectKind::ChatCompletions),
        ["chat", "completions", _, ..] => object(ObjectKind::ChatCompletions),
        ["completions"] => metered(Metered::Completions),
        ["embeddings"] => metered(Metered::Embeddings),
        ["responses"] if post => metered(Metered::Responses),
        ["responses", _, ..] => object(ObjectKind::Responses),
        ["moderations"] => metered(Metered::Moderations),
        ["images", "generations" | "edits" | "variations"] => metered(Metered::Images),
        ["audio", "transcriptions" | "translations" | "speech"] => metered(Metered::Audio),
        ["messages"] => metered(Metered::Messages),
        ["messages", "count_tokens"] => metered(Metered::CountTokens),
        ["models"] if get => Ok(Endpoint::ModelList),
        ["models", _] if get => Ok(Endpoint::Model),
        ["files", ..] => object(ObjectKind::Files),
        ["uploads", ..] => object(ObjectKind::Uploads),
        ["vector_stores", ..] => object(ObjectKind::VectorStores),
        ["conversations", ..] => object(ObjectKind::Conversations),
        [first, ..] => match CLOSED.iter().find(|c| **c == first) {
            Some(c) => Err(Refused::NotAllowed(c)),
            None => Err(Refused::Unknown),
        },
        [] => Err(Refused::Unknown),
    }
}

/// Where an account object's path begins (after `/v1`).
fn object_prefix(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::Files => "/files",
        ObjectKind::Uploads => "/uploads",
        ObjectKind::VectorStores => "/vector_stores",
        ObjectKind::Responses => "/responses",
        ObjectKind::ChatCompletions => "/chat/completions",
        ObjectKind::Conversations => "/conversations",
    }
}

/// The object an account-object path names (`/files/{id}/content` names
/// `{id}`), and what follows it; `None` for the kind's own path (a list,
/// or a create).
pub fn object_id(kind: ObjectKind, endpoint: &str) -> Option<(&str, &str)> {
    let rest = endpoint
        .strip_prefix(object_prefix(kind))?
        .strip_prefix('/')?;
    Some(match rest.split_once('/') {
        Some((id, after)) => (id, after),
        None => (rest, ""),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn post(path: &str) -> Result<Endpoint, Refused> {
        enter(&Method::POST, path, &[])
    }

    #[test]
    fn the_table() {
        use Endpoint::*;
        assert_eq!(
            post("/v1/chat/completions"),
            Ok(Metered(super::Metered::ChatCompletions))
        );
        assert_eq!(
            post("/v1/audio/transcriptions"),
            Ok(Metered(super::Metered::Audio))
        );
        assert_eq!(enter(&Method::GET, "/v1/models", &[]), Ok(ModelList));
        assert_eq!(enter(&Method::GET, "/v1/models/gpt-4o", &[]), Ok(Model));
        assert_eq!(
            enter(&Method::GET, "/v1/chat/completions", &[]),
            Ok(Object(ObjectKind::ChatCompletions))
        );
        assert_eq!(
            enter(&Method::GET, "/v1/files/file-1/content", &[]),
            Ok(Object(ObjectKind::Files))
        );
        assert_eq!(
            enter(&Method::GET, "/v1/responses/resp_1/input_items", &[]),
            Ok(Object(ObjectKind::Responses))
        );
        // Metered endpoints take POST only.
        assert_eq!(
            enter(&Method::GET, "/v1/embeddings", &[]),
            Err(Refused::Unknown)
        );
        assert_eq!(post("/v1/models"), Err(Refused::Unknown));
        assert_eq!(post("/v1/batches"), Err(Refused::NotAllowed("batches")));
        assert_eq!(
            post("/v1/fine_tuning/jobs"),
            Err(Refused::NotAllowed("fine_tuning"))
        );
        assert_eq!(post("/v1/internal/secret"), Err(Refused::Unknown));
        assert_eq!(post("/v2/chat/completions"), Err(Refused::Unknown));
        assert_eq!(post("/v1"), Err(Refused::Unknown));
    }

    #[test]
    fn opened_prefixes_match_whole_segments() {
        let allowed = vec!["/batches".to_string()];
        for path in ["/v1/batches", "/v1/batches/batch_1/cancel"] {
            assert_eq!(
                enter(&Method::DELETE, path, &allowed),
                Ok(Endpoint::Extra),
                "{path}"
            );
        }
        assert_eq!(
            enter(&Method::POST, "/v1/batchesx", &allowed),
            Err(Refused::Unknown)
        );
        // An opened prefix never turns a metered endpoint into an extra one.
        let all = vec!["/chat".to_string()];
        assert_eq!(
            enter(&Method::POST, "/v1/chat/completions", &all),
            Ok(Endpoint::Metered(Metered::ChatCompletions))
        );
        assert!(crate::paths::check_prefix("/batches").is_ok());
        for bad in ["batches", "/v1/batches", "/batches/", "/a//b", "/a%2Fb"] {
            assert!(crate::paths::check_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_variant_spelling_is_refused() {
        for path in [
            "/v1/chat%2Fcompletions",
            "/v1/chat%2fcompletions",
            "/v1//chat/completions",
            "//v1/chat/completions",
            "/v1/chat/completions/",
            "/v1/./chat/completions",
            "/v1/x/../chat/completions",
            "/v1/../../internal/secret",
            "/v1/%2E%2E/secret",
            "/v1/chat/c%6Fmpletions",
            "/v1/chat\\completions",
            "/v1/chat%5Ccompletions",
            "/v1/chat/completions;x=1",
            "/v1/chat/completions%00",
            "/v1/chat/completions%",
            "/v1/chat/completions%zz",
            "/v1/chat/completions\t",
        ] {
            let refused = post(path);
            assert!(
                matches!(refused, Err(Refused::BadPath(_))),
                "{path}: {refused:?}"
            );
        }
        let Err(Refused::BadPath(why)) = post("//v1/chat/completions") else {
            panic!()
        };
        assert!(why.contains("base URL"), "{why}");
        // Escapes of characters that need one are fine (ids, model names).
        assert_eq!(
            enter(&Method::GET, "/v1/models/ft%3Agpt-4o", &[]),
            Ok(Endpoint::Model)
        );
    }

    #[test]
    fn object_paths_name_their_object() {
        assert_eq!(object_id(ObjectKind::Files, "/files"), None);
        assert_eq!(
            object_id(ObjectKind::Files, "/files/file-1/content"),
            Some(("file-1", "content"))
        );
        assert_eq!(
            object_id(ObjectKind::ChatCompletions, "/chat/completions/chatcmpl-1"),
            Some(("chatcmpl-1", ""))
        );
        assert_eq!(
            object_id(ObjectKind::Uploads, "/uploads/upload_1/parts"),
            Some(("upload_1", "parts"))
        );
    }

    fn known_path(e: &Endpoint) -> bool {
        !matches!(e, Endpoint::Extra)
    }

    proptest! {
        /// Random paths never panic; what the door lets in is a clean path
        /// of the table (nothing outside it is ever forwarded).
        #[test]
        fn random_paths_never_pass_unclean(
            path in "(/[a-z0-9%._;\\\\~-]{0,12}){0,5}/?",
            method in prop::sample::select(vec![Method::GET, Method::POST, Method::DELETE, Method::PUT]),
        ) {
            if let Ok(e) = enter(&method, &path, &[]) {
                prop_assert!(known_path(&e));
                prop_assert!(check_path(&path).is_ok());
                prop_assert!(path.starts_with("/v1/"));
                prop_assert!(!path.contains("//") && !path.contains("/.") && !path.ends_with('/'));
                prop_assert!(!path.contains(';') && !path.contains('\\'));
            }
        }

        /// A prefix of a metered path with any byte inserted is never metered
        /// unless it is exactly the metered path.
        #[test]
        fn only_exact_metered_paths_are_metered(
            at in 0usize..21, byte in prop::sample::select(vec!["/", "%2F", ".", "%2E", "//", ";", "%63"]),
        ) {
            let clean = "/v1/chat/completions";
            let at = at.min(clean.len());
            let path = format!("{}{}{}", &clean[..at], byte, &clean[at..]);
            if let Ok(Endpoint::Metered(_)) = enter(&Method::POST, &path, &[]) {
                prop_assert_eq!(path, clean);
            }
        }
    }
}
