//! `X-Request-ID` on every response: the client's own id when it sent one
//! (so a trace can be followed from the ingress to the service), else a new
//! UUID. The id of the request being handled is kept in a task-local so that
//! error bodies built deep inside a handler can carry it.

use http::HeaderValue;

/// The header clients and the ingress use to correlate requests.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request this task is handling, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The incoming id when it is usable in a header (printable, not too long),
/// else a fresh UUID.
pub fn from_incoming(value: Option<&HeaderValue>) -> String {
    value
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_incoming_and_replaces_junk() {
        let given = HeaderValue::from_static("abc-123");
        assert_eq!(from_incoming(Some(&given)), "abc-123");
        let empty = HeaderValue::from_static("  ");
        assert_eq!(from_incoming(Some(&empty)).len(), 36);
        assert_eq!(from_incoming(None).len(), 36);
    }

    #[tokio::test]
    async fn current_is_scoped() {
        assert_eq!(current(), None);
        let inner = scope("x".into(), async { current() }).await;
        assert_eq!(inner.as_deref(), Some("x"));
    }
}
