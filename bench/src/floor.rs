//! The least an actix-web + awc proxy costs, for `bench/run.sh`: every
//! request is passed to one upstream and its response streamed back, with
//! no authentication, routing, accounting or logging. chatgate is built on
//! the same two crates (and the same allocator), so the gap between this
//! and chatgate is chatgate's own work, and the gap between this and nginx
//! is the framework's.
//!
//! Usage: bench_floor LISTEN_ADDR UPSTREAM_BASE (e.g. 127.0.0.1:9108
//! http://127.0.0.1:9101).

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Upstream(String);

/// Headers of one connection, not of the message.
fn hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "host" | "content-length"
    )
}

async fn forward(
    req: HttpRequest,
    body: Bytes,
    client: web::Data<awc::Client>,
    upstream: web::Data<Upstream>,
) -> HttpResponse {
    let url = format!("{}{}", upstream.0, req.path());
    let mut out = client
        .request(req.method().clone(), url.as_str())
        .no_decompress();
    for (name, value) in req.headers().iter().filter(|(n, _)| !hop_by_hop(n)) {
        out.headers_mut().append(name.clone(), value.clone());
    }
    let res = match out.send_body(body).await {
        Ok(res) => res,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let mut reply = HttpResponse::build(res.status());
    for (name, value) in res.headers().iter().filter(|(n, _)| !hop_by_hop(n)) {
        reply.append_header((name.clone(), value.clone()));
    }
    let length = res
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if let Some(len) = length {
        reply.no_chunking(len);
    }
    reply.streaming(res)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(base)) = (args.next(), args.next()) else {
        eprintln!("usage: bench_floor LISTEN_ADDR UPSTREAM_BASE");
        std::process::exit(2);
    };
    let upstream = web::Data::new(Upstream(base.trim_end_matches('/').to_owned()));
    HttpServer::new(move || {
        // One client per worker, as in chatgate (awc is not thread-safe).
        let client = awc::Client::builder()
            .connector(awc::Connector::new().limit(0))
            .disable_redirects()
            .finish();
        App::new()
            .app_data(web::Data::new(client))
            .app_data(upstream.clone())
            .default_service(web::to(forward))
    })
    .workers(1)
    .bind(listen)?
    .run()
    .await
}
