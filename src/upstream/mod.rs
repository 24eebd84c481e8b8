//! Upstreams: where a request goes, chosen by model, and with which key.

pub mod client;
pub mod echo;

use crate::config::{UpstreamConfig, UpstreamKind, DEFAULT_OPENAI_BASE_URL};
use actix_web::http::header::HeaderValue;
use anyhow::Context;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct Upstream {
    pub name: Arc<str>,
    models: Vec<glob::Pattern>,
    pub target: Target,
}

pub enum Target {
    OpenAi(OpenAi),
    Echo(echo::Echo),
}

/// Any OpenAI-compatible server.
pub struct OpenAi {
    /// Without a trailing slash; request paths after `/v1` are appended.
    pub base_url: String,
    /// Ready-made `Bearer …` header values, marked sensitive so they are
    /// never printed by header dumps.
    keys: Vec<HeaderValue>,
    next: AtomicUsize,
}

impl OpenAi {
    /// The next key of the pool, round-robin.
    pub fn key(&self) -> &HeaderValue {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.keys[i % self.keys.len()]
    }
}

impl Upstream {
    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|p| p.matches(model))
    }

    /// Models listed explicitly (not patterns), for `/v1/models`.
    pub fn listed_models(&self) -> Vec<&str> {
        self.models
            .iter()
            .map(|p| p.as_str())
            .filter(|m| !m.contains(['*', '?', '[']))
            .collect()
    }

    fn from_config(c: &UpstreamConfig) -> anyhow::Result<Upstream> {
        let models = c
            .models
            .iter()
            .map(|m| glob::Pattern::new(m))
            .collect::<Result<_, _>>()
            .with_context(|| format!("upstream `{}`: bad model pattern", c.name))?;
        let target = match c.kind {
            UpstreamKind::Openai => {
                let base = c.base_url.as_deref().unwrap_or(DEFAULT_OPENAI_BASE_URL);
                let keys = c
                    .api_keys
                    .iter()
                    .filter(|k| !k.is_empty())
                    .map(|k| {
                        let mut v = HeaderValue::from_str(&format!("Bearer {k}")).with_context(
                            || format!("upstream `{}`: an API key has characters a header cannot carry", c.name),
                        )?;
                        v.set_sensitive(true);
                        Ok(v)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                anyhow::ensure!(!keys.is_empty(), "upstream `{}` has no API key", c.name);
                Target::OpenAi(OpenAi {
                    base_url: base.trim_end_matches('/').to_owned(),
                    keys,
                    next: AtomicUsize::new(0),
                })
            }
            UpstreamKind::Echo => Target::Echo(echo::Echo),
            UpstreamKind::Azure => {
                anyhow::bail!("upstream `{}`: azure is not supported yet", c.name)
            }
        };
        Ok(Upstream {
            name: Arc::from(c.name.as_str()),
            models,
            target,
        })
    }
}

/// The configured upstreams, in the order they are tried.
pub struct Upstreams {
    list: Vec<Upstream>,
}

impl Upstreams {
    pub fn from_config(configs: &[UpstreamConfig]) -> anyhow::Result<Upstreams> {
        let list = configs
            .iter()
            .map(Upstream::from_config)
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            !list.is_empty(),
            "no upstream is configured: add `upstreams:` to the config file, set OPENAI_API_KEY, or run `chatgate serve --demo`"
        );
        Ok(Upstreams { list })
    }

    pub fn has_echo(&self) -> bool {
        self.list
            .iter()
            .any(|u| matches!(u.target, Target::Echo(_)))
    }

    /// The first upstream serving `model`; without a model, the first one.
    pub fn route(&self, model: Option<&str>) -> Option<&Upstream> {
        match model {
            Some(m) => self.list.iter().find(|u| u.serves(m)),
            None => self.list.first(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(name: &str, kind: UpstreamKind, models: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            kind,
            base_url: None,
            api_keys: vec!["k1".into(), "k2".into()],
            models: models.iter().map(|m| m.to_string()).collect(),
            proxy: None,
            endpoint: None,
            api_version: None,
            deployments: Default::default(),
        }
    }

    #[test]
    fn routes_by_glob_in_order() {
        let ups = Upstreams::from_config(&[
            upstream("a", UpstreamKind::Echo, &["gpt-4o", "o1-*"]),
            upstream("b", UpstreamKind::Openai, &["*"]),
        ])
        .unwrap();
        assert_eq!(&*ups.route(Some("o1-mini")).unwrap().name, "a");
        assert_eq!(&*ups.route(Some("gpt-4o")).unwrap().name, "a");
        assert_eq!(&*ups.route(Some("gpt-4o-mini")).unwrap().name, "b");
        assert_eq!(&*ups.route(None).unwrap().name, "a");
        assert_eq!(
            ups.route(Some("x")).map(|u| u.listed_models()),
            Some(vec![])
        );
    }

    #[test]
    fn keys_rotate_round_robin_and_are_sensitive() {
        let ups = Upstreams::from_config(&[upstream("b", UpstreamKind::Openai, &["*"])]).unwrap();
        let Target::OpenAi(o) = &ups.route(None).unwrap().target else {
            panic!("openai expected")
        };
        assert_eq!(o.key(), "Bearer k1");
        assert_eq!(o.key(), "Bearer k2");
        assert_eq!(o.key(), "Bearer k1");
        assert!(o.key().is_sensitive());
        assert_eq!(o.base_url, "https://api.openai.com/v1");
    }

    #[test]
    fn no_upstream_is_a_clear_error() {
        let err = Upstreams::from_config(&[]).err().unwrap().to_string();
        assert!(err.contains("--demo"), "{err}");
    }
}
