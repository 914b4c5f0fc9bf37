//! Log lines on stdout: one JSON object per event (or a human line with
//! `LOG_FORMAT=text`), each carrying the trace and span ids of the
//! OpenTelemetry span it happened in, so a log line leads to its trace.
//!
//! tracing-subscriber's own JSON formatter knows nothing of OpenTelemetry ids,
//! hence this formatter. The ids come from the OpenTelemetry context that
//! tracing-opentelemetry activates when a span is entered.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::callsite::Identifier;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

use crate::{LogFormat, TelemetryError};

mod lazy_ids;

pub(crate) use lazy_ids::{LazyIdLogLayer, set_remote_parent};

/// Crates whose debug output is transport noise (HTTP/2 frames, connection
/// pools, exporter internals): capped at `warn` unless LOG_LEVEL names them.
const NOISY_TARGETS: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "reqwest",
    "rustls",
    "tonic",
    "tower",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
    "opentelemetry_application_insights",
    // The Azure SDK (Entra ID tokens): logs every identity request at info.
    "azure_core",
    "azure_identity",
    "typespec_client_core",
];

/// Turns LOG_LEVEL into a filter. The seed's Python names (DEBUG, INFO,
/// WARNING, ERROR, CRITICAL) and tracing's (trace…error) are accepted in any
/// case; anything else is taken as tracing filter syntax
/// (`info,chaoslab_service=debug`).
pub(crate) fn filter(log_level: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::builder()
        .parse(directives(log_level))
        .map_err(|err| TelemetryError::LogLevel {
            value: log_level.to_string(),
            reason: err.to_string(),
        })
}

/// LOG_LEVEL as a plain per-target filter, when it is one (no span or
/// field directives): what [`LazyIdLogLayer`] filters with. Call it after
/// [`filter`] accepted the value.
pub(crate) fn static_targets(log_level: &str) -> Option<Targets> {
    let directives = directives(log_level);
    // `Targets` reads `foo[span]` as a target named so: span and field
    // directives (`[`, `{`) are left to `EnvFilter`.
    if directives.contains(['[', '{']) {
        return None;
    }
    directives.parse().ok()
}

/// LOG_LEVEL as the filter of log lines.
pub(crate) enum LogFilter {
    /// Levels per target: checked per callsite, nothing per span.
    Plain(Box<Targets>),
    /// With span or field directives.
    Env(Box<EnvFilter>),
}

impl LogFilter {
    /// Parses LOG_LEVEL; a level name (the usual case) needs no check
    /// (the directives are ours), anything else is checked by
    /// [`EnvFilter`]'s parser, whose complaint names what is wrong.
    pub(crate) fn parse(log_level: &str) -> Result<Self, TelemetryError> {
        if let Some(targets) = level_name(log_level).and_then(|_| static_targets(log_level)) {
            return Ok(LogFilter::Plain(Box::new(targets)));
        }
        let env = filter(log_level)?;
        Ok(match static_targets(log_level) {
            Some(targets) => LogFilter::Plain(Box::new(targets)),
            None => LogFilter::Env(Box::new(env)),
        })
    }
}

/// The level LOG_LEVEL names, if it names one (the seed's Python names or
/// tracing's, any case).
fn level_name(log_level: &str) -> Option<Level> {
    match log_level.trim().to_ascii_lowercase().as_str() {
        "" | "info" => Some(Level::INFO),
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "warning" | "warn" => Some(Level::WARN),
        "error" | "critical" | "fatal" => Some(Level::ERROR),
        _ => None,
    }
}

/// LOG_LEVEL in tracing filter syntax.
fn directives(log_level: &str) -> String {
    match level_name(log_level) {
        Some(level) => {
            let mut d = level.as_str().to_ascii_lowercase();
            if level > Level::WARN {
                // More verbose than warn: keep transport crates quiet.
                for target in NOISY_TARGETS {
                    d.push_str(&format!(",{target}=warn"));
                }
            }
            d
        }
        None => log_level.trim().to_string(),
    }
}

/// Keeps a telemetry backend that is down from filling the log: the
/// exporters' own messages (targets `opentelemetry*`: "export failed",
/// "exhausted retries", one per failed export, every few seconds) are written
/// at most once per `window` for each place that logs them.
pub(crate) struct ExporterThrottle {
    window: Duration,
    last_written: Mutex<HashMap<Identifier, Instant>>,
}

impl ExporterThrottle {
    pub(crate) fn new(window: Duration) -> Self {
        ExporterThrottle {
            window,
            last_written: Mutex::new(HashMap::new()),
        }
    }

    fn throttled(meta: &Metadata<'_>) -> bool {
        meta.is_event() && meta.target().starts_with("opentelemetry")
    }

    /// Whether a line from `meta` may be written now.
    fn allows(&self, meta: &Metadata<'_>) -> bool {
        if !Self::throttled(meta) {
            return true;
        }
        let Ok(mut last_written) = self.last_written.lock() else {
            return true;
        };
        let now = Instant::now();
        match last_written.get(&meta.callsite()) {
            Some(at) if now.duration_since(*at) < self.window => false,
            _ => {
                last_written.insert(meta.callsite(), now);
                true
            }
        }
    }
}

impl<S> Filter<S> for ExporterThrottle {
    fn enabled(&self, meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        self.allows(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if Self::throttled(meta) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }
}

/// Formats one event as a JSON object or a text line, with trace ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineFormat {
    /// JSON objects or human-readable lines.
    pub(crate) format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let span_name = ctx.lookup_current().map(|span| span.name());
        let line = render(self.format, event, span_name, current_ids());
        writer.write_str(&line)
    }
}

/// Trace and span id (lowercase hex) of the active OpenTelemetry span, if any.
fn current_ids() -> Option<(String, String)> {
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

/// Builds the whole line, newline included.
fn render(
    format: LogFormat,
    event: &Event<'_>,
    span_name: Option<&str>,
    ids: Option<(String, String)>,
) -> String {
    let meta = event.metadata();
    let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut fields = FieldVisitor::default();
    event.record(&mut fields);
    match format {
        LogFormat::Json => {
            let mut obj = Map::new();
            obj.insert("timestamp".into(), Value::String(timestamp));
            obj.insert("level".into(), Value::String(meta.level().to_string()));
            obj.insert("target".into(), Value::String(meta.target().to_string()));
            obj.insert(
                "message".into(),
                Value::String(fields.message.unwrap_or_default()),
            );
            for (key, value) in fields.fields {
                // A field named like one of ours must not hide it.
                obj.entry(key).or_insert(value);
            }
            if let Some(name) = span_name {
                obj.insert("span".into(), Value::String(name.to_string()));
            }
            if let Some((trace_id, span_id)) = ids {
                obj.insert("trace_id".into(), Value::String(trace_id));
                obj.insert("span_id".into(), Value::String(span_id));
            }
            let mut line = Value::Object(obj).to_string();
            line.push('\n');
            line
        }
        LogFormat::Text => {
            let mut line = format!(
                "{timestamp} {:>5} {}: {}",
                meta.level(),
                meta.target(),
                fields.message.unwrap_or_default()
            );
            for (key, value) in fields.fields {
                match value {
                    Value::String(s) => {
                        let _ = write!(line, " {key}={s:?}");
                    }
                    other => {
                        let _ = write!(line, " {key}={other}");
                    }
                }
            }
            if let Some(name) = span_name {
                let _ = write!(line, " span={name}");
            }
            if let Some((trace_id, span_id)) = ids {
                let _ = write!(line, " trace_id={trace_id} span_id={span_id}");
            }
            line.push('\n');
            line
        }
    }
}

/// Collects an event's fields as JSON values, keeping their order.
#[derive(Default)]
struct FieldVisitor {
    message: Option<String>,
    fields: Vec<(String, Value)>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            // `log` records bridged by tracing-log carry their origin in
            // `log.*` fields; they are noise in a line.
            if field.name().starts_with("log.") {
                return;
            }
            self.fields.push((field.name().to_string(), value));
        }
    }
}

impl Visit for FieldVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let v = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, v);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(crate::error_chain(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests;
