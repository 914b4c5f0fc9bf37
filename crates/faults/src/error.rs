//! Why a fault could not be injected or cleared. Each error carries the HTTP
//! status the control API answers with (as Toxiproxy's API errors do), and
//! turns into the spec's error body `{"error","detail","timestamp",
//! "request_id"}` (`chaoslab_foundation::error_body`) so the CLI prints the
//! detail as its one-line error.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A fault operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The request is wrong (unknown mode, negative duration, unknown
    /// replica…); nothing was changed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The lab cannot do this now (e.g. another deployment runs, the Redis
    /// is external, too many active faults) (409).
    #[error("{0}")]
    Conflict(String),
    /// The lab's own machinery failed while acting (500).
    #[error("{0}")]
    Failed(String),
    /// The lab is stopping (503).
    #[error("the lab is stopping")]
    ShuttingDown,
}

/// The lab's Redis could not be stopped, started or changed (500).
impl From<chaoslab_lab::RedisControlError> for FaultError {
    fn from(e: chaoslab_lab::RedisControlError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl FaultError {
    /// Shorthand for a 400.
    pub fn bad(detail: impl Into<String>) -> Self {
        Self::BadRequest(detail.into())
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<chaoslab_faultproxy::Error> for FaultError {
    fn from(e: chaoslab_faultproxy::Error) -> Self {
        match e.status() {
            400 => Self::BadRequest(e.to_string()),
            409 => Self::Conflict(e.to_string()),
            503 => Self::ShuttingDown,
            _ => Self::Failed(format!("fault proxy: {e}")),
        }
    }
}

impl IntoResponse for FaultError {
    fn into_response(self) -> Response {
        // The control API tracks no request ids: each error gets a fresh one.
        chaoslab_foundation::error_response(self.status(), Some(&self.to_string()), None)
            .into_response()
    }
}
