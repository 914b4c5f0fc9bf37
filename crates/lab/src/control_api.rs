//! The control API on 127.0.0.1:8090: what the CLI (`status`, `events`,
//! `logs`, `revisions`, `deploy`, `down`) and the console use. Every route
//! needs `Authorization: Bearer <token>` (the token is in the owner-only
//! state file). Errors use the spec's body with their HTTP status. Streams
//! (`follow=true`) are JSON lines, bounded by the bus buffers, with an
//! empty line every [`FOLLOW_HEARTBEAT`] when nothing else is sent, and end
//! when the lab stops. `router()` is separate from serving so tests call it
//! without a socket. [`serve`] puts the browser-attack guard (SPEC section
//! 13) in front of everything, console page included, before the token is
//! looked at: a foreign `Host` (DNS rebinding) or a change from another
//! site is a 403, a change whose body is not JSON a 415; no CORS grants.
//! It serves under the limits every listener shares (SPEC section 13,
//! "Bounds"; `chaoslab_httpguard::limits`): a head, a body or an idle spell
//! that outlasts its timeout ends the connection (a body with a 408), and
//! at most 128 connections are served at once — `SERVER_*` variables
//! change them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chaoslab_httpguard::{
    AllowedHosts, BodyTimeout, BodyTimeoutLayer, Guard, GuardLayer, HttpServer, Refusal,
    ServerLimits,
};
use futures::stream::{self, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::platform::Platform;
use crate::revision::{DeployError, DeployRequest};

/// Where the lab's endpoints are (for status output).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabInfo {
    pub pid: u32,
    pub started_at: String,
    pub state_dir: String,
    pub ingress_url: String,
    pub control_url: String,
    pub redis: String,
    /// The fault proxy's Toxiproxy-compatible API (none with an external Redis).
    #[serde(default)]
    pub toxiproxy_url: Option<String>,
}

#[derive(Clone)]
struct ApiState {
    platform: Arc<Platform>,
    token: Arc<str>,
    info: Arc<LabInfo>,
}

/// An API error: status + the spec's error body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The control API tracks no request ids: each error gets a fresh one.
        chaoslab_foundation::error_response(self.status, Some(&self.detail), None).into_response()
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        let status = match e {
            DeployError::Busy | DeployError::Exists(_) | DeployError::AlreadyActive(_) => {
                StatusCode::CONFLICT
            }
            DeployError::NotFound(_) => StatusCode::NOT_FOUND,
            DeployError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.to_string())
    }
}

/// The API's routes (authenticated).
#[cfg(test)]
pub fn router(platform: Arc<Platform>, token: String, info: LabInfo) -> Router {
    router_with(platform, token, info, Router::new(), Router::new())
}

/// The API plus the routes later components bring: `authenticated` ones
/// (e.g. `/api/faults`) behind the same bearer token, `public` ones (e.g.
/// the console page, which holds no secret) without it.
pub fn router_with(
    platform: Arc<Platform>,
    token: String,
    info: LabInfo,
    authenticated: Router,
    public: Router,
) -> Router {
    let state = ApiState {
        platform,
        token: token.into(),
        info: Arc::new(info),
    };
    Router::new()
        .route("/api/status", get(status))
        .route("/api/replicas", get(replicas))
        .route("/api/revisions", get(revisions).post(deploy))
        .route("/api/revisions/{name}", get(revision))
        .route("/api/revisions/{name}/activate", post(activate))
        .route("/api/events", get(events))
        .route("/api/metrics", get(metrics))
        .route("/api/logs", get(logs))
        .route("/api/shutdown", post(shutdown))
        .with_state(state.clone())
        .merge(authenticated)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn_with_state(state, authenticate))
        .merge(public)
}

/// Serves `router` on `listener` until `shutdown`, behind the
/// browser-attack guard (loopback names and the bound address are
/// answered), under [`ServerLimits::CONTROL`] as the `SERVER_*` variables
/// adjust them; a variable that is not a limit is an `InvalidInput` error.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = ServerLimits::CONTROL
        .from_env()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    serve_limited(listener, router, limits, shutdown).await
}

/// [`serve`] under `limits`.
pub async fn serve_limited(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bound = listener.local_addr()?.ip();
    let hosts = AllowedHosts::for_listener(bound, &[]).unwrap_or_else(|_| AllowedHosts::loopback());
    let guard = GuardLayer::new(Guard::new(hosts), |refusal: &Refusal| {
        ApiError::new(refusal.status(), refusal.to_string()).into_response()
    });
    let body_timeout = BodyTimeoutLayer::new(|timeout: &BodyTimeout| {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, timeout.to_string()).into_response()
    });
    let app = router.layer(guard).layer(body_timeout);
    HttpServer::new(limits)
        .serve(listener, move |io, _peer| (io, app.clone()), shutdown)
        .await
}

async fn authenticate(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if chaoslab_foundation::bearer_matches(given, &state.token) {
        next.run(request).await
    } else {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (it is in the lab's state file, .chaoslab/lab.json)",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

async fn status(State(s): State<ApiState>) -> Json<serde_json::Value> {
    let p = &s.platform;
    let a = &p.config.file.autoscaler;
    let last = p.series.last();
    Json(serde_json::json!({
        "lab": *s.info,
        "active_revision": p.active(),
        "revisions": p.revisions_view(),
        "replicas": p.replicas(),
        "autoscaler": {
            "enabled": a.enabled, "min_replicas": a.min_replicas, "max_replicas": a.max_replicas,
            "target_cpu_utilization": a.target_cpu_utilization,
            "scale_down_stabilization_seconds": a.scale_down_stabilization_seconds,
        },
        "limits": p.config.file.limits,
        // Per mechanism, kernel or process and why (SPEC §14).
        "isolation": p.isolation,
        "probes": {"liveness": p.config.liveness, "readiness": p.config.readiness},
        "ingress": p.ingress_metrics.snapshot(),
        // The lab's own view of redis-server: its direct PING, never
        // through the fault proxy (null with an external Redis). What the
        // replicas see is their readiness.
        "redis": {
            "up": last.as_ref().and_then(|l| l.redis_connected),
            "ping_ms": last.as_ref().and_then(|l| l.redis_ping_ms),
        },
        "last_point": last,
    }))
}

async fn replicas(State(s): State<ApiState>) -> impl IntoResponse {
    Json(s.platform.replicas())
}

async fn revisions(State(s): State<ApiState>) -> impl IntoResponse {
    Json(s.platform.revisions_view())
}

async fn revision(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    s.platform
        .revisions_view()
        .into_iter()
        .find(|r| r.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("revision {name} not found")))
}

async fn deploy(
    State(s): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let request: DeployRequest = if body.is_empty() {
        DeployRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("bad deploy request: {e}"))
        })?
    };
    let revision = s.platform.deploy(&request)?;
    Ok((StatusCode::ACCEPTED, Json(revision)))
}

async fn activate(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let revision = s.platform.activate(&name)?;
    Ok((StatusCode::ACCEPTED, Json(revision)))
}

async fn shutdown(State(s): State<ApiState>) -> impl IntoResponse {
    s.platform.events.normal(
        "ShutdownRequested",
        "lab",
        "shutdown requested through the control API",
        serde_json::Value::Null,
    );
    s.platform.shutdown.cancel();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "stopping"})),
    )
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
    #[serde(default)]
    follow: bool,
}

async fn events(State(s): State<ApiState>, Query(q): Query<EventsQuery>) -> Response {
    let live = s.platform.events.subscribe();
    let history = s.platform.events.history(q.since, q.limit.unwrap_or(200));
    let last = history.last().map_or(q.since, |e| e.seq);
    let first = stream::iter(history.into_iter().map(|e| json_line(&e)));
    if !q.follow {
        return ndjson(first.boxed());
    }
    let rest = follow(live, s.platform.clone(), move |e: &crate::events::Event| {
        (e.seq > last).then(|| json_line(e))
    });
    ndjson(first.chain(rest).boxed())
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    replica: Option<String>,
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
}

async fn logs(State(s): State<ApiState>, Query(q): Query<LogsQuery>) -> Result<Response, ApiError> {
    let hub = &s.platform.logs;
    let ids = match &q.replica {
        Some(id) => {
            let known = s.platform.replicas().iter().any(|r| &r.id == id)
                || hub.replicas_with_logs().contains(id);
            if !known {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no replica {id}"),
                ));
            }
            vec![id.clone()]
        }
        None => s.platform.replicas().into_iter().map(|r| r.id).collect(),
    };
    let tail = q.tail.unwrap_or(100).min(10_000);
    let live = hub.subscribe();
    let lines: Vec<String> = ids
        .iter()
        .flat_map(|id| hub.tail(id, tail))
        .map(|l| json_line(&l))
        .collect();
    let first = stream::iter(lines);
    if !q.follow {
        return Ok(ndjson(first.boxed()));
    }
    let only = q.replica.clone();
    let rest = follow(live, s.platform.clone(), move |l: &crate::logs::LogLine| {
        only.as_ref()
            .is_none_or(|id| &l.replica == id)
            .then(|| json_line(l))
    });
    Ok(ndjson(first.chain(rest).boxed()))
}

#[derive(Debug, Deserialize)]
struct MetricsQuery {
    #[serde(default)]
    since_ms: Option<i64>,
    #[serde(default)]
    follow: bool,
}

/// A JSON array of points, or with `follow=true` JSON lines: the points
/// since `since_ms`, then each new one as it is sampled.
async fn metrics(State(s): State<ApiState>, Query(q): Query<MetricsQuery>) -> Response {
    let since = q.since_ms.unwrap_or(i64::MIN);
    if !q.follow {
        return Json(s.platform.series.since(since)).into_response();
    }
    let live = s.platform.series.subscribe();
    let past = s.platform.series.since(since);
    let last = past.last().map_or(since, |p| p.unix_ms);
    let first = stream::iter(past.into_iter().map(|p| json_line(&p)));
    let rest = follow(
        live,
        s.platform.clone(),
        move |p: &crate::timeseries::Point| (p.unix_ms > last).then(|| json_line(p)),
    );
    ndjson(first.chain(rest).boxed())
}

/// A live stream from a broadcast, filtered and encoded by `f`, ending when
/// the lab stops; a lagging reader gets a marker line instead of the lost
/// items.
fn follow<T: Clone + Send + 'static>(
    rx: broadcast::Receiver<T>,
    platform: Arc<Platform>,
    f: impl Fn(&T) -> Option<String> + Send + 'static,
) -> impl Stream<Item = String> + Send {
    stream::unfold((rx, platform, f), |(mut rx, platform, f)| async move {
        loop {
            // Biased: what was published before the lab stopped (e.g. its
            // last events) is still delivered, then the stream ends.
            let next = tokio::select! {
                biased;
                next = rx.recv() => next,
                _ = platform.shutdown.cancelled() => return None,
                // Nothing to say for a while: an empty line, which
                // readers skip, tells them the lab is alive (a frozen lab
                // sends nothing, and they can give up on it).
                () = tokio::time::sleep(FOLLOW_HEARTBEAT) => {
                    return Some(("\n".to_string(), (rx, platform, f)));
                }
            };
            match next {
                Ok(item) => {
                    if let Some(line) = f(&item) {
                        return Some((line, (rx, platform, f)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let line = format!("{{\"lagged\":{n}}}\n");
                    return Some((line, (rx, platform, f)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// How often a follow stream with nothing to say sends an empty line.
pub(crate) const FOLLOW_HEARTBEAT: Duration = Duration::from_secs(10);

fn json_line<T: Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    line.push('\n');
    line
}

fn ndjson(lines: futures::stream::BoxStream<'static, String>) -> Response {
    let body = Body::from_stream(lines.map(Ok::<_, std::convert::Infallible>));
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

#[cfg(test)]
#[path = "control_api_tests.rs"]
mod tests;
