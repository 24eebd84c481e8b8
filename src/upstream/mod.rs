//! Upstreams: which ones serve a model (tried in order), where a request
//! goes on each, and with which key.

pub mod azure;
pub mod client;
pub mod echo;
pub mod failover;
pub mod headers;
pub mod pool;

use crate::config::{UpstreamConfig, UpstreamKind, DEFAULT_OPENAI_BASE_URL};
use crate::model_pattern::ModelPattern;
use actix_web::http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use actix_web::http::StatusCode;
use anyhow::Context;
use bytes::Bytes;
use pool::KeyPool;
use std::sync::Arc;

pub struct Upstream {
    pub name: Arc<str>,
    models: Vec<ModelPattern>,
    pub target: Target,
    /// The outbound proxy its connections go through, if any.
    pub proxy: Option<String>,
    /// `OpenAI-Organization` and `OpenAI-Project`, as the operator set them.
    pub account_headers: Vec<(HeaderName, HeaderValue)>,
}

pub enum Target {
    /// Any OpenAI-compatible server; `base_url` has no trailing slash and
    /// request paths after `/v1` are appended to it.
    OpenAi {
        base_url: String,
        keys: KeyPool,
    },
    Azure {
        azure: azure::Azure,
        keys: KeyPool,
    },
    /// Anthropic's API: `{base_url}/v1/messages` with `x-api-key`, and its
    /// OpenAI-compatible `{base_url}/v1/chat/completions` with a Bearer key.
    /// `base_url` has no `/v1` and no trailing slash.
    Anthropic {
        base_url: String,
        keys: KeyPool,
    },
    /// Google's Gemini API: `{base_url}/{version}/models/{model}:{method}`
    /// with `x-goog-api-key` (the version the client used), and its
    /// OpenAI-compatible `{base_url}/v1beta/openai/…` with a Bearer key.
    /// `base_url` has no version and no trailing slash.
    Gemini {
        base_url: String,
        keys: KeyPool,
    },
    Echo(echo::Echo),
}

impl Upstream {
    /// Whether it answers requests in `face`'s API: Gemini's only a
    /// `gemini` upstream (or echo) does; a `gemini` upstream answers no
    /// Messages API.
    pub fn speaks(&self, face: crate::catalogue::Face) -> bool {
        use crate::catalogue::Face;
        match (face, &self.target) {
            (Face::Gemini, target) => matches!(target, Target::Gemini { .. } | Target::Echo(_)),
            (Face::Anthropic, Target::Gemini { .. }) => false,
            _ => true,
        }
    }

    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|p| p.matches(model))
    }

    /// Models listed explicitly (not patterns), for `/v1/models`.
    pub fn listed_models(&self) -> Vec<&str> {
        self.models
            .iter()
            .filter(|p| p.is_name())
            .map(|p| p.as_str())
            .collect()
    }

    /// Whether `/v1/models` should ask the upstream itself: an OpenAI
    /// upstream that serves model patterns rather than a fixed list.
    pub fn lists_live(&self) -> bool {
        matches!(self.target, Target::OpenAi { .. }) && self.models.iter().any(|p| !p.is_name())
    }

    /// Whether an error reply says that the key itself is invalid: OpenAI's
    /// 401 `invalid_api_key`, or Azure's 401 for an invalid subscription
    /// key. Only then is a key parked; any other 401 or 403 (a bad
    /// organization header, a region, a model the account lacks) could be
    /// provoked by a client.
    pub fn rejects_key(&self, status: StatusCode, body: &[u8]) -> bool {
        if let Target::Gemini { .. } = self.target {
            return status.is_client_error() && gemini_rejects_key(body);
        }
        if status != StatusCode::UNAUTHORIZED {
            return false;
        }
        let error = crate::error::ErrorBody::parse(body).error;
        let invalid_key = error.code.as_deref() == Some("invalid_api_key");
        match &self.target {
            Target::OpenAi { .. } => invalid_key,
            Target::Azure { .. } => {
                invalid_key
                    || error
                        .message
                        .to_ascii_lowercase()
                        .contains("invalid subscription key")
            }
            // `{"type": "error", "error": {"type": "authentication_error"}}`
            // (what Anthropic answers a bad `x-api-key`, and on its
            // OpenAI-compatible path).
            Target::Anthropic { .. } => invalid_key || error.kind == "authentication_error",
            Target::Gemini { .. } => gemini_rejects_key(body),
            Target::Echo(_) => false,
        }
    }

    pub fn keys(&self) -> Option<&KeyPool> {
        match &self.target {
            Target::OpenAi { keys, .. }
            | Target::Azure { keys, .. }
            | Target::Anthropic { keys, .. }
            | Target::Gemini { keys, .. } => Some(keys),
            Target::Echo(_) => None,
        }
    }

    fn from_config(c: &UpstreamConfig, global_proxy: Option<&str>) -> anyhow::Result<Upstream> {
        let models = c
            .models
            .iter()
            .map(|m| ModelPattern::new(m))
            .collect::<Result<_, _>>()
            .with_context(|| format!("upstream `{}`: bad model pattern", c.name))?;
        let pool = |header: HeaderName, bearer: bool| {
            KeyPool::new(header, &c.api_keys, bearer)
                .map_err(|e| anyhow::anyhow!("upstream `{}`: {e}", c.name))
        };
        let target = match c.kind {
            UpstreamKind::Openai => Target::OpenAi {
                base_url: c
                    .base_url
                    .as_deref()
                    .unwrap_or(DEFAULT_OPENAI_BASE_URL)
                    .trim_end_matches('/')
                    .to_owned(),
                keys: pool(AUTHORIZATION, true)?,
            },
            UpstreamKind::Azure => Target::Azure {
                azure: azure::Azure::new(
                    c.endpoint.as_deref().unwrap_or_default(),
                    c.api_version.as_deref().unwrap_or_default(),
                    c.deployments.clone(),
                ),
                keys: pool(HeaderName::from_static("api-key"), false)?,
            },
            UpstreamKind::Anthropic => Target::Anthropic {
                base_url: c
                    .base_url
                    .as_deref()
                    .unwrap_or(crate::config::DEFAULT_ANTHROPIC_BASE_URL)
                    .trim_end_matches('/')
                    .to_owned(),
                keys: pool(HeaderName::from_static("x-api-key"), false)?,
            },
            UpstreamKind::Gemini => Target::Gemini {
                base_url: c
                    .base_url
                    .as_deref()
                    .unwrap_or(crate::config::DEFAULT_GEMINI_BASE_URL)
                    .trim_end_matches('/')
                    .to_owned(),
                keys: pool(HeaderName::from_static("x-goog-api-key"), false)?,
            },
            UpstreamKind::Echo => Target::Echo(echo::Echo),
        };
        let mut account_headers = Vec::new();
        for (name, value) in [
            ("openai-organization", &c.organization),
            ("openai-project", &c.project),
        ] {
            if let Some(v) = value {
                let value = HeaderValue::from_str(v).map_err(|_| {
                    anyhow::anyhow!("upstream `{}`: `{name}` cannot be a header", c.name)
                })?;
                account_headers.push((HeaderName::from_static(name), value));
            }
        }
        Ok(Upstream {
            name: Arc::from(c.name.as_str()),
            models,
            target,
            proxy: c.proxy.clone().or_else(|| global_proxy.map(str::to_owned)),
            account_headers,
        })
    }
}

/// Google's answer to a bad key: `400 INVALID_ARGUMENT` (or 401/403) whose
/// details give the reason `API_KEY_INVALID` (a client cannot provoke it:
/// its own key never reaches Google).
fn gemini_rejects_key(body: &[u8]) -> bool {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    v["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["reason"] == "API_KEY_INVALID")
}

/// The configured upstreams, in the order they are tried.
pub struct Upstreams {
    list: Vec<Upstream>,
    /// Every upstream key and its hint, longest first, for scrubbing.
    secrets: Vec<(String, String)>,
}

impl Upstreams {
    pub fn from_config(
        configs: &[UpstreamConfig],
        global_proxy: Option<&str>,
    ) -> anyhow::Result<Upstreams> {
        let list = configs
            .iter()
            .map(|c| Upstream::from_config(c, global_proxy))
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            !list.is_empty(),
            "no upstream is configured: add `upstreams:` to the config file, set OPENAI_API_KEY, or run `chatgate serve --demo`"
        );
        let mut secrets: Vec<(String, String)> = configs
            .iter()
            .flat_map(|c| &c.api_keys)
            .filter(|k| !k.is_empty())
            .map(|k| (k.clone(), crate::keys::hint(k)))
            .collect();
        secrets.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        secrets.dedup();
        Ok(Upstreams { list, secrets })
    }

    /// `text` with every upstream key replaced by its hint (error replies
    /// passed through: some upstreams quote the key they were given).
    pub fn scrub(&self, text: &[u8]) -> Bytes {
        let mut out = text.to_vec();
        for (secret, hint) in &self.secrets {
            let finder = memchr::memmem::Finder::new(secret.as_bytes());
            if finder.find(&out).is_none() {
                continue;
            }
            let mut replaced = Vec::with_capacity(out.len());
            let mut at = 0;
            for hit in finder.find_iter(&out) {
                if hit < at {
                    continue;
                }
                replaced.extend_from_slice(&out[at..hit]);
                replaced.extend_from_slice(hint.as_bytes());
                at = hit + secret.len();
            }
            replaced.extend_from_slice(&out[at..]);
            out = replaced;
        }
        Bytes::from(out)
    }

    pub fn all(&self) -> &[Upstream] {
        &self.list
    }

    /// The upstream called `name`, if it is still configured.
    pub fn named(&self, name: &str) -> Option<&Upstream> {
        self.list.iter().find(|u| &*u.name == name)
    }

    /// Every model an upstream names explicitly.
    pub fn named_models(&self) -> impl Iterator<Item = &str> {
        self.list.iter().flat_map(|u| u.listed_models())
    }

    pub fn has_echo(&self) -> bool {
        self.list
            .iter()
            .any(|u| matches!(u.target, Target::Echo(_)))
    }

    /// The upstreams serving `model`, in order; without a model, the first.
    pub fn candidates<'a>(&'a self, model: Option<&'a str>) -> Vec<&'a Upstream> {
        match model {
            Some(m) => self.list.iter().filter(|u| u.serves(m)).collect(),
            None => self.list.first().into_iter().collect(),
        }
    }

    /// Every distinct outbound proxy, for building one client each.
    pub fn proxies(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .list
            .iter()
            .filter_map(|u| u.proxy.as_deref())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(name: &str, kind: UpstreamKind, models: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            api_keys: vec!["k1".into(), "k2".into()],
            models: models.iter().map(|m| m.to_string()).collect(),
            endpoint: Some("https://res.openai.azure.com".into()),
            api_version: Some("v1".into()),
            ..UpstreamConfig::new(name, kind)
        }
    }

    fn names(ups: &[&Upstream]) -> Vec<String> {
        ups.iter().map(|u| u.name.to_string()).collect()
    }

    #[test]
    fn candidates_by_glob_in_order() {
        let ups = Upstreams::from_config(
            &[
                upstream("a", UpstreamKind::Echo, &["gpt-4o", "o1-*"]),
                upstream("b", UpstreamKind::Azure, &["gpt-4o"]),
                upstream("c", UpstreamKind::Openai, &["*"]),
            ],
            Some("socks5://127.0.0.1:1080"),
        )
        .unwrap();
        assert_eq!(names(&ups.candidates(Some("gpt-4o"))), ["a", "b", "c"]);
        assert_eq!(names(&ups.candidates(Some("o1-mini"))), ["a", "c"]);
        assert_eq!(names(&ups.candidates(Some("claude"))), ["c"]);
        assert_eq!(names(&ups.candidates(None)), ["a"]);
        assert!(ups.all()[2].lists_live() && !ups.all()[1].lists_live());
        assert_eq!(ups.all()[0].listed_models(), ["gpt-4o"]);
        assert_eq!(ups.proxies(), ["socks5://127.0.0.1:1080"]);
    }

    #[test]
    fn key_headers_by_kind() {
        let ups = Upstreams::from_config(
            &[
                upstream("o", UpstreamKind::Openai, &["*"]),
                upstream("z", UpstreamKind::Azure, &["*"]),
                upstream("a", UpstreamKind::Anthropic, &["claude-*"]),
                upstream("g", UpstreamKind::Gemini, &["gemini-*"]),
            ],
            None,
        )
        .unwrap();
        let key = |i: usize| ups.all()[i].keys().unwrap().key(0).header.clone();
        assert_eq!(
            (key(2).0.as_str(), key(2).1.to_str().unwrap()),
            ("x-api-key", "k1")
        );
        let Target::Anthropic { base_url, .. } = &ups.all()[2].target else {
            panic!("anthropic expected")
        };
        assert_eq!(base_url, "https://api.anthropic.com");
        // Anthropic's answer to a bad key parks it; a 401 of OpenAI's
        // other kinds does not.
        let bad_key = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert!(ups.all()[2].rejects_key(StatusCode::UNAUTHORIZED, bad_key));
        assert!(!ups.all()[2].rejects_key(StatusCode::FORBIDDEN, bad_key));
        assert!(!ups.all()[0].rejects_key(StatusCode::UNAUTHORIZED, bad_key));
        assert_eq!(
            (key(0).0.as_str(), key(0).1.to_str().unwrap()),
            ("authorization", "Bearer k1")
        );
        assert_eq!(
            (key(1).0.as_str(), key(1).1.to_str().unwrap()),
            ("api-key", "k1")
        );
        let Target::OpenAi { base_url, .. } = &ups.all()[0].target else {
            panic!("openai expected")
        };
        assert_eq!(base_url, "https://api.openai.com/v1");
        assert_eq!(
            (key(3).0.as_str(), key(3).1.to_str().unwrap()),
            ("x-goog-api-key", "k1")
        );
        let google_bad_key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert!(ups.all()[3].rejects_key(StatusCode::BAD_REQUEST, google_bad_key));
        assert!(!ups.all()[3].rejects_key(StatusCode::BAD_REQUEST, bad_key));
        assert!(!ups.all()[2].rejects_key(StatusCode::BAD_REQUEST, google_bad_key));
        use crate::catalogue::Face;
        assert!(!ups.all()[0].speaks(Face::Gemini) && ups.all()[3].speaks(Face::Gemini));
        assert!(!ups.all()[3].speaks(Face::Anthropic) && ups.all()[3].speaks(Face::OpenAi));
    }

    #[test]
    fn no_upstream_is_a_clear_error() {
        let err = Upstreams::from_config(&[], None).err().unwrap().to_string();
        assert!(err.contains("--demo"), "{err}");
    }
}
