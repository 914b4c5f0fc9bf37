//! The chaos API: `/chaos/status`, `/chaos/load`, `/chaos/hang`,
//! `/chaos/redis-reset`. Thin over `crate::chaos`: validate the request,
//! call the controller, shape the answer. Mutating calls need the bearer
//! token when CHAOS_API_TOKEN is set.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use tower::{Layer, Service};

use crate::body::{Fields, FromJsonObject};
use crate::chaos::hang::HangEnd;
use crate::chaos::{HangScope, LoadLevel, LoadSpec};
use crate::error::{ApiError, now_rfc3339};
use crate::extract::{JsonBody, OptionalJsonBody};
use crate::state::AppState;

const MAX_DURATION: i64 = 3600;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/chaos/load", post(start_load).delete(stop_load))
        .route("/chaos/hang", post(hang).delete(stop_hang))
        .route("/chaos/redis-reset", post(redis_reset))
        .route_layer(RequireToken {
            inner: (),
            token: state.config().chaos_api_token.as_deref().map(Arc::from),
        })
        // The service's only routes that read a body: a larger one is
        // answered 413 (crate::error).
        .layer(DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        // Added after the layers, so outside them: a read needs no token
        // and has no body, and each layer would wrap it in another boxed
        // service, cloned on every request.
        .route("/chaos/status", get(status))
}

/// 401 for mutating calls without the right bearer token. A check of the
/// head only, so a plain tower layer: no future boxed, no service cloned.
#[derive(Clone)]
struct RequireToken<S> {
    inner: S,
    token: Option<Arc<str>>,
}

impl<S> Layer<S> for RequireToken<()> {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            token: self.token.clone(),
        }
    }
}

impl<S> Service<Request> for RequireToken<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TokenFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if let Some(token) = &self.token
            && req.method() != Method::GET
        {
            let given = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if !chaoslab_foundation::bearer_matches(given, token) {
                let refused = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "this chaos call needs `Authorization: Bearer <CHAOS_API_TOKEN>`",
                );
                return TokenFuture::Refused {
                    response: Some(refused.into_response()),
                };
            }
        }
        TokenFuture::Passed {
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`RequireToken`].
    #[project = TokenProjection]
    enum TokenFuture<F> {
        Refused { response: Option<Response> },
        Passed { #[pin] inner: F },
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for TokenFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            TokenProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_default()))
            }
            TokenProjection::Passed { inner } => inner.poll(cx),
        }
    }
}

/// `GET /chaos/status`'s answer. Fields in alphabetical order: the same
/// bytes as the JSON object it replaced (serde_json's map sorts its keys),
/// written without building a map on every request.
#[derive(Serialize)]
pub struct ChaosStatus {
    hang: HangStatus,
    load: LoadStatus,
    redis: RedisStatus,
}

#[derive(Serialize)]
struct HangStatus {
    active: bool,
    indefinite: bool,
    remaining_seconds: u64,
    scope: Option<HangScope>,
}

#[derive(Serialize)]
struct LoadStatus {
    active: bool,
    level: &'static str,
    remaining_seconds: u64,
}

#[derive(Serialize)]
struct RedisStatus {
    connected: bool,
    connection_count: usize,
    enabled: bool,
    last_reset: Option<String>,
}

pub async fn status(State(state): State<AppState>) -> Json<ChaosStatus> {
    let load = state.load().status();
    let hang = state.hang().status();
    let store = state.store();
    let connection_count = store.map(|s| s.connection_count()).unwrap_or(0);
    Json(ChaosStatus {
        hang: HangStatus {
            active: hang.is_some(),
            indefinite: hang.is_some_and(|(_, _, forever)| forever),
            remaining_seconds: hang.map(|(_, s, _)| s).unwrap_or(0),
            scope: hang.map(|(scope, _, _)| scope),
        },
        load: LoadStatus {
            active: load.is_some(),
            level: load.map(|(l, _)| l.name()).unwrap_or("none"),
            remaining_seconds: load.map(|(_, s)| s).unwrap_or(0),
        },
        redis: RedisStatus {
            connected: connection_count > 0,
            connection_count,
            enabled: store.is_some(),
            last_reset: store.and_then(|s| s.last_reset()),
        },
    })
}

/// `POST /chaos/load`'s body.
#[derive(Debug)]
pub struct LoadRequest {
    level: LoadLevel,
    duration_seconds: i64,
    cpu_percent: Option<u32>,
    memory_mb: Option<u64>,
}

impl FromJsonObject for LoadRequest {
    const FIELDS: &'static [&'static str] =
        &["level", "duration_seconds", "cpu_percent", "memory_mb"];

    fn from_fields(fields: &mut Fields) -> Result<Self, ApiError> {
        Ok(LoadRequest {
            level: fields.choice("level", LoadLevel::CHOICES)?,
            duration_seconds: fields.int("duration_seconds", 1..=MAX_DURATION)?,
            cpu_percent: fields
                .opt_int("cpu_percent", 1..=100)?
                .and_then(|n| u32::try_from(n).ok()),
            memory_mb: fields
                .opt_int("memory_mb", 0..=i64::MAX)?
                .and_then(|n| u64::try_from(n).ok()),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct LoadStarted {
    status: &'static str,
    level: LoadLevel,
    duration_seconds: i64,
    cpu_percent: u32,
    memory_mb: u64,
}

pub async fn start_load(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<LoadRequest>,
) -> Result<Json<LoadStarted>, ApiError> {
    let _span =
        tracing::info_span!("chaos", otel.name = "chaos load", chaos.type = "load").entered();
    let cpu_percent = req.cpu_percent.unwrap_or(req.level.cpu_percent());
    // An explicit memory_mb above the bound is refused; a level's own
    // figure is capped at it (a small container still gets its CPU load).
    let max = state.config().load_max_memory_mb;
    let memory_mb = match req.memory_mb {
        Some(asked) if asked > max => {
            return Err(ApiError::bad_request(format!(
                "memory_mb must be an integer from 0 to {max} (LOAD_MAX_MEMORY_MB), got {asked}"
            )));
        }
        Some(asked) => asked,
        None => req.level.memory_mb().min(max),
    };
    let spec = LoadSpec {
        level: req.level,
        duration: Duration::from_secs(req.duration_seconds as u64),
        cpu_percent,
        memory_mb,
    };
    state
        .load()
        .start(spec)
        .map_err(|e| ApiError::new(e.status(), e.to_string()))?;
    Ok(Json(LoadStarted {
        status: "load_started",
        level: req.level,
        duration_seconds: req.duration_seconds,
        cpu_percent,
        memory_mb,
    }))
}

pub async fn stop_load(State(state): State<AppState>) -> Json<Value> {
    let was_active = state.load().stop();
    Json(json!({ "status": "load_stopped", "was_active": was_active, "timestamp": now_rfc3339() }))
}

/// `POST /chaos/hang`'s body.
#[derive(Debug)]
pub struct HangRequest {
    duration_seconds: i64,
    scope: HangScope,
}

impl FromJsonObject for HangRequest {
    const FIELDS: &'static [&'static str] = &["duration_seconds", "scope"];

    fn from_fields(fields: &mut Fields) -> Result<Self, ApiError> {
        Ok(HangRequest {
            duration_seconds: fields.int("duration_seconds", 0..=MAX_DURATION)?,
            scope: fields
                .opt_choice("scope", HangScope::CHOICES)?
                .unwrap_or_default(),
        })
    }
}

pub async fn hang(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<HangRequest>,
) -> Result<Json<Value>, ApiError> {
    let guard = {
        let _span =
            tracing::info_span!("chaos", otel.name = "chaos hang", chaos.type = "hang").entered();
        state
            .hang()
            .start(req.scope, Duration::from_secs(req.duration_seconds as u64))
            .map_err(|e| ApiError::new(e.status(), e.to_string()))?
    };
    // If the client goes away, this future is dropped and so is the guard,
    // which ends the hang.
    let end = guard.wait().await;
    drop(guard);
    Ok(Json(json!({
        "status": match end { HangEnd::Completed => "hang_completed", HangEnd::Cancelled => "hang_cancelled" },
        "scope": req.scope,
        "duration_seconds": req.duration_seconds,
        "timestamp": now_rfc3339(),
    })))
}

pub async fn stop_hang(State(state): State<AppState>) -> Json<Value> {
    let was_active = state.hang().cancel();
    Json(json!({ "status": "hang_stopped", "was_active": was_active, "timestamp": now_rfc3339() }))
}

/// `POST /chaos/redis-reset`'s optional body (`force` is accepted for the
/// seed's clients; every reset is forced).
#[derive(Debug)]
pub struct ResetRequest;

impl FromJsonObject for ResetRequest {
    const FIELDS: &'static [&'static str] = &["force"];

    fn from_fields(fields: &mut Fields) -> Result<Self, ApiError> {
        fields.opt_bool("force")?;
        Ok(ResetRequest)
    }
}

pub async fn redis_reset(
    State(state): State<AppState>,
    OptionalJsonBody(_req): OptionalJsonBody<ResetRequest>,
) -> Result<Json<Value>, ApiError> {
    let _span =
        tracing::info_span!("chaos", otel.name = "chaos redis-reset", chaos.type = "redis_reset")
            .entered();
    let store = state.store().ok_or_else(|| {
        ApiError::unavailable("Redis is disabled (REDIS_ENABLED=false): no connections to reset")
    })?;
    let closed = store.reset();
    tracing::warn!(
        connections_closed = closed,
        "chaos: Redis connections reset"
    );
    Ok(Json(json!({
        "status": "redis_connections_reset",
        "connections_closed": closed,
        "timestamp": now_rfc3339(),
    })))
}
