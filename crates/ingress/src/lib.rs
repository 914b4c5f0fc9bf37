//! The lab's ingress: what Container Apps' ingress or a Kubernetes Service is
//! in the seed deployment. An HTTP/1 reverse proxy that spreads requests
//! round-robin over a *dynamic* set of ready upstreams (the lab publishes the
//! set through a `tokio::sync::watch`), keeps upstream connections alive,
//! streams bodies both ways, passes or creates `X-Request-ID`, answers 503
//! `no healthy upstream` when the set is empty and 504 when an upstream does
//! not answer within the request timeout, answers 408 when a client does
//! not send its body within the body or request timeout (and closes a
//! connection whose head, or idle spell, outlasts its timeout: the limits
//! every listener shares), and counts every request. Like
//! every listener of the lab it refuses browser attacks itself (SPEC
//! section 13, `chaoslab-httpguard`): a foreign `Host` (DNS rebinding) or a
//! change from another site is a 403, a change whose body is not JSON a
//! 415, each marked as the ingress's own.
//!
//! The client side is the ingress's own: `upstream_pool` keeps idle
//! keep-alive connections per upstream, `upstream_http1` speaks HTTP/1.1
//! on them in the task that answers the client (no connection task, no
//! channel per request, as hyper's client needed). So is the server side
//! for plain requests (`plain_http1`: an HTTP/1.1 `GET` of a path, with no
//! body and nothing hop-by-hop), whose heads it rewrites as bytes both
//! ways; a connection's first request that is not plain hands it to hyper
//! (`proxy`, `server`) for the rest of its life (`handoff`).
//!
//! The caller binds (mini-redis style): `run(listener, upstreams, config,
//! metrics, shutdown)`, so tests bind port 0 and read the address.

#![forbid(unsafe_code)]

mod error;
mod handoff;
mod metrics;
mod plain_http1;
mod proxy;
mod server;
mod upstream_http1;
mod upstream_pool;

pub use error::proxy_error_response;
pub use metrics::{IngressMetrics, LATENCY_BUCKETS_US, MetricsSnapshot, latency_quantile_ms};
pub use proxy::{Peer, Proxy};
pub use server::run;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chaoslab_httpguard::ServerLimits;

/// Header set on every response the ingress made itself (not the service),
/// so clients and tests can tell a proxy error from a service error.
pub const PROXY_ERROR_HEADER: &str = "x-chaoslab-error";

/// One backend the ingress may send requests to: a ready replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The replica's id, for logs and metrics.
    pub id: String,
    /// Where the replica listens (its target port on loopback).
    pub addr: SocketAddr,
}

/// The set of ready upstreams, replaced as a whole whenever readiness changes.
pub type UpstreamSet = Arc<Vec<Upstream>>;

/// Tunables of the ingress.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// How long a request may take, from its head, until the upstream
    /// starts answering (504 after it) — the upload of the request body
    /// included (408 when the client is still sending it). 240 s, as
    /// Container Apps.
    pub request_timeout: Duration,
    /// How long in-flight requests may run on after shutdown is signalled.
    pub drain_timeout: Duration,
    /// Header, body and idle timeouts and the cap on client connections
    /// served at once (more wait in the listen backlog), each overridden by
    /// its `SERVER_*` variable when set (`chaoslab_httpguard::limits`).
    pub limits: ServerLimits,
    /// Idle keep-alive connections kept per upstream.
    pub pool_max_idle_per_host: usize,
    /// Names answered in `Host` besides loopback and the bound address
    /// (`name`, `.domain` for it and its subdomains, an address, `*`).
    /// Bound to a non-loopback address with none, any `Host` is.
    pub allowed_hosts: Vec<String>,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(240),
            drain_timeout: Duration::from_secs(5),
            limits: ServerLimits::PUBLIC.with_max_connections(4096),
            pool_max_idle_per_host: 64,
            allowed_hosts: Vec::new(),
        }
    }
}

/// What can stop the ingress.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    /// Accepting a connection failed in a way that is not per-connection.
    #[error("ingress accept failed: {0}")]
    Accept(#[source] std::io::Error),
    /// An entry of [`IngressConfig::allowed_hosts`] is not a host name.
    #[error("ingress allowed hosts: {0}")]
    AllowedHosts(#[from] chaoslab_httpguard::GuardError),
    /// A `SERVER_*` limit is not one.
    #[error("ingress limits: {0}")]
    Limits(#[from] chaoslab_httpguard::LimitsError),
}
