//! The answer of `GET /health`: what the health route computes and the
//! shared state caches (HEALTH_CACHE_TTL_SECONDS). It lives apart from the
//! route so that the state does not depend on the routes.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub status: &'static str,
    pub redis: RedisHealth,
    pub timestamp: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedisHealth {
    pub connected: bool,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

impl IntoResponse for HealthReport {
    fn into_response(self) -> Response {
        let code = if self.status == "unhealthy" {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        (code, Json(self)).into_response()
    }
}
