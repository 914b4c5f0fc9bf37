//! `chaoslab serve`: validate the configuration (exit 2 naming the variable
//! when something is wrong), start telemetry, bind, serve until SIGTERM /
//! Ctrl-C (or until the lab that started us is gone), drain, exit 0.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chaoslab_service::{AppState, ServeArgs, ServiceMetrics};
use chaoslab_telemetry::{LogFormat, TelemetryConfig};

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = match args.validate() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("chaoslab serve: configuration error: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let telemetry = match telemetry_config(&args, &config.replica_id)
        .and_then(|c| chaoslab_telemetry::init(&c).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(err) => {
            eprintln!("chaoslab serve: configuration error: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    // Request spans carry their attributes only when something exports them.
    chaoslab_service::set_trace_export(
        args.telemetry_enabled
            && [
                &args.otel_exporter_otlp_endpoint,
                &args.applicationinsights_connection_string,
            ]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| !v.trim().is_empty())),
    );
    let render = {
        let telemetry = telemetry.clone();
        Arc::new(move || telemetry.prometheus_text()) as chaoslab_service::MetricsRenderer
    };
    let state = AppState::new(config.clone(), ServiceMetrics::new(), render)
        .context("cannot set up the Redis client")?;
    let listener = chaoslab_foundation::listen::bind("service", config.listen)
        .await
        // The error names its cause itself: no chain to print twice.
        .map_err(|e| anyhow::anyhow!("{e}; APP_HOST and APP_PORT choose another address"))?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() && config.chaos_enabled && config.chaos_api_token.is_none() {
        tracing::warn!(
            address = %local,
            "chaos endpoints are enabled on a non-loopback address without CHAOS_API_TOKEN: anyone who can reach this port can load or hang the service"
        );
    }
    tracing::info!(
        address = %local,
        replica = %config.replica_id,
        revision = %config.revision,
        redis = config.redis.as_ref().map(|r| format!("{}:{}", r.host, r.port)).unwrap_or_else(|| "disabled".into()),
        "chaoslab service started"
    );
    let parent = config.parent_pid;
    chaoslab_service::run(listener, state, async move {
        tokio::select! {
            _ = super::shutdown_signal() => {}
            _ = parent_gone(parent) => tracing::warn!("the lab that started this replica is gone; exiting"),
        }
    })
    .await
    .context("the HTTP server failed")?;
    // Flush exporters (bounded inside `shutdown`), off the async threads.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    Ok(ExitCode::SUCCESS)
}

/// Telemetry as the flags and variables set it (a bad log format is an
/// error naming it).
fn telemetry_config(args: &ServeArgs, replica_id: &str) -> Result<TelemetryConfig, String> {
    let mut config = TelemetryConfig::new(
        "chaoslab",
        env!("CARGO_PKG_VERSION"),
        replica_id.to_string(),
    );
    config.enabled = args.telemetry_enabled;
    config.sampling_rate = args.telemetry_sampling_rate;
    config.log_level = args.log_level.clone();
    config.log_format = args
        .log_format
        .parse::<LogFormat>()
        .map_err(|e| e.to_string())?;
    config.otlp_endpoint = args
        .otel_exporter_otlp_endpoint
        .clone()
        .filter(|s| !s.is_empty());
    config.app_insights_connection_string = args
        .applicationinsights_connection_string
        .clone()
        .filter(|s| !s.is_empty());
    Ok(config)
}

/// Resolves when our parent is no longer `pid` (never when `pid` is None).
async fn parent_gone(pid: Option<u32>) {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if std::os::unix::process::parent_id() != pid {
            return;
        }
    }
}
