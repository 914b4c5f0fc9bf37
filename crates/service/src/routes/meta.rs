//! `GET /metrics` (Prometheus text) and `GET /openapi.json` (the API as
//! OpenAPI 3, kept beside the code in `openapi.json`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;

use crate::state::AppState;

pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = (state.0.render_metrics)();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The OpenAPI document of this service.
pub const OPENAPI: &str = include_str!("../../openapi.json");

pub async fn openapi() -> Response {
    ([(CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_is_valid_json_with_every_path() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for path in [
            "/",
            "/health",
            "/livez",
            "/readyz",
            "/chaos/status",
            "/chaos/load",
            "/chaos/hang",
            "/chaos/redis-reset",
            "/metrics",
            "/openapi.json",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }
}
