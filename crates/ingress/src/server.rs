//! The accept loop: one task per client connection (bounded by a
//! semaphore), HTTP/1 keep-alive, and a graceful drain on shutdown with a
//! deadline: stop accepting, let in-flight requests finish, then give up.

use std::future::Future;
use std::sync::Arc;

use chaoslab_httpguard::{AllowedHosts, Guard};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::{IngressConfig, IngressError, IngressMetrics, Proxy, UpstreamSet};

/// Serves the ingress on `listener` until `shutdown` resolves, then drains
/// for at most `config.drain_timeout`. Fails at once when
/// `config.allowed_hosts` holds something that is not a host name.
pub async fn run(
    listener: TcpListener,
    upstreams: watch::Receiver<UpstreamSet>,
    config: IngressConfig,
    metrics: Arc<IngressMetrics>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), IngressError> {
    let drain_timeout = config.drain_timeout;
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    // The names the ingress answers: loopback, where it is bound, the
    // configured ones (an address it cannot read stands for loopback).
    let bound = listener
        .local_addr()
        .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |a| a.ip());
    let hosts = AllowedHosts::for_listener(bound, &config.allowed_hosts)?;
    let proxy = Arc::new(Proxy::new(upstreams, config, metrics).with_guard(Guard::new(hosts)));
    let draining = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) if is_per_connection(&err) => {
                    tracing::debug!(error = %err, "ingress accept error");
                    continue;
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off, retry.
                    tracing::warn!(error = %err, "ingress accept failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        let draining = draining.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, Some(peer)).await) }
            });
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = draining.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "ingress connection ended with an error");
            }
        });
    }
    drop(listener);
    draining.cancel();
    tracker.close();
    if tokio::time::timeout(drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("ingress drain timed out; dropping remaining connections");
    }
    Ok(())
}

fn is_per_connection(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
