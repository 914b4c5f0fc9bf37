//! The server over real loopback sockets: refused heads answered in the
//! error body after the requests before them, the stand-in request's path
//! unusable by clients, and arbitrary bytes from a client never drawing an
//! answer that is not the application's (no bare hyper error).

use std::time::Duration;

use clap::Parser;
use proptest::prelude::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::{AppState, ServeArgs, ServiceMetrics};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ServeArgs,
}

/// A server without Redis (and, for fuzzing, without chaos) on loopback.
async fn start(chaos: bool) -> std::net::SocketAddr {
    start_with_state(chaos).await.0
}

async fn start_with_state(chaos: bool) -> (std::net::SocketAddr, AppState) {
    start_limited(chaos, ServerLimits::PUBLIC).await
}

/// A server without Redis under `limits`.
async fn start_limited(chaos: bool, limits: ServerLimits) -> (std::net::SocketAddr, AppState) {
    let cli = Cli::try_parse_from([
        "serve",
        "--redis-enabled",
        "false",
        "--chaos-enabled",
        if chaos { "true" } else { "false" },
    ])
    .expect("arguments");
    let config = cli.args.validate().expect("config");
    let state = AppState::new(config, ServiceMetrics::new(), Arc::new(String::new)).expect("state");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(
        listener,
        crate::app(state.clone()),
        hold_while_hung(&state),
        limits,
        std::future::pending::<()>(),
    ));
    (addr, state)
}

/// Writes `input`, half-closes, reads until the server closes (bounded).
async fn exchange(addr: std::net::SocketAddr, input: &[u8], half_close: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(input).await;
    if half_close {
        let _ = stream.shutdown().await;
    }
    // Without a half-close an incomplete request keeps the connection
    // open: whatever was answered within a second is what there is.
    let wait = Duration::from_secs(if half_close { 10 } else { 1 });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    out
}

/// One HTTP/1 answer: status, head fields (names lower-cased), body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// The HTTP/1 answers in `out`, as far as they are complete.
fn answers(mut out: &[u8]) -> Vec<Answer> {
    let mut found = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = resp.parse(out) else {
            return found;
        };
        let fields: Vec<(String, String)> = resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let code = resp.code.unwrap_or(0);
        let body_len = fields
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0usize);
        if out.len() < len + body_len {
            return found;
        }
        found.push((code, fields, out[len..len + body_len].to_vec()));
        out = &out[len + body_len..];
    }
}

fn header<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn assert_error_body(body: &[u8]) -> Value {
    let body: Value = serde_json::from_slice(body).expect("a JSON error body");
    for field in ["error", "detail", "timestamp", "request_id"] {
        assert!(body[field].is_string(), "{field}: {body}");
    }
    body
}

#[tokio::test]
async fn a_refused_head_gets_the_error_body_after_earlier_requests() {
    let addr = start(true).await;
    let input = format!(
        "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}\r\n\r\nGET /livez HTTP/1.1\r\n\r\n",
        "p".repeat(MAX_HEAD_BYTES)
    );
    let out = exchange(addr, input.as_bytes(), true).await;
    let found = answers(&out);
    let codes: Vec<u16> = found.iter().map(|a| a.0).collect();
    assert_eq!(codes, [200, 431], "{}", String::from_utf8_lossy(&out));
    let (_, fields, body) = &found[1];
    assert_eq!(header(fields, "connection"), Some("close"));
    assert_eq!(
        header(fields, "content-type"),
        Some("application/json"),
        "{fields:?}"
    );
    let body = assert_error_body(body);
    assert_eq!(body["error"], "Request Header Fields Too Large");
    assert_eq!(header(fields, "x-request-id"), body["request_id"].as_str());
}

#[tokio::test]
async fn a_refusal_waits_out_a_process_hang_like_any_answer() {
    let (addr, state) = start_with_state(true).await;
    let hang = state
        .hang()
        .start(crate::chaos::HangScope::Process, Duration::ZERO)
        .expect("hang");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("GET /{} HTTP/1.1\r\n\r\n", "u".repeat(9000));
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
    assert!(early.is_err(), "answered during the hang");
    drop(hang);
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("answered after the hang")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 414"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test]
async fn clients_cannot_ask_for_the_stand_in_path() {
    let addr = start(true).await;
    let input = format!(
        "GET {} HTTP/1.1\r\nConnection: close\r\n\r\n",
        *REFUSAL_PATH
    );
    let out = exchange(addr, input.as_bytes(), true).await;
    let found = answers(&out);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, 404);
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_stops_accepting() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let never: Hold = Arc::new(|| Box::pin(std::future::ready(())));
    let server = tokio::spawn(serve(listener, app, never, ServerLimits::PUBLIC, async {
        let _ = stopped.await;
    }));
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server drains and returns")
        .unwrap()
        .unwrap();
    assert_eq!(
        idle.read(&mut buf).await.unwrap_or(0),
        0,
        "idle connection closed"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

fn short(header_ms: u64, body_ms: u64) -> ServerLimits {
    ServerLimits {
        header_timeout: Duration::from_millis(header_ms),
        body_timeout: Duration::from_millis(body_ms),
        ..ServerLimits::PUBLIC
    }
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_is_closed_at_the_header_timeout() {
    let (addr, _state) = start_limited(true, short(400, 10_000)).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}",
        "p".repeat(400)
    );
    let started = std::time::Instant::now();
    let mut closed = false;
    for byte in head.as_bytes() {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(50), slow.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a slow head was never cut");
    assert!(started.elapsed() >= Duration::from_millis(400));
    // Meanwhile and after, others are answered.
    let out = exchange(
        addr,
        b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        true,
    )
    .await;
    assert_eq!(answers(&out).first().map(|a| a.0), Some(200));
}

#[tokio::test]
async fn a_trickling_body_is_a_408_in_the_error_body() {
    let (addr, _state) = start_limited(true, short(10_000, 500)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /chaos/load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Request-ID: trickle-1\r\nContent-Length: 200\r\n\r\n{\"level\"",
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    let feed = async {
        let mut chunk = [0u8; 4096];
        loop {
            let _ = stream.write_all(b" ").await;
            match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), feed)
        .await
        .expect("closed in time");
    let found = answers(&out);
    assert_eq!(found.len(), 1, "{}", String::from_utf8_lossy(&out));
    let (code, fields, body) = &found[0];
    assert_eq!(*code, 408);
    assert_eq!(header(fields, "connection"), Some("close"));
    assert_eq!(header(fields, "x-request-id"), Some("trickle-1"));
    let body = assert_error_body(body);
    assert_eq!(body["error"], "Request Timeout");
    assert_eq!(body["request_id"], "trickle-1");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("did not arrive within"),
        "{body}"
    );
}

/// Client input: HTTP/1-looking pieces and noise (no HTTP/2 preface).
fn client_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"GET / HTTP/1.1\r\n".to_vec()),
        Just(b"GET /livez?a=%ff&b=\xff HTTP/1.1\r\n".to_vec()),
        Just(b"POST /health HTTP/1.1\r\n".to_vec()),
        Just(b"DELETE /nowhere HTTP/1.0\r\n".to_vec()),
        Just(b"Content-Length: 3\r\n".to_vec()),
        Just(b"Content-Length: x\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Expect: 100-continue\r\n".to_vec()),
        Just(b"Connection: close\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"3\r\nabc\r\n0\r\n\r\n".to_vec()),
        Just(b"abc".to_vec()),
        prop::collection::vec(any::<u8>(), 0..30),
        (0usize..20_000).prop_map(|n| vec![b'a'; n]),
    ];
    prop::collection::vec(piece, 0..16)
        .prop_map(|pieces| pieces.concat())
        .prop_filter("not HTTP/2", |b| !b.starts_with(b"PRI"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn every_answer_to_arbitrary_bytes_is_the_services(input in client_bytes(), half_close in any::<bool>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let out = runtime.block_on(async {
            let addr = start(false).await;
            exchange(addr, &input, half_close).await
        });
        for (code, fields, body) in answers(&out) {
            if code < 200 {
                continue; // 100 Continue
            }
            prop_assert!(header(&fields, "x-request-id").is_some(), "{}", String::from_utf8_lossy(&out));
            if code >= 400 {
                assert_error_body(&body);
            }
        }
    }
}
