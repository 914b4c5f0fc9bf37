//! Telemetry for chaoslab components: JSON logs with trace ids, OpenTelemetry
//! traces and metrics exported over OTLP and to Azure Monitor, and the
//! Prometheus text behind `GET /metrics` (SPEC §5).
//!
//! One call, [`init`], installs everything process-wide: the global tracer
//! and meter providers (instruments come from
//! `opentelemetry::global::meter("chaoslab")`), and the `tracing` subscriber
//! that writes log lines and turns `tracing` spans into OpenTelemetry spans
//! — only when something exports them: otherwise log lines take their trace
//! and span ids from the span tree when they are written (`logging::lazy_ids`),
//! and a span costs next to nothing.
//! The returned [`Telemetry`] renders `/metrics` and flushes on shutdown.
//!
//! A telemetry backend never slows a request: spans and metrics leave through
//! SDK background threads with bounded queues and timeouts (see `export`).
//! Sampling keeps every error span (see `sampling`).

#![forbid(unsafe_code)]

mod export;
mod logging;
mod prometheus_text;
mod sampling;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use tracing::{Level, Metadata};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How log lines look on stdout (LOG_FORMAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors (the default).
    #[default]
    Json,
    /// One human-readable line per event, for a terminal.
    Text,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            other => Err(TelemetryError::Config {
                variable: "LOG_FORMAT".to_string(),
                reason: format!("unknown format {other:?}: use json or text"),
            }),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        })
    }
}

/// Everything [`init`] needs, read by the caller from the environment and
/// flags (SPEC §5 names in brackets).
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// `service.name` of every span and metric ("chaoslab"); the standard
    /// OTEL_SERVICE_NAME, when set, wins.
    pub service_name: String,
    /// `service.version`: the build's version.
    pub service_version: String,
    /// `service.instance.id`: the replica id, to tell replicas apart.
    pub service_instance_id: String,
    /// TELEMETRY_ENABLED. False: nothing is exported (no OTLP, no Azure
    /// Monitor); logs and `/metrics` still work.
    pub enabled: bool,
    /// TELEMETRY_SAMPLING_RATE, 0.0..=1.0: share of traces exported. Spans
    /// with error status are exported whatever the rate.
    pub sampling_rate: f64,
    /// LOG_LEVEL: DEBUG, INFO, WARNING, ERROR (the seed's Python names, any
    /// case) or tracing filter syntax (`info,chaoslab_service=debug`).
    /// Controls logs only, never which spans are traced.
    pub log_level: String,
    /// LOG_FORMAT: json (default) or text.
    pub log_format: LogFormat,
    /// OTEL_EXPORTER_OTLP_ENDPOINT, the collector's base URL. The other
    /// standard OTEL_EXPORTER_OTLP_* variables (protocol, headers, timeout,
    /// per-signal endpoints) and OTEL_BSP_*, OTEL_METRIC_EXPORT_INTERVAL are
    /// read by the exporters themselves.
    pub otlp_endpoint: Option<String>,
    /// APPLICATIONINSIGHTS_CONNECTION_STRING: export to Azure Monitor too.
    pub app_insights_connection_string: Option<String>,
}

impl TelemetryConfig {
    /// The defaults of SPEC §5 for one replica: enabled, every trace kept,
    /// INFO, JSON, no exporter.
    pub fn new(
        service_name: impl Into<String>,
        service_version: impl Into<String>,
        service_instance_id: impl Into<String>,
    ) -> Self {
        TelemetryConfig {
            service_name: service_name.into(),
            service_version: service_version.into(),
            service_instance_id: service_instance_id.into(),
            enabled: true,
            sampling_rate: 1.0,
            log_level: "INFO".to_string(),
            log_format: LogFormat::Json,
            otlp_endpoint: None,
            app_insights_connection_string: None,
        }
    }
}

/// Why telemetry could not start; every message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting has a value that cannot work.
    #[error("{variable}: {reason}")]
    Config {
        /// The environment variable (or its flag) to fix.
        variable: String,
        /// What is wrong and what would be right.
        reason: String,
    },
    /// LOG_LEVEL is neither a level name nor a filter.
    #[error(
        "LOG_LEVEL: {value:?} is neither a level (DEBUG, INFO, WARNING, ERROR) nor a tracing filter such as \"info,chaoslab_service=debug\": {reason}"
    )]
    LogLevel {
        /// The value given.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// An exporter could not be built.
    #[error("cannot set up the {exporter} exporter: {reason}")]
    Exporter {
        /// Which one (OTLP traces, OTLP metrics, Azure Monitor, Prometheus).
        exporter: String,
        /// What failed, with the variables to check.
        reason: String,
    },
    /// `init` was called twice, or something else installed a global
    /// `tracing` subscriber first.
    #[error(
        "telemetry is already initialised in this process (call telemetry::init once, before any other tracing subscriber): {0}"
    )]
    AlreadyInitialized(String),
}

/// At most one line per exporter complaint (e.g. "export failed") in this
/// window, so a collector that is down does not flood the log.
const EXPORTER_LOG_WINDOW: Duration = Duration::from_secs(60);

/// How long [`Telemetry::shutdown`] may take in all.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Set by the first [`init`]: the globals it installs exist once per process.
static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// The installed telemetry: renders `/metrics`, flushes on shutdown.
///
/// Cheap to clone (every part is shared): give one clone to the `/metrics`
/// handler and keep one for [`Telemetry::shutdown`], which stops the shared
/// exporters whichever clone it is called on.
#[derive(Clone)]
pub struct Telemetry {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    registry: prometheus::Registry,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

/// Installs logs, traces and metrics for this process. Call it once, early,
/// inside the tokio runtime (gRPC export needs one), before creating
/// instruments or spans.
///
/// Errors name the setting to fix: a bad LOG_LEVEL, LOG_FORMAT, sampling
/// rate, OTLP endpoint or protocol, or connection string; or a second call.
pub fn init(cfg: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    if !(0.0..=1.0).contains(&cfg.sampling_rate) {
        return Err(TelemetryError::Config {
            variable: "TELEMETRY_SAMPLING_RATE".to_string(),
            reason: format!(
                "{} is out of range: use a number from 0.0 (errors only) to 1.0 (every trace)",
                cfg.sampling_rate
            ),
        });
    }
    let log_filter = logging::LogFilter::parse(&cfg.log_level)?;
    let otlp_endpoint = cfg
        .otlp_endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| cfg.enabled && !e.is_empty());
    if let Some(endpoint) = otlp_endpoint {
        export::check_endpoint(endpoint)?;
    }
    let azure = cfg
        .app_insights_connection_string
        .as_deref()
        .map(str::trim)
        .filter(|c| cfg.enabled && !c.is_empty());
    if INITIALIZED.swap(true, Ordering::SeqCst) {
        return Err(TelemetryError::AlreadyInitialized(
            "init was called before".to_string(),
        ));
    }

    let resource = resource(cfg);

    // Record every span when something exports them (the sampling decision
    // is taken at the end, see `sampling`); otherwise record none: spans
    // still get trace and span ids, for the logs, at almost no cost.
    let exporting = otlp_endpoint.is_some() || azure.is_some();
    let mut traces = SdkTracerProvider::builder()
        .with_sampler(if exporting {
            Sampler::AlwaysOn
        } else {
            Sampler::AlwaysOff
        })
        .with_resource(resource.clone());
    let mut metrics = SdkMeterProvider::builder().with_resource(resource);
    let (registry, prometheus_reader) = prometheus_text::reader()?;
    metrics = metrics.with_reader(prometheus_reader);
    if let Some(endpoint) = otlp_endpoint {
        let spans = BatchSpanProcessor::builder(export::otlp_spans(endpoint)?).build();
        traces = traces
            .with_span_processor(sampling::ErrorKeepingSampler::new(spans, cfg.sampling_rate));
        // The interval comes from OTEL_METRIC_EXPORT_INTERVAL (default 60 s).
        metrics =
            metrics.with_reader(PeriodicReader::builder(export::otlp_metrics(endpoint)?).build());
    }
    if let Some(connection_string) = azure {
        let spans = BatchSpanProcessor::builder(export::azure_monitor(connection_string)?).build();
        traces = traces
            .with_span_processor(sampling::ErrorKeepingSampler::new(spans, cfg.sampling_rate));
        metrics = metrics.with_reader(
            PeriodicReader::builder(export::azure_monitor(connection_string)?).build(),
        );
    }
    let tracer_provider = traces.build();
    let meter_provider = metrics.build();

    install_subscriber(cfg, log_filter, exporting, &tracer_provider)?;
    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(tracer_provider.clone());
    global::set_meter_provider(meter_provider.clone());

    Ok(Telemetry {
        tracer_provider,
        meter_provider,
        registry,
    })
}

/// Whether log lines take their ids from `logging::lazy_ids` (set by
/// [`init`]).
static LAZY_IDS: AtomicBool = AtomicBool::new(false);

/// Installs the process's `tracing` subscriber. When nothing exports spans
/// and LOG_LEVEL is a plain filter, log lines get their ids from the span
/// tree when written, and no OpenTelemetry span is made per `tracing` span
/// (see `logging::lazy_ids`); else tracing-opentelemetry makes them.
fn install_subscriber(
    cfg: &TelemetryConfig,
    log_filter: logging::LogFilter,
    exporting: bool,
    tracer_provider: &SdkTracerProvider,
) -> Result<(), TelemetryError> {
    let throttle = logging::ExporterThrottle::new(EXPORTER_LOG_WINDOW);
    let lazy = !exporting && matches!(log_filter, logging::LogFilter::Plain(_));
    let installed = match log_filter {
        logging::LogFilter::Plain(targets) if lazy => tracing_subscriber::registry()
            .with(logging::LazyIdLogLayer::new(
                cfg.log_format,
                *targets,
                throttle,
            ))
            .try_init(),
        logging::LogFilter::Plain(targets) => {
            install_with_otel_layer(cfg, (*targets).and(throttle), tracer_provider)
        }
        logging::LogFilter::Env(filter) => {
            install_with_otel_layer(cfg, (*filter).and(throttle), tracer_provider)
        }
    };
    installed.map_err(|err| TelemetryError::AlreadyInitialized(err.to_string()))?;
    LAZY_IDS.store(lazy, Ordering::Relaxed);
    Ok(())
}

/// The subscriber when spans are exported (or LOG_LEVEL has span or field
/// directives): log lines through tracing-subscriber's fmt layer, filtered
/// by `log_filter`, spans through tracing-opentelemetry, which activates
/// each span's context so that the lines find their ids there.
fn install_with_otel_layer<F>(
    cfg: &TelemetryConfig,
    log_filter: F,
    tracer_provider: &SdkTracerProvider,
) -> Result<(), tracing_subscriber::util::TryInitError>
where
    F: tracing_subscriber::layer::Filter<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let fmt_layer = tracing_subscriber::fmt::layer()
        .event_format(logging::LineFormat {
            format: cfg.log_format,
        })
        .with_writer(std::io::stdout)
        .with_filter(log_filter);
    // Spans carry the attributes the service gives them, not the source
    // location, thread and busy/idle timings tracing-opentelemetry adds by
    // default (noise in a trace view, and work on every request).
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer_provider.tracer("chaoslab"))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(traced));
    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
}

/// Which `tracing` spans and events become OpenTelemetry data: spans at INFO
/// and above (the service's request, Redis, credential and chaos spans),
/// events at WARN and above (as span events; an ERROR event marks its span
/// failed); nothing from the HTTP and exporter crates, which would trace
/// telemetry's own traffic.
fn traced(meta: &Metadata<'_>) -> bool {
    const OWN_TRAFFIC: &[&str] = &[
        "h2",
        "hyper",
        "reqwest",
        "rustls",
        "tonic",
        "tower",
        "opentelemetry",
        "azure_core",
        "typespec_client_core",
    ];
    if OWN_TRAFFIC.iter().any(|t| meta.target().starts_with(t)) {
        return false;
    }
    if meta.is_span() {
        *meta.level() <= Level::INFO
    } else {
        *meta.level() <= Level::WARN
    }
}

/// service.name (OTEL_SERVICE_NAME wins), .version, .instance.id, plus
/// OTEL_RESOURCE_ATTRIBUTES and the SDK's own attributes.
fn resource(cfg: &TelemetryConfig) -> Resource {
    let mut builder = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").map_or(true, |v| v.trim().is_empty()) {
        builder = builder.with_service_name(cfg.service_name.clone());
    }
    builder
        .with_attributes([
            KeyValue::new("service.version", cfg.service_version.clone()),
            KeyValue::new("service.instance.id", cfg.service_instance_id.clone()),
        ])
        .build()
}

impl Telemetry {
    /// Every metric of the meter provider in Prometheus text exposition
    /// format (version 0.0.4), for `GET /metrics`. Serve it with
    /// `content-type: text/plain; version=0.0.4; charset=utf-8`.
    pub fn prometheus_text(&self) -> String {
        prometheus_text::render(&self.registry)
    }

    /// Flushes and stops the exporters, waiting at most 5 s in all whatever
    /// the backends do. Blocks the calling thread: from async code, call it
    /// in `tokio::task::spawn_blocking` while the runtime still runs (gRPC
    /// export needs it).
    pub fn shutdown(self) {
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        let per_provider = SHUTDOWN_TIMEOUT.saturating_sub(Duration::from_millis(500));
        let (done, finished) = mpsc::channel::<()>();
        let tracer_provider = self.tracer_provider;
        let meter_provider = self.meter_provider;
        let mut pending = 0;
        let traces_done = done.clone();
        if spawn_named("telemetry-shutdown-traces", move || {
            let _ = tracer_provider.shutdown_with_timeout(per_provider);
            let _ = traces_done.send(());
        }) {
            pending += 1;
        }
        if spawn_named("telemetry-shutdown-metrics", move || {
            let _ = meter_provider.shutdown_with_timeout(per_provider);
            let _ = done.send(());
        }) {
            pending += 1;
        }
        while pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if finished.recv_timeout(left).is_err() {
                tracing::warn!(
                    "telemetry exporters did not flush within {} s; unsent telemetry is dropped",
                    SHUTDOWN_TIMEOUT.as_secs()
                );
                return;
            }
            pending -= 1;
        }
    }
}

/// Runs `f` on a new named thread; false when no thread could be started.
fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> bool {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .is_ok()
}

/// Marks `span` failed because of `err`: status Error with the error's
/// message, and an `exception` event (`exception.message`, the whole source
/// chain; `exception.type` when the error's type is known statically).
///
/// Accepts `&dyn Error` as well as a concrete error type:
/// `record_error(&span, &err)`.
pub fn record_error<E: std::error::Error + ?Sized>(span: &tracing::Span, err: &E) {
    let message = error_chain(err);
    let mut attributes = vec![KeyValue::new("exception.message", message.clone())];
    let type_name = std::any::type_name::<E>();
    if !type_name.starts_with("dyn ") {
        attributes.push(KeyValue::new("exception.type", type_name));
    }
    span.set_status(Status::error(message));
    span.add_event("exception", attributes);
}

/// An error and its sources, joined with ": ".
pub(crate) fn error_chain<E: std::error::Error + ?Sized>(err: &E) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests;

/// Makes `span` a child of the trace the caller propagated in W3C
/// `traceparent` / `tracestate` headers (a load generator, the ingress, a
/// client with its own tracing), so one trace spans every hop. Headers
/// without a valid `traceparent` leave the span a new root.
pub fn set_parent_from_headers<'a>(
    span: &tracing::Span,
    headers: impl Iterator<Item = (&'a str, &'a [u8])>,
) {
    use opentelemetry::propagation::Extractor;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    struct Carrier(Vec<(String, String)>);
    impl Extractor for Carrier {
        fn get(&self, key: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(k, _)| k.as_str()).collect()
        }
    }
    let carrier = Carrier(
        headers
            .filter(|(k, _)| {
                k.eq_ignore_ascii_case("traceparent") || k.eq_ignore_ascii_case("tracestate")
            })
            .filter_map(|(k, v)| Some((k.to_string(), std::str::from_utf8(v).ok()?.to_string())))
            .collect(),
    );
    if carrier.get("traceparent").is_none() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
    if LAZY_IDS.load(Ordering::Relaxed) {
        use opentelemetry::trace::TraceContextExt as _;
        let remote = parent.span().span_context().clone();
        if remote.is_valid() {
            logging::set_remote_parent(span, remote);
        }
    } else {
        let _ = span.set_parent(parent);
    }
}
