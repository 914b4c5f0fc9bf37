//! Layers around every route: the process-hang gate (outermost: a hung
//! process answers nothing), then request observation — X-Request-ID, the
//! server span with HTTP semantic-convention attributes, and the HTTP
//! duration histogram.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, Method};
use opentelemetry::KeyValue;
use tracing::Instrument;

use crate::request_id;
use crate::state::AppState;

/// Holds every request while a process-scope hang is active, except the
/// `DELETE /chaos/hang` that ends it.
pub async fn process_hang_gate(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if state.hang().is_process_hung()
        && !(req.method() == Method::DELETE && req.uri().path() == "/chaos/hang")
    {
        state.hang().wait_while_process_hung().await;
    }
    next.run(req).await
}

/// Request id, server span and duration metric for every request.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let id = request_id::from_incoming(req.headers().get(request_id::HEADER));
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        url.path = %req.uri().path(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        request_id = %id,
    );
    chaoslab_telemetry::set_parent_from_headers(
        &span,
        req.headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes())),
    );
    let started = Instant::now();
    let mut response = request_id::scope(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    state.metrics().http_server_duration.record(
        started.elapsed().as_secs_f64(),
        &[
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("http.route", route),
            KeyValue::new("http.response.status_code", i64::from(status.as_u16())),
        ],
    );
    response
}
