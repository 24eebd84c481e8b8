//! Tunnelling proxies (SOCKS5, HTTP CONNECT) for the upstream-proxy tests.

use std::sync::{Arc, Mutex};

/// A tunnelling proxy on port 0 (SOCKS5, or HTTP CONNECT), recording the
/// `host:port` of every tunnel it opened.
pub struct TestProxy {
    pub url: String,
    pub tunnels: Arc<Mutex<Vec<String>>>,
}

pub async fn start_proxy(socks5: bool) -> TestProxy {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tunnels = Arc::new(Mutex::new(Vec::new()));
    let seen = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let target = if socks5 {
                    // Greeting: version, methods → no authentication.
                    let mut head = [0u8; 2];
                    client.read_exact(&mut head).await?;
                    let mut methods = vec![0u8; head[1] as usize];
                    client.read_exact(&mut methods).await?;
                    client.write_all(&[5, 0]).await?;
                    // Request: version, CONNECT, reserved, address type.
                    let mut req = [0u8; 4];
                    client.read_exact(&mut req).await?;
                    let host = match req[3] {
                        1 => {
                            let mut ip = [0u8; 4];
                            client.read_exact(&mut ip).await?;
                            std::net::Ipv4Addr::from(ip).to_string()
                        }
                        3 => {
                            let len = client.read_u8().await? as usize;
                            let mut name = vec![0u8; len];
                            client.read_exact(&mut name).await?;
                            String::from_utf8_lossy(&name).into_owned()
                        }
                        _ => return Ok::<_, std::io::Error>(()),
                    };
                    let port = client.read_u16().await?;
                    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
                    format!("{host}:{port}")
                } else {
                    let mut reader = BufReader::new(&mut client);
                    let mut line = String::new();
                    reader.read_line(&mut line).await?;
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).await?;
                        if header == "\r\n" || header.is_empty() {
                            break;
                        }
                    }
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await?;
                    target
                };
                seen.lock().unwrap().push(target.clone());
                let mut upstream = tokio::net::TcpStream::connect(&target).await?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                Ok(())
            });
        }
    });
    let scheme = if socks5 { "socks5" } else { "http" };
    TestProxy {
        url: format!("{scheme}://127.0.0.1:{port}"),
        tunnels,
    }
}
