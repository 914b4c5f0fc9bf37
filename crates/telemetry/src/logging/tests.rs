//! Unit tests of the log line format and of LOG_LEVEL parsing.

use std::io;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Ok(mut out) = self.0.lock() {
            out.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Runs `f` under a subscriber like the one `init` installs; returns the
/// lines written and the ids of the span `f` returns.
fn capture(format: LogFormat, f: impl FnOnce() -> tracing::Span) -> (Vec<String>, String, String) {
    let out = Captured::default();
    let writer = out.clone();
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(LineFormat { format })
                .with_writer(move || writer.clone())
                .with_filter(
                    filter("info")
                        .expect("filter")
                        .and(ExporterThrottle::new(Duration::from_secs(60))),
                ),
        )
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
        let span = f();
        let cx = span.context();
        let otel_span = cx.span();
        let sc = otel_span.span_context();
        (sc.trace_id().to_string(), sc.span_id().to_string())
    });
    (out.lines(), trace_id, span_id)
}

#[test]
fn json_line_carries_trace_and_span_id() {
    let (lines, trace_id, span_id) = capture(LogFormat::Json, || {
        let span = tracing::info_span!("GET /", http.route = "/");
        span.in_scope(|| tracing::info!(status = 200, path = "/", "request served"));
        span
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line: Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(line["message"], "request served");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["status"], 200);
    assert_eq!(line["path"], "/");
    assert_eq!(line["span"], "GET /");
    assert_eq!(line["trace_id"], trace_id.as_str());
    assert_eq!(line["span_id"], span_id.as_str());
    assert_eq!(trace_id.len(), 32);
    assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[test]
fn events_outside_spans_have_no_ids() {
    let (lines, _, _) = capture(LogFormat::Json, || {
        tracing::warn!("started");
        tracing::Span::none()
    });
    let line: Value = serde_json::from_str(&lines[0]).expect("a JSON line");
    assert_eq!(line["level"], "WARN");
    assert!(line.get("trace_id").is_none(), "{line}");
}

#[test]
fn text_line_is_human_and_carries_ids() {
    let (lines, trace_id, _) = capture(LogFormat::Text, || {
        let span = tracing::info_span!("redis GET");
        span.in_scope(|| tracing::error!(error = "connection refused", "redis failed"));
        span
    });
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("redis failed"), "{line}");
    assert!(line.contains("error=\"connection refused\""), "{line}");
    assert!(line.contains(&format!("trace_id={trace_id}")), "{line}");
}

#[test]
fn debug_is_filtered_at_info() {
    let (lines, _, _) = capture(LogFormat::Json, || {
        tracing::debug!("hidden");
        tracing::info!("shown");
        tracing::Span::none()
    });
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains("shown"));
}

#[test]
fn log_levels_accept_python_names_and_filters() {
    for ok in [
        "DEBUG",
        "INFO",
        "WARNING",
        "ERROR",
        "CRITICAL",
        "warn",
        "",
        "info,chaoslab_service=debug",
    ] {
        assert!(filter(ok).is_ok(), "{ok:?} rejected");
    }
    let err = filter("info,chaoslab=notalevel")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("LOG_LEVEL"), "{err}");
}

#[test]
fn exporter_complaints_are_throttled() {
    let (lines, _, _) = capture(LogFormat::Json, || {
        for _ in 0..5 {
            tracing::error!(target: "opentelemetry_sdk", name = "BatchSpanProcessor.ExportError", "");
            tracing::info!("the service's own lines are not throttled");
        }
        tracing::Span::none()
    });
    let exporter = lines.iter().filter(|l| l.contains("ExportError")).count();
    assert_eq!(exporter, 1, "{lines:?}");
    assert_eq!(lines.len(), 6, "{lines:?}");
}

/// Runs `f` under the subscriber `init` installs when nothing exports
/// spans (`lazy_ids`), with LOG_LEVEL `level`; returns the lines written.
fn capture_lazy(level: &str, f: impl FnOnce()) -> Vec<String> {
    let out = Captured::default();
    let writer = out.clone();
    let subscriber = tracing_subscriber::registry().with(LazyIdLogLayer::with_writer(
        LogFormat::Json,
        static_targets(level).expect("a plain filter"),
        ExporterThrottle::new(Duration::from_secs(60)),
        move || writer.clone(),
    ));
    tracing::subscriber::with_default(subscriber, f);
    out.lines()
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).expect("a JSON line")
}

#[test]
fn lazy_ids_are_shared_by_a_trace_and_stable_within_a_span() {
    let lines = capture_lazy("INFO", || {
        tracing::info!("outside");
        let request = tracing::info_span!("HTTP request");
        request.in_scope(|| {
            tracing::info!("first");
            tracing::info_span!("redis").in_scope(|| tracing::warn!("inner"));
            // A DEBUG span is neither traced nor logged at INFO: the line
            // belongs to the request span.
            tracing::debug_span!("detail").in_scope(|| tracing::info!("second"));
        });
        tracing::info_span!("HTTP request").in_scope(|| tracing::info!("other request"));
    });
    let lines: Vec<Value> = lines.iter().map(|l| json(l)).collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
    let (first, inner, second, other) = (&lines[1], &lines[2], &lines[3], &lines[4]);
    assert_eq!(first["span"], "HTTP request");
    assert_eq!(inner["span"], "redis");
    assert_eq!(second["span"], "HTTP request");
    assert_eq!(first["trace_id"].as_str().map(str::len), Some(32));
    assert_eq!(first["span_id"].as_str().map(str::len), Some(16));
    assert_eq!(inner["trace_id"], first["trace_id"]);
    assert_ne!(inner["span_id"], first["span_id"]);
    assert_eq!(second["span_id"], first["span_id"]);
    assert_ne!(other["trace_id"], first["trace_id"]);
}

#[test]
fn lazy_ids_join_the_callers_trace() {
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let lines = capture_lazy("INFO", || {
        let span = tracing::info_span!("HTTP request");
        let parent = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from_hex(trace_id).expect("hex"),
            opentelemetry::trace::SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            opentelemetry::trace::TraceFlags::SAMPLED,
            true,
            Default::default(),
        );
        set_remote_parent(&span, parent);
        span.in_scope(|| {
            tracing::info_span!("redis").in_scope(|| tracing::info!("inside"));
        });
    });
    let line = json(&lines[0]);
    assert_eq!(line["trace_id"], trace_id);
    assert_ne!(line["span_id"], "00f067aa0ba902b7");
}

#[test]
fn lazy_layer_filters_like_log_level_and_keeps_traced_spans() {
    // At WARN the request span is not logged, yet traced: a WARN line in it
    // has ids but no span name (as with tracing-opentelemetry's context).
    let lines = capture_lazy("WARNING", || {
        tracing::info!("hidden");
        tracing::info_span!("HTTP request").in_scope(|| tracing::warn!("shown"));
        for _ in 0..3 {
            tracing::error!(target: "opentelemetry_sdk", "export failed");
        }
    });
    assert_eq!(lines.len(), 2, "{lines:?}");
    let line = json(&lines[0]);
    assert_eq!(line["message"], "shown");
    assert!(line.get("span").is_none(), "{line}");
    assert_eq!(line["trace_id"].as_str().map(str::len), Some(32));
    let lines = capture_lazy("info,chaoslab_service=debug", || {
        tracing::debug!(target: "chaoslab_service::x", "kept");
        tracing::debug!(target: "other", "dropped");
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
}

#[test]
fn span_and_field_directives_are_not_plain_targets() {
    assert!(static_targets("INFO").is_some());
    assert!(static_targets("info,chaoslab_service=debug").is_some());
    assert!(filter("info,[redis]=debug").is_ok());
    assert!(static_targets("info,[redis]=debug").is_none());
    assert!(static_targets("chaoslab[{path}]=debug").is_none());
}
