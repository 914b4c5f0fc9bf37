//! New `X-Request-ID` values: random (version 4) UUIDs, hyphenated and
//! lowercase, drawn from a per-thread generator seeded once from the
//! operating system. An id correlates requests, it guards nothing; asking
//! the kernel for randomness on every request (a `getrandom` system call
//! each), or running a cryptographic generator, was a measurable part of
//! the service's and the ingress's hot paths.

use std::cell::Cell;

/// A fresh request id.
pub fn new_request_id() -> String {
    with_new_request_id(str::to_string)
}

/// Calls `f` with a fresh request id, written on the stack (no allocation
/// unless `f` makes one).
pub fn with_new_request_id<R>(f: impl FnOnce(&str) -> R) -> R {
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
    fn new_ids_are_distinct_version_4_uuids() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = new_request_id();
            let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 4, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id, parsed.hyphenated().to_string(), "lowercase, hyphenated");
            assert!(seen.insert(id), "ids repeat");
        }
        let other = std::thread::spawn(new_request_id).join().unwrap();
        assert!(!seen.contains(&other), "another thread draws other ids");
    }
}
