//! The interface between the lab and a component plugged into it at start
//! (the faults, crate `chaoslab-faults`, which depends on this crate; the
//! lab knows nothing of it). [`start_with`](crate::start_with) takes a
//! [`PlugFn`]; once Redis, the fault proxy and the platform exist it calls
//! it with the [`LabParts`] — the platform, the fault proxy (with
//! [`REDIS_PROXY`] in front of Redis) and the lab's Redis as a
//! [`LabRedis`] — and gets back a [`Plugin`]: routes merged into the
//! control API behind its token, and a [`StopStep`] the lab runs when it
//! stops, after the replicas and before the fault proxy and Redis.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chaoslab_faultproxy::FaultProxy;

use crate::lab_redis::LabRedis;
use crate::platform::Platform;

/// The fault proxy's proxy in front of the lab's Redis.
pub const REDIS_PROXY: &str = "redis";

/// What the lab hands, at start, to a component plugged into it (the
/// faults, crate `chaoslab-faults`, which depends on this one).
pub struct LabParts {
    /// Replicas, revisions, the event bus, the shutdown token.
    pub platform: Arc<Platform>,
    /// The fault proxy with [`REDIS_PROXY`] in front of the lab's Redis
    /// (none with an external Redis).
    pub proxy: Option<FaultProxy>,
    /// The lab's redis-server, handed over (none with an external Redis):
    /// the component stops it when the lab stops. With `[redis] auth =
    /// "entra"` it carries the stand-in managed identity.
    pub redis: Option<LabRedis>,
    /// `http://127.0.0.1:PORT` of the ingress.
    pub ingress_url: String,
}

/// A plugged-in component's stop step.
pub type StopStep = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What a plugged-in component gives back.
pub struct Plugin {
    /// Routes for the control API, behind its bearer token.
    pub routes: axum::Router,
    /// Run when the lab stops, after the replicas stopped.
    pub stop: StopStep,
}

/// Builds a [`Plugin`] from the lab's parts.
pub type PlugFn = Box<dyn FnOnce(LabParts) -> Result<Plugin, String> + Send>;
