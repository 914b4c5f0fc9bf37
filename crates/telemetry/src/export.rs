//! Where traces and metrics leave the process: an OTLP collector
//! (OTEL_EXPORTER_OTLP_ENDPOINT) and/or Azure Monitor
//! (APPLICATIONINSIGHTS_CONNECTION_STRING).
//!
//! Every exporter built here runs on a background thread owned by the SDK
//! (the batch span processor's, the periodic metric reader's), behind a
//! bounded queue, with a bounded request timeout: a collector that is down or
//! hangs costs those threads time, never a request.

use std::env;

use opentelemetry_otlp::{Protocol, WithExportConfig};

use crate::TelemetryError;

/// The OTLP wire protocol, from OTEL_EXPORTER_OTLP_{TRACES,METRICS}_PROTOCOL
/// or OTEL_EXPORTER_OTLP_PROTOCOL; http/protobuf when unset, as the
/// OpenTelemetry specification says.
pub(crate) fn otlp_protocol(signal_var: &str) -> Result<Protocol, TelemetryError> {
    let (var, value) = match non_empty_env(signal_var) {
        Some(value) => (signal_var, value),
        None => match non_empty_env("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(value) => ("OTEL_EXPORTER_OTLP_PROTOCOL", value),
            None => return Ok(Protocol::HttpBinary),
        },
    };
    match value.trim() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpBinary),
        "http/json" => Ok(Protocol::HttpJson),
        other => Err(TelemetryError::Config {
            variable: var.to_string(),
            reason: format!(
                "unknown OTLP protocol {other:?}: use grpc, http/protobuf or http/json"
            ),
        }),
    }
}

fn non_empty_env(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Checks OTEL_EXPORTER_OTLP_ENDPOINT before any exporter sees it, to say
/// what to fix rather than what failed.
pub(crate) fn check_endpoint(endpoint: &str) -> Result<(), TelemetryError> {
    let bad = |reason: &str| TelemetryError::Config {
        variable: "OTEL_EXPORTER_OTLP_ENDPOINT".to_string(),
        reason: format!(
            "{endpoint:?} {reason}, e.g. http://localhost:4318 (http/protobuf) or http://localhost:4317 (grpc)"
        ),
    };
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .ok_or_else(|| bad("is not an http:// or https:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// Where one signal goes over HTTP: the signal's own variable when set (the
/// exporter reads it, unchanged), else `base` + `/v1/traces` or `/v1/metrics`
/// as the specification says for OTEL_EXPORTER_OTLP_ENDPOINT.
fn http_signal_endpoint(base: &str, signal_endpoint_var: &str, path: &str) -> Option<String> {
    if non_empty_env(signal_endpoint_var).is_some() {
        return None;
    }
    Some(format!("{}{path}", base.trim_end_matches('/')))
}

/// gRPC exporters need a tokio runtime (tonic spawns its connection task),
/// and this build has no TLS for gRPC (the HTTP client has it).
fn check_grpc(protocol: Protocol, base: &str) -> Result<(), TelemetryError> {
    if protocol != Protocol::Grpc {
        return Ok(());
    }
    if base.starts_with("https://") {
        return Err(TelemetryError::Config {
            variable: "OTEL_EXPORTER_OTLP_PROTOCOL".to_string(),
            reason: format!(
                "gRPC export is plaintext only in this build; for the TLS collector {base} use OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (and its HTTP port, usually 4318)"
            ),
        });
    }
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::Config {
            variable: "OTEL_EXPORTER_OTLP_PROTOCOL".to_string(),
            reason: "grpc export needs telemetry::init to be called inside a tokio runtime"
                .to_string(),
        });
    }
    Ok(())
}

fn otlp_error(signal: &str, err: impl std::fmt::Display) -> TelemetryError {
    TelemetryError::Exporter {
        exporter: format!("OTLP {signal}"),
        reason: format!(
            "{err} (check OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL and OTEL_EXPORTER_OTLP_HEADERS)"
        ),
    }
}

/// The OTLP span exporter for `base` (OTEL_EXPORTER_OTLP_ENDPOINT).
pub(crate) fn otlp_spans(base: &str) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    otlp_spans_over(base, otlp_protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")?)
}

fn otlp_spans_over(
    base: &str,
    protocol: Protocol,
) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    check_grpc(protocol, base)?;
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let built = if protocol == Protocol::Grpc {
        let mut b = builder.with_tonic();
        if non_empty_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
            b = b.with_endpoint(base);
        }
        b.build()
    } else {
        let mut b = builder.with_http().with_protocol(protocol);
        if let Some(url) =
            http_signal_endpoint(base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces")
        {
            b = b.with_endpoint(url);
        }
        b.build()
    };
    built.map_err(|err| otlp_error("traces", err))
}

/// The OTLP metric exporter for `base` (OTEL_EXPORTER_OTLP_ENDPOINT).
pub(crate) fn otlp_metrics(
    base: &str,
) -> Result<opentelemetry_otlp::MetricExporter, TelemetryError> {
    otlp_metrics_over(base, otlp_protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL")?)
}

fn otlp_metrics_over(
    base: &str,
    protocol: Protocol,
) -> Result<opentelemetry_otlp::MetricExporter, TelemetryError> {
    check_grpc(protocol, base)?;
    let builder = opentelemetry_otlp::MetricExporter::builder();
    let built = if protocol == Protocol::Grpc {
        let mut b = builder.with_tonic();
        if non_empty_env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_none() {
            b = b.with_endpoint(base);
        }
        b.build()
    } else {
        let mut b = builder.with_http().with_protocol(protocol);
        if let Some(url) =
            http_signal_endpoint(base, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "/v1/metrics")
        {
            b = b.with_endpoint(url);
        }
        b.build()
    };
    built.map_err(|err| otlp_error("metrics", err))
}

/// The Azure Monitor (Application Insights) exporter; one per signal, each
/// with its own HTTP client, so each lives and dies on its own thread.
pub(crate) fn azure_monitor(
    connection_string: &str,
) -> Result<opentelemetry_application_insights::Exporter<reqwest::blocking::Client>, TelemetryError>
{
    let client = blocking_client()?;
    let bad = |err: &dyn std::fmt::Display| TelemetryError::Config {
        variable: "APPLICATIONINSIGHTS_CONNECTION_STRING".to_string(),
        reason: format!(
            "{err}: copy the connection string from the Application Insights resource's overview (InstrumentationKey=…;IngestionEndpoint=…)"
        ),
    };
    let exporter = opentelemetry_application_insights::Exporter::new_from_connection_string(
        connection_string,
        client,
    )
    .map_err(|err| bad(&err))?;
    match loopback_http_ingestion(connection_string) {
        // The crate turns every IngestionEndpoint into https://; a plain
        // http:// one on loopback (a local ingestion stand-in or forwarding
        // proxy) is kept as given. Anything else stays https.
        #[allow(deprecated)]
        Some(endpoint) => exporter.with_endpoint(&endpoint).map_err(|err| bad(&err)),
        None => Ok(exporter),
    }
}

/// The connection string's IngestionEndpoint when it is `http://` on a
/// loopback host (127.0.0.0/8, ::1, localhost).
fn loopback_http_ingestion(connection_string: &str) -> Option<String> {
    let endpoint = connection_string.split(';').find_map(|field| {
        let (key, value) = field.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("IngestionEndpoint")
            .then(|| value.trim().to_string())
    })?;
    let rest = endpoint.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| endpoint.trim_end_matches('/').to_string())
}

/// A blocking HTTP client with a bounded timeout, built on a thread of its
/// own: reqwest's blocking client owns a runtime, which must not be created
/// inside the service's tokio runtime.
fn blocking_client() -> Result<reqwest::blocking::Client, TelemetryError> {
    let timeout = non_empty_env("OTEL_EXPORTER_OTLP_TIMEOUT")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
        .unwrap_or(std::time::Duration::from_secs(10));
    let failed = |reason: String| TelemetryError::Exporter {
        exporter: "Azure Monitor".to_string(),
        reason,
    };
    std::thread::Builder::new()
        .name("telemetry-http-client".to_string())
        .spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .build()
        })
        .map_err(|err| failed(format!("cannot start a thread: {err}")))?
        .join()
        .map_err(|_| failed("building the HTTP client panicked".to_string()))?
        .map_err(|err| failed(format!("cannot build the HTTP client: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        assert!(check_endpoint("http://127.0.0.1:4318").is_ok());
        assert!(check_endpoint("https://otel.example.com/base/").is_ok());
        let err = check_endpoint("localhost:4318").unwrap_err().to_string();
        assert!(err.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{err}");
        assert!(err.contains("http://localhost:4318"), "{err}");
        assert!(check_endpoint("http://").is_err());
    }

    #[test]
    fn signal_paths_are_appended_to_the_base() {
        assert_eq!(
            http_signal_endpoint("http://c:4318/", "CHAOSLAB_TEST_UNSET_VAR", "/v1/traces")
                .as_deref(),
            Some("http://c:4318/v1/traces")
        );
    }

    #[test]
    fn every_protocol_builds_without_a_collector() {
        for protocol in [Protocol::HttpBinary, Protocol::HttpJson] {
            assert!(otlp_spans_over("http://127.0.0.1:9", protocol).is_ok());
            assert!(otlp_metrics_over("http://127.0.0.1:9", protocol).is_ok());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            assert!(otlp_spans_over("http://127.0.0.1:9", Protocol::Grpc).is_ok());
            assert!(otlp_metrics_over("http://127.0.0.1:9", Protocol::Grpc).is_ok());
        });
    }

    #[test]
    fn grpc_outside_a_runtime_is_an_error_not_a_panic() {
        let Err(err) = otlp_spans_over("http://127.0.0.1:4317", Protocol::Grpc) else {
            panic!("built a gRPC exporter outside a runtime");
        };
        assert!(err.to_string().contains("tokio runtime"), "{err}");
    }

    #[test]
    fn grpc_over_https_says_what_to_do() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let result = runtime.block_on(async {
            otlp_spans_over("https://collector.example:4317", Protocol::Grpc).map(|_| ())
        });
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("http/protobuf"), "{err}");
    }

    #[test]
    fn only_a_loopback_http_ingestion_endpoint_stays_http() {
        let cs = |e: &str| format!("InstrumentationKey=k;IngestionEndpoint={e};LiveEndpoint=x");
        assert_eq!(
            loopback_http_ingestion(&cs("http://127.0.0.1:4999/")).as_deref(),
            Some("http://127.0.0.1:4999")
        );
        assert_eq!(
            loopback_http_ingestion(&cs("http://localhost:80")).as_deref(),
            Some("http://localhost:80")
        );
        assert_eq!(
            loopback_http_ingestion(&cs("http://[::1]:8/")).as_deref(),
            Some("http://[::1]:8")
        );
        assert_eq!(loopback_http_ingestion(&cs("http://10.0.0.1:80/")), None);
        assert_eq!(loopback_http_ingestion(&cs("https://127.0.0.1:80/")), None);
        assert_eq!(
            loopback_http_ingestion(&cs("http://west.in.applicationinsights.azure.com/")),
            None
        );
        assert_eq!(loopback_http_ingestion("InstrumentationKey=k"), None);
        assert!(azure_monitor(&cs("http://127.0.0.1:4999/")).is_ok());
    }

    #[test]
    fn a_bad_connection_string_names_the_variable() {
        let Err(err) = azure_monitor("not a connection string") else {
            panic!("accepted a bad connection string");
        };
        assert!(
            err.to_string()
                .contains("APPLICATIONINSIGHTS_CONNECTION_STRING")
        );
    }
}
