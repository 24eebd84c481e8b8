//! The live state every worker shares, below every handler: handlers
//! import it, it imports no handler.

use crate::config::Config;
use crate::db::Pool;
use crate::keytable::KeyTable;
use crate::metrics::Metrics;
use crate::upstream::Upstreams;
use crate::usage::prices::{PriceBook, Prices};
use crate::usage::writer::UsageSink;
use anyhow::Context;
use arc_swap::ArcSwap;
use std::sync::Arc;

/// State shared by every worker.
pub struct Gateway {
    /// What SIGHUP reloads, swapped whole: a request works with the
    /// settings it started with.
    pub(crate) live: ArcSwap<Live>,
    /// The prices of `live`, where the usage writer reads them.
    pub(crate) prices: PriceBook,
    pub keys: Arc<KeyTable>,
    pub usage: UsageSink,
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
    /// Failed key and admin-token attempts per client address.
    pub throttle: crate::throttle::Throttle,
    /// The identity provider's discovery document and keys.
    pub oidc: crate::oidc::ProviderCache,
    /// This instance's shares of rpm and parallel limits, when several
    /// instances may share the database (PostgreSQL, MySQL).
    pub leases: Option<Arc<crate::leases::Leases>>,
    /// Whether the database answers (the key refresher tells).
    pub outage: Arc<crate::outage::Outage>,
}

/// The configuration, and the upstreams and prices built from it.
pub struct Live {
    pub config: Config,
    pub upstreams: Upstreams,
    pub prices: Arc<Prices>,
    /// `trusted_proxies`, parsed.
    pub trusted: Vec<ipnet::IpNet>,
}

impl Live {
    pub fn build(config: Config) -> anyhow::Result<Live> {
        let upstreams = Upstreams::from_config(&config.upstreams, config.proxy.as_deref())?;
        let prices = Arc::new(Prices::load(&config)?);
        let trusted = crate::throttle::parse_trusted(&config.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        Ok(Live {
            config,
            upstreams,
            prices,
            trusted,
        })
    }
}

impl Gateway {
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Applies a new configuration: upstreams (fresh key pools, so parked
    /// keys are tried again), limits, prices, the admin token and the log
    /// level; then re-reads users and keys. What only a restart changes
    /// (`TAKEN_AT_START`) is kept, with a warning.
    pub fn reload(&self, config: Config) -> anyhow::Result<()> {
        let old = self.live();
        let new = Live::build(config)?;
        for what in taken_at_start(&old.config, &new.config) {
            tracing::warn!("`{what}` changed; it takes effect at the next restart");
        }
        crate::logging::set_level(&new.config.log.level);
        self.metrics.know_models(new.upstreams.named_models());
        self.prices.store(new.prices.clone());
        self.live.store(Arc::new(new));
        let mut conn = self
            .pool
            .get()
            .context("cannot get a database connection")?;
        self.keys.load(&mut conn).context("cannot reload users")?;
        Ok(())
    }
}

/// Settings the server takes once, at start: the listener and its TLS,
/// the workers and their upstream clients (timeouts), the pool, the
/// routes (CORS, admin API, web app), the log's format, the pruner and the
/// usage writer. Compared as serialized, so a section needs no `PartialEq`.
const TAKEN_AT_START: &[(&str, Setting)] = &[
    ("listen", |c| serde_json::json!(c.listen)),
    ("workers", |c| serde_json::json!(c.workers)),
    ("database", |c| serde_json::json!(c.database)),
    ("tls", |c| serde_json::json!(c.tls)),
    ("cors", |c| serde_json::json!(c.cors)),
    // The token reloads; whether there is an admin API does not.
    ("admin", |c| serde_json::json!(c.admin.is_some())),
    ("web", |c| serde_json::json!(c.web)),
    ("log.format", |c| serde_json::json!(c.log.format)),
    ("limits.shutdown_timeout", |c| {
        serde_json::json!(c.limits.shutdown_timeout)
    }),
    ("limits.upstream_connect_timeout", |c| {
        serde_json::json!(c.limits.upstream_connect_timeout)
    }),
    // The whole reply's deadline reloads; the upstream clients' wait for
    // a response head does not.
    ("limits.upstream_timeout", |c| {
        serde_json::json!(c.limits.upstream_timeout)
    }),
    ("usage", |c| serde_json::json!(c.usage)),
];

/// A setting of a configuration, serialized.
type Setting = fn(&Config) -> serde_json::Value;

/// Which of `TAKEN_AT_START` differ between two configurations.
fn taken_at_start(old: &Config, new: &Config) -> Vec<&'static str> {
    TAKEN_AT_START
        .iter()
        .filter(|(_, of)| of(old) != of(new))
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::taken_at_start;
    use crate::config::Config;
    use std::time::Duration;

    /// Each start-only setting is named when it changes, and nothing when
    /// only what reloads changes.
    #[test]
    fn a_reload_names_the_settings_that_wait_for_a_restart() {
        let old = Config::default();
        let changed = |edit: fn(&mut Config)| {
            let mut new = old.clone();
            edit(&mut new);
            taken_at_start(&old, &new)
        };
        assert!(changed(|c| c.limits.max_body_bytes += 1).is_empty());
        assert!(changed(|c| c.log.level = "debug".into()).is_empty());
        assert!(changed(|c| c.limits.client_body_timeout *= 2).is_empty());
        assert_eq!(changed(|c| c.listen = "127.0.0.1:1".into()), ["listen"]);
        assert_eq!(changed(|c| c.workers += 1), ["workers"]);
        assert_eq!(changed(|c| c.database.url.push('x')), ["database"]);
        assert_eq!(changed(|c| c.web.enabled = !c.web.enabled), ["web"]);
        assert_eq!(
            changed(|c| c.limits.upstream_connect_timeout *= 2),
            ["limits.upstream_connect_timeout"]
        );
        assert_eq!(
            changed(|c| c.limits.upstream_timeout *= 2),
            ["limits.upstream_timeout"]
        );
        assert_eq!(
            changed(|c| c.limits.shutdown_timeout *= 2),
            ["limits.shutdown_timeout"]
        );
        assert_eq!(
            changed(|c| c.usage.keep_records = Some(Duration::from_secs(86400))),
            ["usage"]
        );
        assert_eq!(changed(|c| c.usage.batch_window *= 2), ["usage"]);
    }
}
