//! The Prometheus side of the metrics: a reader on the meter provider that
//! fills a private `prometheus::Registry`, rendered as text exposition format
//! for `GET /metrics`. Always installed, whether or not telemetry export is
//! enabled.
//!
//! Names follow opentelemetry-prometheus: dots become underscores, the unit
//! is appended (`redis.operation.latency` in `ms` becomes
//! `redis_operation_latency_milliseconds`), counters end in `_total`.

use opentelemetry_prometheus::PrometheusExporter;
use prometheus::{Registry, TextEncoder};

use crate::TelemetryError;

/// Builds the registry and the reader that feeds it.
pub(crate) fn reader() -> Result<(Registry, PrometheusExporter), TelemetryError> {
    let registry = Registry::new();
    let exporter = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .build()
        .map_err(|err| TelemetryError::Exporter {
            exporter: "Prometheus".to_string(),
            reason: err.to_string(),
        })?;
    Ok((registry, exporter))
}

/// Every metric of `registry` in text exposition format. An encoding failure
/// (which would be a bug) is reported as a comment, never a panic.
pub(crate) fn render(registry: &Registry) -> String {
    let families = registry.gather();
    match TextEncoder::new().encode_to_string(&families) {
        Ok(text) => text,
        Err(err) => format!("# error: cannot encode metrics: {err}\n"),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;

    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let (registry, reader) = reader().expect("prometheus reader");
        let provider = SdkMeterProvider::builder().with_reader(reader).build();
        let meter = provider.meter("chaoslab");
        meter
            .u64_counter("redis.connection.success")
            .build()
            .add(3, &[]);
        meter
            .f64_histogram("redis.operation.latency")
            .with_unit("ms")
            .build()
            .record(1.5, &[KeyValue::new("redis.operation", "GET")]);
        meter.i64_gauge("chaos.load.active").build().record(1, &[]);

        let text = render(&registry);
        assert!(text.contains("redis_connection_success_total"), "{text}");
        assert!(
            text.contains("redis_operation_latency_milliseconds_bucket"),
            "{text}"
        );
        assert!(text.contains("redis_operation=\"GET\""), "{text}");
        assert!(text.contains("chaos_load_active"), "{text}");
        let _ = provider.shutdown();
    }
}
