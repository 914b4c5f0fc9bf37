//! The Toxiproxy-compatible HTTP API (Toxiproxy's `api.go`), so the
//! Toxiproxy clients people already use drive chaoslab's faults — and what
//! they set is an ordinary toxic: it shows in the lab's `fault list` and
//! events. Same paths, JSON shapes, status codes and error body
//! (`{"error": "...", "status": N}`); chaoslab's kinds (`deny_new`,
//! `blackhole`, `reset`) are extra toxic types and `both` an extra stream.
//! `router` is separate from `serve` so tests can drive it without a socket.
//!
//! Any local process can call it, so it guards what the lab relies on (SPEC
//! section 13): the lab's own proxies ([`Origin::Library`], e.g. `redis`,
//! which carries the replicas' Redis password) keep their listen and
//! upstream addresses and cannot be deleted — only their toxics and
//! `enabled` change; proxies created here forward to this machine only
//! unless [`ApiConfig::allow_remote_upstream`]; every change, and every
//! refusal, is a [`FaultEvent`](crate::FaultEvent) naming the caller's
//! address. Bodies are read field by field (`json.rs`): bad input is a 400
//! naming the field, never a panic. [`serve_with`] puts the browser-attack
//! guard every lab listener shares in front (`chaoslab-httpguard`): a
//! foreign `Host` (DNS rebinding) or a change from another site is a 403, a
//! change whose body is declared as something else than JSON a 415, in
//! Toxiproxy's error body; Toxiproxy's clients send JSON or no body, no
//! `Origin`, and a loopback `Host`, and pass. It serves under the limits
//! every listener shares (SPEC section 13, "Bounds"): a head, a body or an
//! idle spell that outlasts its timeout ends the connection (a body with a
//! 408 in Toxiproxy's error body), and at most 128 connections are served
//! at once — `SERVER_*` variables change them.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chaoslab_httpguard::{
    AllowedHosts, BodyTimeout, BodyTimeoutLayer, Guard, GuardLayer, HttpServer, PeerAddr, Refusal,
    ServerLimits,
};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::address::{check_name, check_upstream, clipped, is_local_upstream, is_unix_upstream};
use crate::error::Error;
use crate::event::as_caller;
use crate::fault_proxy::{FaultProxy, ProxyConfig, ProxyUpdate, default_listen};
use crate::info::Origin;
use crate::json;
use crate::toxic::{Stream, ToxicKind, ToxicSpec};

/// The version `GET /version` reports: the Toxiproxy API level it follows,
/// with this crate as build metadata.
pub const API_VERSION: &str = concat!("2.12.0+chaoslab-faultproxy.", env!("CARGO_PKG_VERSION"));

/// Largest request body read (Toxiproxy's bodies are a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;

/// What the API lets its callers do beyond the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiConfig {
    /// Lets proxies created (or moved) through the API forward anywhere,
    /// not only to this machine (127.0.0.0/8, `::1`, `localhost`). Off by
    /// default: a local caller could otherwise relay whatever a client
    /// sends through a proxy off the machine. The lab sets it from `chaoslab
    /// up --allow-remote-upstream`. The lab's own proxies never move,
    /// whatever this says.
    pub allow_remote_upstream: bool,
}

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
        error_response(status, &self.0.to_string())
    }
}

/// Toxiproxy's error body with `status`.
fn error_response(status: u16, message: &str) -> Response {
    let body = json!({ "error": message, "status": status });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(body)).into_response()
}

type ApiResult<T> = Result<T, ApiError>;

/// The API's state: the fault proxy and the policy.
#[derive(Debug, Clone)]
struct Api {
    fp: FaultProxy,
    config: ApiConfig,
}

impl Api {
    /// Refuses `request` on `proxy` with `error`, announcing it.
    fn refuse(&self, proxy: &str, request: String, error: Error) -> ApiError {
        self.fp.announce_refusal(proxy, request, &error);
        ApiError(error)
    }

    /// A proxy created or moved through the API forwards to this machine
    /// unless remote upstreams are allowed.
    fn check_upstream(&self, proxy: &str, request: String, upstream: &str) -> ApiResult<()> {
        check_upstream(upstream)?;
        if is_unix_upstream(upstream) {
            return Err(self.refuse(proxy, request, Error::UnixUpstream(clipped(upstream))));
        }
        if self.config.allow_remote_upstream || is_local_upstream(upstream) {
            return Ok(());
        }
        Err(self.refuse(proxy, request, Error::RemoteUpstream(clipped(upstream))))
    }
}

/// The API's routes over `proxy`, with the default [`ApiConfig`].
pub fn router(proxy: FaultProxy) -> Router {
    router_with(proxy, ApiConfig::default())
}

/// The API's routes over `proxy`. A request's caller is the [`PeerAddr`]
/// (or axum's [`ConnectInfo<SocketAddr>`]) the server puts in its
/// extensions ([`serve_with`] does); without one, changes name no caller.
pub fn router_with(proxy: FaultProxy, config: ApiConfig) -> Router {
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
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn(with_caller))
        .layer(axum::middleware::from_fn(stop_browsers))
        .with_state(Api { fp: proxy, config })
}

/// Serves the API on `listener` (bound by the caller) until `shutdown`,
/// with the default [`ApiConfig`].
pub async fn serve(
    listener: TcpListener,
    proxy: FaultProxy,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, proxy, ApiConfig::default(), shutdown).await
}

/// Serves the API on `listener` (bound by the caller) until `shutdown`,
/// behind the browser-attack guard, under [`ServerLimits::CONTROL`] as the
/// `SERVER_*` variables adjust them (one that is not a limit is an
/// `InvalidInput` error); every change names the address of the client
/// that made it.
pub async fn serve_with(
    listener: TcpListener,
    proxy: FaultProxy,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = ServerLimits::CONTROL
        .from_env()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    serve_limited(listener, proxy, config, limits, shutdown).await
}

/// [`serve_with`] under `limits`.
pub async fn serve_limited(
    listener: TcpListener,
    proxy: FaultProxy,
    config: ApiConfig,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let body_timeout = BodyTimeoutLayer::new(|timeout: &BodyTimeout| {
        error_response(StatusCode::REQUEST_TIMEOUT.as_u16(), &timeout.to_string())
    });
    let app = router_with(proxy, config)
        .layer(guard(listener.local_addr()?.ip()))
        .layer(body_timeout);
    HttpServer::new(limits)
        .serve(listener, move |io, _peer| (io, app.clone()), shutdown)
        .await
}

/// The browser-attack guard for a listener bound to `bound`: loopback
/// names and that address are answered; refusals in Toxiproxy's body.
fn guard(bound: std::net::IpAddr) -> GuardLayer<fn(&Refusal) -> Response> {
    let hosts = AllowedHosts::for_listener(bound, &[]).unwrap_or_else(|_| AllowedHosts::loopback());
    GuardLayer::new(Guard::new(hosts), |refusal| {
        error_response(refusal.status().as_u16(), &refusal.to_string())
    })
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

/// Serves the request as its caller: the events it causes name the
/// client's address (the [`PeerAddr`] the server gives every request, or
/// axum's [`ConnectInfo`]).
async fn with_caller(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let extensions = request.extensions();
    let caller = extensions.get::<PeerAddr>().map(|peer| peer.0).or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0)
    });
    as_caller(caller, next.run(request)).await
}

/// Every error in Toxiproxy's shape, also axum's own (unknown route, wrong
/// method, a path that does not decode, a body over [`MAX_BODY`]).
async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (_, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
        text => text.to_owned(),
    };
    error_response(status.as_u16(), &message)
}

/// A path parameter, or Toxiproxy's 400.
type Named = Result<Path<String>, axum::extract::rejection::PathRejection>;
/// Two path parameters, or Toxiproxy's 400.
type Named2 = Result<Path<(String, String)>, axum::extract::rejection::PathRejection>;

fn named(path: Named) -> ApiResult<String> {
    path.map(|Path(name)| name).map_err(|e| {
        ApiError(Error::BadRequestBody(format!(
            "bad path: {}",
            e.body_text()
        )))
    })
}

fn named2(path: Named2) -> ApiResult<(String, String)> {
    path.map(|Path(names)| names).map_err(|e| {
        ApiError(Error::BadRequestBody(format!(
            "bad path: {}",
            e.body_text()
        )))
    })
}

async fn version() -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    (headers, format!("{{\"version\": \"{API_VERSION}\"}}\n"))
}

async fn reset(State(api): State<Api>) -> ApiResult<StatusCode> {
    api.fp.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn proxy_index(State(api): State<Api>) -> Json<Value> {
    let map: Map<String, Value> = api
        .fp
        .proxies()
        .into_iter()
        .map(|p| (p.name.clone(), p.toxiproxy_json()))
        .collect();
    Json(Value::Object(map))
}

async fn proxy_create(State(api): State<Api>, body: Bytes) -> ApiResult<Response> {
    let map = json::object(&body)?;
    let config = ProxyConfig {
        name: json::opt_string(&map, "name")?.unwrap_or_default(),
        listen: json::opt_string(&map, "listen")?.unwrap_or_else(default_listen),
        upstream: json::opt_string(&map, "upstream")?.unwrap_or_default(),
        enabled: json::opt_bool(&map, "enabled")?.unwrap_or(true),
    };
    check_name("name", &config.name)?;
    api.check_upstream(&config.name, "POST /proxies".into(), &config.upstream)?;
    let info = api.fp.create_proxy_as(config, Origin::Api).await?;
    Ok((StatusCode::CREATED, Json(info.toxiproxy_json())).into_response())
}

async fn proxy_show(State(api): State<Api>, path: Named) -> ApiResult<Json<Value>> {
    Ok(Json(api.fp.proxy(&named(path)?)?.toxiproxy_json()))
}

async fn proxy_update(
    State(api): State<Api>,
    method: Method,
    path: Named,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let name = named(path)?;
    let current = api.fp.proxy(&name)?;
    let map = json::object(&body)?;
    let update = ProxyUpdate {
        listen: json::opt_string(&map, "listen")?,
        upstream: json::opt_string(&map, "upstream")?,
        enabled: json::opt_bool(&map, "enabled")?,
    };
    let request = format!("{method} /proxies/{}", clipped(&name));
    if current.origin == Origin::Library {
        // The lab's own: the same addresses (a no-op) pass, others do not.
        let refused = if update
            .upstream
            .as_ref()
            .is_some_and(|u| *u != current.upstream)
        {
            Some("changing its upstream")
        } else if update.listen.as_ref().is_some_and(|l| *l != current.listen) {
            Some("changing its listen address")
        } else {
            None
        };
        if let Some(what) = refused {
            let error = Error::LabProxy {
                proxy: clipped(&name),
                what,
            };
            return Err(api.refuse(&name, request, error));
        }
        let enabled_only = ProxyUpdate {
            enabled: update.enabled,
            ..ProxyUpdate::default()
        };
        return Ok(Json(
            api.fp
                .update_proxy(&name, enabled_only)
                .await?
                .toxiproxy_json(),
        ));
    }
    if let Some(upstream) = &update.upstream {
        api.check_upstream(&name, request, upstream)?;
    }
    Ok(Json(
        api.fp.update_proxy(&name, update).await?.toxiproxy_json(),
    ))
}

async fn proxy_delete(State(api): State<Api>, path: Named) -> ApiResult<StatusCode> {
    let name = named(path)?;
    if api.fp.proxy(&name)?.origin == Origin::Library {
        let error = Error::LabProxy {
            proxy: clipped(&name),
            what: "deleting it",
        };
        let request = format!("DELETE /proxies/{}", clipped(&name));
        return Err(api.refuse(&name, request, error));
    }
    api.fp.remove_proxy(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn toxic_index(State(api): State<Api>, path: Named) -> ApiResult<Json<Value>> {
    let toxics = api.fp.toxics(&named(path)?)?;
    Ok(Json(Value::Array(
        toxics.iter().map(|t| t.toxiproxy_json()).collect(),
    )))
}

async fn toxic_create(State(api): State<Api>, path: Named, body: Bytes) -> ApiResult<Json<Value>> {
    let name = named(path)?;
    api.fp.proxy(&name)?;
    let new = json::object(&body)?;
    let stream = json::opt_string(&new, "stream")?
        .as_deref()
        .map(Stream::parse)
        .transpose()?;
    let kind = ToxicKind::from_parts(
        json::opt_string(&new, "type")?.as_deref().unwrap_or(""),
        json::opt_object(&new, "attributes")?.map(Value::Object),
    )?;
    let spec = ToxicSpec {
        name: json::opt_string(&new, "name")?.filter(|n| !n.is_empty()),
        stream,
        toxicity: json::opt_f32(&new, "toxicity")?.unwrap_or(1.0),
        kind,
        duration: None,
    };
    let info = api.fp.add_toxic_as(&name, spec, Origin::Api)?;
    Ok(Json(info.toxiproxy_json()))
}

async fn toxic_show(State(api): State<Api>, path: Named2) -> ApiResult<Json<Value>> {
    let (name, toxic) = named2(path)?;
    Ok(Json(api.fp.toxic(&name, &toxic)?.toxiproxy_json()))
}

/// `POST /proxies/{proxy}/toxics/{toxic}`: attributes to change (the others
/// keep their values) and/or toxicity.
async fn toxic_update(State(api): State<Api>, path: Named2, body: Bytes) -> ApiResult<Json<Value>> {
    let (name, toxic) = named2(path)?;
    let current = api.fp.toxic(&name, &toxic)?;
    let change = json::object(&body)?;
    let kind = match json::opt_object(&change, "attributes")? {
        Some(changes) => {
            let mut attributes = current.kind.attributes();
            if let Value::Object(map) = &mut attributes {
                map.extend(changes);
            }
            Some(ToxicKind::from_parts(
                current.kind.type_name(),
                Some(attributes),
            )?)
        }
        None => None,
    };
    let toxicity = json::opt_f32(&change, "toxicity")?;
    let info = api.fp.update_toxic(&name, &toxic, kind, toxicity)?;
    Ok(Json(info.toxiproxy_json()))
}

async fn toxic_delete(State(api): State<Api>, path: Named2) -> ApiResult<StatusCode> {
    let (name, toxic) = named2(path)?;
    api.fp.remove_toxic(&name, &toxic)?;
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
    async fn bodies_are_objects_and_fields_are_named_in_errors() {
        let faults = FaultProxy::new();
        let app = router(faults.clone());
        // serde's positional form of a struct is not a proxy.
        let positional = r#"["r","127.0.0.1:0","127.0.0.1:1",true]"#;
        let (status, body) = call(app.clone(), "POST", "/proxies", positional).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "bad request body: expected a JSON object, got an array"
        );
        let (status, body) = call(
            app.clone(),
            "POST",
            "/proxies",
            r#"{"name":"r","upstream":"127.0.0.1:1","enabled":"no"}"#,
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "bad request body: field enabled must be true or false, got a string"
        );
        let create = r#"{"name":"r","upstream":"127.0.0.1:1","enabled":false}"#;
        assert_eq!(call(app.clone(), "POST", "/proxies", create).await.0, 201);
        let toxic = r#"{"type":"latency","attributes":{"latency":"slow"}}"#;
        let (status, body) = call(app.clone(), "POST", "/proxies/r/toxics", toxic).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "bad request body: latency: attribute latency must be a number, got a string"
        );
        let (status, body) = call(app.clone(), "POST", "/proxies/r/toxics", r#"{"type":5}"#).await;
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "bad request body: field type must be a string, got a number"
        );
        // axum's own refusals have Toxiproxy's body too.
        let (status, body) = call(app.clone(), "GET", "/nowhere", "").await;
        assert_eq!((status, body["status"].clone()), (404, json!(404)));
        let (status, body) = call(app.clone(), "PUT", "/proxies", "{}").await;
        assert_eq!((status, body["status"].clone()), (405, json!(405)));
        let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(MAX_BODY));
        let (status, body) = call(app, "POST", "/proxies", &big).await;
        assert_eq!((status, body["status"].clone()), (413, json!(413)));
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

    /// Sends `head`, then a byte every 50 ms while reading, until the API
    /// closes the connection (bounded); what it answered.
    async fn trickle_after(addr: SocketAddr, head: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(head).await.unwrap();
        let mut out = Vec::new();
        let feed = async {
            let mut chunk = [0u8; 4096];
            loop {
                if stream.write_all(b" ").await.is_err() {
                    let _ = stream.read_to_end(&mut out).await;
                    return;
                }
                let read = tokio::time::timeout(
                    std::time::Duration::from_millis(50),
                    stream.read(&mut chunk),
                );
                match read.await {
                    Ok(Ok(0) | Err(_)) => return,
                    Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
                    Err(_) => {}
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(20), feed)
            .await
            .expect("the API closed the connection in time");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn slow_heads_and_trickling_bodies_are_cut_under_the_limits() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ServerLimits {
            header_timeout: std::time::Duration::from_millis(400),
            body_timeout: std::time::Duration::from_millis(400),
            ..ServerLimits::CONTROL
        };
        tokio::spawn(serve_limited(
            listener,
            FaultProxy::new(),
            ApiConfig::default(),
            limits,
            std::future::pending(),
        ));
        let slow_head = trickle_after(addr, b"GET /version HTTP/1.1\r\nHost: 127.0").await;
        assert_eq!(slow_head, "", "nothing answered to a head that never ended");
        let slow_body = trickle_after(
            addr,
            b"POST /proxies HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{",
        )
        .await;
        let lower = slow_body.to_ascii_lowercase();
        assert!(lower.starts_with("http/1.1 408"), "{slow_body}");
        assert!(lower.contains("connection: close"), "{slow_body}");
        let body = &slow_body[slow_body.find("\r\n\r\n").unwrap() + 4..];
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], 408, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("did not arrive within")
        );
    }
}
