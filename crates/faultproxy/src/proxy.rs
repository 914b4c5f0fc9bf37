//! One proxy's listener while it has one: the accept loop and the tasks of
//! its connections. The caller binds (mini-redis's `run(listener, …)`): the
//! lab hands in a listener it bound, the HTTP API binds the `listen` address
//! it was given. Disabling a proxy cancels the run, closing every live
//! connection, and hands the listener back: a proxy created through the API
//! then closes it (as Toxiproxy: connections are refused), while one of the
//! lab's own proxies keeps it and resets each new connection at once — its
//! port stays taken, so no other local process can listen where the
//! replicas send their Redis password.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chain::{Chain, mix};
use crate::conn::{self, ConnCtx};

/// Connections served at once per proxy; more wait in the listen backlog.
pub(crate) const MAX_CONNECTIONS: usize = 4096;
/// How long disabling waits for connections to finish closing.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The live connections of a proxy: an entry per connection, removed when
/// it closes. Each entry may hold the waker of its connection's task while
/// the connection runs on the toxic-free fast path ([`crate::passthrough`]):
/// that path polls no channel, so a toxic change or the kill switch reaches
/// it through [`Connections::wake_all`] (called on every chain change and
/// when the proxy stops), and the woken task checks two atomics.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    live: Mutex<HashMap<u64, Live>>,
    next: AtomicU64,
}

/// One live connection.
#[derive(Debug)]
struct Live {
    /// Only kept for the entry's sake (who is connected).
    #[allow(dead_code)]
    peer: SocketAddr,
    /// Its task, while it runs on the fast path.
    waker: Option<Waker>,
}

impl Connections {
    /// How many connections are open (or held at the door).
    pub(crate) fn count(&self) -> usize {
        self.live.lock().map(|m| m.len()).unwrap_or(0)
    }

    fn insert(self: &Arc<Self>, peer: SocketAddr) -> ConnGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut live) = self.live.lock() {
            live.insert(id, Live { peer, waker: None });
        }
        ConnGuard {
            table: self.clone(),
            id,
        }
    }

    /// Wakes every connection task that registered its waker: they then see
    /// a chain change or the kill switch. Rare (a fault added, updated or
    /// removed; the proxy stopping), never on the data path.
    pub(crate) fn wake_all(&self) {
        let wakers: Vec<Waker> = match self.live.lock() {
            Ok(live) => live.values().filter_map(|l| l.waker.clone()).collect(),
            Err(_) => return,
        };
        for waker in wakers {
            waker.wake();
        }
    }
}

/// A connection's handle on its entry: registers the task's waker for
/// [`Connections::wake_all`], and tells whether the accept loop that
/// accepted it has stopped (an atomic load: `CancellationToken::is_cancelled`
/// locks a mutex, too dear per chunk).
#[derive(Debug, Clone)]
pub(crate) struct WakeSlot {
    table: Arc<Connections>,
    id: u64,
    stopped: Arc<AtomicBool>,
}

impl WakeSlot {
    /// Whether the proxy stopped serving (disabled, removed, shut down):
    /// set before the accept loop wakes every registered connection.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stores `waker` as the one to wake (once per task: the caller keeps
    /// the registered waker and calls again only when it changes).
    pub(crate) fn register(&self, waker: &Waker) {
        if let Ok(mut live) = self.table.live.lock()
            && let Some(entry) = live.get_mut(&self.id)
        {
            entry.waker = Some(waker.clone());
        }
    }

    /// Forgets the waker (the connection left the fast path).
    pub(crate) fn unregister(&self) {
        if let Ok(mut live) = self.table.live.lock()
            && let Some(entry) = live.get_mut(&self.id)
        {
            entry.waker = None;
        }
    }
}

/// Removes a connection from its table when the connection task ends.
struct ConnGuard {
    table: Arc<Connections>,
    id: u64,
}

impl ConnGuard {
    fn slot(&self, stopped: &Arc<AtomicBool>) -> WakeSlot {
        WakeSlot {
            table: self.table.clone(),
            id: self.id,
            stopped: stopped.clone(),
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Ok(mut live) = self.table.live.lock() {
            live.remove(&self.id);
        }
    }
}

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
        upstream: String,
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
    upstream: String,
    chain: watch::Receiver<Chain>,
    connections: Arc<Connections>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) -> TcpListener {
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
