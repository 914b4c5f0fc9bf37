//! Component tests of the ingress with real sockets on loopback: tiny hyper
//! upstreams, the real accept loop, a real HTTP client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::{IngressConfig, IngressMetrics, PROXY_ERROR_HEADER, Upstream, UpstreamSet, run};

/// An upstream that answers its name, echoes POST bodies and sleeps on
/// `/slow`; it reports the request id it saw in `x-seen-request-id`.
pub(crate) async fn upstream(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| async move {
                    let seen = req
                        .headers()
                        .get("x-request-id")
                        .cloned()
                        .unwrap_or(http::HeaderValue::from_static("none"));
                    let req_forwarded = req.headers().get("x-forwarded-for").cloned();
                    let body = match req.uri().path() {
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            Bytes::from_static(b"slow")
                        }
                        "/echo" => req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default(),
                        _ => Bytes::from(name),
                    };
                    let forwarded = req_forwarded;
                    let mut response = Response::new(Full::new(body));
                    response.headers_mut().insert("x-seen-request-id", seen);
                    if let Some(f) = forwarded {
                        response.headers_mut().insert("x-seen-forwarded-for", f);
                    }
                    Ok::<_, Infallible>(response)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

pub(crate) struct Fixture {
    pub(crate) url: String,
    pub(crate) set: watch::Sender<UpstreamSet>,
    pub(crate) metrics: Arc<IngressMetrics>,
    pub(crate) stop: oneshot::Sender<()>,
    /// Ends when the ingress has stopped.
    pub(crate) stopped: tokio::task::JoinHandle<Result<(), crate::IngressError>>,
}

async fn ingress(upstreams: Vec<SocketAddr>, config: IngressConfig) -> Fixture {
    ingress_with(upstreams, config, true).await
}

/// An ingress in front of `upstreams`, with its plain path or without.
pub(crate) async fn ingress_with(
    upstreams: Vec<SocketAddr>,
    config: IngressConfig,
    plain_path: bool,
) -> Fixture {
    let set: UpstreamSet = Arc::new(
        upstreams
            .into_iter()
            .enumerate()
            .map(|(i, addr)| Upstream {
                id: format!("u{i}"),
                addr,
            })
            .collect(),
    );
    let (tx, rx) = watch::channel(set);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let metrics = Arc::new(IngressMetrics::default());
    let (stop, stop_signal) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stop_signal.await;
    };
    let stopped = tokio::spawn(crate::server::run_with(
        listener,
        rx,
        config,
        metrics.clone(),
        shutdown,
        plain_path,
    ));
    Fixture {
        url,
        set: tx,
        metrics,
        stop,
        stopped,
    }
}

#[tokio::test]
async fn no_upstream_is_a_marked_503() {
    let f = ingress(vec![], IngressConfig::default()).await;
    let response = reqwest::get(&f.url).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()[PROXY_ERROR_HEADER],
        "no-healthy-upstream"
    );
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "no healthy upstream");
    assert_eq!(body["request_id"], request_id.as_str());
    assert_eq!(f.metrics.snapshot().by_class[4], 1);
}

#[tokio::test]
async fn round_robin_follows_the_published_set() {
    let a = upstream("a").await;
    let b = upstream("b").await;
    let f = ingress(vec![a, b], IngressConfig::default()).await;
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            client
                .get(&f.url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    seen.sort();
    assert_eq!(seen, ["a", "a", "b", "b"]);
    // b leaves the set: everything goes to a.
    f.set.send_replace(Arc::new(vec![Upstream {
        id: "a".into(),
        addr: a,
    }]));
    for _ in 0..3 {
        assert_eq!(
            client
                .get(&f.url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "a"
        );
    }
    assert_eq!(f.metrics.snapshot().by_class[1], 7);
}

#[tokio::test]
async fn request_id_is_passed_or_created() {
    let a = upstream("a").await;
    let f = ingress(vec![a], IngressConfig::default()).await;
    let client = reqwest::Client::new();
    let response = client
        .get(&f.url)
        .header("x-request-id", "given")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-seen-request-id"], "given");
    assert_eq!(response.headers()["x-request-id"], "given");
    let response = client.get(&f.url).send().await.unwrap();
    let created = response.headers()["x-seen-request-id"].to_str().unwrap();
    assert_eq!(created.len(), 36, "a UUID was created: {created}");
    assert_eq!(response.headers()["x-request-id"], created);
    assert_eq!(response.headers()["x-seen-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn bodies_stream_through() {
    let a = upstream("a").await;
    let f = ingress(vec![a], IngressConfig::default()).await;
    // 1 MiB in which every byte depends on its position: a dropped,
    // duplicated or reordered chunk changes the bytes, not only the length.
    let payload: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let body = reqwest::Client::new()
        .post(format!("{}/echo", f.url))
        .body(payload.clone())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.len(), payload.len());
    assert!(
        body[..] == payload[..],
        "the echoed body differs from byte {:?}",
        body.iter().zip(&payload).position(|(a, b)| a != b)
    );
}

/// `method` on `{own}/echo` with `headers` is answered `status` by the
/// ingress itself (`kind` in its error header, the standard body, no CORS
/// grant).
async fn refused_by_the_ingress(
    client: &reqwest::Client,
    own: &str,
    method: &str,
    headers: &[(&str, &str)],
    status: u16,
    kind: &str,
) {
    let mut request = client.request(method.parse().unwrap(), format!("{own}/echo"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), status, "{method} {headers:?}");
    assert_eq!(response.headers()[PROXY_ERROR_HEADER], kind);
    assert!(
        !response
            .headers()
            .keys()
            .any(|k| k.as_str().starts_with("access-control-")),
        "no CORS grant"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("refused"),
        "{body}"
    );
    assert!(body["request_id"].is_string(), "{body}");
}

/// SPEC section 13: a foreign `Host` (DNS rebinding), a change from another
/// site or with a body that is not JSON is refused by the ingress itself —
/// no upstream sees it — while what clients send passes.
#[tokio::test]
async fn browser_attacks_are_refused_before_any_upstream() {
    let a = upstream("a").await;
    let f = ingress(vec![a], IngressConfig::default()).await;
    let client = reqwest::Client::new();
    let own = f.url.clone();
    let refused = [
        (
            "GET",
            vec![("host", "evil.example:8000")],
            403,
            "forbidden-host",
        ),
        (
            "POST",
            vec![("host", "evil.example")],
            403,
            "forbidden-host",
        ),
        (
            "POST",
            vec![("origin", "https://evil.example")],
            403,
            "cross-site",
        ),
        ("DELETE", vec![("origin", "null")], 403, "cross-site"),
        (
            "POST",
            vec![("content-type", "text/plain")],
            415,
            "not-json",
        ),
        (
            "PUT",
            vec![("content-type", "application/x-www-form-urlencoded")],
            415,
            "not-json",
        ),
    ];
    for (method, headers, status, kind) in refused {
        refused_by_the_ingress(&client, &own, method, &headers, status, kind).await;
    }
    let origin = own.clone();
    for headers in [
        vec![],
        vec![("host", "localhost")],
        vec![("content-type", "application/json")],
        vec![
            ("origin", origin.as_str()),
            ("content-type", "application/json"),
        ],
    ] {
        let mut request = client.post(format!("{own}/echo")).body("{}");
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{headers:?}");
        assert_eq!(response.text().await.unwrap(), "{}");
    }
    let snapshot = f.metrics.snapshot();
    assert_eq!(snapshot.by_class[3], 6, "refusals are counted as 4xx");
    assert_eq!(snapshot.proxy_errors, 6, "as the ingress's own answers");
}

#[tokio::test]
async fn configured_names_are_answered_and_bad_ones_stop_the_ingress() {
    let a = upstream("a").await;
    let config = IngressConfig {
        allowed_hosts: vec!["lab.example".into()],
        ..Default::default()
    };
    let f = ingress(vec![a], config).await;
    let client = reqwest::Client::new();
    for (host, status) in [("lab.example:8000", 200), ("other.example", 403)] {
        let response = client
            .get(&f.url)
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{host}");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_tx, rx) = watch::channel(Arc::new(Vec::new()));
    let config = IngressConfig {
        allowed_hosts: vec!["bad/name".into()],
        ..Default::default()
    };
    let result = run(
        listener,
        rx,
        config,
        Arc::new(IngressMetrics::default()),
        std::future::pending(),
    )
    .await;
    assert!(
        matches!(result, Err(crate::IngressError::AllowedHosts(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn slow_upstream_is_a_504_after_the_timeout() {
    let a = upstream("a").await;
    let config = IngressConfig {
        request_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let f = ingress(vec![a], config).await;
    let response = reqwest::get(format!("{}/slow", f.url)).await.unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(response.headers()[PROXY_ERROR_HEADER], "upstream-timeout");
}

#[tokio::test]
async fn refused_connection_is_retried_on_the_next_upstream() {
    let a = upstream("a").await;
    // A port where nothing listens.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let f = ingress(vec![dead, a], IngressConfig::default()).await;
    let client = reqwest::Client::new();
    for _ in 0..4 {
        let response = client.get(&f.url).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// Sequential requests, with and without bodies, reuse one kept-alive
/// upstream connection: the pool gets it back once each answer is read.
#[tokio::test]
async fn sequential_requests_reuse_one_upstream_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let body = req.into_body().collect().await.map(|b| b.to_bytes());
                    Ok::<_, Infallible>(Response::new(Full::new(body.unwrap_or_default())))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let f = ingress(vec![addr], IngressConfig::default()).await;
    let client = reqwest::Client::new();
    for i in 0..6 {
        let request = if i % 2 == 0 {
            client.get(&f.url)
        } else {
            client
                .post(format!("{}/echo", f.url))
                .header("content-type", "application/json")
                .body(format!("{{\"n\":{i}}}"))
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let expected = if i % 2 == 0 {
            String::new()
        } else {
            format!("{{\"n\":{i}}}")
        };
        assert_eq!(response.text().await.unwrap(), expected);
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Sends `head` and then a byte every 50 ms, reading meanwhile, until the
/// ingress closes the connection; what it answered (bounded wait).
async fn trickle_after(addr: &str, head: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    let mut out = Vec::new();
    let feed = async {
        let mut chunk = [0u8; 4096];
        loop {
            if stream.write_all(b"x").await.is_err() {
                // Closed under us: read what is left.
                let _ = stream.read_to_end(&mut out).await;
                return;
            }
            match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), feed)
        .await
        .expect("the ingress closed the connection in time");
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

#[tokio::test]
async fn a_body_still_arriving_at_the_request_timeout_is_a_408_of_the_ingress() {
    let a = upstream("a").await;
    let config = IngressConfig {
        request_timeout: Duration::from_millis(600),
        ..Default::default()
    };
    let f = ingress(vec![a], config).await;
    let addr = f.url.trim_start_matches("http://").to_string();
    let started = std::time::Instant::now();
    let text = trickle_after(
        &addr,
        b"POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n[",
    )
    .await;
    assert!(text.starts_with("http/1.1 408"), "{text}");
    assert!(
        text.contains("x-chaoslab-error: request-body-timeout"),
        "{text}"
    );
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.contains("\"error\":\"request timeout\""), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(600));
    let snapshot = f.metrics.snapshot();
    assert_eq!(snapshot.by_class[3], 1, "counted as a 4xx");
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_is_cut_at_the_header_timeout_and_others_are_served() {
    let a = upstream("a").await;
    let config = IngressConfig {
        limits: chaoslab_httpguard::ServerLimits {
            header_timeout: Duration::from_millis(400),
            ..Default::default()
        },
        ..Default::default()
    };
    let f = ingress(vec![a], config).await;
    let addr = f.url.trim_start_matches("http://").to_string();
    let slow =
        tokio::spawn(async move { trickle_after(&addr, b"GET / HTTP/1.1\r\nhost: loc").await });
    let response = reqwest::get(&f.url).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = slow.await.unwrap();
    assert!(
        text.is_empty(),
        "nothing answered to a head that never ended: {text}"
    );
}

/// An upstream that answers the first request on each connection and, on
/// the second, reads it and closes without a word (as a replica that died
/// handling it would); counts the requests it saw per method.
async fn dies_on_second_request() -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                for answered in [true, false] {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let method = String::from_utf8_lossy(&head);
                    let method = method.split(' ').next().unwrap_or_default().to_string();
                    log.lock().unwrap().push(method);
                    if !answered {
                        return; // closes without answering
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn only_idempotent_requests_are_sent_again_and_only_once() {
    let (addr, seen) = dies_on_second_request().await;
    let fx = ingress(vec![addr], IngressConfig::default()).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    // Each call: one answered request on a fresh upstream connection, so
    // that the next finds it idle, then the call under test on it.
    for (method, status_wanted, times_seen) in [
        (reqwest::Method::DELETE, 200, 2),
        (reqwest::Method::POST, 502, 1),
    ] {
        let warm = client.get(format!("{}/", fx.url)).send().await.unwrap();
        assert_eq!(warm.status(), 200);
        seen.lock().unwrap().clear();
        let answer = client
            .request(method.clone(), format!("{}/", fx.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), status_wanted, "{method}");
        let sent = seen.lock().unwrap().clone();
        assert_eq!(
            sent.iter().filter(|m| **m == method.as_str()).count(),
            times_seen,
            "{method}: the upstream saw {sent:?}"
        );
    }
}
