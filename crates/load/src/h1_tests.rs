//! Unit tests of the HTTP/1.1 client against a raw socket that answers
//! with canned bytes: every body framing, interim answers, keep-alive and
//! a server that closes an idle connection.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A server answering each request on one connection with the next of
/// `answers`, then closing. Returns its address.
async fn canned(answers: Vec<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let mut buf = vec![0u8; 4096];
        for answer in answers {
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            if sock.write_all(answer).await.is_err() {
                return;
            }
        }
    });
    addr
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

async fn one(answer: &'static [u8], head_only: bool) -> Result<Response, Error> {
    let mut conn = Conn::connect(canned(vec![answer]).await)
        .await
        .expect("connect");
    conn.exchange(GET, head_only, 1024).await
}

#[tokio::test]
async fn content_length_body() {
    let r = one(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false)
        .await
        .expect("ok");
    assert_eq!(
        (r.status, r.bytes, r.body.as_slice(), r.reusable),
        (200, 5, &b"hello"[..], true)
    );
}

#[tokio::test]
async fn chunked_body_with_trailer() {
    let r = one(
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nX-T: 1\r\n\r\n",
        false,
    )
    .await
    .expect("ok");
    assert_eq!(
        (r.status, r.bytes, r.body.as_slice(), r.reusable),
        (503, 7, &b"abcdefg"[..], true)
    );
}

#[tokio::test]
async fn body_until_close_and_http10() {
    let r = one(b"HTTP/1.0 200 OK\r\n\r\nall of it", false)
        .await
        .expect("ok");
    assert_eq!((r.bytes, r.reusable), (9, false));
    let r = one(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        false,
    )
    .await
    .expect("ok");
    assert!(!r.reusable);
}

#[tokio::test]
async fn no_body_cases_and_interim() {
    let r = one(b"HTTP/1.1 204 No Content\r\n\r\n", false)
        .await
        .expect("ok");
    assert_eq!((r.status, r.bytes), (204, 0));
    let r = one(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true)
        .await
        .expect("ok");
    assert_eq!((r.status, r.bytes), (200, 0));
    let r = one(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
        false,
    )
    .await
    .expect("ok");
    assert_eq!((r.status, r.bytes), (201, 1));
}

#[tokio::test]
async fn keep_limit_and_garbage() {
    let mut conn =
        Conn::connect(canned(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef"]).await)
            .await
            .expect("connect");
    let r = conn.exchange(GET, false, 2).await.expect("ok");
    assert_eq!((r.bytes, r.body.as_slice()), (6, &b"ab"[..]));
    assert!(matches!(
        one(b"SMTP ready\r\n\r\n", false).await,
        Err(Error::Failed(_))
    ));
    assert!(matches!(
        one(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", false).await,
        Err(Error::Failed(_))
    ));
}

#[tokio::test]
async fn reuse_then_stale_after_server_close() {
    let addr = canned(vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
    ])
    .await;
    let mut conn = Conn::connect(addr).await.expect("connect");
    assert_eq!(
        conn.exchange(GET, false, 8).await.expect("first").body,
        b"a"
    );
    assert_eq!(
        conn.exchange(GET, false, 8).await.expect("second").body,
        b"b"
    );
    // The server has closed: the third finds a stale connection.
    assert!(matches!(
        conn.exchange(GET, false, 8).await,
        Err(Error::Stale { .. })
    ));
}

#[tokio::test]
async fn notices_a_close_while_idle() {
    let addr = canned(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"]).await;
    let mut conn = Conn::connect(addr).await.expect("connect");
    conn.exchange(GET, false, 8).await.expect("first");
    assert!(
        !conn.closed_while_idle(std::time::Duration::from_secs(3600)),
        "not idle long enough to look"
    );
    // The canned server closes after its one answer; poll until the FIN is seen.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !conn.closed_while_idle(std::time::Duration::ZERO) {
        assert!(std::time::Instant::now() < deadline, "close never noticed");
        tokio::task::yield_now().await;
    }
}

#[test]
fn serializes_requests() {
    assert_eq!(
        serialize("GET", "/health", "127.0.0.1:8000", None),
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: chaoslab-load\r\n\r\n"
    );
    let post = serialize("POST", "/chaos/load", "h", Some(br#"{"a":1}"#));
    assert!(
        post.ends_with(b"Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
    );
}
