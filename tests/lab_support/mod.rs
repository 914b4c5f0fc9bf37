//! The lab fixture of `chaoslab-test-support` bound to the binary under
//! test (`CARGO_BIN_EXE_chaoslab` exists only in this package's tests):
//! `builder()` starts the real `chaoslab up` in a temp dir on free ports.

#![allow(dead_code, unused_imports)]

pub use chaoslab_test_support::lab::{Lab, LabBuilder};
pub use chaoslab_test_support::process::alive;
pub use chaoslab_test_support::wait::eventually_async as eventually;

/// The `chaoslab` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_chaoslab");

/// A lab with test-sized defaults (free ports, fast probes, no autoscaler).
pub fn builder() -> LabBuilder {
    LabBuilder::new(BIN)
}
