//! The HTTP server: routes, and the lifecycle around them (key refresher,
//! usage writer and settling threads started before, flushed after).

use crate::account;
use crate::admin;
use crate::config::Config;
use crate::db::Pool;
use crate::error::error_body;
use crate::keytable::{self, KeyTable};
use crate::metrics::Metrics;
use crate::periodic::Periodic;
use crate::proxy;
use crate::proxy::edge::{self, Cors};
pub use crate::state::{Gateway, Live};
use crate::upstream::client::Clients;
use crate::usage::prices::PriceBook;
use crate::usage::writer::UsageWriter;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use arc_swap::ArcSwap;
use std::net::TcpListener;
use std::sync::Arc;

/// Re-reads the configuration for a reload (SIGHUP).
pub type ConfigSource = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// Whether usage records are kept: always, except in the benchmark's
/// `serve --no-accounting` (a hidden flag), which measures what they cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    Kept,
    Dropped,
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    refresher: Periodic,
    writer: UsageWriter,
    pruner: Option<Periodic>,
    settler: Option<crate::settle::Settler>,
    heartbeat: Option<crate::cluster::Heartbeat>,
    gateway: web::Data<Gateway>,
    config_source: Option<ConfigSource>,
}

/// The HTTPS settings from `tls.cert` and `tls.key` (PEM files); HTTP/2 and
/// HTTP/1.1 are offered by ALPN.
fn tls_config(tls: &crate::config::TlsConfig) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            anyhow::anyhow!(
                "tls.cert: cannot read certificates from {}: {e}",
                tls.cert.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!("tls.cert: {} holds no PEM certificate", tls.cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        anyhow::anyhow!(
            "tls.key: cannot read a private key from {}: {e}",
            tls.key.display()
        )
    })?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow::anyhow!("tls: the certificate and key do not make a TLS setup: {e}")
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// rustls needs one process-wide crypto provider; ring is the one built in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Application {
    /// Builds the server on an already bound listener (tests pass port 0).
    /// The database must be open and migrated.
    pub fn build(config: Config, listener: TcpListener, pool: Pool) -> anyhow::Result<Application> {
        Application::build_with(config, listener, pool, Records::Kept)
    }

    pub fn build_with(
        config: Config,
        listener: TcpListener,
        pool: Pool,
        records: Records,
    ) -> anyhow::Result<Application> {
        install_crypto_provider();
        let live = Live::build(config)?;
        if live.upstreams.has_echo() {
            // Load the tokenizer now, not on the first request.
            std::thread::spawn(|| crate::usage::count_tokens("gpt-4o", "warm up"));
        }
        let keys = Arc::new(KeyTable::default());
        let (revision, shared) = {
            let mut conn = pool.get().context("cannot get a database connection")?;
            // Several instances may share PostgreSQL or MySQL: their rpm and
            // parallel limits hold in total through leased shares.
            let shared = conn.dialect() != crate::db::Dialect::Sqlite;
            if shared {
                keys.ledgers().lease_shares();
            }
            (keys.load(&mut conn).context("cannot load users")?, shared)
        };
        {
            // Limits count from what was used before this start.
            let mut conn = pool.get().context("cannot get a database connection")?;
            crate::usage::daily::refresh(&mut conn, &keys.ledgers(), crate::db::now())
                .context("cannot read used totals")?;
        }
        let outage = Arc::new(crate::outage::Outage::default());
        let refresher = keytable::refresher(keys.clone(), pool.clone(), revision, outage.clone());
        let pruner = (live.config.usage.keep_records)
            .filter(|_| records == Records::Kept)
            .map(|keep| crate::usage::pruner::start(pool.clone(), keep));
        let metrics = Arc::new(Metrics::new());
        metrics.know_models(live.upstreams.named_models());
        let prices: PriceBook = Arc::new(ArcSwap::new(live.prices.clone()));
        let writer = UsageWriter::start(
            pool.clone(),
            keys.ledgers(),
            metrics.clone(),
            prices.clone(),
            live.config.usage.batch_window,
        );
        let usage = match records {
            Records::Kept => writer.sink().with_room(live.config.usage.buffer_records),
            Records::Dropped => writer.sink().off(),
        };
        let port = listener.local_addr()?.port();
        // Where other instances and people reach this one: its address, or
        // its host's name when it listens on every address.
        let listen_ip = listener.local_addr()?.ip();
        let listen_host = if listen_ip.is_unspecified() {
            crate::cluster::host_name()
        } else {
            listen_ip.to_string()
        };
        let lease_ttl = live.config.cluster.lease_ttl;
        let instance = crate::cluster::instance_id();
        let leases = shared.then(|| {
            Arc::new(crate::leases::Leases::new(
                pool.clone(),
                instance.clone(),
                lease_ttl,
                outage.clone(),
            ))
        });
        let config = &live.config;
        let workers = config.workers;
        let shutdown = config.limits.shutdown_timeout;
        let connect_timeout = config.limits.upstream_connect_timeout;
        let upstream_timeout = config.limits.upstream_timeout;
        let tls = config.tls.as_ref().map(tls_config).transpose()?;
        let cors = web::Data::new(Cors::new(&config.cors.origins));
        // With sign-in, an admin group's members use the admin API too.
        let admin_on =
            config.admin.as_ref().is_some_and(|a| a.token.is_some()) || config.web.oidc.is_some();
        let web_app = config
            .web
            .enabled
            .then(|| crate::web::WebApp::new(&config.web));
        let web_app = web_app.map(std::sync::Arc::new);
        let gateway = web::Data::new(Gateway {
            live: ArcSwap::from_pointee(live),
            prices,
            keys,
            usage,
            pool,
            metrics,
            throttle: Default::default(),
            oidc: Default::default(),
            leases: leases.clone(),
            outage,
        });
        let gateway_handle = gateway.clone();
        // Seen by `cluster status` (and its shares by the other instances)
        // before it serves; a database that refuses the row does not stop
        // the gateway.
        let address = format!(
            "{}://{}:{port}",
            if tls.is_some() { "https" } else { "http" },
            listen_host
        );
        let heartbeat = crate::cluster::Heartbeat::start(
            gateway_handle.pool.clone(),
            instance,
            address,
            lease_ttl,
            gateway_handle.metrics.in_flight.clone(),
            leases,
        )
        .map_err(|e| tracing::warn!("cannot register this instance in the database: {e}"))
        .ok();
        let settler = (records == Records::Kept).then(|| {
            crate::settle::Settler::start(
                gateway.clone().into_inner(),
                connect_timeout,
                upstream_timeout,
            )
        });
        let mut server = HttpServer::new(move || {
            // awc clients are not thread-safe: one set and pool per worker.
            let clients = Clients::new(connect_timeout, upstream_timeout, gateway.metrics.clone());
            App::new()
                .app_data(gateway.clone())
                .app_data(cors.clone())
                .app_data(web::Data::new(clients))
                .wrap(from_fn(edge::middleware))
                // The proxied API first: routes are tried in order, and every
                // one before it (the web app's assets are a regex) costs each
                // proxied request a match.
                .service(
                    web::scope("/v1")
                        .route("/me", web::get().to(account::me))
                        .route("/me/usage", web::get().to(account::my_usage))
                        .route("/me/cost", web::get().to(account::my_cost))
                        .configure(crate::my_keys::configure)
                        .configure(account::configure)
                        .default_service(web::to(proxy::handle)),
                )
                // Gemini's API (Google's SDKs and Gemini CLI).
                .service(web::scope("/v1beta").default_service(web::to(proxy::handle)))
                .service(web::scope("/upload/v1beta").default_service(web::to(proxy::handle)))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics_text))
                .configure(account::configure)
                .configure(crate::signin::configure)
                .configure(|cfg| {
                    if admin_on {
                        cfg.service(web::scope("/admin").configure(admin::configure));
                    }
                })
                .configure(|cfg| {
                    if let Some(app) = &web_app {
                        crate::web::WebApp::configure(app, cfg);
                    }
                })
                .default_service(web::to(not_found))
        })
        .tcp_nodelay(true)
        .shutdown_timeout(shutdown.as_secs());
        if workers > 0 {
            server = server.workers(workers);
        }
        let server = match &tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls.clone())?,
            None => server.listen(listener)?,
        }
        .run();
        Ok(Application {
            port,
            server,
            refresher,
            writer,
            pruner,
            settler,
            heartbeat,
            gateway: gateway_handle,
            config_source: None,
        })
    }

    /// Where SIGHUP re-reads the configuration from; without one, SIGHUP
    /// only re-reads users and keys.
    pub fn reload_from(mut self, source: ConfigSource) -> Self {
        self.config_source = Some(source);
        self
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
            pruner,
            settler,
            heartbeat,
            gateway,
            config_source,
            ..
        } = self;
        let reloads = tokio::spawn(reload_on_sighup(gateway, config_source.map(Arc::new)));
        // systemd (Type=notify): ready once the listener is serving.
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let result = server.await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        reloads.abort();
        tokio::task::spawn_blocking(move || {
            drop(pruner);
            if let Some(h) = heartbeat {
                h.stop();
            }
            // Before the writer: what it settles goes to the writer.
            drop(settler);
            refresher.stop();
            writer.flush_and_stop();
        })
        .await?;
        result.context("server failed")
    }
}

/// SIGHUP: reload the configuration (if there is a source), users and keys,
/// without dropping connections. A configuration that fails to load is
/// reported and the running one kept.
async fn reload_on_sighup(gateway: web::Data<Gateway>, source: Option<Arc<ConfigSource>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reloads need a restart");
        return;
    };
    while hangups.recv().await.is_some() {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        let (gw, source) = (gateway.clone(), source.clone());
        let done = tokio::task::spawn_blocking(move || match source {
            Some(source) => source().and_then(|config| gw.reload(config)),
            None => gw.reload(gw.live().config.clone()),
        })
        .await;
        match done {
            Ok(Ok(())) => tracing::info!("configuration reloaded"),
            Ok(Err(e)) => {
                tracing::error!("reload failed, keeping the running configuration: {e:#}")
            }
            Err(e) => tracing::error!("reload failed: {e}"),
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready while the database answers; in an outage it says for how long,
/// and what is still served (SPEC §10).
async fn readyz(gw: web::Data<Gateway>) -> HttpResponse {
    use diesel::connection::SimpleConnection;
    let answered = match gw.outage.lasted() {
        // Not waiting a pool timeout on every probe while it is known out.
        Some(_) => false,
        None => match crate::db::query(&gw.pool, |c| c.batch_execute("SELECT 1")).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("readiness check failed: {e}");
                gw.outage.failed();
                false
            }
        },
    };
    if answered {
        return HttpResponse::Ok().json(serde_json::json!({"status": "ready"}));
    }
    let lasted = gw.outage.lasted().unwrap_or_default().as_secs();
    let grace = gw.live().config.database.outage_grace;
    let limited = if gw.outage.beyond(grace) {
        "refused"
    } else {
        "served with the limits last seen"
    };
    HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "status": "unavailable",
        "reason": "database unreachable",
        "outage_seconds": lasted,
        "outage_grace_seconds": grace.as_secs(),
        "known_keys": "served from memory; usage waits in memory",
        "limited_users": limited,
        "usage_waiting": gw.metrics.usage_queue.get(),
    }))
}

async fn metrics_text(gw: web::Data<Gateway>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(gw.metrics.render())
}

async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    let started = std::time::Instant::now();
    let path = req.path();
    let shown: String = path.chars().take(200).collect();
    let message = match crate::paths::check_path(path) {
        Err(why) => why,
        // A client whose base URL lacks `/v1` (Codex, a compatible
        // client), or Gemini's `/v1beta`.
        Ok(()) => match crate::catalogue::find(
            req.method(),
            crate::catalogue::Api::V1,
            path.trim_start_matches('/'),
        ) {
            Some(e) => {
                let version = match e.face {
                    crate::catalogue::Face::Gemini => "/v1beta",
                    _ => "/v1",
                };
                format!(
                    "{shown} is under {version}: the client's base URL probably lacks `{version}`; add it (https://host{version})."
                )
            }
            None => format!("Unknown path {shown}; the OpenAI API is under /v1."),
        },
    };
    let id = crate::proxy::edge::request_id();
    crate::usage::meter::log_refused(
        id.to_str().unwrap_or("-"),
        crate::proxy::method_name(req.method()),
        path,
        404,
        started,
    );
    let mut res = error_body(
        StatusCode::NOT_FOUND,
        &message,
        "invalid_request_error",
        "unknown_endpoint",
    );
    // The reply names the id its log line does; no retry finds the path.
    let headers = res.headers_mut();
    headers.insert(crate::proxy::edge::X_REQUEST_ID, id);
    headers.insert(
        actix_web::http::header::HeaderName::from_static("x-should-retry"),
        actix_web::http::header::HeaderValue::from_static("false"),
    );
    res
}
