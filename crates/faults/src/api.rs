//! The control API's fault and chaos routes, merged into the lab's router
//! behind its bearer token (`control_api::router_with`):
//!
//! | method, path | answer |
//! | --- | --- |
//! | `POST /api/faults` `{"kind":…}` | 201 the fault; 200 `{"restored":[ids]}` for `auth restore`; 400 bad input (nothing changed); 409 conflict |
//! | `GET /api/faults` | the active faults |
//! | `DELETE /api/faults/{id}` | 200 `{"id","cleared":true\|false}` — idempotent: `false` when already gone |
//! | `DELETE /api/faults` | 200 `{"cleared":[ids]}` |
//! | `POST /api/chaos/{load\|hang\|redis-reset}?all_replicas=` | 200 `{"via","answers":[…]}` |
//! | `GET /api/chaos/status?all_replicas=` | same shape |
//! | `DELETE /api/chaos/{load\|hang}?all_replicas=` | same shape |

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::FaultError;
use crate::fault::FaultSpec;
use crate::registry::{Ending, Outcome, Registry};

/// The routes.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/api/faults", get(list).post(inject).delete(clear_all))
        .route("/api/faults/{id}", delete(clear))
        .route("/api/chaos/status", get(chaos_status))
        .route(
            "/api/chaos/{op}",
            axum::routing::post(chaos).delete(chaos_stop),
        )
        .with_state(registry)
}

async fn list(State(r): State<Arc<Registry>>) -> Json<Vec<Value>> {
    Json(r.list())
}

async fn inject(
    State(r): State<Arc<Registry>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, FaultError> {
    let Json(body) = body.map_err(|e| {
        FaultError::bad(format!("the body must be a JSON fault: {}", e.body_text()))
    })?;
    let spec: FaultSpec = serde_json::from_value(body).map_err(|e| {
        FaultError::bad(format!(
            "bad fault: {e} (kinds: network, deploy, kill, redis, auth)"
        ))
    })?;
    match r.inject(spec).await? {
        Outcome::Injected(record) => Ok((StatusCode::CREATED, Json(record)).into_response()),
        Outcome::Restored(ids) => Ok(Json(json!({"restored": ids})).into_response()),
    }
}

async fn clear(
    State(r): State<Arc<Registry>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, FaultError> {
    let cleared = r.clear(&id, Ending::Cleared, true).await?;
    Ok(Json(json!({"id": id, "cleared": cleared})))
}

async fn clear_all(State(r): State<Arc<Registry>>) -> Json<Value> {
    Json(json!({"cleared": r.clear_all(true).await}))
}

#[derive(Debug, Deserialize)]
struct ChaosQuery {
    #[serde(default)]
    all_replicas: bool,
}

const CHAOS_OPS: [&str; 3] = ["load", "hang", "redis-reset"];

async fn chaos(
    State(r): State<Arc<Registry>>,
    Path(op): Path<String>,
    Query(q): Query<ChaosQuery>,
    body: Option<Json<Value>>,
) -> Response {
    if !CHAOS_OPS.contains(&op.as_str()) {
        return not_found(&format!(
            "no chaos operation `{op}`: use load, hang, redis-reset or status"
        ));
    }
    forward(&r, Method::POST, &op, body.map(|Json(b)| b), q.all_replicas).await
}

async fn chaos_stop(
    State(r): State<Arc<Registry>>,
    Path(op): Path<String>,
    Query(q): Query<ChaosQuery>,
) -> Response {
    if op != "load" && op != "hang" {
        return not_found(&format!("cannot stop `{op}`: use load or hang"));
    }
    forward(&r, Method::DELETE, &op, None, q.all_replicas).await
}

/// A 404 in the spec's error body.
fn not_found(detail: &str) -> Response {
    chaoslab_foundation::error_response(StatusCode::NOT_FOUND, Some(detail), None).into_response()
}

async fn chaos_status(State(r): State<Arc<Registry>>, Query(q): Query<ChaosQuery>) -> Response {
    forward(&r, Method::GET, "status", None, q.all_replicas).await
}

async fn forward(
    r: &Arc<Registry>,
    method: Method,
    op: &str,
    body: Option<Value>,
    all: bool,
) -> Response {
    let lab = r.lab();
    let method =
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET);
    let (via, answers) = if all {
        (
            "replicas",
            crate::chaos::on_every_replica(lab, method, op, body).await,
        )
    } else {
        (
            "ingress",
            crate::chaos::through_ingress(lab, method, op, body).await,
        )
    };
    Json(json!({"via": via, "answers": answers})).into_response()
}
