//! Changes the lab observes: every toxic added, updated, removed or expired,
//! and every proxy created, updated or removed — whether through the library
//! or the Toxiproxy API — is sent on a bounded `tokio::sync::broadcast`
//! channel ([`FaultProxy::subscribe`](crate::FaultProxy::subscribe)). A
//! receiver that falls more than [`EVENT_CAPACITY`] behind loses the oldest
//! events (`RecvError::Lagged`), never blocks the proxy.
//!
//! A change made through the Toxiproxy API names its caller
//! ([`FaultEvent::caller`], the client's address): the API runs each request
//! inside [`as_caller`], a task-local scope, and every event emitted while
//! the request is served carries it — whatever the change leads to (a reset
//! clearing toxics and enabling proxies included). The API's refusals are
//! events too ([`Change::Refused`]), so a caller trying what it may not is
//! seen.

use std::future::Future;
use std::net::SocketAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::info::ToxicInfo;

tokio::task_local! {
    static CALLER: SocketAddr;
}

/// Runs `work` as done by the API client at `caller`: the events it emits
/// name that address. `None` runs it as is (a library call).
pub(crate) async fn as_caller<F: Future>(caller: Option<SocketAddr>, work: F) -> F::Output {
    match caller {
        Some(addr) => CALLER.scope(addr, work).await,
        None => work.await,
    }
}

/// The API client whose request is being served, if any.
pub(crate) fn caller() -> Option<SocketAddr> {
    CALLER.try_with(|addr| *addr).ok()
}

/// Events kept for slow receivers.
pub const EVENT_CAPACITY: usize = 1024;

/// One change, when it happened and on which proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The proxy concerned (`*` for a reset of every proxy).
    pub proxy: String,
    /// The Toxiproxy API client that made the change (its address); `None`
    /// for the library's own calls (the lab) and for expiries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<SocketAddr>,
    /// What happened.
    #[serde(flatten)]
    pub change: Change,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Change {
    /// A toxic was added.
    Added {
        /// The toxic.
        toxic: ToxicInfo,
    },
    /// A toxic's attributes or toxicity changed.
    Updated {
        /// The toxic as it is now.
        toxic: ToxicInfo,
    },
    /// A toxic was cleared (removed, reset, or its proxy removed).
    Removed {
        /// The toxic as it was.
        toxic: ToxicInfo,
    },
    /// A toxic reached its duration and removed itself.
    Expired {
        /// The toxic as it was.
        toxic: ToxicInfo,
    },
    /// A proxy was created.
    ProxyCreated {
        /// Whether it listens (a proxy may be created disabled).
        enabled: bool,
        /// Where it listens.
        listen: String,
        /// Where it forwards.
        upstream: String,
    },
    /// A proxy was enabled, disabled or moved.
    ProxyUpdated {
        /// Whether it listens now.
        enabled: bool,
        /// Where it listens.
        listen: String,
        /// Where it forwards.
        upstream: String,
    },
    /// A proxy was removed.
    ProxyRemoved,
    /// Every toxic was cleared and every proxy enabled (Toxiproxy's
    /// `POST /reset`); the removals and enablings are their own events.
    Reset,
    /// The API refused a request that would change what only the lab may
    /// change, e.g. the upstream of one of its proxies, or a proxy
    /// forwarding off the machine (403). Nothing changed.
    Refused {
        /// The request, e.g. `POST /proxies/redis`.
        request: String,
        /// Why, as the API answered it.
        reason: String,
    },
}
