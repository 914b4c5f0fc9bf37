//! The chaos the service does to itself on request: real CPU and memory
//! load (`load`) and hangs of one request or of the whole HTTP service
//! (`hang`). Each controller owns its state and ends its chaos on time by
//! itself; the HTTP handlers only translate requests into calls on them.

pub mod hang;
pub mod load;

pub use hang::{HangController, HangScope};
pub use load::{LoadController, LoadLevel, LoadSpec};

/// Why chaos did not start.
#[derive(Debug, thiserror::Error)]
pub enum NotStarted {
    /// The same kind is already running (409).
    #[error("{0}")]
    AlreadyActive(String),
    /// The service is shutting down (503): what starts now would only
    /// hold the drain up to its deadline.
    #[error("the service is shutting down: no new chaos starts")]
    ShuttingDown,
}

impl NotStarted {
    /// The answer's status.
    pub fn status(&self) -> http::StatusCode {
        match self {
            NotStarted::AlreadyActive(_) => http::StatusCode::CONFLICT,
            NotStarted::ShuttingDown => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

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
