//! `chatgate serve`: runs the gateway.

use super::Context;
use crate::keys::PlainKey;
use crate::server::{Application, Records};
use crate::users::{self, UserName, UserSettings};
use anyhow::Context as _;
use std::net::TcpListener;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (overrides `listen`)
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Use the built-in echo upstream (no upstream key needed) and print a demo key
    #[arg(long)]
    demo: bool,
    /// Benchmark only: proxy without usage records (bench/run.sh measures
    /// what accounting costs with it)
    #[arg(long, hide = true)]
    no_accounting: bool,
}

/// The user whose key `--demo` prints.
const DEMO_USER: &str = "demo";

impl Args {
    pub fn run(self, mut ctx: Context) -> anyhow::Result<()> {
        let (file, database, listen, demo, no_accounting) = (
            ctx.loaded.file.clone(),
            ctx.database.clone(),
            self.listen.clone(),
            self.demo,
            self.no_accounting,
        );
        // The flags win over the file, at start and when SIGHUP re-reads it.
        let apply_flags = move |config: &mut crate::config::Config| {
            if let Some(url) = &database {
                config.database.url = url.clone();
            }
            if let Some(l) = &listen {
                config.listen = l.clone();
            }
            if demo {
                config.use_demo_upstream();
            }
        };
        apply_flags(&mut ctx.loaded.config);
        let config = &ctx.loaded.config;
        let addr = config.listen_addr()?;
        let pool = ctx.pool()?;
        let mut conn = pool.get().context("cannot get a database connection")?;
        let seeded = users::seed(&mut conn, &ctx.loaded.config.users)?;
        if !seeded.is_empty() {
            tracing::info!(users = ?seeded, "added users from the config file");
        }
        let demo_key = if self.demo {
            Some(demo_key(&mut conn)?)
        } else {
            None
        };
        drop(conn);
        let listener =
            TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let config = ctx.loaded.config.clone();
        let (scheme, web) = match (&config.tls, config.web.enabled) {
            (Some(_), web) => ("https", web),
            (None, web) => ("http", web),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async move {
            let reread: crate::server::ConfigSource = Box::new(move || {
                let mut loaded = crate::config::Loaded::load(file.as_deref())?;
                apply_flags(&mut loaded.config);
                Ok(loaded.config)
            });
            let records = if no_accounting {
                Records::Dropped
            } else {
                Records::Kept
            };
            let app = Application::build_with(config, listener, pool, records)?.reload_from(reread);
            let port = app.port();
            if let Some(key) = demo_key {
                let host = if addr.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    addr.ip().to_string()
                };
                let origin = format!("{scheme}://{host}:{port}");
                let base = format!("{origin}/v1");
                println!("chatgate demo: the built-in echo upstream answers every model.");
                println!("base URL: {base}");
                println!("demo key: {}", key.expose());
                if web {
                    println!("web app:  {origin}/ (sign in with the demo key)");
                }
                println!(
                    "try: curl {base}/chat/completions -H 'Authorization: Bearer {}' \
                     -H 'Content-Type: application/json' \
                     -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello!\"}}]}}'",
                    key.expose()
                );
            }
            tracing::info!(%addr, port, "chatgate listening");
            app.run_until_stopped().await
        })?;
        tracing::info!("chatgate stopped; usage flushed");
        Ok(())
    }
}

/// The demo user, created on first use; its key is renewed at every start
/// because only a hash is stored.
fn demo_key(conn: &mut crate::db::DbConnection) -> anyhow::Result<PlainKey> {
    let by = crate::audit::Actor::Config;
    match users::rotate(conn, &by, DEMO_USER, None) {
        Ok(key) => Ok(key),
        Err(users::UserError::NotFound(_)) => {
            let name = UserName::parse(DEMO_USER).map_err(anyhow::Error::msg)?;
            Ok(users::add(conn, &by, &name, None, UserSettings::default())?)
        }
        Err(e) => Err(e.into()),
    }
}
