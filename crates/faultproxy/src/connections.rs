//! The table of a proxy's live connections and each connection's handle on
//! its entry ([`WakeSlot`]). The accept loop ([`crate::proxy`]) fills the
//! table; the connection task ([`crate::conn`]) and its fast path
//! ([`crate::passthrough`]) use the slot. It lives below all three so that
//! dependencies point one way (proxy → conn → passthrough → connections).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;

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

    pub(crate) fn insert(self: &Arc<Self>, peer: SocketAddr) -> ConnGuard {
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
pub(crate) struct ConnGuard {
    table: Arc<Connections>,
    id: u64,
}

impl ConnGuard {
    pub(crate) fn slot(&self, stopped: &Arc<AtomicBool>) -> WakeSlot {
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
