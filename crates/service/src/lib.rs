//! The chaoslab target service: the Redis-backed HTTP API of SPEC §3 with its
//! chaos endpoints, as `chaoslab serve` runs it in the lab, in a container or
//! alone.
//!
//! The pieces: `config` (flags and variables → validated `Config`),
//! `redis` (the shared connection, retries, credentials), `chaos` (real
//! load and hangs), `routes` (thin handlers), `middleware` (request id,
//! spans, the process-hang gate, the browser-attack guard), `error` (the
//! one error body), `body` and `extract` (request bodies read field by
//! field), `server` and `head` (the accept loop, and the bounds on request
//! heads that hyper would answer with an empty body). [`app`] builds the
//! application (router and layers) for tests; [`run`] serves it on a listener the caller bound,
//! until the shutdown future resolves, then drains within the grace period.

#![forbid(unsafe_code)]

mod body;
pub mod chaos;
pub mod config;
pub mod error;
mod extract;
mod head;
mod health_report;
pub mod metrics;
mod middleware;
pub mod redis;
pub mod request_id;
pub mod routes;
mod server;
mod state;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tower::Layer;

pub use config::{Config, ConfigError, ServeArgs};
pub use metrics::ServiceMetrics;
pub use state::{AppState, MetricsRenderer};

/// Request bodies above this size are answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole HTTP application (see [`app`]): a `tower` service of axum
/// requests, always ready, cheap to clone.
pub type App =
    middleware::AroundService<chaoslab_httpguard::GuardService<Router, middleware::Refuse>>;

/// The whole HTTP application: routes and middleware, no socket. The
/// layers every request passes (hang gate and observation, then the
/// browser-attack guard) wrap the router once, not each route: axum's
/// `Router::layer` wraps every route in its own boxed service, cloned and
/// boxed again on every request.
pub fn app(state: AppState) -> App {
    let router = routes::router(&state).with_state(state.clone());
    let guarded = middleware::guard(state.config()).layer(router);
    middleware::AroundEveryRequest::new(state).layer(guarded)
}

/// Whether spans are exported (see [`set_trace_export`]); `true` until
/// told otherwise.
static TRACE_EXPORT: AtomicBool = AtomicBool::new(true);

/// Tells the service whether anything exports its spans (an OTLP endpoint
/// or Application Insights is configured). When nothing does, request
/// spans are created without attributes — they still give the log lines
/// written during a request their span name and trace ids, which is all
/// they are used for — so that no attribute is formatted on every request
/// for nobody. `chaoslab serve` calls it once after starting telemetry.
pub fn set_trace_export(exported: bool) {
    TRACE_EXPORT.store(exported, Ordering::Relaxed);
}

/// Whether request spans carry their attributes (see [`set_trace_export`]).
pub fn trace_export() -> bool {
    TRACE_EXPORT.load(Ordering::Relaxed)
}

/// Serves `state` on `listener` until `shutdown` resolves; then stops
/// accepting, ends hangs and loads, and lets in-flight requests finish
/// within the configured grace period.
pub async fn run<S>(listener: TcpListener, state: AppState, shutdown: S) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let grace = state.config().shutdown_grace;
    let draining = std::sync::Arc::new(tokio::sync::Notify::new());
    let on_shutdown = {
        let state = state.clone();
        let draining = draining.clone();
        async move {
            shutdown.await;
            tracing::info!(
                grace_s = grace.as_secs(),
                "shutting down: no new connections, finishing in-flight requests"
            );
            state.hang().close();
            state.load().close();
            draining.notify_one();
        }
    };
    let sampler = tokio::spawn(sample_gauges(state.clone()));
    if let Some(store) = state.store().cloned() {
        tokio::spawn(async move {
            match store
                .run("PING", crate::redis::OpKind::NoRetry, |mut c| async move {
                    ::redis::cmd("PING").query_async::<()>(&mut c).await
                })
                .await
            {
                Ok(()) => tracing::info!("Redis test connection successful"),
                Err(e) => {
                    tracing::warn!(error = %e, "Redis test connection failed; serving anyway and reconnecting on demand")
                }
            }
        });
    }
    let hold = server::hold_while_hung(&state);
    let limits = state.config().limits;
    let server = server::serve(listener, app(state.clone()), hold, limits, on_shutdown);
    let result = tokio::select! {
        result = server => result,
        _ = async { draining.notified().await; tokio::time::sleep(grace).await } => {
            tracing::warn!("grace period over with requests still in flight; closing them");
            Ok(())
        }
    };
    sampler.abort();
    if let Some(store) = state.store() {
        store.reset();
    }
    tracing::info!("service stopped");
    result
}

/// Refreshes the gauges every second: process memory and CPU, load state.
async fn sample_gauges(state: AppState) {
    let mut previous = chaoslab_foundation::proc::sample(None).ok();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let load = state.load().status();
        state
            .metrics()
            .gauges
            .set_load(load.is_some(), load.map(|(l, _)| l.gauge()).unwrap_or(0));
        if let Ok(now) = chaoslab_foundation::proc::sample(None) {
            let cpu = previous
                .as_ref()
                .map(|p| now.cpu_percent_since(p))
                .unwrap_or(0.0);
            state
                .metrics()
                .gauges
                .set_process(now.rss_bytes as f64 / (1024.0 * 1024.0), cpu);
            previous = Some(now);
        }
    }
}
