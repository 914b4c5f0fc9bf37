//! Why a run could not go on. The runner returns it and the parts it drives
//! (the lab target, the background load) produce it; it lives here, below
//! all of them, so those parts need not depend on the runner.

/// Why a run could not go on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error("lab: {0}")]
    Lab(String),
    #[error("background load: {0}")]
    Load(String),
}
