//! Deterministic numbers from a hash (SplitMix64's finaliser). Toxicity per
//! connection ([`crate::chain`]), the slicer's sizes and the links' draws
//! all derive from seeds this way; it lives below them so the toxics need
//! not depend on the chain.

/// SplitMix64's finaliser: spreads any input over 64 bits.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A hash as a number in 0..1.
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}
