//! `GET /health` (and `/readyz`): Redis PING latency decides healthy,
//! degraded or unhealthy; the verdict may be cached for
//! HEALTH_CACHE_TTL_SECONDS, as the seed did. `GET /livez` only proves the
//! HTTP server answers.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::now_rfc3339;
use crate::redis::OpKind;
use crate::state::AppState;

pub const LAST_CHECK_KEY: &str = "chaos_lab:health:last_check";

pub use crate::health_report::{HealthReport, RedisHealth};

pub async fn health(State(state): State<AppState>) -> HealthReport {
    let ttl = state.config().health_cache_ttl;
    if !ttl.is_zero()
        && let Ok(cache) = state.0.health_cache.lock()
        && let Some((at, report)) = cache.as_ref()
        && at.elapsed() < ttl
    {
        return report.clone();
    }
    let report = check(&state).await;
    if !ttl.is_zero()
        && let Ok(mut cache) = state.0.health_cache.lock()
    {
        *cache = Some((Instant::now(), report.clone()));
    }
    report
}

async fn check(state: &AppState) -> HealthReport {
    let Some(store) = state.store() else {
        return HealthReport {
            status: "healthy",
            redis: RedisHealth {
                connected: false,
                latency_ms: 0,
                error: Some("Redis disabled"),
            },
            timestamp: now_rfc3339(),
        };
    };
    let started = Instant::now();
    let now = now_rfc3339();
    let ping = store.run("PING", OpKind::NoRetry, move |mut conn| {
        let now = now.clone();
        async move {
            redis::pipe()
                .cmd("PING")
                .ignore()
                .cmd("SET")
                .arg(LAST_CHECK_KEY)
                .arg(now)
                .arg("EX")
                .arg(300)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        }
    });
    let outcome = tokio::time::timeout(state.config().health_timeout, ping).await;
    let latency = started.elapsed();
    let latency_ms = latency.as_millis() as u64;
    let (status, connected, error) = match outcome {
        Ok(Ok(())) if latency > state.config().health_degraded_latency => ("degraded", true, None),
        Ok(Ok(())) => ("healthy", true, None),
        Ok(Err(e)) => ("unhealthy", false, Some(e.public_detail())),
        Err(_) => ("unhealthy", false, Some("Redis operation timed out")),
    };
    if status == "unhealthy" {
        tracing::warn!(
            latency_ms,
            error = error.unwrap_or_default(),
            "health check: unhealthy"
        );
    }
    HealthReport {
        status,
        redis: RedisHealth {
            connected,
            latency_ms,
            error,
        },
        timestamp: now_rfc3339(),
    }
}

#[derive(Serialize)]
pub struct Alive {
    status: &'static str,
    timestamp: String,
}

pub async fn livez() -> Json<Alive> {
    Json(Alive {
        status: "alive",
        timestamp: now_rfc3339(),
    })
}
