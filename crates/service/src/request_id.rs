//! `X-Request-ID` on every response: the client's own id when it sent one
//! (so a trace can be followed from the ingress to the service), else a new
//! UUID. The id of the request being handled is kept in a task-local so that
//! error bodies built deep inside a handler can carry it.
//!
//! New ids are random (version 4) UUIDs from
//! `chaoslab_foundation::request_id` (a per-thread generator, no system
//! call per request), as the ingress's are.

use std::sync::Arc;

use http::HeaderValue;
use tokio::task::futures::TaskLocalFuture;

/// The header clients and the ingress use to correlate requests.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    /// Shared rather than owned: the middleware sets it both around the
    /// call into the router (synchronous) and around the answer's future.
    static REQUEST_ID: Arc<str>;
}

/// The id of the request this task is handling, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(|id| id.to_string()).ok()
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(Arc::from(id), fut).await
}

/// `fut` with `id` as the current request id while it is polled.
pub(crate) fn scoped<F: std::future::Future>(id: Arc<str>, fut: F) -> TaskLocalFuture<Arc<str>, F> {
    REQUEST_ID.scope(id, fut)
}

/// Runs `f` with `id` as the current request id.
pub(crate) fn sync_scope<R>(id: Arc<str>, f: impl FnOnce() -> R) -> R {
    REQUEST_ID.sync_scope(id, f)
}

/// The incoming id when it is usable in a header (printable, not too long),
/// else a fresh UUID.
pub fn from_incoming(value: Option<&HeaderValue>) -> String {
    value
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map(str::to_string)
        .unwrap_or_else(new_id)
}

/// [`from_incoming`], shared: one allocation.
pub(crate) fn shared_from_incoming(value: Option<&HeaderValue>) -> Arc<str> {
    let incoming = value
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 200);
    match incoming {
        Some(id) => Arc::from(id),
        None => chaoslab_foundation::with_new_request_id(|id: &str| Arc::from(id)),
    }
}

/// A fresh random UUID (version 4), hyphenated, lowercase.
pub fn new_id() -> String {
    chaoslab_foundation::new_request_id()
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

    #[test]
    fn shared_ids_are_the_same_as_owned_ones() {
        let given = HeaderValue::from_static(" abc-123 ");
        assert_eq!(&*shared_from_incoming(Some(&given)), "abc-123");
        let long = HeaderValue::from_str(&"x".repeat(201)).unwrap();
        let fresh = shared_from_incoming(Some(&long));
        assert_eq!(uuid::Uuid::parse_str(&fresh).unwrap().get_version_num(), 4);
        assert_eq!(sync_scope(fresh.clone(), current).as_deref(), Some(&*fresh));
    }

    #[tokio::test]
    async fn current_is_scoped() {
        assert_eq!(current(), None);
        let inner = scope("x".into(), async { current() }).await;
        assert_eq!(inner.as_deref(), Some("x"));
    }
}
