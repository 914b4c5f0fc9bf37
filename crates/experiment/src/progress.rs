//! The live view of a run is drawn by the command line's one output crate
//! (`chaoslab-output`): lasting lines for what happened and, on a terminal,
//! one status line redrawn in place. Re-exported here because the runner
//! reports through it and callers build it beside [`crate::run`].

pub use chaoslab_output::progress::Progress;
