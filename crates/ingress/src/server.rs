//! The accept loop: the one every chaoslab listener shares
//! (`chaoslab_httpguard::HttpServer`) — HTTP/1 keep-alive under header,
//! body and idle timeouts and a connection cap (beyond it clients wait in
//! the listen backlog), and a graceful drain on shutdown with a deadline:
//! stop accepting, let in-flight requests finish, then give up. The body
//! clock runs for the body timeout or the request timeout, whichever is
//! shorter, so the request timeout covers the upload of the body too.

use std::future::Future;
use std::sync::Arc;

use chaoslab_httpguard::{Accepted, AllowedHosts, Guard, HttpServer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{IngressConfig, IngressError, IngressMetrics, Peer, Proxy, UpstreamSet};

/// Serves the ingress on `listener` until `shutdown` resolves, then drains
/// for at most `config.drain_timeout`. Fails at once when
/// `config.allowed_hosts` holds something that is not a host name, or a
/// `SERVER_*` variable overriding `config.limits` is not a limit.
pub async fn run(
    listener: TcpListener,
    upstreams: watch::Receiver<UpstreamSet>,
    config: IngressConfig,
    metrics: Arc<IngressMetrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), IngressError> {
    run_with(listener, upstreams, config, metrics, shutdown, true).await
}

/// [`run`], with the plain path (`crate::plain_http1`) or without it
/// (every connection hyper's from its first byte: the reference the plain
/// path is tested against).
pub(crate) async fn run_with(
    listener: TcpListener,
    upstreams: watch::Receiver<UpstreamSet>,
    config: IngressConfig,
    metrics: Arc<IngressMetrics>,
    shutdown: impl Future<Output = ()>,
    plain_path: bool,
) -> Result<(), IngressError> {
    let mut limits = config.limits.from_env()?;
    limits.body_timeout = limits.body_timeout.min(config.request_timeout);
    // The names the ingress answers: loopback, where it is bound, the
    // configured ones (an address it cannot read stands for loopback).
    let bound = listener
        .local_addr()
        .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |a| a.ip());
    let hosts = AllowedHosts::for_listener(bound, &config.allowed_hosts)?;
    let server = HttpServer::new(limits)
        .http1_only()
        .drain_timeout(config.drain_timeout);
    let proxy = Arc::new(Proxy::new(upstreams, config, metrics).with_guard(Guard::new(hosts)));
    let connection = move |io, accepted: Accepted| {
        let peer = Arc::new(Peer::new(accepted.peer()));
        crate::plain_http1::serve(proxy.clone(), peer, io, accepted, plain_path)
    };
    server
        .serve_connections(listener, connection, shutdown)
        .await
        .map_err(IngressError::Accept)
}

#[cfg(test)]
#[path = "tests.rs"]
pub(crate) mod tests;
