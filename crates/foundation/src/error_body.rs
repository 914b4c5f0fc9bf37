//! The body of every error chaoslab's HTTP servers answer (SPEC §3):
//! `{"error": "<reason phrase>", "detail": "…", "timestamp": "…Z",
//! "request_id": "…"}`. Clients of the seed's service parse it, the CLI
//! prints its `detail` as its one-line error, and the ingress, the service,
//! the lab's control API and the faults all answer with it — so it is
//! built here only, as a plain `http::Response` that axum and hyper
//! servers both return unchanged.
//!
//! Which details are shown (a 500's is hidden outside debug mode) and where
//! the request id comes from stay with the caller: those are policies of a
//! component, not the shape.

use http::{HeaderValue, Response, StatusCode, header};
use serde::Serialize;

use crate::time::now_rfc3339;

/// One error body, ready to serialise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// The HTTP reason phrase of the status ("Bad Request").
    pub error: &'static str,
    /// What went wrong and what to do; absent when the caller hides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the error was made, RFC 3339 UTC with milliseconds.
    pub timestamp: String,
    /// The request's id (its `X-Request-ID`), so a client can quote it.
    pub request_id: String,
}

impl ErrorBody {
    /// The body for `status`, stamped now. `request_id: None` gives a fresh
    /// UUID (for servers that do not track request ids).
    pub fn new(status: StatusCode, detail: Option<&str>, request_id: Option<&str>) -> Self {
        ErrorBody {
            error: status.canonical_reason().unwrap_or("Error"),
            detail: detail.map(str::to_owned),
            timestamp: now_rfc3339(),
            request_id: match request_id {
                Some(id) => id.to_owned(),
                None => uuid::Uuid::new_v4().to_string(),
            },
        }
    }

    /// The body as JSON text.
    pub fn to_json(&self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A response with `status`, this body and `Content-Type:
    /// application/json`.
    pub fn into_response(self, status: StatusCode) -> Response<String> {
        let mut response = Response::new(self.to_json());
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// The error response for `status` with `detail` (see [`ErrorBody::new`]
/// for `request_id`).
pub fn error_response(
    status: StatusCode,
    detail: Option<&str>,
    request_id: Option<&str>,
) -> Response<String> {
    ErrorBody::new(status, detail, request_id).into_response(status)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn body(response: &Response<String>) -> Value {
        serde_json::from_str(response.body()).expect("JSON body")
    }

    #[test]
    fn has_the_spec_fields_and_status() {
        let response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("Redis connection failed"),
            Some("abc"),
        );
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let v = body(&response);
        assert_eq!(v["error"], "Service Unavailable");
        assert_eq!(v["detail"], "Redis connection failed");
        assert_eq!(v["request_id"], "abc");
        let stamp = v["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        assert!(stamp.ends_with('Z'), "{stamp}");
        assert_eq!(v.as_object().unwrap().len(), 4, "{v}");
    }

    #[test]
    fn a_hidden_detail_is_absent_not_null() {
        let v = body(&error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            Some("r"),
        ));
        assert_eq!(v["error"], "Internal Server Error");
        assert!(v.get("detail").is_none(), "{v}");
    }

    #[test]
    fn without_a_request_id_a_fresh_uuid() {
        let a = body(&error_response(StatusCode::NOT_FOUND, Some("x"), None));
        let b = body(&error_response(StatusCode::NOT_FOUND, Some("x"), None));
        let a = a["request_id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(a).is_ok(), "{a}");
        assert_ne!(a, b["request_id"].as_str().unwrap());
    }

    #[test]
    fn a_status_without_a_reason_phrase_says_error() {
        let status = StatusCode::from_u16(599).unwrap();
        let v = body(&error_response(status, Some("odd"), Some("r")));
        assert_eq!(v["error"], "Error");
    }

    #[test]
    fn details_are_escaped() {
        let detail = "quote \" backslash \\ newline \n";
        let v = body(&error_response(
            StatusCode::BAD_REQUEST,
            Some(detail),
            Some("r"),
        ));
        assert_eq!(v["detail"], detail);
    }
}
