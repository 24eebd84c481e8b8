//! Typed configuration: defaults → YAML file → `CHATGATE_` environment → flags.
//! The types and their defaults are here; reading and checking them in `load`.

pub use crate::users::UserSeed;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod load;

pub use load::{proxy_url, Loaded};

pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Without `/v1`: Anthropic's own SDKs take the base URL that way.
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// Without a version: requests keep the one the client used (`/v1beta`).
pub const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: String,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    pub database: DatabaseConfig,
    pub tls: Option<TlsConfig>,
    pub admin: Option<AdminConfig>,
    pub upstreams: Vec<UpstreamConfig>,
    /// Outbound proxy for upstreams that name none (http:// or socks5://).
    pub proxy: Option<String>,
    pub users: Vec<UserSeed>,
    /// LiteLLM's `model_prices_and_context_window.json`, as published.
    pub prices_file: Option<std::path::PathBuf>,
    /// USD per 1M tokens by model name or glob; wins over `prices_file`.
    pub prices: BTreeMap<String, Price>,
    pub endpoints: EndpointsConfig,
    pub limits: LimitsConfig,
    pub usage: UsageConfig,
    pub log: LogConfig,
    pub cors: CorsConfig,
    pub web: WebConfig,
    pub keys: KeysConfig,
    pub cluster: ClusterConfig,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names
    /// the client, for counting failed attempts per client address.
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// How long per-request records are kept (`400d`); the running server
    /// deletes older ones daily, daily totals stay. Unset: kept forever.
    #[serde(with = "humantime_serde::option")]
    pub keep_records: Option<Duration>,
    /// How long the writer gathers records after the first of a batch
    /// before it commits them in one transaction (one-api's
    /// BATCH_UPDATE_INTERVAL, LiteLLM's proxy_batch_write_at). Longer:
    /// fewer, larger commits; limits stay exact meanwhile.
    #[serde(with = "humantime_serde")]
    pub batch_window: Duration,
    /// How many records may wait in memory for the database (while it is
    /// away) before new requests are refused with 503: every served
    /// request is charged, none dropped.
    pub buffer_records: usize,
}

/// At most this long: what one instance wrote must reach the others'
/// limits within 2 s (they re-read every second).
pub const MAX_BATCH_WINDOW: Duration = Duration::from_secs(1);

impl Default for UsageConfig {
    fn default() -> UsageConfig {
        UsageConfig {
            keep_records: None,
            batch_window: Duration::from_millis(5),
            buffer_records: 1_000_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    /// How long known keys keep working with the limits last seen while
    /// the database does not answer; then users with a limit get 503.
    #[serde(with = "humantime_serde")]
    pub outage_grace: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum UpstreamKind {
    Openai,
    Azure,
    Anthropic,
    Gemini,
    Echo,
}

impl TryFrom<String> for UpstreamKind {
    type Error = String;

    /// A clear message for a wrong kind, not serde's enum jargon.
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "openai" => Ok(UpstreamKind::Openai),
            "azure" => Ok(UpstreamKind::Azure),
            "anthropic" => Ok(UpstreamKind::Anthropic),
            "gemini" => Ok(UpstreamKind::Gemini),
            "echo" => Ok(UpstreamKind::Echo),
            other => Err(format!(
                "unknown upstream kind `{other}` (openai, azure, anthropic, gemini or echo)"
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    pub kind: UpstreamKind,
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub api_keys: Vec<String>,
    #[serde(default = "all_models")]
    pub models: Vec<String>,
    #[serde(default)]
    pub proxy: Option<String>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub deployments: BTreeMap<String, String>,
    /// Sent as `OpenAI-Organization` (a client's own is never forwarded).
    #[serde(default)]
    pub organization: Option<String>,
    /// Sent as `OpenAI-Project`.
    #[serde(default)]
    pub project: Option<String>,
}

impl UpstreamConfig {
    /// An upstream of `kind` serving every model, with nothing else set.
    pub fn new(name: &str, kind: UpstreamKind) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            kind,
            base_url: None,
            api_keys: Vec::new(),
            models: all_models(),
            proxy: None,
            endpoint: None,
            api_version: None,
            deployments: BTreeMap::new(),
            organization: None,
            project: None,
        }
    }
}

fn all_models() -> Vec<String> {
    vec!["*".into()]
}

/// A model's prices (`prices:`): USD per 1M tokens, and per the units the
/// provider bills some models and tools by. Absent: not charged (and a
/// surcharge a USD-budget user asks for without its price is refused).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(default)]
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    /// Prompt tokens read from the upstream's cache; default: `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Prompt tokens written to the cache (Anthropic); default: `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// Cache writes kept for an hour; default: twice `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<f64>,
    /// Rates of the `priority`, `flex` and `batch` service tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<TierPrice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<TierPrice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<TierPrice>,
    /// Rates for every token of a request whose prompt is above 200k tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above_200k: Option<TierPrice>,
    /// Text to speech: USD per 1M characters of input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_million_characters: Option<f64>,
    /// Audio: USD per minute heard (transcriptions) and spoken (speech).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute_audio_in: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute_audio_out: Option<f64>,
    /// USD per image made (where the reply reports no tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_image: Option<f64>,
    /// Server-side tools: USD per 1,000 calls, and per code interpreter
    /// container session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_thousand_web_searches: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_thousand_file_searches: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_code_session: Option<f64>,
}

/// Token rates of a tier or a long-context band, USD per 1M tokens; what is
/// left out is the standard rate.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    pub input: f64,
    pub output: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
}

/// Which `/v1` paths beyond the metered and account endpoints are
/// forwarded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointsConfig {
    /// Path prefixes after `/v1` (`/batches`) forwarded as they are, any
    /// method, counted as requests only.
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_body_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub upstream_connect_timeout: Duration,
    /// The whole reply: head, body and stream.
    #[serde(with = "humantime_serde")]
    pub upstream_timeout: Duration,
    /// A request body must have arrived within this (else 408).
    #[serde(with = "humantime_serde")]
    pub client_body_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Tokens held back for a reply that names no `max_tokens`, while a
    /// user with a token limit waits for it.
    pub reserve_completion_tokens: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

/// Users' own keys (`/v1/me/keys`, the web app's Keys page).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Whether users may list, create and revoke their own keys.
    pub self_service: bool,
    /// The most keys a user may hold by self-service (the admin is not
    /// bound by it).
    pub max_per_user: usize,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            self_service: true,
            max_per_user: 10,
        }
    }
}

/// Several instances on one database (SPEC §10).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// An instance not heard from for this long is gone (its row dropped).
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            lease_ttl: Duration::from_secs(10),
        }
    }
}

/// The built-in web app at `/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    pub enabled: bool,
    /// Shown with a refusal (quota, rate, model): where to ask for more.
    pub help_link: Option<String>,
    /// Sign-in with the organisation's identity provider (SPEC §9).
    pub oidc: Option<OidcConfig>,
    /// Where people reach the gateway (`https://gate.example.com`): the
    /// sign-in's redirect URI is `{public_url}/auth/callback`. Default:
    /// the request's own scheme and host.
    pub public_url: Option<String>,
    /// How long a sign-in lasts.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            help_link: None,
            oidc: None,
            public_url: None,
            session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// `web.oidc`: an OpenID Connect provider (Keycloak, Entra ID, Google,
/// Okta, Dex, Authentik, …).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL (its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Shown on the button: "Sign in with <name>".
    #[serde(default = "default_sso_name")]
    pub name: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim that names the person's user.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Members of any of these groups reach the admin console.
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// The claim naming the team a new user joins (when that team exists).
    #[serde(default)]
    pub team_claim: Option<String>,
    /// Whether a first sign-in creates the person's user.
    #[serde(default = "yes")]
    pub auto_create: bool,
    /// A new user's limits, by the user JSON's names (`token_limit`,
    /// `budget_usd`, `models`, `rpm`, `expires`, …).
    #[serde(default)]
    pub defaults: serde_json::Map<String, serde_json::Value>,
}

fn default_sso_name() -> String {
    "SSO".into()
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile", "groups"]
        .map(String::from)
        .to_vec()
}

fn default_username_claim() -> String {
    "email".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    pub origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:8080".into(),
            workers: 0,
            database: DatabaseConfig::default(),
            tls: None,
            admin: None,
            upstreams: Vec::new(),
            proxy: None,
            users: Vec::new(),
            prices_file: None,
            prices: BTreeMap::new(),
            endpoints: EndpointsConfig::default(),
            limits: LimitsConfig::default(),
            usage: UsageConfig::default(),
            log: LogConfig::default(),
            cors: CorsConfig::default(),
            web: WebConfig::default(),
            keys: KeysConfig::default(),
            cluster: ClusterConfig::default(),
            // A reverse proxy on the same machine (the packaged nginx site)
            // names the client; without it, every client would share its
            // address and one could lock the others out.
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://chatgate.db".into(),
            outage_grace: Duration::from_secs(300),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 26_214_400,
            upstream_connect_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(600),
            client_body_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            reserve_completion_tokens: 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            origins: vec!["*".into()],
        }
    }
}

/// Durations written as `10s`, `600s`, `2m` (humantime), in both directions.
mod humantime_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("`{s}` is not a duration like 10s or 5m: {e}"))
        })
    }

    /// The same for an optional one (absent or null: none).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => {
                    super::deserialize(serde::de::value::StringDeserializer::new(s)).map(Some)
                }
            }
        }
    }
}
