//! Trace sampling that keeps every error.
//!
//! TELEMETRY_SAMPLING_RATE is a trace ratio, but the spec wants spans with
//! error status kept whatever the ratio. A head sampler (OpenTelemetry's
//! `TraceIdRatioBased`) decides when a span *starts*, before anyone knows it
//! will fail, so it would drop errors. Instead every span is recorded
//! (`Sampler::AlwaysOn`) and this processor, wrapped around each exporter's
//! batch processor, decides when a span *ends*:
//!
//! - status Error: exported, always;
//! - otherwise: exported when the trace id falls under the ratio, by the same
//!   trace-id arithmetic as `TraceIdRatioBased`, so all spans of one trace get
//!   the same verdict and traces stay whole.
//!
//! The price: recording costs a little on every span (attributes are kept
//! until the span ends), and a sampled-out trace whose child failed arrives as
//! the failing span(s) alone (the service marks the request span Error too
//! when it answers 5xx, so the usual case keeps both).

use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::{Status, TraceId};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};

/// Forwards ended spans to `inner` when they failed or their trace is in the
/// sampled ratio; drops the others.
#[derive(Debug)]
pub(crate) struct ErrorKeepingSampler<P> {
    inner: P,
    /// Spans whose trace id maps below this bound are kept; `None` keeps all.
    bound: Option<u64>,
}

impl<P: SpanProcessor> ErrorKeepingSampler<P> {
    /// `ratio` is clamped to 0.0..=1.0 (the caller validates it).
    pub(crate) fn new(inner: P, ratio: f64) -> Self {
        let bound = if ratio >= 1.0 {
            None
        } else {
            // The same bound as opentelemetry_sdk's TraceIdRatioBased.
            Some((ratio.max(0.0) * (1u64 << 63) as f64) as u64)
        };
        Self { inner, bound }
    }
}

/// Whether a trace is in the sampled ratio: its id's low 63 bits, read as a
/// number, fall below `bound`.
fn trace_in_ratio(trace_id: TraceId, bound: Option<u64>) -> bool {
    let Some(bound) = bound else { return true };
    let bytes = trace_id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

/// Whether an ended span is kept.
pub(crate) fn keep(span: &SpanData, bound: Option<u64>) -> bool {
    matches!(span.status, Status::Error { .. })
        || trace_in_ratio(span.span_context.trace_id(), bound)
}

impl<P: SpanProcessor> SpanProcessor for ErrorKeepingSampler<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if keep(&span, self.bound) {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{Span as _, Tracer, TracerProvider as _};
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

    use super::*;

    /// Collects what the sampler lets through.
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

    fn run(ratio: f64, spans: usize, fail_every: usize) -> Vec<SpanData> {
        let collect = Collect::default();
        let provider = SdkTracerProvider::builder()
            .with_sampler(Sampler::AlwaysOn)
            .with_span_processor(ErrorKeepingSampler::new(collect.clone(), ratio))
            .build();
        let tracer = provider.tracer("test");
        for i in 0..spans {
            let mut span = tracer.start(format!("span {i}"));
            if fail_every > 0 && i % fail_every == 0 {
                span.set_status(Status::error("boom"));
            }
            span.end();
        }
        collect.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    #[test]
    fn ratio_zero_keeps_only_errors() {
        let kept = run(0.0, 100, 10);
        assert_eq!(kept.len(), 10);
        assert!(
            kept.iter()
                .all(|s| matches!(s.status, Status::Error { .. }))
        );
    }

    #[test]
    fn ratio_one_keeps_everything() {
        assert_eq!(run(1.0, 100, 0).len(), 100);
    }

    #[test]
    fn ratio_half_keeps_about_half_and_every_error() {
        let kept = run(0.5, 2000, 7);
        let errors = kept
            .iter()
            .filter(|s| matches!(s.status, Status::Error { .. }))
            .count();
        assert_eq!(errors, 2000_usize.div_ceil(7));
        let ok = kept.len() - errors;
        // About half of the 1714 successful spans; generous bounds.
        assert!((600..=1100).contains(&ok), "kept {ok} successful spans");
    }

    #[test]
    fn verdict_depends_only_on_trace_id() {
        let low = TraceId::from_bytes([0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let mut bytes = [0u8; 16];
        bytes[8..].fill(0xff);
        let high = TraceId::from_bytes(bytes);
        let bound = Some((0.5 * (1u64 << 63) as f64) as u64);
        assert!(trace_in_ratio(low, bound));
        assert!(!trace_in_ratio(high, bound));
        assert!(trace_in_ratio(high, None));
    }
}
