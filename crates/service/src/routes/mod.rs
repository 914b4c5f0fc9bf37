//! The HTTP routes of SPEC §3, one module per group, assembled in [`router`].

pub mod chaos;
pub mod health;
pub mod meta;
pub mod root;

use axum::Router;
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// Every route's path as the router matches it (`http.route`).
pub const ROUTES: [&str; 10] = [
    "/",
    "/health",
    "/readyz",
    "/livez",
    "/metrics",
    "/openapi.json",
    "/chaos/status",
    "/chaos/load",
    "/chaos/hang",
    "/chaos/redis-reset",
];

/// All routes, without the middleware (see `crate::app`).
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new()
        .route("/", get(root::root))
        .route("/health", get(health::health))
        .route("/readyz", get(health::health))
        .route("/livez", get(health::livez))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi));
    if state.config().chaos_enabled {
        router = router.merge(chaos::router(state));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {}; GET /openapi.json lists the API",
        uri.path()
    ))
}

async fn method_not_allowed(method: http::Method, uri: http::Uri) -> ApiError {
    ApiError::new(
        http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{method} is not allowed on {}; GET /openapi.json lists the methods",
            uri.path()
        ),
    )
}
