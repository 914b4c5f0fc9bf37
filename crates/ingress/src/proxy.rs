//! The request path: pick the next ready upstream (round-robin), rewrite the
//! request for it, forward it over a pooled keep-alive connection with the
//! request timeout, and stream the response back. The request body streams
//! on the body clock of the listener's limits (the shorter of the body and
//! request timeouts, from the head): a client still sending when it runs
//! out gets a 408 of the ingress's own. Requests without a body
//! that could not even connect (a replica stopping between the readiness
//! update and the pick) are retried once on the next upstream, so a rollout
//! or a scale-in costs no request. Before any of that, the browser-attack
//! guard: a refused request never reaches an upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use chaoslab_httpguard::{BodyDeadline, Guard, TimedBody};
use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Body;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;

use crate::error::{ProxyBody, proxy_error_response};
use crate::{IngressConfig, IngressMetrics, Upstream, UpstreamSet};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Hop-by-hop headers (RFC 9110 §7.6.1) a proxy must not forward.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A request body on its way to an upstream: the client's, on its clock.
type UpstreamBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// Everything a request needs; cheap to share between connections.
#[derive(Debug)]
pub struct Proxy {
    client: Client<HttpConnector, UpstreamBody>,
    upstreams: watch::Receiver<UpstreamSet>,
    next: AtomicUsize,
    config: IngressConfig,
    metrics: Arc<IngressMetrics>,
    /// Refuses foreign hosts, cross-site changes and non-JSON bodies.
    guard: Guard,
}

impl Proxy {
    /// A proxy over the upstream set published on `upstreams`.
    pub fn new(
        upstreams: watch::Receiver<UpstreamSet>,
        config: IngressConfig,
        metrics: Arc<IngressMetrics>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(3)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector);
        Self {
            client,
            upstreams,
            next: AtomicUsize::new(0),
            config,
            metrics,
            guard: Guard::loopback(),
        }
    }

    /// The browser-attack guard to apply (loopback names only by default).
    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    /// Proxies one request from `peer`; never fails (errors become error
    /// responses). Refuses what the guard refuses; adds `X-Forwarded-For`
    /// and `X-Forwarded-Proto`, as the Container Apps ingress does.
    pub async fn handle(
        &self,
        mut req: Request<TimedBody>,
        peer: Option<std::net::SocketAddr>,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let in_flight = self.metrics.request_started();
        let request_id = match req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                let id = new_request_id();
                if let Ok(value) = HeaderValue::from_str(&id) {
                    req.headers_mut().insert(REQUEST_ID, value);
                }
                id
            }
        };
        if let Err(refusal) = self.guard.check(req.method(), req.uri(), req.headers()) {
            tracing::warn!(refused = refusal.kind(), detail = %refusal, ?peer, "ingress refused a request");
            let response = proxy_error_response(
                refusal.status(),
                refusal.kind(),
                &refusal.to_string(),
                &request_id,
            );
            in_flight.finish(response.status().as_u16(), started.elapsed(), true);
            return response;
        }
        if let Some(peer) = peer {
            let forwarded = match req
                .headers()
                .get(&FORWARDED_FOR)
                .and_then(|v| v.to_str().ok())
            {
                Some(before) => format!("{before}, {}", peer.ip()),
                None => peer.ip().to_string(),
            };
            if let Ok(value) = HeaderValue::from_str(&forwarded) {
                req.headers_mut().insert(FORWARDED_FOR, value);
            }
        }
        if !req.headers().contains_key(&FORWARDED_PROTO) {
            req.headers_mut()
                .insert(FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
        let (response, proxy_made) = self.forward(req, &request_id).await;
        let mut response = response;
        if !response.headers().contains_key(&REQUEST_ID)
            && let Ok(value) = HeaderValue::from_str(&request_id)
        {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        in_flight.finish(response.status().as_u16(), started.elapsed(), proxy_made);
        response
    }

    fn pick(&self) -> Option<Upstream> {
        let set = self.upstreams.borrow();
        if set.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % set.len();
        set.get(i).cloned()
    }

    async fn forward(
        &self,
        req: Request<TimedBody>,
        request_id: &str,
    ) -> (Response<ProxyBody>, bool) {
        let (mut parts, body) = req.into_parts();
        let deadline = parts.extensions.remove::<BodyDeadline>();
        strip_hop_by_hop(&mut parts.headers);
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        let bodyless = is_bodyless(&body);
        let mut body = Some(body.boxed());
        // One retry, only for requests we can resend (no body) and only when
        // the upstream refused the connection.
        let attempts = if bodyless { 2 } else { 1 };
        let mut last_error = String::new();
        for _ in 0..attempts {
            let Some(upstream) = self.pick() else {
                return (
                    proxy_error_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no-healthy-upstream",
                        "no healthy upstream",
                        request_id,
                    ),
                    true,
                );
            };
            let Ok(uri) = format!("http://{}{}", upstream.addr, path).parse::<Uri>() else {
                return (
                    proxy_error_response(
                        StatusCode::BAD_REQUEST,
                        "bad-request-target",
                        "the request target is not a valid URI path",
                        request_id,
                    ),
                    true,
                );
            };
            let mut out = Request::from_parts(parts.clone(), empty_upstream());
            *out.uri_mut() = uri;
            *out.body_mut() = body.take().unwrap_or_else(empty_upstream);
            let call = self.client.request(out);
            match tokio::time::timeout(self.config.request_timeout, call).await {
                Ok(Ok(response)) => {
                    let (mut rparts, rbody) = response.into_parts();
                    strip_hop_by_hop(&mut rparts.headers);
                    return (Response::from_parts(rparts, rbody.boxed()), false);
                }
                Ok(Err(_)) if deadline.as_ref().is_some_and(BodyDeadline::expired) => {
                    return (body_timeout(deadline.as_ref(), request_id), true);
                }
                // The request timeout and the body clock can run out
                // together: a body still arriving makes it the client's.
                Err(_)
                    if !bodyless
                        && deadline
                            .as_ref()
                            .is_some_and(|d| d.expired() || !d.is_complete()) =>
                {
                    return (body_timeout(deadline.as_ref(), request_id), true);
                }
                Ok(Err(err)) if err.is_connect() => {
                    tracing::debug!(upstream = %upstream.id, error = %err, "upstream connect failed");
                    last_error = format!("upstream {} refused the connection", upstream.id);
                }
                Ok(Err(err)) => {
                    tracing::debug!(upstream = %upstream.id, error = %err, "upstream failed");
                    return (
                        proxy_error_response(
                            StatusCode::BAD_GATEWAY,
                            "upstream-error",
                            &format!("upstream {} failed: {err}", upstream.id),
                            request_id,
                        ),
                        true,
                    );
                }
                Err(_) => {
                    return (
                        proxy_error_response(
                            StatusCode::GATEWAY_TIMEOUT,
                            "upstream-timeout",
                            &format!(
                                "upstream {} did not answer within {}s",
                                upstream.id,
                                self.config.request_timeout.as_secs_f64()
                            ),
                            request_id,
                        ),
                        true,
                    );
                }
            }
        }
        (
            proxy_error_response(
                StatusCode::BAD_GATEWAY,
                "upstream-connect-error",
                &last_error,
                request_id,
            ),
            true,
        )
    }
}

/// A random (v4) UUID from the thread-local generator: no system call per
/// request, unlike `Uuid::new_v4` without its `fast-rng` feature.
fn new_request_id() -> String {
    let bytes: [u8; 16] = rand::random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn empty_upstream() -> UpstreamBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// The 408 for a client still sending its body when its clock ran out,
/// with `Connection: close` (the rest of the body is never read).
fn body_timeout(deadline: Option<&BodyDeadline>, request_id: &str) -> Response<ProxyBody> {
    let detail = deadline.map_or_else(
        || "the request body did not arrive in time".to_string(),
        |d| d.error().to_string(),
    );
    tracing::warn!(%detail, request_id, "ingress: request body timed out");
    let mut response = proxy_error_response(
        StatusCode::REQUEST_TIMEOUT,
        "request-body-timeout",
        &detail,
        request_id,
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request can be resent to another upstream only when it has no body
/// (hyper knows the body is empty: no length or a length of 0).
fn is_bodyless(body: &TimedBody) -> bool {
    body.is_end_stream()
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}
