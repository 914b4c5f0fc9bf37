//! The log layer of a process that exports no spans (no OTLP endpoint, no
//! Application Insights: the lab's replicas by default), and whose LOG_LEVEL
//! is a plain filter (levels per target, no span or field directives).
//!
//! Its lines are the same as with tracing-opentelemetry installed: each
//! carries the name of the span it happened in and, inside a traced span,
//! the trace and span ids — the propagated caller's trace id when the
//! request carried a `traceparent`. But those ids are made only when a line
//! is written, from the span tree the `tracing` registry keeps anyway:
//! nothing is done per span or per poll (tracing-opentelemetry builds an
//! OpenTelemetry span for every `tracing` span and activates its context on
//! every enter, a measurable part of the service's hot path, all for log
//! lines that are almost never written), and no span's fields are
//! formatted (tracing-subscriber's fmt layer formats them on every span,
//! though the lines never show them).
//!
//! Filtering is this layer's own, for the whole process: spans that are
//! traced (see `crate::traced`) or logged are enabled, events that are
//! logged and not throttled.

use std::io::Write as _;

use opentelemetry::trace::{SpanContext, SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::{ExporterThrottle, render};
use crate::LogFormat;

/// The ids a traced span shows in log lines, made the first time a line
/// is written inside it (or inside a span under it).
#[derive(Debug, Clone, Copy)]
struct LazyIds {
    trace_id: TraceId,
    span_id: SpanId,
}

/// The caller's span, from its `traceparent`: the trace a span joins.
#[derive(Debug, Clone)]
pub(crate) struct RemoteParent(pub(crate) SpanContext);

/// See the module documentation. Writes to `W` (stdout in the service).
pub(crate) struct LazyIdLogLayer<W = fn() -> std::io::Stdout> {
    format: LogFormat,
    targets: Targets,
    throttle: ExporterThrottle,
    writer: W,
}

impl LazyIdLogLayer {
    /// Lines on stdout.
    pub(crate) fn new(format: LogFormat, targets: Targets, throttle: ExporterThrottle) -> Self {
        Self::with_writer(format, targets, throttle, std::io::stdout)
    }
}

impl<W> LazyIdLogLayer<W> {
    pub(crate) fn with_writer(
        format: LogFormat,
        targets: Targets,
        throttle: ExporterThrottle,
        writer: W,
    ) -> Self {
        LazyIdLogLayer {
            format,
            targets,
            throttle,
            writer,
        }
    }

    fn logged(&self, meta: &Metadata<'_>) -> bool {
        self.targets.would_enable(meta.target(), meta.level())
    }

    fn span_wanted(&self, meta: &Metadata<'_>) -> bool {
        crate::traced(meta) || self.logged(meta)
    }
}

impl<S, W> Layer<S> for LazyIdLogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.is_span() {
            return if self.span_wanted(meta) {
                Interest::always()
            } else {
                Interest::never()
            };
        }
        if !self.logged(meta) {
            Interest::never()
        } else if ExporterThrottle::throttled(meta) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>, _cx: Context<'_, S>) -> bool {
        if meta.is_span() {
            self.span_wanted(meta)
        } else {
            self.logged(meta) && self.throttle.allows(meta)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Traced spans are INFO and above, whatever LOG_LEVEL says.
        let logged = Layer::<S>::max_level_hint(&self.targets).unwrap_or(LevelFilter::TRACE);
        Some(logged.max(LevelFilter::INFO))
    }

    fn on_event(&self, event: &Event<'_>, cx: Context<'_, S>) {
        let current = cx.lookup_current();
        let scope = || current.iter().flat_map(|span| span.scope());
        let span_name = scope()
            .find(|span| self.logged(span.metadata()))
            .map(|span| span.name());
        let ids = scope()
            .find(|span| crate::traced(span.metadata()))
            .map(|span| ids_of(&span))
            .map(|ids| (ids.trace_id.to_string(), ids.span_id.to_string()));
        let line = render(self.format, event, span_name, ids);
        let _ = self.writer.make_writer().write_all(line.as_bytes());
    }
}

/// The ids of `span`, a traced span: made now if no line showed them yet.
/// Its trace is the caller's (a `traceparent`), else its nearest traced
/// ancestor's, else a new one.
fn ids_of<S>(span: &SpanRef<'_, S>) -> LazyIds
where
    S: for<'a> LookupSpan<'a>,
{
    if let Some(ids) = span.extensions().get::<LazyIds>() {
        return *ids;
    }
    let remote = span
        .extensions()
        .get::<RemoteParent>()
        .map(|parent| parent.0.trace_id());
    let trace_id = remote.unwrap_or_else(|| {
        let ancestor = span
            .scope()
            .skip(1)
            .find(|parent| crate::traced(parent.metadata()));
        match ancestor {
            Some(parent) => ids_of(&parent).trace_id,
            None => RandomIdGenerator::default().new_trace_id(),
        }
    });
    let ids = LazyIds {
        trace_id,
        span_id: RandomIdGenerator::default().new_span_id(),
    };
    span.extensions_mut().replace(ids);
    ids
}

/// Makes the span `id` a child of `parent` for its log lines' ids, when
/// the process's subscriber is this module's (else nothing happens).
pub(crate) fn set_remote_parent(span: &tracing::Span, parent: SpanContext) {
    span.with_subscriber(|(id, dispatch)| {
        let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>() else {
            return;
        };
        if let Some(span) = registry.span(id) {
            let mut extensions = span.extensions_mut();
            if extensions.get_mut::<LazyIds>().is_none() {
                extensions.replace(RemoteParent(parent));
            }
        }
    });
}
