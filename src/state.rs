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
}

/// The configuration, and the upstreams and prices built from it.
pub struct Live {
    pub config: Config,
    pub upstreams: Upstreams,
    pub prices: Arc<Prices>,
}

impl Live {
    pub fn build(config: Config) -> anyhow::Result<Live> {
        let upstreams = Upstreams::from_config(&config.upstreams, config.proxy.as_deref())?;
        let prices = Arc::new(Prices::load(&config)?);
        Ok(Live {
            config,
            upstreams,
            prices,
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
    /// (listen, workers, database, tls, cors, turning the admin API on or
    /// off, `usage`) is kept, with a warning.
    pub fn reload(&self, config: Config) -> anyhow::Result<()> {
        let old = self.live();
        let new = Live::build(config)?;
        for (what, changed) in [
            ("listen", old.config.listen != new.config.listen),
            ("workers", old.config.workers != new.config.workers),
            (
                "database.url",
                old.config.database.url != new.config.database.url,
            ),
            ("cors", old.config.cors.origins != new.config.cors.origins),
            (
                "admin",
                old.config.admin.is_some() != new.config.admin.is_some(),
            ),
            // The pruner and the usage writer took theirs at start.
            (
                "usage.keep_records",
                old.config.usage.keep_records != new.config.usage.keep_records,
            ),
            (
                "usage.batch_window",
                old.config.usage.batch_window != new.config.usage.batch_window,
            ),
        ] {
            if changed {
                tracing::warn!("`{what}` changed; it takes effect at the next restart");
            }
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
