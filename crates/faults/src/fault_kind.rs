//! The contract every fault kind implements ([`Fault`]) and what the kinds
//! share (the [`Injected`] record, duration checks). It sits below both
//! [`crate::fault`] (which dispatches over the kinds) and [`crate::kinds`]
//! so that dependencies point one way: kinds -> fault_kind <- fault.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::LabHandle;
use crate::error::FaultError;

/// What an injected fault is and how to undo it.
#[derive(Debug, Clone, Default)]
pub struct Injected {
    /// What it acts on: `redis`, a replica id, a revision name.
    pub target: String,
    /// Kind-specific fields shown in `fault list` and events (mode, latency…).
    pub details: serde_json::Map<String, serde_json::Value>,
    /// A one-shot fault (kill, deploy, restart): done once injected; listed
    /// and announced, then ended at once.
    pub one_shot: bool,
    /// State `clear` needs (e.g. a rotated password).
    pub undo: Option<String>,
}

/// One kind of fault.
pub trait Fault {
    /// The kind's name (`network`, `deploy`…), as in the request.
    fn kind(&self) -> &'static str;

    /// Validates the request against the lab; changes nothing.
    fn check(&self, lab: &LabHandle) -> Result<(), FaultError>;

    /// How long it lasts; `None` = until cleared.
    fn duration(&self) -> Option<Duration>;

    /// Does the harm.
    fn inject(
        &self,
        lab: &Arc<LabHandle>,
        id: &str,
    ) -> impl Future<Output = Result<Injected, FaultError>> + Send;

    /// Undoes it. `restore` is false when the lab is stopping (only what
    /// must not outlive the lab is undone). One-shot faults (a kill, a
    /// deployment) leave nothing to undo: the default does nothing.
    fn clear(
        &self,
        _lab: &Arc<LabHandle>,
        _id: &str,
        _injected: &Injected,
        _restore: bool,
    ) -> impl Future<Output = Result<(), FaultError>> + Send {
        async { Ok(()) }
    }
}

/// Refuses a fault that acts on the lab's own redis-server when the lab
/// uses an external Redis (`--redis-url`).
pub fn needs_own_redis(lab: &LabHandle, what: &str) -> Result<(), FaultError> {
    if lab.redis.is_none() {
        return Err(FaultError::Conflict(format!(
            "{what} act on the lab's own redis-server (this lab uses an external Redis)"
        )));
    }
    Ok(())
}

/// A duration in seconds from a request: negative is refused, 0 = none.
pub fn seconds(value: Option<i64>, default: u64) -> Result<Option<Duration>, FaultError> {
    match value {
        Some(s) if s < 0 => Err(FaultError::bad(format!(
            "duration_seconds must be 0 (until cleared) or more, not {s}"
        ))),
        Some(0) => Ok(None),
        Some(s) => Ok(Some(Duration::from_secs(s as u64))),
        None if default == 0 => Ok(None),
        None => Ok(Some(Duration::from_secs(default))),
    }
}

/// Checks a duration field (for `check`).
pub fn check_seconds(value: Option<i64>) -> Result<(), FaultError> {
    match value {
        Some(s) if s > 86_400 * 7 => Err(FaultError::bad(format!(
            "duration_seconds must be at most 604800 (a week), not {s}"
        ))),
        v => seconds(v, 0).map(|_| ()),
    }
}
