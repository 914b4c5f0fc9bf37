//! One proxy's listener while it has one: the accept loop and the tasks of
//! its connections. The caller binds (mini-redis's `run(listener, …)`): the
//! lab hands in a listener it bound, the HTTP API binds the `listen` address
//! it was given. Disabling a proxy cancels the run, closing every live
//! connection, and hands the listener back: a proxy created through the API
//! then closes it (as Toxiproxy: connections are refused), while one of the
//! lab's own proxies keeps it and resets each new connection at once — its
//! port stays taken, so no other local process can listen where the
//! replicas send their Redis password.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::address::Upstream;
use crate::chain::Chain;
use crate::conn::{self, ConnCtx};
use crate::connections::Connections;
use crate::splitmix::mix;

/// Connections served at once per proxy; more wait in the listen backlog.
pub(crate) const MAX_CONNECTIONS: usize = 4096;
/// How long disabling waits for connections to finish closing.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A proxy's listener at work: serving (enabled), or refusing every
/// connection (one of the lab's proxies while disabled).
#[derive(Debug)]
pub(crate) struct Running {
    cancel: CancellationToken,
    tasks: TaskTracker,
    /// The accept loop; it hands the listener back when it stops.
    accept: JoinHandle<Option<TcpListener>>,
    serving: bool,
}

impl Running {
    /// Starts accepting on `listener`, forwarding to `upstream`, on
    /// `runtime`. `parent` is the fault proxy's shutdown.
    pub(crate) fn start(
        listener: TcpListener,
        upstream: Upstream,
        chain: watch::Receiver<Chain>,
        connections: Arc<Connections>,
        parent: &CancellationToken,
        runtime: &Handle,
    ) -> Self {
        let cancel = parent.child_token();
        let tasks = TaskTracker::new();
        // The listener moves to `runtime`'s I/O driver (it may have been
        // bound on another runtime); connections are spawned from the
        // accept loop, so on `runtime` too.
        let listener = listener.into_std();
        let (stop, tracker) = (cancel.clone(), tasks.clone());
        let accept = async move {
            match listener.and_then(TcpListener::from_std) {
                Ok(listener) => {
                    Some(accept_loop(listener, upstream, chain, connections, stop, tracker).await)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot move the proxy listener");
                    None
                }
            }
        };
        let accept = tasks.spawn_on(accept, runtime);
        Running {
            cancel,
            tasks,
            accept,
            serving: true,
        }
    }

    /// Keeps `listener` (its port stays taken) and resets every connection
    /// it accepts at once: a disabled proxy of the lab's own.
    pub(crate) fn refuse(
        listener: TcpListener,
        parent: &CancellationToken,
        runtime: &Handle,
    ) -> Self {
        let cancel = parent.child_token();
        let tasks = TaskTracker::new();
        let listener = listener.into_std();
        let stop = cancel.clone();
        let accept = async move {
            match listener.and_then(TcpListener::from_std) {
                Ok(listener) => Some(refuse_loop(listener, stop).await),
                Err(e) => {
                    tracing::error!(error = %e, "cannot move the proxy listener");
                    None
                }
            }
        };
        let accept = tasks.spawn_on(accept, runtime);
        Running {
            cancel,
            tasks,
            accept,
            serving: false,
        }
    }

    /// Whether it serves connections (the proxy is enabled).
    pub(crate) fn serving(&self) -> bool {
        self.serving
    }

    /// Stops accepting, closes every connection, waits (a little) for them
    /// to be gone, and hands the listener back (still bound).
    pub(crate) async fn stop(self) -> Option<TcpListener> {
        self.cancel.cancel();
        self.tasks.close();
        let listener = match tokio::time::timeout(STOP_GRACE, self.accept).await {
            Ok(Ok(listener)) => listener,
            _ => None,
        };
        if tokio::time::timeout(STOP_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("proxy connections still closing after {STOP_GRACE:?}");
        }
        listener
    }
}

/// Accepts and resets (RST) every connection until cancelled; hands the
/// listener back.
async fn refuse_loop(listener: TcpListener, cancel: CancellationToken) -> TcpListener {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Err(e) = stream.set_zero_linger() {
                        tracing::debug!(error = %e, "could not set SO_LINGER 0");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            },
        }
    }
    listener
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Upstream,
    chain: watch::Receiver<Chain>,
    connections: Arc<Connections>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) -> TcpListener {
    let upstream = Arc::new(upstream);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let seeds = rand::random::<u64>();
    let mut accepted = 0u64;
    let stopped = Arc::new(AtomicBool::new(false));
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (client, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of descriptors and the like: back off, keep going.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        accepted += 1;
        let guard = connections.insert(peer);
        let ctx = ConnCtx {
            upstream: upstream.clone(),
            chain: chain.clone(),
            kill: cancel.child_token(),
            seed: mix(seeds ^ accepted),
            wake: guard.slot(&stopped),
        };
        tasks.spawn(async move {
            conn::serve(client, ctx).await;
            drop(guard);
            drop(permit);
        });
    }
    // The connections on the fast path poll no channel: flag the stop and
    // wake them to see it (their kill switches, children of `cancel`, fired
    // with it).
    stopped.store(true, Ordering::Release);
    connections.wake_all();
    listener
}
