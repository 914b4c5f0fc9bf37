//! `chaoslab experiment`: declarative chaos experiments with verdicts
//! (SPEC section 9). A fault injected by hand shows what happens; an
//! experiment says whether the system behaved as it should, with numbers,
//! and runs in CI.
//!
//! The pieces, in the order a run uses them:
//!
//! - [`format`](mod@format): the TOML file (or a Chaos Toolkit file, [`chaostoolkit`])
//!   validated into a [`model::Experiment`] before anything starts, every
//!   mistake with its line and key; [`builtin`] ships one per seed flow;
//! - [`lab_target`]: the experiment's own lab (`chaoslab up` in its own
//!   directory and process group, free ports) or an attached one;
//! - [`observe`]: what the run sees — background load samples, lab gauges,
//!   events, step marks — and the probes that read them ([`probe`]);
//! - [`actions`]: steps and rollbacks as `chaoslab` command lines;
//! - [`judge`]: expectations watched in their windows;
//! - [`measure`]: detection and recovery times, availability and latency
//!   per span, the counter invariant;
//! - [`runner`]: the phases (steady state, method, rollbacks, steady state)
//!   with rollbacks on every path, producing a [`journal::Journal`];
//! - outputs: [`progress`] (live view), the verdict table, the journal
//!   JSON, [`junit`] and [`html`].

#![forbid(unsafe_code)]

pub mod actions;
pub mod background;
pub mod builtin;
pub mod chaostoolkit;
pub mod format;
pub mod html;
pub mod journal;
pub mod judge;
pub mod junit;
pub mod lab_target;
pub mod measure;
pub mod model;
pub mod observe;
pub mod probe;
pub mod progress;
pub mod run_error;
pub mod runner;
pub mod spelling;

pub use format::{CliCheck, Diagnostic, FormatError};
pub use journal::{Journal, Status};
pub use model::Experiment;
pub use runner::{RunError, RunOptions, run};
