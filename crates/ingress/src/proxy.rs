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

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chaoslab_httpguard::{BodyDeadline, Guard, TimedBody};
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Body;
use tokio::sync::watch;

use crate::error::{BoxError, ForwardFailure, ProxyBody, proxy_error_response};
use crate::upstream_pool::{SendError, UpstreamPool};
use crate::{IngressConfig, IngressMetrics, UpstreamSet};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop headers (RFC 9110 §7.6.1) a proxy must not forward.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The client of a connection, as the proxy reports it upstream: made once
/// per connection, not per request.
#[derive(Debug, Clone)]
pub struct Peer {
    addr: SocketAddr,
    /// The client's address as an `X-Forwarded-For` entry.
    pub(crate) forwarded_for: HeaderValue,
}

impl Peer {
    /// The client at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let forwarded_for = HeaderValue::from_str(&addr.ip().to_string())
            .unwrap_or(HeaderValue::from_static("unknown"));
        Peer {
            addr,
            forwarded_for,
        }
    }
}

/// Everything a request needs; cheap to share between connections.
#[derive(Debug)]
pub struct Proxy {
    pub(crate) pool: UpstreamPool,
    upstreams: watch::Receiver<UpstreamSet>,
    next: AtomicUsize,
    pub(crate) config: IngressConfig,
    pub(crate) metrics: Arc<IngressMetrics>,
    /// Refuses foreign hosts, cross-site changes and non-JSON bodies.
    pub(crate) guard: Guard,
}

/// The upstream picked for one attempt: the set it is in and its place.
pub(crate) struct Picked {
    set: UpstreamSet,
    index: usize,
}

impl Picked {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.set[self.index].addr
    }

    pub(crate) fn id(&self) -> &str {
        &self.set[self.index].id
    }
}

impl Proxy {
    /// A proxy over the upstream set published on `upstreams`.
    pub fn new(
        upstreams: watch::Receiver<UpstreamSet>,
        config: IngressConfig,
        metrics: Arc<IngressMetrics>,
    ) -> Self {
        Self {
            pool: UpstreamPool::new(config.pool_max_idle_per_host),
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
    pub async fn handle(&self, mut req: Request<TimedBody>, peer: &Peer) -> Response<ProxyBody> {
        let started = Instant::now();
        let in_flight = self.metrics.request_started();
        let request_id = request_id(req.headers_mut());
        let id = request_id.to_str().unwrap_or_default();
        if let Err(refusal) = self.guard.check(req.method(), req.uri(), req.headers()) {
            tracing::warn!(refused = refusal.kind(), detail = %refusal, peer = ?peer.addr, "ingress refused a request");
            let response =
                proxy_error_response(refusal.status(), refusal.kind(), &refusal.to_string(), id);
            in_flight.finish(response.status().as_u16(), started.elapsed(), true);
            return response;
        }
        add_forwarded(req.headers_mut(), peer);
        let (mut response, proxy_made) = self.forward(req, id).await;
        if !response.headers().contains_key(&REQUEST_ID) {
            response
                .headers_mut()
                .insert(REQUEST_ID, request_id.clone());
        }
        in_flight.finish(response.status().as_u16(), started.elapsed(), proxy_made);
        response
    }

    /// Whether any upstream is ready.
    pub(crate) fn has_upstreams(&self) -> bool {
        !self.upstreams.borrow().is_empty()
    }

    /// The next ready upstream, round-robin.
    pub(crate) fn pick(&self) -> Option<Picked> {
        let set = self.upstreams.borrow().clone();
        if set.is_empty() {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % set.len();
        Some(Picked { set, index })
    }

    async fn forward(
        &self,
        req: Request<TimedBody>,
        request_id: &str,
    ) -> (Response<ProxyBody>, bool) {
        let (mut parts, body) = req.into_parts();
        let deadline = parts.extensions.remove::<BodyDeadline>();
        strip_hop_by_hop(&mut parts.headers);
        let target = origin_form(&parts.uri);
        if let Some(target) = &target {
            parts.uri = target.clone();
        }
        let bodyless = body.is_end_stream();
        let mut req = Request::from_parts(parts, body);
        // One retry, only for requests we can resend (no body) and only when
        // the upstream refused the connection.
        let attempts = if bodyless { 2 } else { 1 };
        let mut refused_by = None;
        for _ in 0..attempts {
            let Some(upstream) = self.pick() else {
                return (ForwardFailure::NoUpstream.proxy_response(request_id), true);
            };
            if target.is_none() {
                return (
                    proxy_error_response(
                        StatusCode::BAD_REQUEST,
                        "bad-request-target",
                        "the request target is not a valid URI path",
                        request_id,
                    ),
                    true,
                );
            }
            for_upstream(&mut req, upstream.addr());
            let call = self.pool.send(upstream.addr(), req);
            let error = match tokio::time::timeout(self.config.request_timeout, call).await {
                Ok(Ok(response)) => {
                    let (mut rparts, rbody) = response.into_parts();
                    strip_hop_by_hop(&mut rparts.headers);
                    return (
                        Response::from_parts(rparts, rbody.map_err(BoxError::from).boxed()),
                        false,
                    );
                }
                Ok(Err(error)) => Some(error),
                Err(_) => None,
            };
            match self.failed(error, &upstream, bodyless, deadline.as_ref(), request_id) {
                Err(unsent) => {
                    req = *unsent;
                    refused_by = Some(upstream);
                }
                Ok(response) => return (response, true),
            }
        }
        let id = refused_by.as_ref().map_or("", Picked::id);
        (ForwardFailure::Refused(id).proxy_response(request_id), true)
    }

    /// The answer to a failed attempt (`error` is `None` when the request
    /// timeout ran out), or the request back to try the next upstream.
    fn failed(
        &self,
        error: Option<SendError>,
        upstream: &Picked,
        bodyless: bool,
        deadline: Option<&BodyDeadline>,
        request_id: &str,
    ) -> Result<Response<ProxyBody>, Box<Request<TimedBody>>> {
        let id = upstream.id();
        match error {
            Some(_) if deadline.is_some_and(BodyDeadline::expired) => {
                Ok(body_timeout(deadline, request_id))
            }
            // The request timeout and the body clock can run out
            // together: a body still arriving makes it the client's.
            None if !bodyless && deadline.is_some_and(|d| d.expired() || !d.is_complete()) => {
                Ok(body_timeout(deadline, request_id))
            }
            Some(SendError::Connect(error, unsent)) => {
                tracing::debug!(upstream = %id, %error, "upstream connect failed");
                Err(unsent)
            }
            Some(SendError::Http(error)) => {
                tracing::debug!(upstream = %id, %error, "upstream failed");
                Ok(ForwardFailure::Failed(id, &error).proxy_response(request_id))
            }
            None => Ok(ForwardFailure::TimedOut(id, self.config.request_timeout)
                .proxy_response(request_id)),
        }
    }
}

/// The request's `X-Request-ID`: the client's when it sent a usable one,
/// else a new one, set on the request.
fn request_id(headers: &mut http::HeaderMap) -> HeaderValue {
    match headers.get(&REQUEST_ID) {
        Some(id) if !id.is_empty() && id.to_str().is_ok() => id.clone(),
        _ => {
            let id = new_request_id();
            headers.insert(REQUEST_ID, id.clone());
            id
        }
    }
}

/// Appends the client to `X-Forwarded-For` and sets `X-Forwarded-Proto`
/// unless the client did.
fn add_forwarded(headers: &mut http::HeaderMap, peer: &Peer) {
    let forwarded = match headers.get(&FORWARDED_FOR).map(HeaderValue::to_str) {
        Some(Ok(before)) => {
            let ip = peer.forwarded_for.to_str().unwrap_or_default();
            HeaderValue::from_str(&format!("{before}, {ip}")).ok()
        }
        _ => Some(peer.forwarded_for.clone()),
    };
    if let Some(value) = forwarded {
        headers.insert(FORWARDED_FOR, value);
    }
    if !headers.contains_key(&FORWARDED_PROTO) {
        headers.insert(FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
}

/// The target to send upstream: the path and query of the client's
/// (`/` when it has none), which must start with `/`.
fn origin_form(uri: &Uri) -> Option<Uri> {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return uri.path().starts_with('/').then(|| uri.clone());
    }
    match uri.path_and_query() {
        Some(path) if path.as_str().starts_with('/') => Some(Uri::from(path.clone())),
        Some(_) => None,
        None => Some(Uri::from(PathAndQuery::from_static("/"))),
    }
}

/// Addresses `req` to `addr`: its `Host` when the client sent none, and a
/// `CONNECT`'s authority-form target.
fn for_upstream(req: &mut Request<TimedBody>, addr: SocketAddr) {
    let authority = || {
        let text = if addr.port() == 80 {
            addr.ip().to_string()
        } else {
            addr.to_string()
        };
        HeaderValue::from_str(&text).ok()
    };
    if !req.headers().contains_key(header::HOST)
        && let Some(host) = authority()
    {
        req.headers_mut().insert(header::HOST, host);
    }
    if req.method() == Method::CONNECT
        && let Ok(target) = Authority::try_from(addr.to_string())
    {
        *req.uri_mut() = Uri::from(target);
    }
}

/// A random (v4) UUID from the per-thread generator the service uses
/// too: no system call and no cryptographic generator per request.
fn new_request_id() -> HeaderValue {
    chaoslab_foundation::with_new_request_id(|id: &str| HeaderValue::from_str(id))
        .unwrap_or(HeaderValue::from_static("-"))
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

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Most messages have none: look before removing (a scan of the names
    // against constants is cheaper than nine hashed removals).
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
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
        headers.remove(name);
    }
}
