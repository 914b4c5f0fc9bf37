//! The limits over real loopback sockets: a slow head, a silent
//! connection, an idle keep-alive connection and a trickling body are each
//! ended at their timeout and never before; a request in flight is never
//! cut; the connection cap queues clients without stopping the server;
//! shutdown drains. Plus the figures and their variables. Every wait has a
//! deadline; the timing asserts only say "not before the timeout", which a
//! slow machine cannot break.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tower::Layer;

use super::*;

/// Longest any test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(20);

fn limits(header_ms: u64, body_ms: u64, idle_ms: u64, cap: usize) -> ServerLimits {
    ServerLimits {
        header_timeout: Duration::from_millis(header_ms),
        body_timeout: Duration::from_millis(body_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        max_connections: cap,
    }
}

/// `/` answers at once, `/slow` after 1.5 s, `/stream` with 32 pieces of
/// 1 MiB (more than the sockets' buffers hold, and a body still being
/// produced while it is written), `/echo` reads the body (a failed body is
/// a 400, as an application would say); a timed-out body is a 408 from the
/// layer.
async fn app(request: Request<TimedBody>) -> Result<Response<AppBody>, Infallible> {
    let answer = |status: StatusCode, text: String| {
        let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
        *response.status_mut() = status;
        response
    };
    Ok(match request.uri().path() {
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            answer(StatusCode::OK, "slow".into())
        }
        "/stream" => Response::new(Pieces(32).boxed()),
        "/echo" => match request.into_body().collect().await {
            Ok(body) => answer(StatusCode::OK, format!("{} bytes", body.to_bytes().len())),
            Err(e) => answer(StatusCode::BAD_REQUEST, e.to_string()),
        },
        _ => answer(StatusCode::OK, "ok".into()),
    })
}

type AppBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A body of this many 1 MiB pieces, each made when asked for.
struct Pieces(usize);

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        let piece = Bytes::from(vec![b'x'; 1 << 20]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(piece))))
    }
}

/// A server under `limits` on loopback; dropping the sender stops it.
async fn start(limits: ServerLimits) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let service = BodyTimeoutLayer::new(|timeout: &BodyTimeout| {
        let mut response = Response::new(Full::new(Bytes::from(timeout.to_string())).boxed());
        *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
        response
    })
    .layer(tower::service_fn(app));
    tokio::spawn(HttpServer::new(limits).serve(
        listener,
        move |io, _peer| (io, service.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

/// Reads until the server closes the connection (or resets it); `None`
/// when it is still open after `PATIENCE`.
async fn until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, read_all).await.ok()?;
    Some(out)
}

/// One request on a new connection, answered within `PATIENCE`.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let out = until_closed(&mut stream).await.expect("answered in time");
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `bytes` one at a time, 50 ms apart, until the server closes the
/// connection or they run out; whether it closed.
async fn trickle(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() {
            return true;
        }
        let mut probe = [0u8; 1024];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut probe)).await
        {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_is_cut_at_the_header_timeout_while_others_are_answered() {
    let (addr, _stop) = start(limits(400, 10_000, 10_000, 64)).await;
    let started = Instant::now();
    let slow: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                let head = "GET / HTTP/1.1\r\nhost: localhost\r\nx-padding: ".to_string()
                    + &"a".repeat(400);
                tokio::time::timeout(PATIENCE, trickle(&mut stream, head.as_bytes()))
                    .await
                    .unwrap_or(false)
            })
        })
        .collect();
    assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"));
    for task in slow {
        assert!(task.await.expect("task"), "a slow head was never cut");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "cut before its timeout"
    );
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_timeout() {
    let (addr, _stop) = start(limits(300, 10_000, 10_000, 64)).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let out = until_closed(&mut stream).await.expect("closed in time");
    assert!(out.is_empty(), "nothing is answered to silence");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_lasts_the_idle_timeout_not_the_header_one() {
    let (addr, _stop) = start(limits(200, 10_000, 1_200, 64)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle_from = Instant::now();
    until_closed(&mut stream).await.expect("closed in time");
    assert!(
        idle_from.elapsed() >= Duration::from_millis(1_100),
        "closed after {:?}, before the idle timeout",
        idle_from.elapsed()
    );
}

#[tokio::test]
async fn a_request_in_flight_outlives_every_clock() {
    let (addr, _stop) = start(limits(200, 200, 200, 64)).await;
    assert!(get(addr, "/slow").await.contains("slow"));
}

#[tokio::test]
async fn a_trickling_body_gets_408_with_connection_close_at_the_body_timeout() {
    let (addr, _stop) = start(limits(5_000, 500, 10_000, 64)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1000\r\n\r\nab")
        .await
        .expect("write");
    let mut out = Vec::new();
    let feed = async {
        let mut chunk = [0u8; 4096];
        loop {
            // A byte every 50 ms while reading the answer.
            let _ = stream.write_all(b"x").await;
            match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, feed)
        .await
        .expect("closed in time");
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.contains("did not arrive within"), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn a_body_sent_in_time_is_read_whole() {
    let (addr, _stop) = start(limits(5_000, 5_000, 10_000, 64)).await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
        )
        .await
        .expect("write");
    let out = until_closed(&mut stream).await.expect("answered");
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("5 bytes"),
        "{text}"
    );
}

#[tokio::test]
async fn beyond_the_cap_clients_wait_and_are_served_when_slots_free() {
    let (addr, _stop) = start(limits(500, 10_000, 10_000, 2)).await;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Both slots are taken by silent connections: the next client waits in
    // the backlog until the header timeout frees them, then is answered.
    let answer = tokio::time::timeout(PATIENCE, get(addr, "/"))
        .await
        .expect("served once a slot freed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for mut stream in silent {
        until_closed(&mut stream).await.expect("closed in time");
    }
    // And the server keeps accepting.
    assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_is_closed_at_the_idle_timeout() {
    let (addr, _stop) = start(limits(500, 10_000, 1_000, 1)).await;
    // The only slot: a client asks for more than the socket buffers hold
    // and reads none of it. Its response cannot be written; the server
    // gives up on it once no byte has gone for the idle timeout.
    // A small receive buffer of its own: the kernel would otherwise grow
    // it to take most of the answer (up to 32 MiB here).
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    let mut stalled = socket.connect(addr).await.expect("connect");
    stalled
        .write_all(b"GET /stream HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    next_client_served_after_the_stall(addr, Duration::from_millis(1_000)).await;
    // What it was sent was cut short.
    let got = until_closed(&mut stalled).await.expect("closed");
    assert!(got.len() < 32 << 20, "{} bytes", got.len());
}

/// The next client of a server whose only slot a stalled client holds:
/// served once the stall is let go, and not before `at_least`.
async fn next_client_served_after_the_stall(addr: SocketAddr, at_least: Duration) {
    let started = Instant::now();
    let answer = tokio::time::timeout(PATIENCE, get(addr, "/"))
        .await
        .expect("the next client is served once the stalled one is let go");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() >= at_least, "{:?}", started.elapsed());
}

/// An HTTP/2 client (prior knowledge) of `addr` whose streams open with
/// `window` bytes of flow-control window; its connection runs in a task.
async fn h2_client(
    addr: SocketAddr,
    window: u32,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .initial_stream_window_size(window)
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("HTTP/2 handshake");
    (sender, tokio::spawn(connection))
}

fn h2_get(addr: SocketAddr, path: &str) -> Request<http_body_util::Empty<Bytes>> {
    Request::get(format!("http://{addr}{path}"))
        .body(http_body_util::Empty::new())
        .expect("request")
}

#[tokio::test]
async fn an_http2_client_that_keeps_its_window_shut_is_closed_at_the_idle_timeout() {
    let (addr, _stop) = start(limits(500, 10_000, 1_000, 1)).await;
    // The only slot: an HTTP/2 client that opens no flow-control window
    // for its streams asks for a large answer and never reads it. Nothing
    // stalls at the socket (the server may not send), so only the clock
    // of the waiting body can let it go.
    let (mut sender, connection) = h2_client(addr, 0).await;
    let response = tokio::time::timeout(PATIENCE, sender.send_request(h2_get(addr, "/stream")))
        .await
        .expect("a response head in time")
        .expect("a response head");
    assert_eq!(response.status(), StatusCode::OK);
    next_client_served_after_the_stall(addr, Duration::from_millis(900)).await;
    let ended = tokio::time::timeout(PATIENCE, connection).await;
    assert!(ended.is_ok(), "the stalled connection was closed");
    drop(response);
}

#[tokio::test]
async fn an_http2_stream_read_slowly_is_never_cut() {
    // A client that takes its answer, slowly but steadily: each piece is
    // asked for well within the idle timeout, so nothing is closed.
    let (addr, _stop) = start(limits(500, 10_000, 2_000, 4)).await;
    // A small window: the server may send a little more each time the
    // client has read a little, as a slow link would let it.
    let (mut sender, _connection) = h2_client(addr, 64 * 1024).await;
    let response = sender.send_request(h2_get(addr, "/stream")).await;
    let mut body = response.expect("head").into_body();
    let (mut got, mut pieces) = (0, 0);
    let started = Instant::now();
    while let Some(frame) = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .expect("a piece in time")
    {
        if let Ok(data) = frame.expect("no error").into_data() {
            got += data.len();
        }
        // Twelve pauses of 250 ms: longer than the idle timeout (2 s) in
        // all, each well within it.
        pieces += 1;
        if pieces <= 12 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    assert_eq!(got, 32 << 20);
    assert!(started.elapsed() >= Duration::from_millis(2_000));
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_closes_idle_connections() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
    let service = {
        let arrived = arrived.clone();
        tower::service_fn(move |request: Request<TimedBody>| {
            if request.uri().path() == "/slow" {
                arrived.notify_one();
            }
            app(request)
        })
    };
    let server = tokio::spawn(HttpServer::new(limits(10_000, 10_000, 10_000, 64)).serve(
        listener,
        move |io, _peer| (io, service.clone()),
        async {
            let _ = stopped.await;
        },
    ));
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, idle.read(&mut buf))
        .await
        .expect("answered")
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let in_flight = tokio::spawn(get(addr, "/slow"));
    // Shut down only once the slow request is being served.
    tokio::time::timeout(PATIENCE, arrived.notified())
        .await
        .expect("the slow request arrived");
    let _ = stop.send(());
    until_closed(&mut idle).await.expect("idle closed at once");
    let answer = tokio::time::timeout(PATIENCE, in_flight)
        .await
        .expect("in time")
        .expect("task");
    assert!(answer.contains("slow"), "{answer}");
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("drained in time")
        .expect("task")
        .expect("served");
}

#[tokio::test(start_paused = true)]
async fn a_timed_body_fails_only_when_the_client_keeps_it_waiting() {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, Infallible>>(4);
    let stream = http_body_util::StreamBody::new(tokio_stream_from(rx));
    let deadline = BodyDeadline::new(Duration::from_secs(10));
    let mut body = TimedBody::new(stream, deadline.clone());
    tx.send(Ok(http_body::Frame::data(Bytes::from_static(b"a"))))
        .await
        .expect("send");
    tokio::time::advance(Duration::from_secs(20)).await;
    // Late, but already there: delivered.
    let frame = body.frame().await.expect("a frame").expect("data");
    assert_eq!(frame.into_data().expect("data"), Bytes::from_static(b"a"));
    assert!(!deadline.expired());
    // Nothing more is coming: the clock has run out.
    let error = body
        .frame()
        .await
        .expect("an error")
        .expect_err("timed out");
    assert!(
        error.to_string().contains("did not arrive within 10s"),
        "{error}"
    );
    assert!(deadline.expired());
    assert!(!deadline.is_complete());
    drop(tx);
}

#[tokio::test(start_paused = true)]
async fn a_body_read_to_its_end_is_complete_and_never_expires() {
    let deadline = BodyDeadline::new(Duration::from_secs(1));
    let body = TimedBody::new(Full::new(Bytes::from_static(b"whole")), deadline.clone());
    assert!(!deadline.is_complete());
    tokio::time::advance(Duration::from_secs(5)).await;
    let bytes = body.collect().await.expect("read").to_bytes();
    assert_eq!(bytes, Bytes::from_static(b"whole"));
    assert!(deadline.is_complete());
    assert!(!deadline.expired());
}

/// A stream over a channel's receiver (without tokio-stream).
fn tokio_stream_from<T>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Unpin {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[test]
fn defaults_are_within_their_bounds() {
    for limits in [ServerLimits::PUBLIC, ServerLimits::CONTROL] {
        assert_eq!(limits.checked(), Ok(limits));
        assert!(limits.header_timeout < limits.idle_timeout);
    }
    assert_eq!(ServerLimits::PUBLIC.max_connections, 1024);
    assert_eq!(ServerLimits::CONTROL.max_connections, 128);
}

#[test]
fn variables_override_each_figure() {
    let vars = [
        (HEADER_TIMEOUT_VAR, "0.5"),
        (BODY_TIMEOUT_VAR, " 7 "),
        (IDLE_TIMEOUT_VAR, "90"),
        (MAX_CONNECTIONS_VAR, "16"),
    ];
    let limits = ServerLimits::PUBLIC
        .overridden_by(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
        .expect("valid");
    assert_eq!(limits, self::limits(500, 7_000, 90_000, 16));
    assert_eq!(
        ServerLimits::CONTROL.overridden_by(|_| None),
        Ok(ServerLimits::CONTROL)
    );
}

#[test]
fn bad_values_are_refused_naming_the_variable() {
    for (variable, value) in [
        (HEADER_TIMEOUT_VAR, "0"),
        (HEADER_TIMEOUT_VAR, "-1"),
        (BODY_TIMEOUT_VAR, "NaN"),
        (BODY_TIMEOUT_VAR, "inf"),
        (IDLE_TIMEOUT_VAR, "1e12"),
        (IDLE_TIMEOUT_VAR, "ten"),
        (MAX_CONNECTIONS_VAR, "0"),
        (MAX_CONNECTIONS_VAR, "-3"),
        (MAX_CONNECTIONS_VAR, "2000000"),
        (MAX_CONNECTIONS_VAR, "1.5"),
    ] {
        let error = ServerLimits::PUBLIC
            .overridden_by(|name| (name == variable).then(|| value.to_string()))
            .expect_err(value);
        assert_eq!(error.variable, variable, "{value}");
        assert!(error.to_string().starts_with(variable), "{error}");
    }
}

proptest::proptest! {
    #[test]
    fn any_text_is_a_limit_or_a_clear_error(text in "\\PC{0,20}") {
        match parse_seconds(HEADER_TIMEOUT_VAR, &text) {
            Ok(d) => proptest::prop_assert!(d > Duration::ZERO && d <= Duration::from_secs(86_400)),
            Err(e) => proptest::prop_assert_eq!(e.variable, HEADER_TIMEOUT_VAR),
        }
        let _ = ServerLimits::PUBLIC.overridden_by(|_| Some(text.clone()));
    }
}
