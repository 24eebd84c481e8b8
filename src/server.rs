//! The HTTP server: shared state, routes, and the lifecycle around them
//! (key refresher and usage writer threads started before, flushed after).

use crate::account;
use crate::admin;
use crate::config::Config;
use crate::db::Pool;
use crate::error::error_body;
use crate::metrics::Metrics;
use crate::proxy;
use crate::proxy::cors::{self, Cors};
use crate::proxy::keytable::{KeyTable, Refresher};
use crate::upstream::client::Clients;
use crate::upstream::Upstreams;
use crate::usage::writer::{UsageSink, UsageWriter};
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

/// State shared by every worker.
pub struct Gateway {
    pub config: Config,
    pub keys: Arc<KeyTable>,
    pub upstreams: Upstreams,
    pub usage: UsageSink,
    pub pool: Pool,
    pub metrics: Arc<Metrics>,
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    refresher: Refresher,
    writer: UsageWriter,
}

/// rustls needs one process-wide crypto provider; ring is the one built in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Application {
    /// Builds the server on an already bound listener (tests pass port 0).
    /// The database must be open and migrated.
    pub fn build(config: Config, listener: TcpListener, pool: Pool) -> anyhow::Result<Application> {
        install_crypto_provider();
        let upstreams = Upstreams::from_config(&config.upstreams, config.proxy.as_deref())?;
        if upstreams.has_echo() {
            // Load the tokenizer now, not on the first request.
            std::thread::spawn(|| crate::usage::count_tokens("gpt-4o", "warm up"));
        }
        let keys = Arc::new(KeyTable::default());
        let revision = {
            let mut conn = pool.get().context("cannot get a database connection")?;
            keys.load(&mut conn).context("cannot load users")?
        };
        {
            // Limits count from what was used before this start.
            let mut conn = pool.get().context("cannot get a database connection")?;
            crate::limits::refresh_used(&mut conn, &keys.limited(), crate::db::now())
                .context("cannot read used totals")?;
        }
        let refresher = Refresher::start(keys.clone(), pool.clone(), revision);
        let metrics = Arc::new(Metrics::new());
        let writer = UsageWriter::start(pool.clone(), keys.clone(), metrics.clone());
        let port = listener.local_addr()?.port();
        let workers = config.workers;
        let shutdown = config.limits.shutdown_timeout;
        let connect_timeout = config.limits.upstream_connect_timeout;
        let upstream_timeout = config.limits.upstream_timeout;
        let cors = web::Data::new(Cors::new(&config.cors.origins));
        let admin_on = config.admin.as_ref().is_some_and(|a| a.token.is_some());
        let gateway = web::Data::new(Gateway {
            config,
            keys,
            upstreams,
            usage: writer.sink(),
            pool,
            metrics,
        });
        let mut server = HttpServer::new(move || {
            // awc clients are not thread-safe: one set and pool per worker.
            let proxies = gateway.upstreams.proxies();
            let clients = Clients::new(
                &proxies,
                connect_timeout,
                upstream_timeout,
                gateway.metrics.clone(),
            );
            App::new()
                .app_data(gateway.clone())
                .app_data(cors.clone())
                .app_data(web::Data::new(clients))
                .wrap(from_fn(cors::middleware))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics_text))
                .configure(account::configure)
                .configure(|cfg| {
                    if admin_on {
                        cfg.service(web::scope("/admin").configure(admin::configure));
                    }
                })
                .service(
                    web::scope("/v1")
                        .route("/me", web::get().to(account::me))
                        .configure(account::configure)
                        .default_service(web::to(proxy::handle)),
                )
                .default_service(web::to(not_found))
        })
        .tcp_nodelay(true)
        .shutdown_timeout(shutdown.as_secs());
        if workers > 0 {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Application {
            port,
            server,
            refresher,
            writer,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped (SIGTERM/SIGINT or the handle), then waits for
    /// in-flight requests and writes every buffered usage record.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            server,
            mut refresher,
            mut writer,
            ..
        } = self;
        let result = server.await;
        tokio::task::spawn_blocking(move || {
            refresher.stop();
            writer.flush_and_stop();
        })
        .await?;
        result.context("server failed")
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(gw: web::Data<Gateway>) -> HttpResponse {
    let pool = gw.pool.clone();
    let ok = web::block(move || {
        pool.get_timeout(Duration::from_secs(2))
            .map_err(|e| e.to_string())
            .and_then(|mut c| {
                use diesel::connection::SimpleConnection;
                c.batch_execute("SELECT 1").map_err(|e| e.to_string())
            })
    })
    .await;
    let failure = match ok {
        Ok(Ok(())) => return HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Ok(Err(e)) => e,
        Err(e) => e.to_string(),
    };
    tracing::warn!("readiness check failed: {failure}");
    HttpResponse::ServiceUnavailable()
        .json(serde_json::json!({"status": "unavailable", "reason": "database unreachable"}))
}

async fn metrics_text(gw: web::Data<Gateway>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(gw.metrics.render())
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    error_body(
        StatusCode::NOT_FOUND,
        &format!("Unknown path {}; the OpenAI API is under /v1.", req.path()),
        "invalid_request_error",
        "unknown_url",
    )
}
