//! Reading the configuration (file, environment, `OPENAI_API_KEY`) and
//! checking it, with errors that name the file and the field.

use super::*;

/// Where the configuration came from, for messages.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
}

/// The file to read: `--config`, `$CHATGATE_CONFIG`, `./chatgate.yaml`,
/// `/etc/chatgate/chatgate.yaml`. An explicitly named file must exist.
fn find_file(explicit: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(p) = explicit {
        if !p.is_file() {
            bail!("config file {} does not exist", p.display());
        }
        return Ok(Some(p.to_owned()));
    }
    if let Some(p) = std::env::var_os("CHATGATE_CONFIG").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!(
                "config file {} (from CHATGATE_CONFIG) does not exist",
                p.display()
            );
        }
        return Ok(Some(p));
    }
    Ok(["chatgate.yaml", "/etc/chatgate/chatgate.yaml"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file()))
}

impl Loaded {
    /// Reads and validates the configuration. Errors name the file and field.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Loaded> {
        let file = find_file(explicit)?;
        let mut builder = config::Config::builder();
        // The file before the environment: sources added later win.
        if let Some(f) = &file {
            builder = builder.add_source(
                config::File::from(f.as_path())
                    .format(config::FileFormat::Yaml)
                    .required(true),
            );
        }
        // CHATGATE_CONFIG names the file; it is not a setting.
        let env: config::Map<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("CHATGATE_") && k != "CHATGATE_CONFIG")
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("CHATGATE")
                .prefix_separator("_")
                .separator("__")
                .source(Some(env)),
        );
        let source = match &file {
            Some(f) => format!("config file {}", f.display()),
            None => "configuration (environment)".to_string(),
        };
        let mut config: Config = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .with_context(|| format!("{source} is invalid"))?;
        config.apply_openai_env();
        config
            .validate()
            .with_context(|| format!("{source} is invalid"))?;
        Ok(Loaded { config, file })
    }
}

impl Config {
    /// `OPENAI_API_KEY` (and `OPENAI_BASE_URL`) define a default upstream when
    /// none is configured, so `OPENAI_API_KEY=sk-… chatgate serve` just works.
    fn apply_openai_env(&mut self) {
        if !self.upstreams.is_empty() {
            return;
        }
        let Some(key) = std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())
        else {
            return;
        };
        let base_url = std::env::var("OPENAI_BASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.into());
        self.upstreams.push(UpstreamConfig {
            base_url: Some(base_url),
            api_keys: vec![key],
            ..UpstreamConfig::new("openai", UpstreamKind::Openai)
        });
    }

    /// Replaces the upstreams by the built-in echo upstream (`serve --demo`).
    pub fn use_demo_upstream(&mut self) {
        self.upstreams = vec![UpstreamConfig::new("echo", UpstreamKind::Echo)];
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().with_context(|| {
            format!(
                "listen: `{}` is not an address like 0.0.0.0:8080",
                self.listen
            )
        })
    }

    /// Checks what serde cannot: each error names the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        crate::db::Backend::from_url(&self.database.url).context("database.url")?;
        if self.limits.max_body_bytes == 0 {
            bail!("limits.max_body_bytes must be greater than 0");
        }
        if let Some(link) = &self.web.help_link {
            http_url(link).context("web.help_link")?;
        }
        if let Some(url) = &self.web.public_url {
            http_url(url).context("web.public_url")?;
        }
        if let Some(o) = &self.web.oidc {
            crate::signin::check_config(o).map_err(|e| anyhow::anyhow!("web.oidc.{e}"))?;
        }
        if self.limits.reserve_completion_tokens < 1 {
            bail!("limits.reserve_completion_tokens must be at least 1");
        }
        for (what, d) in [
            ("upstream_timeout", self.limits.upstream_timeout),
            ("client_body_timeout", self.limits.client_body_timeout),
        ] {
            if d.is_zero() || d > Duration::from_secs(10 * 365 * 86_400) {
                bail!("limits.{what} must be more than 0 and at most 10 years");
            }
        }
        if self.usage.batch_window > super::MAX_BATCH_WINDOW {
            bail!(
                "usage.batch_window must be at most {} (other instances see usage within 2 s)",
                humantime::format_duration(super::MAX_BATCH_WINDOW)
            );
        }
        crate::throttle::parse_trusted(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        for (i, prefix) in self.endpoints.allow.iter().enumerate() {
            crate::paths::check_prefix(prefix)
                .map_err(|e| anyhow::anyhow!("endpoints.allow[{i}]: {e}"))?;
        }
        let mut names = std::collections::HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let field = format!("upstreams[{i}]");
            if u.name.trim().is_empty() {
                bail!("{field}.name must not be empty");
            }
            if !names.insert(u.name.as_str()) {
                bail!("{field}.name: upstream `{}` is defined twice", u.name);
            }
            for m in &u.models {
                crate::model_pattern::ModelPattern::new(m)
                    .with_context(|| format!("{field}.models: `{m}` is not a glob pattern"))?;
            }
            match u.kind {
                UpstreamKind::Openai => {
                    let url = u.base_url.as_deref().unwrap_or(DEFAULT_OPENAI_BASE_URL);
                    http_url(url).with_context(|| format!("{field}.base_url"))?;
                }
                UpstreamKind::Anthropic => {
                    let url = u.base_url.as_deref().unwrap_or(DEFAULT_ANTHROPIC_BASE_URL);
                    http_url(url).with_context(|| format!("{field}.base_url"))?;
                    if url.trim_end_matches('/').ends_with("/v1") {
                        bail!("{field}.base_url: an anthropic upstream's base URL has no /v1 (https://api.anthropic.com)");
                    }
                }
                UpstreamKind::Gemini => {
                    let url = u.base_url.as_deref().unwrap_or(DEFAULT_GEMINI_BASE_URL);
                    http_url(url).with_context(|| format!("{field}.base_url"))?;
                    let trimmed = url.trim_end_matches('/');
                    if trimmed.ends_with("/v1") || trimmed.ends_with("/v1beta") {
                        bail!("{field}.base_url: a gemini upstream's base URL has no version (https://generativelanguage.googleapis.com); requests keep the client's");
                    }
                }
                UpstreamKind::Azure => {
                    let endpoint = u.endpoint.as_deref().with_context(|| {
                        format!("{field}.endpoint: an azure upstream needs its endpoint (https://RESOURCE.openai.azure.com)")
                    })?;
                    http_url(endpoint).with_context(|| format!("{field}.endpoint"))?;
                    if u.api_version.as_deref().is_none_or(str::is_empty) {
                        bail!("{field}.api_version: an azure upstream needs one (like 2024-10-21, or v1)");
                    }
                }
                UpstreamKind::Echo => {}
            }
            if u.kind != UpstreamKind::Echo && u.api_keys.iter().all(|k| k.is_empty()) {
                bail!("{field}.api_keys: an upstream key pool needs at least one key");
            }
            if let Some(p) = &u.proxy {
                proxy_url(p).with_context(|| format!("{field}.proxy"))?;
            }
        }
        if let Some(p) = &self.proxy {
            proxy_url(p).context("proxy")?;
        }
        for (i, s) in self.users.iter().enumerate() {
            crate::users::UserName::parse(&s.name)
                .map_err(|e| anyhow::anyhow!("users[{i}].name: {e}"))?;
            crate::keys::PlainKey::parse(&s.token).with_context(|| format!("users[{i}].token"))?;
        }
        Ok(())
    }

    /// The effective settings with every secret replaced, for `config check`.
    /// (URLs may carry a password too, in their user part or their query.)
    pub fn redacted(&self) -> Config {
        const HIDDEN: &str = "<redacted>";
        let mut c = self.clone();
        c.database.url = crate::db::redact_url(&c.database.url);
        c.proxy = c.proxy.as_deref().map(crate::db::redact_url);
        for u in &mut c.upstreams {
            u.proxy = u.proxy.as_deref().map(crate::db::redact_url);
            u.base_url = u.base_url.as_deref().map(crate::db::redact_url);
            u.endpoint = u.endpoint.as_deref().map(crate::db::redact_url);
            for k in &mut u.api_keys {
                *k = HIDDEN.into();
            }
        }
        for s in &mut c.users {
            s.token = HIDDEN.into();
        }
        if let Some(a) = &mut c.admin {
            if a.token.is_some() {
                a.token = Some(HIDDEN.into());
            }
        }
        if let Some(o) = &mut c.web.oidc {
            o.client_secret = HIDDEN.into();
        }
        c
    }
}

/// An http(s) URL, or an error saying why not.
fn http_url(url: &str) -> anyhow::Result<()> {
    let shown = crate::db::redact_url(url);
    let parsed =
        url::Url::parse(url).map_err(|e| anyhow::anyhow!("`{shown}` is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("`{shown}` must be an http:// or https:// URL with a host");
    }
    Ok(())
}

/// An outbound proxy: `http://host:port` (CONNECT) or `socks5://host:port`,
/// optionally with `user:password@`.
pub fn proxy_url(url: &str) -> anyhow::Result<url::Url> {
    let parsed = url::Url::parse(url)
        .map_err(|_| anyhow::anyhow!("`{}` is not a URL", crate::db::redact_url(url)))?;
    let shown = crate::db::redact_url(url);
    if !matches!(parsed.scheme(), "http" | "socks5" | "socks5h") {
        bail!("`{shown}` must start with http:// or socks5://");
    }
    if parsed.host_str().is_none() || parsed.port_or_known_default().is_none() {
        bail!("`{shown}` needs a host and a port");
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_hides_every_secret() {
        let mut c = Config::default();
        c.database.url = "postgres://u:hunter2@db/x".into();
        c.admin = Some(AdminConfig {
            token: Some("adm-secret".into()),
        });
        c.users.push(UserSeed {
            name: "alice".into(),
            token: "user-secret".into(),
        });
        c.apply_openai_env();
        c.use_demo_upstream();
        c.upstreams[0].api_keys = vec!["sk-live-secret".into()];
        let text = serde_yaml::to_string(&c.redacted()).unwrap();
        for secret in ["hunter2", "adm-secret", "user-secret", "sk-live-secret"] {
            assert!(!text.contains(secret), "{secret} leaked in:\n{text}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = Config::default();
        c.use_demo_upstream();
        c.upstreams[0].kind = UpstreamKind::Openai;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("upstreams[0].api_keys"), "{err}");
        c.upstreams[0].api_keys = vec!["k".into()];
        c.upstreams[0].proxy = Some("ftp://proxy:21".into());
        let err = format!("{:#}", c.validate().unwrap_err());
        assert!(
            err.contains("upstreams[0].proxy") && err.contains("socks5://"),
            "{err}"
        );
        c.upstreams[0].proxy = Some("socks5://u:pw@127.0.0.1:1080".into());
        c.validate().unwrap();
        assert!(!serde_yaml::to_string(&c.redacted())
            .unwrap()
            .contains(":pw@"));
        c.upstreams[0].kind = UpstreamKind::Azure;
        let err = format!("{:#}", c.validate().unwrap_err());
        assert!(err.contains("upstreams[0].endpoint"), "{err}");
        c.upstreams[0].endpoint = Some("https://res.openai.azure.com".into());
        let err = format!("{:#}", c.validate().unwrap_err());
        assert!(err.contains("upstreams[0].api_version"), "{err}");
        c.upstreams[0].api_version = Some("2024-10-21".into());
        c.validate().unwrap();
        c.upstreams[0].kind = UpstreamKind::Openai;
        c.upstreams[0].proxy = None;
        c.upstreams[0].api_keys = vec!["k".into()];
        c.upstreams[0].base_url = Some("ftp://x".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("upstreams[0].base_url"), "{err}");
        c.upstreams[0].base_url = None;
        c.validate().unwrap();
        c.upstreams[0].kind = UpstreamKind::Anthropic;
        c.validate().unwrap();
        c.upstreams[0].base_url = Some("https://api.anthropic.com/v1/".into());
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("upstreams[0].base_url") && err.contains("no /v1"),
            "{err}"
        );
        c.upstreams[0].base_url = None;
        c.listen = "nowhere".into();
        assert!(c.validate().unwrap_err().to_string().contains("listen"));
    }
}
