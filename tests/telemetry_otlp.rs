//! End-to-end telemetry tests: the real `chaoslab serve` against a real
//! redis-server, exporting over OTLP http/protobuf to a collector that lives
//! inside the test (an axum server decoding with opentelemetry-proto), and
//! against a collector that accepts connections and never answers.
//!
//! What SPEC §5 promises and only the running binary can show: the request
//! span with its Redis child span, the named metrics every interval, and that
//! a telemetry backend that is down never slows a request.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{RedisServer, Service, eventually_async, http};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

/// What the in-test collector has received.
#[derive(Default)]
struct Received {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
}

/// An OTLP http/protobuf collector on a loopback port, on a runtime and
/// thread of its own (the fixtures block their caller while they poll).
struct Collector {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the collector");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("collector address");
        let received = Arc::new(Mutex::new(Received::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = received.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("collector runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let app = Router::new()
                    .route("/v1/traces", post(traces))
                    .route("/v1/metrics", post(metrics))
                    .with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Collector {
            addr,
            received,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        let received = self.received.lock().expect("collector state");
        received
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect()
    }

    /// Names of every metric received so far.
    fn metric_names(&self) -> Vec<String> {
        let received = self.received.lock().expect("collector state");
        received
            .metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| sm.metrics.iter().map(|m| m.name.clone()))
            .collect()
    }

    /// The resource attributes of the first trace export.
    fn trace_resource(&self) -> Vec<KeyValue> {
        let received = self.received.lock().expect("collector state");
        received
            .traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .find_map(|rs| rs.resource.as_ref().map(|r| r.attributes.clone()))
            .unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An OTLP success answer: an empty export response message.
fn ok_response() -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::<u8>::new(),
    )
}

async fn traces(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> impl IntoResponse {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            if let Ok(mut r) = received.lock() {
                r.traces.push(request);
            }
            ok_response().into_response()
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn metrics(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> impl IntoResponse {
    match ExportMetricsServiceRequest::decode(body) {
        Ok(request) => {
            if let Ok(mut r) = received.lock() {
                r.metrics.push(request);
            }
            ok_response().into_response()
        }
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The string value of attribute `key`, if present and a string.
fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
}

/// The integer value of attribute `key`. tracing-opentelemetry exports
/// fields recorded as `u64` (e.g. a `u16` status code) as strings, so a
/// decimal string counts too.
fn int_attr(attributes: &[KeyValue], key: &str) -> Option<i64> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| match &v.value {
            Some(any_value::Value::IntValue(i)) => Some(*i),
            Some(any_value::Value::StringValue(s)) => s.parse().ok(),
            _ => None,
        })
}

fn has_attr(attributes: &[KeyValue], key: &str) -> bool {
    attributes.iter().any(|kv| kv.key == key)
}

/// The service exporting to `endpoint` with short intervals, as the test
/// needs them (the defaults are 5 s for spans, 60 s for metrics).
fn service_exporting_to(redis: &RedisServer, endpoint: &str) -> Service {
    exporting_to(redis, endpoint).start()
}

fn exporting_to(redis: &RedisServer, endpoint: &str) -> common::ServiceBuilder {
    Service::builder()
        .redis(redis)
        .env("TELEMETRY_ENABLED", "true")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "1000")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_and_metrics_reach_an_otlp_collector() {
    let redis = RedisServer::start();
    let collector = Collector::start();
    let service = service_exporting_to(&redis, &collector.endpoint());
    let client = http(Duration::from_secs(10));

    for _ in 0..3 {
        let response = client.get(service.url("/")).send().await.expect("GET /");
        assert_eq!(
            response.status(),
            200,
            "GET / failed; logs:\n{}",
            service.logs()
        );
    }

    // The request span, and a Redis span whose parent it is.
    let (server, child) = server_span_with_a_redis_child(&collector).await;
    assert_eq!(server.trace_id.len(), 16);
    assert_eq!(attr(&server.attributes, "http.request.method"), Some("GET"));
    assert_eq!(attr(&child.attributes, "db.system"), Some("redis"));
    assert_eq!(
        child.kind,
        SpanKind::Client as i32,
        "Redis spans are client spans"
    );
    let resource = collector.trace_resource();
    assert_eq!(attr(&resource, "service.name"), Some("chaoslab"));
    assert!(
        has_attr(&resource, "service.instance.id"),
        "no replica id in {resource:?}"
    );

    // The named metrics, exported every OTEL_METRIC_EXPORT_INTERVAL.
    named_metrics_arrive(&collector).await;

    // The same metrics, in Prometheus names, at /metrics.
    let text = client
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    for name in [
        "redis_connection_success_total",
        "redis_operation_latency_milliseconds_bucket",
        "http_server_request_duration_seconds_bucket",
        "app_memory_usage",
        "app_cpu_usage",
        "chaos_load_active",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
}

/// Waits (bounded) for a server span of `GET /` at the collector with a
/// Redis span as its child; both.
async fn server_span_with_a_redis_child(collector: &Collector) -> (Span, Span) {
    eventually_async(
        chaoslab_test_support::GENEROUS,
        "a server span for GET / with a Redis child span at the collector",
        || async {
            let spans = collector.spans();
            spans
                .iter()
                .filter(|s| s.kind == SpanKind::Server as i32)
                .filter(|s| s.name == "GET /" || attr(&s.attributes, "http.route") == Some("/"))
                .find_map(|server| {
                    spans
                        .iter()
                        .find(|c| {
                            c.trace_id == server.trace_id
                                && c.parent_span_id == server.span_id
                                && has_attr(&c.attributes, "redis.operation")
                        })
                        .map(|child| (server.clone(), child.clone()))
                })
        },
    )
    .await
}

/// Waits (bounded) until every named metric reached the collector.
async fn named_metrics_arrive(collector: &Collector) {
    let wanted = [
        "redis.operation.latency",
        "redis.connection.success",
        "app.memory.usage",
        "app.cpu.usage",
        "chaos.load.active",
        "http.server.request.duration",
    ];
    let names = eventually_async(
        chaoslab_test_support::GENEROUS,
        "every named metric at the collector",
        || async {
            let names = collector.metric_names();
            wanted
                .iter()
                .all(|w| names.iter().any(|n| n == w))
                .then_some(names)
        },
    )
    .await;
    assert!(!names.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_propagated_traceparent_makes_the_request_span_its_child() {
    let redis = RedisServer::start();
    let collector = Collector::start();
    let service = service_exporting_to(&redis, &collector.endpoint());
    let client = http(Duration::from_secs(10));
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let response = client
        .get(service.url("/health"))
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .expect("GET /health");
    assert_eq!(response.status(), 200);
    let server = eventually_async(
        chaoslab_test_support::GENEROUS,
        "the /health server span in the caller's trace",
        || async {
            collector.spans().into_iter().find(|s| {
                s.kind == SpanKind::Server as i32
                    && attr(&s.attributes, "http.route") == Some("/health")
            })
        },
    )
    .await;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    assert_eq!(hex(&server.trace_id), trace_id);
    assert_eq!(hex(&server.parent_span_id), parent_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_rate_zero_still_exports_failed_requests() {
    let mut redis = RedisServer::start();
    let collector = Collector::start();
    let service = exporting_to(&redis, &collector.endpoint())
        .env("TELEMETRY_SAMPLING_RATE", "0")
        .start();
    let client = http(Duration::from_secs(15));

    let ok = client.get(service.url("/")).send().await.expect("GET /");
    assert_eq!(ok.status(), 200, "logs:\n{}", service.logs());
    redis.stop();
    let failed = client.get(service.url("/")).send().await.expect("GET /");
    assert_eq!(failed.status(), 503, "logs:\n{}", service.logs());

    let is_request = |s: &Span| s.kind == SpanKind::Server as i32;
    let error = eventually_async(
        chaoslab_test_support::GENEROUS,
        "the failed request's span at the collector",
        || async {
            collector.spans().into_iter().find(|s| {
                is_request(s) && int_attr(&s.attributes, "http.response.status_code") == Some(503)
            })
        },
    )
    .await;
    let status = error.status.as_ref().map(|s| s.code);
    assert_eq!(status, Some(2), "a 503 request span has status Error (2)");
    // The successful request ended first: had it been kept, it would have
    // been exported no later than the failed one.
    let kept_ok: Vec<Span> = collector
        .spans()
        .into_iter()
        .filter(|s| {
            is_request(s) && int_attr(&s.attributes, "http.response.status_code") == Some(200)
        })
        .collect();
    assert!(
        kept_ok.is_empty(),
        "rate 0 exported a successful request: {kept_ok:?}"
    );
}

/// A "collector" that accepts TCP connections and never reads nor answers:
/// the worst case for an exporter (no refusal, no reset, just silence).
struct SilentCollector {
    addr: SocketAddr,
    /// Connections accepted so far: exports stuck waiting for an answer.
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentCollector {
    fn start() -> SilentCollector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the silent collector");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("silent collector address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stopping = stop.clone();
        let counter = accepted.clone();
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.push(stream);
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SilentCollector {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SilentCollector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_collector_never_slows_requests() {
    let redis = RedisServer::start();
    let silent = SilentCollector::start();
    let mut service = service_exporting_to(&redis, &format!("http://{}", silent.addr));
    let client = http(Duration::from_secs(10));

    // First get an export stuck: a span (exported after 200 ms) or the
    // metrics (every second) open a connection that is never answered.
    let response = client.get(service.url("/")).send().await.expect("GET /");
    assert_eq!(response.status(), 200, "logs:\n{}", service.logs());
    eventually_async(
        chaoslab_test_support::GENEROUS,
        "the service to start exporting to the silent collector",
        || async { (silent.accepted.load(Ordering::Relaxed) > 0).then_some(()) },
    )
    .await;

    // Requests while the exporters wait (10 s OTLP timeout): none slower.
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let started = Instant::now();
        let response = client.get(service.url("/")).send().await.expect("GET /");
        let took = started.elapsed();
        assert_eq!(
            response.status(),
            200,
            "request {i}; logs:\n{}",
            service.logs()
        );
        slowest = slowest.max(took);
        // Half the exporter's 10 s timeout: a request waiting on an export
        // would take that long; a loaded machine does not.
        assert!(
            took < Duration::from_secs(5),
            "request {i} took {took:?} with a silent collector"
        );
    }
    let started = Instant::now();
    let metrics = client
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Shutdown flushes with a bound: SIGTERM still ends the process, with 0,
    // within the grace period plus the 5 s telemetry flush bound (and slack).
    drop(client);
    let started = Instant::now();
    let status = service.terminate();
    eprintln!(
        "TOOK {:?} LOGS-AFTER:\n{}",
        started.elapsed(),
        service.logs()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status {status:?} after SIGTERM; logs:\n{}",
        service.logs()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?} with a silent collector (slowest request {slowest:?})",
        started.elapsed()
    );
}
