//! Unit tests of `init`, `record_error` and error-keeping sampling through
//! the `tracing` API, as the service uses them.

use std::sync::{Arc, Mutex};

use opentelemetry::Context;
use opentelemetry::trace::Status;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

fn config() -> TelemetryConfig {
    TelemetryConfig::new("chaoslab", "0.0.0-test", "replica-test")
}

#[test]
fn bad_settings_name_the_variable_and_do_not_panic() {
    let mut cfg = config();
    cfg.sampling_rate = 1.5;
    let err = init(&cfg).unwrap_err().to_string();
    assert!(err.starts_with("TELEMETRY_SAMPLING_RATE"), "{err}");

    let mut cfg = config();
    cfg.sampling_rate = f64::NAN;
    assert!(init(&cfg).is_err());

    let mut cfg = config();
    cfg.otlp_endpoint = Some("localhost:4318".to_string());
    let err = init(&cfg).unwrap_err().to_string();
    assert!(err.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT"), "{err}");

    let mut cfg = config();
    cfg.log_level = "info,x=loud".to_string();
    let err = init(&cfg).unwrap_err().to_string();
    assert!(err.starts_with("LOG_LEVEL"), "{err}");

    let err = "yaml".parse::<LogFormat>().unwrap_err().to_string();
    assert!(err.starts_with("LOG_FORMAT"), "{err}");
}

/// The one test that installs the process-wide globals.
#[test]
fn init_once_serves_metrics_and_shuts_down_quickly() {
    let telemetry = init(&config()).expect("first init");
    let meter = global::meter("chaoslab");
    let counter = meter.u64_counter("redis.connection.success").build();
    counter.add(2, &[]);
    meter
        .f64_gauge("app.memory.usage")
        .with_unit("MB")
        .build()
        .record(12.5, &[]);
    let text = telemetry.prometheus_text();
    assert!(text.contains("redis_connection_success_total"), "{text}");
    assert!(text.contains("app_memory_usage"), "{text}");
    assert!(
        text.contains("service_instance_id=\"replica-test\""),
        "{text}"
    );

    let again = init(&config()).unwrap_err().to_string();
    assert!(again.contains("already initialised"), "{again}");

    let span = tracing::info_span!("GET /", otel.kind = "server");
    record_error(&span, &std::io::Error::other("redis down"));
    drop(span);

    let started = Instant::now();
    telemetry.shutdown();
    assert!(started.elapsed() < SHUTDOWN_TIMEOUT + Duration::from_secs(1));
}

/// Collects exported spans.
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Collect {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}
    fn on_end(&self, span: SpanData) {
        if let Ok(mut spans) = self.0.lock() {
            spans.push(span);
        }
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[test]
fn sampling_rate_zero_still_exports_recorded_errors() {
    let collect = Collect::default();
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_span_processor(sampling::ErrorKeepingSampler::new(collect.clone(), 0.0))
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..20 {
            let span =
                tracing::info_span!("redis GET", db.system = "redis", redis.operation = "GET");
            if i == 7 {
                record_error(&span, &std::io::Error::other("connection refused"));
            }
        }
    });
    let spans = collect.0.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(spans.len(), 1, "only the failed span is exported");
    let failed = &spans[0];
    assert_eq!(failed.status, Status::error("connection refused"));
    let event = failed
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("an exception event");
    assert!(
        event
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "exception.message"
                && kv.value.as_str() == "connection refused")
    );
    assert!(
        failed
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "redis.operation" && kv.value.as_str() == "GET")
    );
}
