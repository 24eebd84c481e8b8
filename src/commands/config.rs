//! `chatgate config check`: validates the configuration and prints the
//! effective settings with every secret redacted.

use super::say;
use super::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config and print the effective settings (secrets redacted)
    Check,
}

impl Command {
    pub fn run(self, ctx: &Context) -> anyhow::Result<()> {
        match self {
            Command::Check => {
                // Loading already validated it; say where it came from.
                let source = match &ctx.loaded.file {
                    Some(f) => format!("config file {} is valid", f.display()),
                    None => "no config file found; defaults and environment are valid".into(),
                };
                say(ctx, &source);
                for line in price_state(&ctx.loaded.config)? {
                    say(ctx, &line);
                }
                if let Some(warning) = admin_state(&ctx.loaded.config) {
                    say(ctx, &warning);
                }
                if let Some(warning) = sign_in_state(&ctx.loaded.config) {
                    say(ctx, &warning);
                }
                say(ctx, &database_state(&ctx.loaded.config.database.url));
                print!("{}", serde_yaml::to_string(&ctx.loaded.config.redacted())?);
                Ok(())
            }
        }
    }
}

/// The shortest admin token that is not a warning: one of 24 random
/// characters cannot be guessed, even at full speed.
const ADMIN_TOKEN_LEN: usize = 24;

/// A warning about an admin token short enough to guess.
fn admin_state(config: &crate::config::Config) -> Option<String> {
    let token = config.admin.as_ref()?.token.as_deref()?;
    (token.chars().count() < ADMIN_TOKEN_LEN).then(|| {
        format!(
            "warning: admin.token is {} characters long; use at least {ADMIN_TOKEN_LEN} random ones (`openssl rand -hex 16`)",
            token.chars().count()
        )
    })
}

/// How many models have prices, and a warning for each model an upstream
/// serves that no price covers (its cost is unknown).
fn price_state(config: &crate::config::Config) -> anyhow::Result<Vec<String>> {
    let prices = crate::usage::prices::Prices::load(config)?;
    if prices.is_empty() {
        return Ok(vec!["prices: none (usage reports show no cost)".into()]);
    }
    let mut lines = vec![format!(
        "prices: {} models or patterns priced{}",
        prices.len(),
        match &config.prices_file {
            Some(f) => format!(" (prices_file {} and `prices`)", f.display()),
            None => String::new(),
        }
    )];
    for u in &config.upstreams {
        for pattern in u.models.iter().filter(|m| !prices.covers(m)) {
            lines.push(format!(
                "warning: upstream `{}` serves `{pattern}`, which no price covers: its requests have no cost",
                u.name
            ));
        }
    }
    Ok(lines)
}

/// The backend and its migration state, or why it cannot be read. A
/// database that is not reachable does not make the config invalid.
fn database_state(url: &str) -> String {
    let shown = crate::db::redact_url(url);
    let backend = crate::db::Backend::from_url(url);
    if let Ok(crate::db::Backend::Sqlite(path)) = &backend {
        if !path.exists() {
            return format!("database: sqlite {shown}, not created yet (any command creates it)");
        }
    }
    let backend = backend.map(|b| b.name()).unwrap_or("?");
    match crate::db::connect(url).and_then(|mut c| crate::db::pending(&mut c)) {
        Ok(p) if p.is_empty() => format!("database: {backend} {shown}, migrations up to date"),
        Ok(p) => format!(
            "database: {backend} {shown}, {} migration(s) pending (applied by any command, or `chatgate db migrate`)",
            p.len()
        ),
        Err(e) => format!("database: {backend} {shown}, not reachable: {e:#}"),
    }
}

/// Sign-in's redirect URI, and a warning where it may come out wrong: the
/// gateway behind a proxy that ends TLS sees plain HTTP, and would send
/// the provider an http:// callback the provider refuses.
fn sign_in_state(config: &crate::config::Config) -> Option<String> {
    config.web.oidc.as_ref()?;
    Some(match (&config.web.public_url, &config.tls) {
        (Some(url), _) => format!(
            "sign-in: register {}/auth/callback as the redirect URI with the identity provider",
            url.trim_end_matches('/')
        ),
        (None, Some(_)) => "sign-in: the redirect URI is https://<this host>/auth/callback; set web.public_url to name it".into(),
        (None, None) => "warning: web.public_url is unset: behind a proxy that ends TLS, sign-in would send the identity provider an http:// redirect URI; set web.public_url (https://gate.example.com)".into(),
    })
}
