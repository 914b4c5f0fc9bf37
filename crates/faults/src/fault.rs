//! What a fault is: a small type behind one trait ([`Fault`]), dispatched
//! by a closed serde enum ([`FaultSpec`], tagged by `kind`) — Toxiproxy's
//! habit. Each kind checks its input against the lab before anything changes
//! (`check`), does its harm (`inject`) and undoes it (`clear`); what is
//! common to every fault (id, start, duration, expiry, events) lives in the
//! registry, not in the kinds.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::LabHandle;
use crate::error::FaultError;
pub use crate::fault_kind::{Fault, Injected, check_seconds, needs_own_redis, seconds};
use crate::kinds::{auth::AuthAction, auth::AuthFault, deploy::DeployFault, kill::KillFault};
use crate::kinds::{network::NetworkFault, redis::RedisFault};

/// A fault as requested (`POST /api/faults`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FaultSpec {
    /// The NSG rule: a toxic on the proxy between replicas and Redis.
    Network(NetworkFault),
    /// A failing revision.
    Deploy(DeployFault),
    /// A replica's process killed.
    Kill(KillFault),
    /// The Redis server stopped or restarted.
    Redis(RedisFault),
    /// The service's Redis credential revoked.
    Auth(AuthFault),
}

macro_rules! dispatch {
    ($self:ident, $f:ident => $body:expr) => {
        match $self {
            FaultSpec::Network($f) => $body,
            FaultSpec::Deploy($f) => $body,
            FaultSpec::Kill($f) => $body,
            FaultSpec::Redis($f) => $body,
            FaultSpec::Auth($f) => $body,
        }
    };
}

impl FaultSpec {
    /// The kind's name.
    pub fn kind(&self) -> &'static str {
        dispatch!(self, f => f.kind())
    }

    /// See [`Fault::check`].
    pub fn check(&self, lab: &LabHandle) -> Result<(), FaultError> {
        dispatch!(self, f => f.check(lab))
    }

    /// See [`Fault::duration`].
    pub fn duration(&self) -> Option<Duration> {
        dispatch!(self, f => f.duration())
    }

    /// See [`Fault::inject`].
    pub async fn inject(&self, lab: &Arc<LabHandle>, id: &str) -> Result<Injected, FaultError> {
        dispatch!(self, f => f.inject(lab, id).await)
    }

    /// See [`Fault::clear`].
    pub async fn clear(
        &self,
        lab: &Arc<LabHandle>,
        id: &str,
        injected: &Injected,
        restore: bool,
    ) -> Result<(), FaultError> {
        dispatch!(self, f => f.clear(lab, id, injected, restore).await)
    }

    /// `{"kind":"auth","action":"restore"}` is not a fault of its own: it
    /// clears the active revocations.
    pub fn is_auth_restore(&self) -> bool {
        matches!(self, FaultSpec::Auth(a) if a.action == AuthAction::Restore)
    }
}
