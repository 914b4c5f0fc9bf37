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
