//! The door: every `/v1` request is parsed once, from its raw path and
//! method, into an `Endpoint`. That one value decides how the request is
//! routed, how its model is read, how its reply is metered and whether it
//! is forwarded at all. Nothing is decoded or normalised: a path that is
//! not exactly one of the table's is refused, so no spelling of a path can
//! reach the upstream as a metered endpoint while the gateway took it for
//! something else (upstreams decode `%2F`, merge `//` and resolve `..`).

use crate::catalogue::{self, Api, Entry};
use crate::paths::check_path;
use actix_web::http::Method;

/// What a request is, as the gateway treats it.
#[derive(Debug, Clone, Copy)]
pub enum Endpoint {
    /// An endpoint of the catalogue.
    Known(&'static Entry),
    /// A path the operator opened with `endpoints.allow` (the index of its
    /// prefix there): forwarded as it is, counted as a request only,
    /// refused to limited users.
    Extra(usize),
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

/// Decides what `path` (the raw request path, `/v1` or `/v1beta`
/// included) is. `allowed` are the operator's extra prefixes (`/batches`,
/// under `/v1`), already checked with `paths::check_prefix`; they open only
/// what the catalogue refuses, never change what it decides.
pub fn enter(method: &Method, path: &str, allowed: &[String]) -> Result<Endpoint, Refused> {
    check_path(path).map_err(Refused::BadPath)?;
    let Some((api, rest)) = Api::split(path) else {
        return Err(Refused::Unknown);
    };
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(Refused::Unknown);
    };
    if let Some(entry) = catalogue::find(method, api, rest) {
        return Ok(Endpoint::Known(entry));
    }
    if api != Api::V1 {
        return Err(Refused::Unknown);
    }
    let after = &path[3..];
    let opened = allowed.iter().position(|p| {
        after
            .strip_prefix(p.as_str())
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    });
    if let Some(i) = opened {
        return Ok(Endpoint::Extra(i));
    }
    let first = rest.split('/').next().unwrap_or_default();
    match catalogue::CLOSED.iter().find(|c| **c == first) {
        Some(c) => Err(Refused::NotAllowed(c)),
        None => Err(Refused::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the door made of a request: the catalogue's path, `extra`,
    /// or the refusal.
    fn door(method: Method, path: &str, allowed: &[String]) -> Result<String, Refused> {
        enter(&method, path, allowed).map(|e| match e {
            Endpoint::Known(entry) => entry.shown_path(),
            Endpoint::Extra(_) => "extra".into(),
        })
    }

    fn post(path: &str) -> Result<String, Refused> {
        door(Method::POST, path, &[])
    }

    fn known(path: &str) -> Result<String, Refused> {
        Ok(path.to_owned())
    }

    #[test]
    fn the_table() {
        assert_eq!(post("/v1/chat/completions"), known("/v1/chat/completions"));
        assert_eq!(
            post("/v1/audio/transcriptions"),
            known("/v1/audio/transcriptions")
        );
        assert_eq!(door(Method::GET, "/v1/models", &[]), known("/v1/models"));
        assert_eq!(
            door(Method::GET, "/v1/models/gpt-4o", &[]),
            known("/v1/models/{id}")
        );
        assert_eq!(
            door(Method::GET, "/v1/chat/completions", &[]),
            known("/v1/chat/completions")
        );
        assert_eq!(
            door(Method::GET, "/v1/files/file-1/content", &[]),
            known("/v1/files/{file}/content")
        );
        assert_eq!(
            door(Method::GET, "/v1/responses/resp_1/input_items", &[]),
            known("/v1/responses/{response}/input_items")
        );
        // Metered endpoints take POST only.
        assert_eq!(
            door(Method::GET, "/v1/embeddings", &[]),
            Err(Refused::Unknown)
        );
        assert_eq!(post("/v1/models"), Err(Refused::Unknown));
        assert_eq!(post("/v1/batches"), Err(Refused::NotAllowed("batches")));
        assert_eq!(
            post("/v1/fine_tuning/jobs"),
            Err(Refused::NotAllowed("fine_tuning"))
        );
        assert_eq!(post("/v1/internal/secret"), Err(Refused::Unknown));
        // Gemini's API, under either version; nothing else under /v1beta.
        assert_eq!(
            post("/v1beta/models/gemini-2.5-flash:generateContent"),
            known("/v1beta/models/{model}:generateContent")
        );
        assert_eq!(
            post("/v1/models/gemini-2.5-flash:countTokens"),
            known("/v1beta/models/{model}:countTokens")
        );
        assert_eq!(post("/v1beta/chat/completions"), Err(Refused::Unknown));
        assert_eq!(post("/v1beta/batches"), Err(Refused::Unknown));
        assert_eq!(
            door(Method::GET, "/v1beta/models", &[]),
            known("/v1beta/models")
        );
        assert_eq!(post("/v2/chat/completions"), Err(Refused::Unknown));
        assert_eq!(post("/v1"), Err(Refused::Unknown));
        // Paths under an object that the catalogue does not name are not
        // forwarded (they once were, by their first segments).
        assert_eq!(
            door(Method::GET, "/v1/files/file-1/anything", &[]),
            Err(Refused::Unknown)
        );
    }

    #[test]
    fn opened_prefixes_match_whole_segments() {
        let allowed = vec!["/batches".to_string()];
        for path in ["/v1/batches", "/v1/batches/batch_1/cancel"] {
            assert_eq!(
                door(Method::DELETE, path, &allowed),
                known("extra"),
                "{path}"
            );
        }
        assert_eq!(
            door(Method::POST, "/v1/batchesx", &allowed),
            Err(Refused::Unknown)
        );
        // An opened prefix never turns a metered endpoint into an extra one.
        let all = vec!["/chat".to_string()];
        assert_eq!(
            door(Method::POST, "/v1/chat/completions", &all),
            known("/v1/chat/completions")
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
            door(Method::GET, "/v1/models/ft%3Agpt-4o", &[]),
            known("/v1/models/{id}")
        );
    }

    proptest! {
        /// Random paths never panic; what the door lets in is a clean path
        /// of the catalogue (nothing outside it is ever forwarded).
        #[test]
        fn random_paths_never_pass_unclean(
            path in "(/[a-z0-9%._;\\\\~-]{0,12}){0,5}/?",
            method in prop::sample::select(vec![Method::GET, Method::POST, Method::DELETE, Method::PUT]),
        ) {
            if let Ok(e) = enter(&method, &path, &[]) {
                prop_assert!(matches!(e, Endpoint::Known(_)));
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
            if let Ok(Endpoint::Known(e)) = enter(&Method::POST, &path, &[]) {
                if e.serve == crate::catalogue::Serve::Model {
                    prop_assert_eq!(path, clean);
                }
            }
        }
    }
}
