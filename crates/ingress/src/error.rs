//! Responses the ingress makes itself (503, 502, 504, and the guard's 403
//! and 415): the spec's error body
//! `{"error","detail","timestamp","request_id"}` (built by
//! `chaoslab_foundation::error_body`, as every chaoslab server's is) plus
//! the [`PROXY_ERROR_HEADER`](crate::PROXY_ERROR_HEADER) naming the cause
//! and the request's `X-Request-ID`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

use crate::PROXY_ERROR_HEADER;

/// The body type every ingress response uses (upstream or self-made).
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// The error of a response body: the upstream's, as the ingress forwards it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds an error response made by the proxy: `kind` goes into the
/// `x-chaoslab-error` header (e.g. `no-healthy-upstream`), `detail` into the
/// body.
pub fn proxy_error_response(
    status: StatusCode,
    kind: &'static str,
    detail: &str,
    request_id: &str,
) -> Response<ProxyBody> {
    proxy_error(status, kind, detail, request_id)
        .map(|json| Full::new(json).map_err(|never| match never {}).boxed())
}

/// [`proxy_error_response`] with its body as bytes, for the plain path,
/// which encodes responses itself.
pub(crate) fn proxy_error(
    status: StatusCode,
    kind: &'static str,
    detail: &str,
    request_id: &str,
) -> Response<Bytes> {
    let mut response = chaoslab_foundation::error_response(status, Some(detail), Some(request_id))
        .map(Bytes::from);
    let headers = response.headers_mut();
    headers.insert(PROXY_ERROR_HEADER, HeaderValue::from_static(kind));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", value);
    }
    response
}

/// Why forwarding a request failed: each a response the ingress makes
/// itself, the same on the plain path and on hyper's.
#[derive(Debug)]
pub(crate) enum ForwardFailure<'a> {
    /// The ready set is empty.
    NoUpstream,
    /// No upstream tried took the connection; the last one tried.
    Refused(&'a str),
    /// The upstream failed while or after the request was sent.
    Failed(&'a str, &'a crate::upstream_http1::UpstreamError),
    /// The upstream gave no response head within the request timeout.
    TimedOut(&'a str, std::time::Duration),
}

impl ForwardFailure<'_> {
    /// The response, body as bytes.
    pub(crate) fn response(&self, request_id: &str) -> Response<Bytes> {
        let (status, kind, detail) = match self {
            ForwardFailure::NoUpstream => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no-healthy-upstream",
                "no healthy upstream".to_string(),
            ),
            ForwardFailure::Refused(id) => (
                StatusCode::BAD_GATEWAY,
                "upstream-connect-error",
                format!("upstream {id} refused the connection"),
            ),
            ForwardFailure::Failed(id, error) => (
                StatusCode::BAD_GATEWAY,
                "upstream-error",
                format!("upstream {id} failed: {error}"),
            ),
            ForwardFailure::TimedOut(id, timeout) => (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                format!(
                    "upstream {id} did not answer within {}s",
                    timeout.as_secs_f64()
                ),
            ),
        };
        proxy_error(status, kind, &detail, request_id)
    }

    /// The response, for hyper.
    pub(crate) fn proxy_response(&self, request_id: &str) -> Response<ProxyBody> {
        self.response(request_id)
            .map(|json| Full::new(json).map_err(|never| match never {}).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_body_has_the_spec_fields() {
        let response = proxy_error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-healthy-upstream",
            "no healthy upstream",
            "abc",
        );
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers()[PROXY_ERROR_HEADER],
            "no-healthy-upstream"
        );
        assert_eq!(response.headers()["x-request-id"], "abc");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"], "Service Unavailable");
        assert_eq!(body["detail"], "no healthy upstream");
        assert_eq!(body["request_id"], "abc");
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
