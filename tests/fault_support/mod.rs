//! The fault tests' view of `chaoslab-test-support`: a lab sized for
//! faults (small Redis timeouts in the replicas, the Toxiproxy API on a
//! free port) and the requests they make to it, re-exported under the
//! names the fault tests use.

#![allow(dead_code, unused_imports)]

pub use chaoslab_test_support::lab::{
    Answer, fault_events, fault_id, faults, get, median_ms, min_ms, ok, replica_url, restarts,
    until_a_fast_answer,
};

use crate::lab_support::{LabBuilder, builder};

/// A lab for fault tests: small Redis timeouts and back-off in the replicas.
pub fn fault_lab() -> LabBuilder {
    builder().fault_sized()
}
