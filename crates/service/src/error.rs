//! Every error the service answers, in one shape. Clients of the seed's
//! service rely on `{"error", "detail", "timestamp", "request_id"}` with the
//! HTTP reason phrase as `error` (the body is built by
//! `chaoslab_foundation::error_body`, as every chaoslab server's is); this
//! module holds the service's policies: a 500's detail shown only with
//! LOG_LEVEL=DEBUG, the request's own id, and FastAPI's bare 422 never
//! produced: bad input is a 400 saying what to fix.

use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::response::{IntoResponse, Response};
use chaoslab_foundation::ErrorBody;
use http::StatusCode;

use crate::request_id;

/// The service's timestamps (`GET /`, `/health`, errors): RFC 3339, UTC,
/// `Z`, milliseconds.
pub use chaoslab_foundation::time::now_rfc3339;

/// An error answer: a status and, except for 500s outside debug mode, a
/// detail telling the client what went wrong and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
    }
}

/// Whether 500 answers carry their detail (LOG_LEVEL=DEBUG).
static DEBUG_ERRORS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets whether 500 answers include their detail.
pub fn set_debug_errors(on: bool) {
    DEBUG_ERRORS.store(on, std::sync::atomic::Ordering::Relaxed);
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let show_detail = self.status != StatusCode::INTERNAL_SERVER_ERROR
            || DEBUG_ERRORS.load(std::sync::atomic::Ordering::Relaxed);
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), detail = %self.detail, "request failed");
        }
        let id = request_id::current().unwrap_or_default();
        ErrorBody::new(
            self.status,
            show_detail.then_some(self.detail.as_str()),
            Some(&id),
        )
        .into_response(self.status)
        .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as JSON with `Content-Type: application/json`",
            ),
            JsonRejection::JsonDataError(e) => ApiError::bad_request(format!(
                "invalid request body: {}",
                e.body_text().trim_start_matches(
                    "Failed to deserialize the JSON body into the target type: "
                )
            )),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(format!(
                "malformed JSON: {}",
                e.body_text()
                    .trim_start_matches("Failed to parse the request body as JSON: ")
            )),
            JsonRejection::BytesRejection(e) => from_bytes_rejection(&e),
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

fn from_bytes_rejection(e: &BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body larger than {} KiB",
                crate::MAX_BODY_BYTES / 1024
            ),
        )
    } else {
        ApiError::bad_request(format!(
            "could not read the request body: {}",
            e.body_text()
        ))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        from_bytes_rejection(&e)
    }
}
