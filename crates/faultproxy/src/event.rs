//! Changes the lab observes: every toxic added, updated, removed or expired,
//! and every proxy created, updated or removed — whether through the library
//! or the Toxiproxy API — is sent on a bounded `tokio::sync::broadcast`
//! channel ([`FaultProxy::subscribe`](crate::FaultProxy::subscribe)). A
//! receiver that falls more than [`EVENT_CAPACITY`] behind loses the oldest
//! events (`RecvError::Lagged`), never blocks the proxy.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::info::ToxicInfo;

/// Events kept for slow receivers.
pub const EVENT_CAPACITY: usize = 1024;

/// One change, when it happened and on which proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultEvent {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The proxy concerned.
    pub proxy: String,
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
}
