//! The HTTP client for upstreams: one per worker (awc is not thread-safe),
//! with its own keep-alive pool.

use actix_service::ServiceExt;
use actix_tls::connect::{Connection, ConnectorService};
use awc::http::Uri;
use std::time::Duration;
use tokio::net::TcpStream;

pub fn build(connect_timeout: Duration, timeout: Duration) -> awc::Client {
    // Nagle's algorithm would hold small writes (an SSE event, a request
    // head) for up to 40 ms waiting for an ACK; turn it off as on the
    // client side of the server.
    let tcp = ConnectorService::default().map(|conn: Connection<Uri, TcpStream>| {
        let _ = conn.io_ref().set_nodelay(true);
        conn
    });
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
