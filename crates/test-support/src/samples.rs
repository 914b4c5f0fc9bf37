//! Summaries of measured samples (latencies, round trips) for tests that
//! compare a fault's effect with a baseline taken in the same run.

/// The median of some samples (the upper one of an even count); panics on
/// none.
pub fn median<T: Ord + Copy>(mut samples: Vec<T>) -> T {
    assert!(!samples.is_empty(), "the median of no samples");
    samples.sort();
    samples[samples.len() / 2]
}
