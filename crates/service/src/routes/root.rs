//! `GET /`: the seed's main path. One Redis round trip when the sample data
//! exists (a pipeline of GET sample + INCR counter); a second one only the
//! first time, to create the sample with SET NX.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::{ApiError, now_rfc3339};
use crate::redis::OpKind;
use crate::state::AppState;

pub const SAMPLE_KEY: &str = "chaos_lab:data:sample";
pub const COUNTER_KEY: &str = "chaos_lab:counter:requests";
pub const GREETING: &str = "Hello from Container Apps Chaos Lab";

#[derive(Debug, Serialize)]
pub struct RootResponse {
    message: &'static str,
    redis_data: String,
    timestamp: String,
    request_count: i64,
    replica: String,
    revision: String,
}

pub async fn root(State(state): State<AppState>) -> Result<Json<RootResponse>, ApiError> {
    let (redis_data, request_count) = match state.store() {
        None => (
            "Redis unavailable".to_string(),
            state.0.local_counter.fetch_add(1, Ordering::Relaxed) as i64 + 1,
        ),
        Some(store) => {
            let (sample, count): (Option<String>, i64) = store
                .run("GET+INCR", OpKind::NonIdempotent, |mut conn| async move {
                    redis::pipe()
                        .get(SAMPLE_KEY)
                        .incr(COUNTER_KEY, 1)
                        .query_async(&mut conn)
                        .await
                })
                .await
                .map_err(|e| ApiError::unavailable(e.public_detail()))?;
            let sample = match sample {
                Some(s) => s,
                None => create_sample(&state).await?,
            };
            (sample, count)
        }
    };
    Ok(Json(RootResponse {
        message: GREETING,
        redis_data,
        timestamp: now_rfc3339(),
        request_count,
        replica: state.config().replica_id.clone(),
        revision: state.config().revision.clone(),
    }))
}

/// Creates the sample unless another request just did; returns what is stored.
async fn create_sample(state: &AppState) -> Result<String, ApiError> {
    let Some(store) = state.store() else {
        return Ok("Redis unavailable".into());
    };
    let fresh = serde_json::json!({
        "timestamp": now_rfc3339(),
        "value": "Sample data created by chaoslab",
    })
    .to_string();
    let value = fresh.clone();
    let (_, stored): ((), Option<String>) = store
        .run("SET NX+GET", OpKind::Idempotent, move |mut conn| {
            let value = value.clone();
            async move {
                redis::pipe()
                    .cmd("SET")
                    .arg(SAMPLE_KEY)
                    .arg(value)
                    .arg("NX")
                    .ignore()
                    .get(SAMPLE_KEY)
                    .query_async(&mut conn)
                    .await
                    .map(|(stored,): (Option<String>,)| ((), stored))
            }
        })
        .await
        .map_err(|e| ApiError::unavailable(e.public_detail()))?;
    Ok(stored.unwrap_or(fresh))
}
