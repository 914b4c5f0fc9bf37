//! The ceiling the ingress is measured against beside nginx (issue 12 item
//! 5, `bench/ingress.sh`): the least a Rust reverse proxy on tokio must do
//! to carry the bench's requests — bodyless HTTP/1.1 requests whose
//! answers have a `Content-Length` — to one upstream: each client
//! connection gets its own kept-alive upstream connection, request heads
//! are parsed with httparse and forwarded as they came with
//! `X-Forwarded-For` and `X-Forwarded-Proto` added, response heads are
//! parsed for their length and forwarded with their body as bytes. One
//! single-threaded runtime per thread, all taking connections from one
//! listener, as the ingress. No limits, no guard, no request ids, no
//! metrics, no timeouts, no hop-by-hop handling, no error answers: a
//! connection that sends anything else is closed.
//!
//!   cargo run --release -p chaoslab-ingress --example proxy_ceiling -- 127.0.0.1:8002 127.0.0.1:8001 2
//!
//! It is a yardstick, not a proxy.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Most header fields in a head.
const MAX_HEADERS: usize = 64;
/// Largest head taken.
const MAX_HEAD: usize = 64 * 1024;

fn main() {
    let usage = "usage: proxy_ceiling LISTEN_ADDR UPSTREAM_ADDR [THREADS]";
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| exit(usage));
    let upstream: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| exit(usage));
    let threads: usize = args
        .next()
        .map_or(Some(1), |t| t.parse().ok())
        .unwrap_or_else(|| exit(usage));
    let listener = std::net::TcpListener::bind(listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .unwrap_or_else(|e| exit(&format!("ceiling: cannot listen on {listen}: {e}")));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let listener = listener
                .try_clone()
                .unwrap_or_else(|e| exit(&format!("ceiling: {e}")));
            std::thread::spawn(move || run(listener, upstream))
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
}

fn exit(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(2)
}

/// One event loop taking connections from `listener`.
fn run(listener: std::net::TcpListener, upstream: SocketAddr) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap_or_else(|e| exit(&format!("ceiling: {e}")));
    runtime.block_on(async move {
        let listener =
            TcpListener::from_std(listener).unwrap_or_else(|e| exit(&format!("ceiling: {e}")));
        loop {
            let Ok((client, peer)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let _ = relay(client, peer, upstream).await;
            });
        }
    });
}

/// Carries the requests of one client connection until either side closes
/// or sends what the ceiling does not carry.
async fn relay(
    mut client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let mut server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let forwarded = format!(
        "X-Forwarded-For: {}\r\nX-Forwarded-Proto: http\r\n\r\n",
        peer.ip()
    );
    let (mut from_client, mut from_server, mut head) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let Some(length) = read_head(&mut client, &mut from_client, request_head).await? else {
            return Ok(());
        };
        // The head without its blank line, then the added fields and one.
        head.clear();
        head.extend_from_slice(&from_client[..length - 2]);
        head.extend_from_slice(forwarded.as_bytes());
        from_client.drain(..length);
        server.write_all(&head).await?;
        let Some((head_length, body_length)) =
            read_head(&mut server, &mut from_server, response_head).await?
        else {
            return Ok(());
        };
        let whole = head_length + body_length;
        while from_server.len() < whole {
            if server.read_buf(&mut from_server).await? == 0 {
                return Ok(());
            }
        }
        client.write_all(&from_server[..whole]).await?;
        from_server.drain(..whole);
    }
}

/// Reads from `stream` into `buf` until `parse` finds a whole head; `None`
/// when the stream ends first or the head is not one the ceiling carries.
async fn read_head<T>(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    parse: fn(&[u8]) -> Result<Option<T>, ()>,
) -> std::io::Result<Option<T>> {
    loop {
        match parse(buf) {
            Ok(Some(head)) => return Ok(Some(head)),
            Ok(None) if buf.len() < MAX_HEAD => {}
            _ => return Ok(None),
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// The length of a bodyless request head at the start of `bytes`.
fn request_head(bytes: &[u8]) -> Result<Option<usize>, ()> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => {
            let has_body = request.headers.iter().any(|f| {
                f.name.eq_ignore_ascii_case("transfer-encoding")
                    || (f.name.eq_ignore_ascii_case("content-length") && f.value != b"0")
            });
            if has_body { Err(()) } else { Ok(Some(length)) }
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(()),
    }
}

/// The head length and `Content-Length` of a response head at the start of
/// `bytes`.
fn response_head(bytes: &[u8]) -> Result<Option<(usize, usize)>, ()> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(bytes) {
        Ok(httparse::Status::Complete(length)) => response
            .headers
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("content-length"))
            .and_then(|f| std::str::from_utf8(f.value).ok()?.trim().parse().ok())
            .map(|body| Some((length, body)))
            .ok_or(()),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(()),
    }
}
