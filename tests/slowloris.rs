//! Slowloris against every HTTP server of chaoslab, the real binaries over
//! real sockets (SPEC section 13, "Bounds"; issue 11 item 11): `chaoslab
//! serve` with a real redis-server, and the ingress, control API and
//! Toxiproxy-compatible API of a real `chaoslab up`. 50 connections each
//! send a request head one byte at a time and never finish it; meanwhile a
//! normal client is answered, and every slow connection is closed by the
//! server at the header timeout (before the limits they were held
//! forever). A body that trickles is answered 408 in the server's error
//! body and the connection closed. The timeouts are set short through the
//! `SERVER_*` variables so the test is quick; every wait has a generous
//! deadline, and the only timing asserted is "not before the timeout".

#[path = "common/mod.rs"]
mod common;
mod lab_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chaoslab_test_support::wait::holds_within;
use common::{GENEROUS, RedisServer, Service};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The header and body timeouts the servers are started with.
const TIMEOUT: Duration = Duration::from_secs(1);
const TIMEOUT_SECONDS: &str = "1";
/// Slow clients per server.
const SLOW: usize = 50;
/// How often a slow client sends its next byte.
const DRIP: Duration = Duration::from_millis(100);

/// `host:port` of an `http://` URL.
fn addr_of(url: &str) -> SocketAddr {
    let rest = url.trim_start_matches("http://");
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .parse()
        .unwrap_or_else(|e| panic!("{authority}: {e}"))
}

/// What became of one slow client.
#[derive(Debug)]
enum Slow {
    /// The server closed the connection this long after the client
    /// connected.
    Closed(Duration),
    /// Still open when the test gave up.
    HeldOpen,
}

/// Sends `first`, then one byte of `drip` every [`DRIP`], reading
/// meanwhile, until the server closes the connection (end of file or
/// reset); what it answered, and when it closed. `sent` counts clients
/// that have sent their first byte.
async fn trickle(
    addr: SocketAddr,
    first: &[u8],
    drip: u8,
    sent: Arc<AtomicUsize>,
) -> (Slow, Vec<u8>) {
    let connected = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut answer = Vec::new();
    if stream.write_all(first).await.is_err() {
        return (Slow::Closed(connected.elapsed()), answer);
    }
    sent.fetch_add(1, Ordering::SeqCst);
    let deadline = connected + GENEROUS;
    let mut chunk = [0u8; 4096];
    while Instant::now() < deadline {
        match tokio::time::timeout(DRIP, stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return (Slow::Closed(connected.elapsed()), answer),
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
            Err(_) => {
                if stream.write_all(&[drip]).await.is_err() {
                    // Closed under us: what is left to read is the answer.
                    let _ = tokio::time::timeout(GENEROUS, stream.read_to_end(&mut answer)).await;
                    return (Slow::Closed(connected.elapsed()), answer);
                }
            }
        }
    }
    (Slow::HeldOpen, answer)
}

/// [`SLOW`] clients sending a head that never ends to `addr`, started and
/// each past its first byte when this returns.
async fn slow_heads(addr: SocketAddr) -> Vec<tokio::task::JoinHandle<(Slow, Vec<u8>)>> {
    let sent = Arc::new(AtomicUsize::new(0));
    let head = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ");
    let tasks: Vec<_> = (0..SLOW)
        .map(|_| {
            let (head, sent) = (head.clone(), sent.clone());
            tokio::spawn(async move { trickle(addr, head.as_bytes(), b'a', sent).await })
        })
        .collect();
    let all_sent = holds_within(GENEROUS, || sent.load(Ordering::SeqCst) == SLOW).await;
    assert!(
        all_sent,
        "only {} slow clients connected to {addr}",
        sent.load(Ordering::SeqCst)
    );
    tasks
}

/// Every slow client was closed by the server, none before the header
/// timeout, and none was answered anything.
async fn assert_all_cut(server: &str, tasks: Vec<tokio::task::JoinHandle<(Slow, Vec<u8>)>>) {
    for task in tasks {
        let (slow, answer) = task.await.expect("slow client task");
        match slow {
            Slow::Closed(after) => assert!(
                after >= TIMEOUT,
                "{server}: a slow head was cut after {after:?}, before the {TIMEOUT:?} header timeout"
            ),
            Slow::HeldOpen => panic!("{server}: a slow head was held open for {GENEROUS:?}"),
        }
        assert!(
            answer.is_empty(),
            "{server}: a head that never ended drew an answer: {}",
            String::from_utf8_lossy(&answer)
        );
    }
}

/// Sends `head` and then the body one byte per [`DRIP`], never finishing
/// it; the server's answer, split into its head (lower-cased) and body.
async fn trickling_body(addr: SocketAddr, head: &str) -> (String, Value) {
    let started = Instant::now();
    let (slow, answer) = trickle(addr, head.as_bytes(), b' ', Arc::new(AtomicUsize::new(0))).await;
    match slow {
        Slow::Closed(_) => {}
        Slow::HeldOpen => panic!("{addr}: a trickling body was held open for {GENEROUS:?}"),
    }
    assert!(
        started.elapsed() >= TIMEOUT,
        "answered before the body timeout"
    );
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (answer_head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{addr}: no answer to a trickling body: {text:?}"));
    let body = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{addr}: the 408's body is not JSON ({e}): {text}"));
    (answer_head.to_ascii_lowercase(), body)
}

/// A header of an answer head (lower-cased), if present.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cuts_fifty_slow_heads_at_the_header_timeout_and_keeps_answering() {
    let Some(redis) = RedisServer::start_or_skip() else {
        return;
    };
    let service = Service::builder()
        .redis(&redis)
        .env("SERVER_HEADER_TIMEOUT_SECONDS", TIMEOUT_SECONDS)
        .env("SERVER_BODY_TIMEOUT_SECONDS", TIMEOUT_SECONDS)
        .start();
    let addr = addr_of(&service.url(""));
    let slow = slow_heads(addr).await;
    let client = common::http(GENEROUS);
    let response = client.get(service.url("/")).send().await.expect("GET /");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["request_count"].as_i64().is_some(), "{body}");
    assert_all_cut("chaoslab serve", slow).await;
    // After the attack, still serving.
    assert_eq!(
        common::get_status(&client, service.url("/health")).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_a_trickling_body_with_408_in_the_error_body() {
    let Some(redis) = RedisServer::start_or_skip() else {
        return;
    };
    let service = Service::builder()
        .redis(&redis)
        .env("SERVER_HEADER_TIMEOUT_SECONDS", TIMEOUT_SECONDS)
        .env("SERVER_BODY_TIMEOUT_SECONDS", TIMEOUT_SECONDS)
        .start();
    let addr = addr_of(&service.url(""));
    let (head, body) = trickling_body(
        addr,
        &format!(
            "POST /chaos/load HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Request-ID: slowloris-body\r\nContent-Length: 500\r\n\r\n{{\"level\":"
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    assert_eq!(
        header(&head, "x-request-id"),
        Some("slowloris-body"),
        "{head}"
    );
    assert_eq!(body["error"], "Request Timeout", "{body}");
    assert_eq!(body["request_id"], "slowloris-body", "{body}");
    assert!(body["timestamp"].is_string(), "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("did not arrive within 1s"),
        "{body}"
    );
    // No load was started from half a body.
    let status: Value =
        common::get_json(&common::http(GENEROUS), service.url("/chaos/status")).await;
    assert_eq!(status["load"]["active"], false, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_labs_listeners_cut_slow_heads_and_trickling_bodies() {
    let lab = lab_support::builder()
        .env("SERVER_HEADER_TIMEOUT_SECONDS", TIMEOUT_SECONDS)
        .env("SERVER_BODY_TIMEOUT_SECONDS", TIMEOUT_SECONDS)
        .start()
        .await;
    let toxiproxy = lab.toxiproxy_url().await;
    let listeners = [
        ("ingress", addr_of(&lab.ingress("/"))),
        ("control API", addr_of(&lab.control("/"))),
        ("Toxiproxy API", addr_of(&toxiproxy)),
    ];
    let mut attacks = Vec::new();
    for (name, addr) in listeners {
        attacks.push((name, slow_heads(addr).await));
    }
    // Meanwhile each listener answers a normal client.
    let ingress = lab
        .http
        .get(lab.ingress("/"))
        .send()
        .await
        .expect("GET / through the ingress");
    assert_eq!(ingress.status(), 200);
    let status: Value = lab
        .client()
        .get("/api/status")
        .await
        .expect("GET /api/status answers 200 meanwhile");
    assert!(status["replicas"].is_array(), "{status}");
    let version = lab
        .http
        .get(format!("{toxiproxy}/version"))
        .send()
        .await
        .expect("GET /version");
    assert_eq!(version.status(), 200);
    for (name, tasks) in attacks {
        assert_all_cut(name, tasks).await;
    }

    // A trickling body: the ingress answers it itself (the request timeout
    // covers the upload), the APIs in their own error bodies.
    trickling_bodies_are_cut(listeners.map(|(_, addr)| addr), lab.token()).await;

    // And every listener still serves.
    let again = lab.http.get(lab.ingress("/")).send().await.expect("GET /");
    assert_eq!(again.status(), 200);
}

/// A trickling body on each of the lab's listeners (ingress, control API,
/// Toxiproxy API) gets a 408 in that listener's own error shape.
async fn trickling_bodies_are_cut(listeners: [SocketAddr; 3], token: &str) {
    let [ingress, control, toxiproxy_addr] = listeners;
    let (head, body) = trickling_body(
        ingress,
        &format!(
            "POST /chaos/load HTTP/1.1\r\nHost: {ingress}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{"
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert_eq!(
        header(&head, "x-chaoslab-error"),
        Some("request-body-timeout"),
        "{head}"
    );
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    assert_eq!(body["error"], "Request Timeout", "{body}");

    // Raw on purpose: the request itself is the attack (a declared body
    // that never comes), and the answer checked is the listener's.
    let (head, body) = trickling_body(
        control,
        &format!(
            "POST /api/revisions HTTP/1.1\r\nHost: {control}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{"
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    assert_eq!(body["error"], "Request Timeout", "{body}");
    assert!(body["request_id"].is_string(), "{body}");

    let (head, body) = trickling_body(
        toxiproxy_addr,
        &format!(
            "POST /proxies HTTP/1.1\r\nHost: {toxiproxy_addr}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{{"
        ),
    )
    .await;
    assert!(head.starts_with("http/1.1 408"), "{head}");
    assert_eq!(body["status"], 408, "{body}");
}

/// A bad bound stops `chaoslab up` before anything starts, with one line
/// naming the variable (not one listener failing later in the log).
#[test]
fn up_refuses_a_bad_bound_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chaoslab"))
        .args(["up", "--port", "0", "--control-port", "0"])
        .env("SERVER_MAX_CONNECTIONS", "0")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("SERVER_MAX_CONNECTIONS"), "{stderr}");
    assert!(
        !dir.path().join(".chaoslab").join("lab.json").exists(),
        "no lab was started"
    );
}
