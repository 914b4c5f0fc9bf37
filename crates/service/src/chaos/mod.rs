//! The chaos the service does to itself on request: real CPU and memory
//! load (`load`) and hangs of one request or of the whole HTTP service
//! (`hang`). Each controller owns its state and ends its chaos on time by
//! itself; the HTTP handlers only translate requests into calls on them.

pub mod hang;
pub mod load;

pub use hang::{HangController, HangScope};
pub use load::{LoadController, LoadLevel, LoadSpec};

/// Chaos that cannot start because the same kind is already running (409).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AlreadyActive(pub String);

/// Whole seconds left until `deadline`, rounded up.
pub(crate) fn remaining_seconds(deadline: std::time::Instant) -> u64 {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let secs = left.as_secs();
    if left.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}
