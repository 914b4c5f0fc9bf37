//! The names of the toxic types. The error for an unknown type lists them
//! ([`crate::error::Error::InvalidToxicType`]) and [`crate::toxic`] parses
//! them; the list lives here, below both, so the error need not depend on
//! the toxics.

/// Every type name, Toxiproxy's first.
pub(crate) const TOXIC_TYPES: [&str; 10] = [
    "latency",
    "bandwidth",
    "timeout",
    "reset_peer",
    "slow_close",
    "limit_data",
    "slicer",
    "deny_new",
    "blackhole",
    "reset",
];
