//! An experiment, not used by chatgate: the least a tokio + hyper proxy
//! costs, shaped like `bench_floor` (one thread, every request passed to
//! one upstream through a pooled client, the response streamed back, no
//! other work). It answers whether any tokio-based stack could reach
//! nginx's CPU per request on this box, which actix-web + awc cannot.
//!
//! Usage: bench_floor_hyper LISTEN_ADDR UPSTREAM_BASE (e.g. 127.0.0.1:9108
//! http://127.0.0.1:9101).

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Drops the headers of one connection, keeping those of the message.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::TRAILER,
    ] {
        headers.remove(name);
    }
}

async fn forward(
    req: Request<Incoming>,
    client: Arc<Client<HttpConnector, Incoming>>,
    base: Arc<str>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{base}{path}")
        .parse::<Uri>()
        .expect("upstream URL");
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    let mut res = client.request(Request::from_parts(parts, body)).await?;
    strip_hop_by_hop(res.headers_mut());
    Ok(res)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(base)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_floor_hyper LISTEN_ADDR UPSTREAM_BASE");
        std::process::exit(2);
    };
    let base: Arc<str> = base.trim_end_matches('/').into();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            let client = Arc::new(Client::builder(TokioExecutor::new()).build(connector));
            let listener = tokio::net::TcpListener::bind(listen).await?;
            loop {
                let (socket, _) = listener.accept().await?;
                socket.set_nodelay(true)?;
                let (client, base) = (client.clone(), base.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        forward(req, client.clone(), base.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        })
}
