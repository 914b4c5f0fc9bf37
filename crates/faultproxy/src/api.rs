//! The Toxiproxy-compatible HTTP API (Toxiproxy's `api.go`), so the
//! Toxiproxy clients people already use drive chaoslab's faults — and what
//! they set is an ordinary toxic: it shows in the lab's `fault list` and
//! events. Same paths, JSON shapes, status codes and error body
//! (`{"error": "...", "status": N}`); chaoslab's kinds (`deny_new`,
//! `blackhole`, `reset`) are extra toxic types and `both` an extra stream.
//! `router` is separate from `serve` so tests can drive it without a socket.

use std::future::Future;
use std::io;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::error::Error;
use crate::fault_proxy::{FaultProxy, ProxyConfig, ProxyUpdate};
use crate::info::Origin;
use crate::toxic::{Stream, ToxicKind, ToxicSpec};

/// The version `GET /version` reports: the Toxiproxy API level it follows,
/// with this crate as build metadata.
pub const API_VERSION: &str = concat!("2.12.0+chaoslab-faultproxy.", env!("CARGO_PKG_VERSION"));

/// An error as Toxiproxy's API answers it.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = json!({ "error": self.0.to_string(), "status": status });
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The API's routes over `proxy`.
pub fn router(proxy: FaultProxy) -> Router {
    Router::new()
        .route("/reset", post(reset))
        .route("/version", get(version))
        .route("/proxies", get(proxy_index).post(proxy_create))
        .route(
            "/proxies/{proxy}",
            get(proxy_show)
                .post(proxy_update)
                .patch(proxy_update)
                .delete(proxy_delete),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(toxic_index).post(toxic_create),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxic_show)
                .post(toxic_update)
                .patch(toxic_update)
                .delete(toxic_delete),
        )
        .layer(axum::middleware::from_fn(stop_browsers))
        .with_state(proxy)
}

/// Serves the API on `listener` (bound by the caller) until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    proxy: FaultProxy,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(proxy))
        .with_graceful_shutdown(shutdown)
        .await
}

/// As Toxiproxy: a web page must not drive the API from a browser.
async fn stop_browsers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let from_browser = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Mozilla/"));
    if from_browser {
        return (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response();
    }
    next.run(request).await
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError(Error::BadRequestBody(e.to_string())))
}

async fn version() -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        "application/json;charset=utf-8"
            .parse()
            .expect("static header"),
    );
    (headers, format!("{{\"version\": \"{API_VERSION}\"}}\n"))
}

async fn reset(State(fp): State<FaultProxy>) -> ApiResult<StatusCode> {
    fp.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn proxy_index(State(fp): State<FaultProxy>) -> Json<Value> {
    let map: Map<String, Value> = fp
        .proxies()
        .into_iter()
        .map(|p| (p.name.clone(), p.toxiproxy_json()))
        .collect();
    Json(Value::Object(map))
}

async fn proxy_create(State(fp): State<FaultProxy>, body: Bytes) -> ApiResult<Response> {
    let config: ProxyConfig = parse(&body)?;
    let info = fp.create_proxy(config).await?;
    Ok((StatusCode::CREATED, Json(info.toxiproxy_json())).into_response())
}

async fn proxy_show(
    State(fp): State<FaultProxy>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(fp.proxy(&name)?.toxiproxy_json()))
}

async fn proxy_update(
    State(fp): State<FaultProxy>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    fp.proxy(&name)?;
    let update: ProxyUpdate = parse(&body)?;
    Ok(Json(fp.update_proxy(&name, update).await?.toxiproxy_json()))
}

async fn proxy_delete(
    State(fp): State<FaultProxy>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    fp.remove_proxy(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn toxic_index(
    State(fp): State<FaultProxy>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let toxics = fp.toxics(&name)?;
    Ok(Json(Value::Array(
        toxics.iter().map(|t| t.toxiproxy_json()).collect(),
    )))
}

/// `POST /proxies/{proxy}/toxics`'s body.
#[derive(Debug, Deserialize)]
struct NewToxic {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    toxicity: Option<f32>,
    #[serde(default)]
    attributes: Option<Value>,
}

async fn toxic_create(
    State(fp): State<FaultProxy>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    fp.proxy(&name)?;
    let new: NewToxic = parse(&body)?;
    let stream = new.stream.as_deref().map(Stream::parse).transpose()?;
    let kind = ToxicKind::from_parts(new.kind.as_deref().unwrap_or(""), new.attributes)?;
    let spec = ToxicSpec {
        name: new.name.filter(|n| !n.is_empty()),
        stream,
        toxicity: new.toxicity.unwrap_or(1.0),
        kind,
        duration: None,
    };
    let info = fp.add_toxic_as(&name, spec, Origin::Api)?;
    Ok(Json(info.toxiproxy_json()))
}

async fn toxic_show(
    State(fp): State<FaultProxy>,
    Path((name, toxic)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(fp.toxic(&name, &toxic)?.toxiproxy_json()))
}

/// `POST /proxies/{proxy}/toxics/{toxic}`'s body: attributes to change
/// (the others keep their values) and/or toxicity.
#[derive(Debug, Deserialize)]
struct ToxicChange {
    #[serde(default)]
    attributes: Option<Value>,
    #[serde(default)]
    toxicity: Option<f32>,
}

async fn toxic_update(
    State(fp): State<FaultProxy>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let current = fp.toxic(&name, &toxic)?;
    let change: ToxicChange = parse(&body)?;
    let kind = match change.attributes {
        Some(Value::Object(changes)) => {
            let mut attributes = current.kind.attributes();
            if let Value::Object(map) = &mut attributes {
                map.extend(changes);
            }
            Some(ToxicKind::from_parts(
                current.kind.type_name(),
                Some(attributes),
            )?)
        }
        Some(Value::Null) | None => None,
        Some(_) => {
            return Err(Error::BadRequestBody("attributes must be an object".into()).into());
        }
    };
    let info = fp.update_toxic(&name, &toxic, kind, change.toxicity)?;
    Ok(Json(info.toxiproxy_json()))
}

async fn toxic_delete(
    State(fp): State<FaultProxy>,
    Path((name, toxic)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    fp.remove_toxic(&name, &toxic)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn call(app: Router, method: &str, path: &str, body: &str) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn errors_carry_their_status_in_toxiproxy_shape() {
        let app = router(FaultProxy::new());
        let (status, body) = call(app.clone(), "GET", "/proxies/none", "").await;
        assert_eq!(status, 404);
        assert_eq!(body, json!({"error": "proxy not found", "status": 404}));
        let (status, body) = call(app.clone(), "POST", "/proxies", "{").await;
        assert_eq!(status, 400);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("bad request body")
        );
        let (status, body) = call(app, "POST", "/proxies", r#"{"upstream":"x:1"}"#).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "missing required field: name");
    }

    #[tokio::test]
    async fn a_disabled_proxy_is_created_without_binding() {
        let faults = FaultProxy::new();
        let app = router(faults.clone());
        let create = r#"{"name":"r","upstream":"127.0.0.1:1","enabled":false}"#;
        let (status, body) = call(app, "POST", "/proxies", create).await;
        assert_eq!(status, 201);
        assert_eq!(body["enabled"], false);
        assert_eq!(body["listen"], "127.0.0.1:0");
        assert!(!faults.proxy("r").unwrap().enabled);
    }
}
