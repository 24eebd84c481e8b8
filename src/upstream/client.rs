//! The HTTP clients for upstreams: one set per worker (awc is not
//! thread-safe), each with its own keep-alive pool: one direct, and one per
//! outbound proxy (`http://` with CONNECT, or `socks5://`).

use super::Upstream;
use crate::metrics::Metrics;
use actix_service::{Service, ServiceExt};
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Clients {
    direct: awc::Client,
    /// Made on first use, so a reload can bring new proxies.
    via_proxy: RefCell<HashMap<String, awc::Client>>,
    timeouts: (Duration, Duration),
    metrics: Arc<Metrics>,
}

impl Clients {
    pub fn new(connect_timeout: Duration, timeout: Duration, metrics: Arc<Metrics>) -> Clients {
        let tcp = ConnectorService::default().map(|conn: Connection<Uri, TcpStream>| {
            nodelay(conn.io_ref());
            conn
        });
        Clients {
            direct: build(tcp, connect_timeout, timeout),
            via_proxy: RefCell::default(),
            timeouts: (connect_timeout, timeout),
            metrics,
        }
    }

    /// The client for an upstream: through its proxy, or direct. (awc
    /// clients are cheap handles onto a shared pool.)
    pub fn for_upstream(&self, upstream: &Upstream) -> awc::Client {
        let Some(url) = upstream.proxy.as_deref() else {
            return self.direct.clone();
        };
        let mut clients = self.via_proxy.borrow_mut();
        if let Some(c) = clients.get(url) {
            return c.clone();
        }
        let (connect, total) = self.timeouts;
        let client = match Proxy::parse(url) {
            Some(proxy) => build(proxy, connect, total),
            // Validated with the configuration, so not expected; if it
            // happens, fail closed rather than bypass the proxy.
            None => build(
                actix_service::fn_service(|_: ConnectInfo<Uri>| async {
                    Err::<Connection<Uri, TcpStream>, _>(ConnectError::Unresolved)
                }),
                connect,
                total,
            ),
        };
        clients.insert(url.to_owned(), client.clone());
        client
    }

    /// Records how long an attempt took until the response head (or failure).
    pub fn observe(&self, upstream: &Upstream, took: Duration) {
        self.metrics
            .upstream_seconds
            .with_label_values(&[&*upstream.name])
            .observe(took.as_secs_f64());
    }
}

/// Nagle's algorithm would hold small writes (an SSE event, a request head)
/// for up to 40 ms waiting for an ACK; off, as on the server's side.
fn nodelay(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

fn build<S>(tcp: S, connect_timeout: Duration, timeout: Duration) -> awc::Client
where
    S: Service<ConnectInfo<Uri>, Response = Connection<Uri, TcpStream>, Error = ConnectError>
        + Clone
        + 'static,
{
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .connector(tcp)
                .timeout(connect_timeout)
                // No cap on connections per host: streams hold theirs open.
                .limit(0),
        )
        .timeout(timeout)
        .disable_redirects()
        .finish()
}

#[derive(Clone)]
enum Kind {
    Socks5,
    HttpConnect,
}

/// Connects to upstreams through a proxy. After the handshake the TCP
/// stream is a plain tunnel, so TLS and HTTP run over it as usual.
#[derive(Clone)]
struct Proxy {
    kind: Kind,
    addr: Rc<str>,
    auth: Option<Rc<(String, String)>>,
}

impl Proxy {
    fn parse(url: &str) -> Option<Proxy> {
        let u = crate::config::proxy_url(url).ok()?;
        let kind = if u.scheme() == "http" {
            Kind::HttpConnect
        } else {
            Kind::Socks5
        };
        let addr = format!("{}:{}", u.host_str()?, u.port_or_known_default()?);
        let auth = (!u.username().is_empty()).then(|| {
            let password = u.password().unwrap_or_default();
            Rc::new((decode(u.username()), decode(password)))
        });
        Some(Proxy {
            kind,
            addr: Rc::from(addr),
            auth,
        })
    }

    async fn tunnel(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        let io_err = |e: String| std::io::Error::other(e);
        match self.kind {
            Kind::Socks5 => {
                let target = (host, port);
                let stream = match &self.auth {
                    Some(a) => {
                        tokio_socks::tcp::Socks5Stream::connect_with_password(
                            &*self.addr,
                            target,
                            &a.0,
                            &a.1,
                        )
                        .await
                    }
                    None => tokio_socks::tcp::Socks5Stream::connect(&*self.addr, target).await,
                };
                stream
                    .map(|s| s.into_inner())
                    .map_err(|e| io_err(format!("socks5 proxy: {e}")))
            }
            Kind::HttpConnect => {
                let mut stream = TcpStream::connect(&*self.addr).await?;
                let mut head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
                if let Some(a) = &self.auth {
                    use base64::Engine;
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", a.0, a.1));
                    head.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
                }
                head.push_str("\r\n");
                stream.write_all(head.as_bytes()).await?;
                // Read the proxy's answer up to its blank line, byte by byte,
                // so nothing of the tunnel is consumed.
                let mut answer = Vec::new();
                while !answer.ends_with(b"\r\n\r\n") {
                    if answer.len() > 8192 {
                        return Err(io_err("http proxy: answer too long".into()));
                    }
                    answer.push(stream.read_u8().await?);
                }
                let status_line = String::from_utf8_lossy(&answer);
                let ok = status_line
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|code| code.starts_with('2'));
                if !ok {
                    let first = status_line.lines().next().unwrap_or_default().to_owned();
                    return Err(io_err(format!("http proxy refused the tunnel: {first}")));
                }
                Ok(stream)
            }
        }
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Service<ConnectInfo<Uri>> for Proxy {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let proxy = self.clone();
        let (host, port) = (req.hostname().to_owned(), req.port());
        let uri = req.request().clone();
        Box::pin(async move {
            let stream = proxy.tunnel(&host, port).await.map_err(ConnectError::Io)?;
            nodelay(&stream);
            Ok(Connection::new(uri, stream))
        })
    }
}
