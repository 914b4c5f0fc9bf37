//! `X-Request-ID` on every response: the client's own id when it sent one
//! (so a trace can be followed from the ingress to the service), else a new
//! UUID. The id of the request being handled is kept in a task-local so that
//! error bodies built deep inside a handler can carry it.
//!
//! New ids are random (version 4) UUIDs drawn from a per-thread generator
//! seeded once from the operating system: an id correlates requests, it
//! guards nothing, and asking the kernel for randomness on every request
//! (a `getrandom` system call each) was a measurable part of the hot path.

use std::cell::Cell;
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
        None => with_new_id(|id: &str| Arc::from(id)),
    }
}

/// A fresh random UUID (version 4), hyphenated, lowercase.
pub fn new_id() -> String {
    with_new_id(|id: &str| id.to_string())
}

/// Calls `f` with a fresh id, written on the stack.
fn with_new_id<R>(f: impl FnOnce(&str) -> R) -> R {
    let bytes = next_random().to_le_bytes();
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    f(uuid.hyphenated().encode_lower(&mut text))
}

thread_local! {
    /// The state of this thread's generator; 0 until first used.
    static STATE: Cell<u128> = const { Cell::new(0) };
}

/// 128 random bits: two rounds of SplitMix64 over a per-thread counter
/// seeded from the OS (a new thread asks once).
fn next_random() -> u128 {
    STATE.with(|state| {
        let mut s = state.get();
        if s == 0 {
            s = uuid::Uuid::new_v4().as_u128() | 1;
        }
        let hi = splitmix64(&mut s);
        let lo = splitmix64(&mut s);
        state.set(s);
        (u128::from(hi) << 64) | u128::from(lo)
    })
}

fn splitmix64(state: &mut u128) -> u64 {
    // The low 64 bits step by the golden-ratio increment; the high 64 bits
    // keep the seed's other half mixed in.
    let low = (*state as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    let high = (*state >> 64) as u64;
    *state = (u128::from(high) << 64) | u128::from(low);
    let mut z = low ^ high;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
    fn new_ids_are_distinct_version_4_uuids() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = new_id();
            let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id, parsed.hyphenated().to_string(), "lowercase, hyphenated");
            assert!(seen.insert(id), "ids repeat");
        }
        let other = std::thread::spawn(new_id).join().unwrap();
        assert!(!seen.contains(&other), "another thread draws other ids");
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
