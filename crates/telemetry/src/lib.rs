//! Telemetry for chaoslab components: logs, traces and metrics.
//! (Being written: see `process` for what exists already.)

pub mod process;
