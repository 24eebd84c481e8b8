//! Azure OpenAI: OpenAI-style paths become Azure's.
//!
//! Classic API versions (`2024-10-21`): chat completions, completions and
//! embeddings go to `{endpoint}/openai/deployments/{deployment}/{op}
//! ?api-version=…`. `api_version: v1` (Azure's newer v1 API): every path
//! goes to `{endpoint}/openai/v1/…` with the body's `model` replaced by the
//! deployment. The deployment comes from `deployments`, else it is the
//! model's name.

use std::collections::BTreeMap;

pub struct Azure {
    /// Without a trailing slash.
    pub endpoint: String,
    api_version: String,
    deployments: BTreeMap<String, String>,
}

/// Where one request goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Route {
    /// Path and query, to append to the endpoint.
    pub path_and_query: String,
    /// The `model` to put in the body instead of the client's.
    pub model: Option<String>,
}

/// Why a request has no route on an Azure upstream.
#[derive(Debug, PartialEq, Eq)]
pub enum NoRoute {
    /// The endpoint is not there (the classic API's few).
    NotServed(String),
    /// The model names no deployment a path can hold.
    NoDeployment(String),
}

#[cfg(test)]
impl NoRoute {
    fn text(&self) -> &str {
        match self {
            NoRoute::NotServed(t) | NoRoute::NoDeployment(t) => t,
        }
    }
}

/// What Azure's classic API serves under a deployment.
const DEPLOYMENT_OPS: [&str; 3] = ["/chat/completions", "/completions", "/embeddings"];

impl Azure {
    pub fn new(endpoint: &str, api_version: &str, deployments: BTreeMap<String, String>) -> Azure {
        Azure {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            api_version: api_version.to_owned(),
            deployments,
        }
    }

    pub fn is_v1(&self) -> bool {
        self.api_version == "v1"
    }

    /// The deployment of `model`: from `deployments`, else the model's name
    /// if it is one a path can hold as it is (`[A-Za-z0-9._-]`, not `.` or
    /// `..`), so that nothing a client sends adds a path segment or a query
    /// parameter upstream.
    fn deployment<'a>(&'a self, model: &'a str) -> Result<&'a str, NoRoute> {
        if let Some(d) = self.deployments.get(model) {
            return Ok(d);
        }
        let plain = !model.is_empty()
            && model != "."
            && model != ".."
            && model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if plain {
            Ok(model)
        } else {
            Err(NoRoute::NoDeployment(format!(
                "The model `{}` has no Azure deployment: a deployment is named in `deployments` or is the model's name made of letters, digits, `.`, `_` and `-`.",
                model.chars().take(100).collect::<String>()
            )))
        }
    }

    /// The Azure path for `endpoint` (the path after `/v1`), or why there
    /// is none. `query` is the client's query string, token removed.
    pub fn route(
        &self,
        endpoint: &str,
        query: &str,
        model: Option<&str>,
    ) -> Result<Route, NoRoute> {
        let with_query = |path: String, extra: Option<String>| {
            let parts: Vec<String> = extra
                .into_iter()
                .chain((!query.is_empty()).then(|| query.to_owned()))
                .collect();
            if parts.is_empty() {
                path
            } else {
                format!("{path}?{}", parts.join("&"))
            }
        };
        if self.is_v1() {
            let deployment = model.map(|m| self.deployment(m)).transpose()?;
            return Ok(Route {
                path_and_query: with_query(format!("/openai/v1{endpoint}"), None),
                model: deployment.filter(|d| Some(*d) != model).map(str::to_owned),
            });
        }
        if !DEPLOYMENT_OPS.contains(&endpoint) {
            return Err(NoRoute::NotServed(format!(
                "This Azure upstream serves /v1/chat/completions, /v1/completions and /v1/embeddings; \
                 /v1{endpoint} needs `api_version: v1`."
            )));
        }
        let model = model.ok_or_else(|| {
            NoRoute::NotServed(
                "The request names no `model`, which Azure needs to pick a deployment.".to_string(),
            )
        })?;
        Ok(Route {
            path_and_query: with_query(
                format!("/openai/deployments/{}{endpoint}", self.deployment(model)?),
                Some(format!("api-version={}", self.api_version)),
            ),
            model: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure(version: &str) -> Azure {
        let deployments = BTreeMap::from([("gpt-4o".to_string(), "prod-gpt4o".to_string())]);
        Azure::new("https://res.openai.azure.com/", version, deployments)
    }

    #[test]
    fn classic_paths_use_the_deployment_and_api_version() {
        let a = azure("2024-10-21");
        assert_eq!(
            a.route("/chat/completions", "", Some("gpt-4o")).unwrap(),
            Route {
                path_and_query:
                    "/openai/deployments/prod-gpt4o/chat/completions?api-version=2024-10-21".into(),
                model: None
            }
        );
        // Without a mapping the deployment is the model's name.
        assert_eq!(
            a.route("/embeddings", "x=1", Some("text-embedding-3-small"))
                .unwrap()
                .path_and_query,
            "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21&x=1"
        );
        assert!(a
            .route("/images/generations", "", Some("gpt-4o"))
            .unwrap_err()
            .text()
            .contains("api_version: v1"));
        // Nothing a client sends becomes a path segment or a parameter.
        for model in [
            "gpt-4o-mini/../o1-pro",
            "gpt-4o-mini%2F..%2Fo1-pro",
            "x?api-version=1",
            "..",
            "a b",
        ] {
            let (classic, v1) = (azure("2024-10-21"), azure("v1"));
            for a in [&classic, &v1] {
                assert!(
                    matches!(
                        a.route("/chat/completions", "", Some(model)),
                        Err(NoRoute::NoDeployment(_))
                    ),
                    "{model}"
                );
            }
        }
        assert!(a.route("/chat/completions", "", None).is_err());
        assert_eq!(a.endpoint, "https://res.openai.azure.com");
    }

    #[test]
    fn v1_maps_every_path_and_replaces_the_model() {
        let a = azure("v1");
        assert_eq!(
            a.route("/responses", "", Some("gpt-4o")).unwrap(),
            Route {
                path_and_query: "/openai/v1/responses".into(),
                model: Some("prod-gpt4o".into())
            }
        );
        assert_eq!(
            a.route("/chat/completions", "", Some("o1")).unwrap().model,
            None
        );
        assert_eq!(
            a.route("/files", "limit=2", None).unwrap().path_and_query,
            "/openai/v1/files?limit=2"
        );
    }
}
