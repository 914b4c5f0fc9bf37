//! Application Insights end to end (SPEC §5, issue 13 item 8): the real
//! `chaoslab serve` with APPLICATIONINSIGHTS_CONNECTION_STRING pointing its
//! IngestionEndpoint at a stand-in ingestion endpoint inside the test (there
//! is no Azure here: this is the one test double). The stand-in receives
//! what the exporter posts to `/v2.1/track` (gzip-compressed JSON arrays of
//! envelopes) and can reject batches with 429 or 500 as the real one does
//! when throttling or failing.
//!
//! Shown here: requests (server spans), dependencies (Redis spans),
//! exceptions and the SPEC §5 metrics arrive as envelopes tagged with the
//! replica as `ai.cloud.roleInstance`; a rejected batch is posted again
//! until accepted, while requests stay fast.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use common::{GENEROUS, RedisServer, Service, http};
use serde_json::{Value, json};

const REPLICA: &str = "chaoslab--rev1-replica-7";

/// What the stand-in received and how it answers.
#[derive(Default)]
struct Ingestion {
    /// Every envelope accepted, in order.
    accepted: Mutex<Vec<Value>>,
    /// Every POST: (path, envelope count, status answered).
    posts: Mutex<Vec<(String, usize, u16)>>,
    /// Batches still to reject, and with which status.
    reject_next: AtomicUsize,
    reject_status: AtomicU16,
}

async fn track(
    State(ing): State<Arc<Ingestion>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let gzip = headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let mut text = Vec::new();
    if gzip {
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut text)
            .expect("the batch is gzip");
    } else {
        text = body.to_vec();
    }
    let envelopes: Vec<Value> = serde_json::from_slice(&text).expect("the batch is a JSON array");
    let n = envelopes.len();
    let rejecting = ing
        .reject_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1))
        .is_ok();
    let status = if rejecting {
        StatusCode::from_u16(ing.reject_status.load(Ordering::SeqCst)).unwrap()
    } else {
        ing.accepted.lock().unwrap().extend(envelopes);
        StatusCode::OK
    };
    ing.posts
        .lock()
        .unwrap()
        .push((uri.path().to_string(), n, status.as_u16()));
    // As the real endpoint answers: per-item errors carry the status, and
    // the exporter retries the items whose status is retryable.
    let errors: Vec<Value> = if rejecting {
        (0..n)
            .map(|index| json!({"index": index, "statusCode": status.as_u16(), "message": "stand-in refused"}))
            .collect()
    } else {
        Vec::new()
    };
    let accepted = if rejecting { 0 } else { n };
    (
        status,
        axum::Json(json!({"itemsReceived": n, "itemsAccepted": accepted, "errors": errors})),
    )
}

/// Starts the stand-in; the connection string pointing at it.
async fn start_ingestion(ing: Arc<Ingestion>) -> String {
    let app = axum::Router::new()
        .fallback(axum::routing::post(track))
        .with_state(ing);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!(
        "InstrumentationKey=00000000-0000-4000-8000-000000000001;IngestionEndpoint=http://{addr}/;LiveEndpoint=http://{addr}/"
    )
}

fn service(redis: &RedisServer, connection_string: &str) -> Service {
    Service::builder()
        .redis(redis)
        .env("REPLICA_ID", REPLICA)
        .env("TELEMETRY_ENABLED", "true")
        .env("APPLICATIONINSIGHTS_CONNECTION_STRING", connection_string)
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("REDIS_SOCKET_TIMEOUT", "1")
        .env("REDIS_SOCKET_CONNECT_TIMEOUT", "1")
        .env("REDIS_BACKOFF_BASE", "0.1")
        .env("REDIS_BACKOFF_CAP", "0.2")
        .start()
}

/// Envelopes whose `data.baseType` is `kind` (RequestData, …).
fn of_kind(ing: &Ingestion, kind: &str) -> Vec<Value> {
    ing.accepted
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["baseType"] == kind)
        .cloned()
        .collect()
}

/// What the stand-in saw, for failure messages.
fn seen(ing: &Ingestion, svc: &Service) -> String {
    let kinds: Vec<String> = ing
        .accepted
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["data"]["baseType"], e["data"]["baseData"]["name"]
            )
        })
        .collect();
    let mut metrics = metric_names(ing);
    metrics.sort();
    metrics.dedup();
    let kinds = [kinds, vec![format!("metric names: {metrics:?}")]].concat();
    let logs = svc.logs();
    let tail: String = logs.lines().rev().take(15).collect::<Vec<_>>().join("\n");
    format!(
        "posts: {:?}\nenvelopes: {kinds:?}\nservice log (last lines, newest first):\n{tail}",
        ing.posts.lock().unwrap()
    )
}

async fn wait_for<T, F: FnMut() -> Option<T>>(
    ing: &Ingestion,
    svc: &Service,
    what: &str,
    mut check: F,
) -> T {
    match chaoslab_test_support::wait::poll_async(GENEROUS, || std::future::ready(check())).await {
        Some(v) => v,
        None => panic!("timed out waiting for {what}; {}", seen(ing, svc)),
    }
}

fn metric_names(ing: &Ingestion) -> Vec<String> {
    of_kind(ing, "MetricData")
        .iter()
        .flat_map(|e| {
            e["data"]["baseData"]["metrics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_dependencies_exceptions_and_metrics_arrive_as_envelopes() {
    let Some(mut redis) = RedisServer::start_or_skip() else {
        return;
    };
    let ing = Arc::new(Ingestion::default());
    let connection_string = start_ingestion(ing.clone()).await;
    let svc = service(&redis, &connection_string);
    let client = http(Duration::from_secs(20));
    for _ in 0..3 {
        let r = client.get(svc.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // A failure: Redis gone, GET / is a 503 whose Redis span records the
    // exception.
    redis.stop();
    // The first finds the connection broken, the second fails to connect
    // (redis.connection.failure counts connection attempts).
    for _ in 0..2 {
        let r = client.get(svc.url("/")).send().await.unwrap();
        assert_eq!(r.status(), 503);
    }

    let (requests, dependencies) = wait_for(&ing, &svc, "request and dependency envelopes", || {
        let requests = of_kind(&ing, "RequestData");
        let dependencies = of_kind(&ing, "RemoteDependencyData");
        (requests
            .iter()
            .filter(|r| r["data"]["baseData"]["name"] == "GET /")
            .count()
            >= 4
            && !dependencies.is_empty())
        .then_some((requests, dependencies))
    })
    .await;
    assert_request_envelopes(&ing, &requests, &dependencies);

    // Dependencies: the Redis spans, as the seed named them, under the
    // request they served.
    assert_redis_dependency(&requests, &dependencies);

    // The exception of the failed Redis operation, and the SPEC §5
    // metrics.
    exception_and_metrics_arrive(&ing, &svc).await;
}

/// Every envelope went to a track endpoint with the replica's role tags;
/// `GET /` requests include a 200 and a failed 503.
fn assert_request_envelopes(ing: &Ingestion, requests: &[Value], dependencies: &[Value]) {
    let posts = ing.posts.lock().unwrap().clone();
    assert!(
        posts
            .iter()
            .all(|(path, _, _)| path == "/v2.1/track" || path == "/v2/track"),
        "{posts:?}"
    );
    for envelope in requests.iter().chain(dependencies) {
        assert_eq!(
            envelope["tags"]["ai.cloud.roleInstance"], REPLICA,
            "{envelope}"
        );
        assert_eq!(envelope["tags"]["ai.cloud.role"], "chaoslab", "{envelope}");
        assert!(envelope["iKey"].is_string(), "{envelope}");
    }
    let get_root: Vec<&Value> = requests
        .iter()
        .filter(|r| r["data"]["baseData"]["name"] == "GET /")
        .collect();
    let codes: Vec<&str> = get_root
        .iter()
        .filter_map(|r| r["data"]["baseData"]["responseCode"].as_str())
        .collect();
    assert!(
        codes.contains(&"200") && codes.contains(&"503"),
        "{codes:?}"
    );
    let failed = get_root
        .iter()
        .find(|r| r["data"]["baseData"]["responseCode"] == "503")
        .unwrap();
    assert_eq!(failed["data"]["baseData"]["success"], false, "{failed}");
}

/// The Redis dependency `redis GET+INCR` with its properties, in the
/// operation of a `GET /` request.
fn assert_redis_dependency(requests: &[Value], dependencies: &[Value]) {
    let get_root: Vec<&Value> = requests
        .iter()
        .filter(|r| r["data"]["baseData"]["name"] == "GET /")
        .collect();
    let redis_dep = dependencies
        .iter()
        .find(|d| {
            d["data"]["baseData"]["type"] == "redis"
                && d["data"]["baseData"]["name"] == "redis GET+INCR"
        })
        .unwrap_or_else(|| panic!("no redis dependency: {dependencies:#?}"));
    let base = &redis_dep["data"]["baseData"];
    assert!(
        base["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("redis ")),
        "{base}"
    );
    assert!(base["properties"]["redis.operation"].is_string(), "{base}");
    assert_eq!(base["properties"]["redis.host"], "127.0.0.1", "{base}");
    assert!(
        base["target"]
            .as_str()
            .is_some_and(|t| t.contains("127.0.0.1")),
        "{base}"
    );
    let operation_ids: Vec<&Value> = get_root
        .iter()
        .map(|r| &r["tags"]["ai.operation.id"])
        .collect();
    assert!(
        operation_ids.contains(&&redis_dep["tags"]["ai.operation.id"]),
        "the dependency is not in a request's operation: {redis_dep}"
    );
}

/// The exception of the failed Redis operation and every SPEC §5 metric
/// (one-second export interval) arrive, tagged with the replica.
async fn exception_and_metrics_arrive(ing: &Ingestion, svc: &Service) {
    let exceptions = wait_for(ing, svc, "an exception envelope", || {
        let e = of_kind(ing, "ExceptionData");
        (!e.is_empty()).then_some(e)
    })
    .await;
    let text = exceptions[0].to_string();
    assert!(text.contains("Redis connection failed"), "{text}");
    assert_eq!(exceptions[0]["tags"]["ai.cloud.roleInstance"], REPLICA);

    // The SPEC §5 metrics (one-second export interval).
    let wanted = [
        "redis.connection.success",
        "redis.connection.failure",
        "redis.operation.latency",
        "chaos.load.active",
        "chaos.load.level",
        "app.memory.usage",
        "app.cpu.usage",
        "http.server.request.duration",
    ];
    let names = wait_for(ing, svc, "every SPEC §5 metric", || {
        let names = metric_names(ing);
        wanted
            .iter()
            .all(|w| names.iter().any(|n| n == w))
            .then_some(names)
    })
    .await;
    assert!(!names.is_empty());
    for m in of_kind(ing, "MetricData") {
        assert_eq!(m["tags"]["ai.cloud.roleInstance"], REPLICA, "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_batches_are_posted_again_and_never_slow_requests() {
    let Some(redis) = RedisServer::start_or_skip() else {
        return;
    };
    let ing = Arc::new(Ingestion::default());
    // The next 4 batches are refused: throttled (429), then failing (500).
    ing.reject_status.store(429, Ordering::SeqCst);
    ing.reject_next.store(2, Ordering::SeqCst);
    let connection_string = start_ingestion(ing.clone()).await;
    let svc = service(&redis, &connection_string);
    let client = http(Duration::from_secs(20));

    let mut slowest = Duration::ZERO;
    for i in 0..40 {
        if i == 10 {
            ing.reject_status.store(500, Ordering::SeqCst);
            ing.reject_next.store(2, Ordering::SeqCst);
        }
        let started = Instant::now();
        let r = client
            .get(svc.url("/"))
            .header("X-Request-ID", format!("appinsights-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The exporter's retries happen on its own thread: no request waited
    // for them (a retry waits ≥ 0.5 s).
    assert!(
        slowest < Duration::from_millis(400),
        "a request took {slowest:?} while the endpoint refused batches"
    );
    // Every refused batch came back and was accepted: every request is
    // there exactly once.
    wait_for(
        &ing,
        &svc,
        "every request envelope after the retries",
        || {
            let requests = of_kind(&ing, "RequestData");
            (requests.len() >= 40).then_some(())
        },
    )
    .await;
    let posts = ing.posts.lock().unwrap().clone();
    let refused: Vec<u16> = posts.iter().map(|p| p.2).filter(|s| *s != 200).collect();
    assert!(
        refused.contains(&429) && refused.contains(&500),
        "{posts:?}"
    );
    let requests = of_kind(&ing, "RequestData");
    let mut ids: Vec<String> = requests
        .iter()
        .filter_map(|r| r["data"]["baseData"]["id"].as_str().map(str::to_string))
        .collect();
    let before = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), before, "a request was delivered twice");
}
