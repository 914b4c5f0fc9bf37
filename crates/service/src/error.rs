//! Every error the service answers, in one shape. Clients of the seed's
//! service rely on `{"error", "detail", "timestamp", "request_id"}` with the
//! HTTP reason phrase as `error`; FastAPI's bare 422 is never produced: bad
//! input is a 400 saying what to fix.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

use crate::request_id;

/// An error answer: a status and, except for 500s outside debug mode, a
/// detail telling the client what went wrong and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    timestamp: String,
    request_id: String,
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

/// The current time as the service writes it: RFC 3339, UTC, `Z`.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let show_detail = self.status != StatusCode::INTERNAL_SERVER_ERROR
            || DEBUG_ERRORS.load(std::sync::atomic::Ordering::Relaxed);
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), detail = %self.detail, "request failed");
        }
        let body = ErrorBody {
            error: self.status.canonical_reason().unwrap_or("Error"),
            detail: show_detail.then_some(self.detail.as_str()),
            timestamp: now_rfc3339(),
            request_id: request_id::current().unwrap_or_default(),
        };
        (self.status, Json(body)).into_response()
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
