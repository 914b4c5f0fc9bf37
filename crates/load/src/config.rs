//! A validated load test: what to run, against what, for how long, and
//! where to report. Built from the command line (`LoadArgs::into_config`)
//! or directly by tests and other crates.

use std::path::PathBuf;
use std::time::Duration;

use crate::parse::WaitRange;
use crate::plan::Plan;
use crate::scenario::{Scenario, TaskMix};
use crate::threshold::Threshold;

/// How load is generated.
#[derive(Debug, Clone)]
pub enum Model {
    /// Users (plan in users) each looping task → response → think time.
    Closed(Plan),
    /// Arrivals on a schedule (plan in requests per second).
    Open(Plan),
    /// Connections (plan in users) sending back to back with no think time.
    Max(Plan),
}

impl Model {
    /// The load plan.
    pub fn plan(&self) -> &Plan {
        match self {
            Self::Closed(p) | Self::Open(p) | Self::Max(p) => p,
        }
    }

    /// `closed`, `open` or `max`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Closed(_) => "closed",
            Self::Open(_) => "open",
            Self::Max(_) => "max",
        }
    }
}

/// Where the live line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveMode {
    /// A line rewritten in place on a terminal, plain lines otherwise.
    Auto,
    /// No live output.
    Off,
}

/// Report files to write at the end.
#[derive(Debug, Clone, Default)]
pub struct Reports {
    /// Prefix of Locust's CSV files.
    pub csv: Option<PathBuf>,
    /// JSON summary file.
    pub json: Option<PathBuf>,
    /// HTML report file.
    pub html: Option<PathBuf>,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port`.
    pub host: String,
    /// Named scenario, if any (for reports).
    pub scenario: Option<Scenario>,
    /// Load model and plan.
    pub model: Model,
    /// Tasks and weights.
    pub mix: TaskMix,
    /// Think time (closed model).
    pub wait: WaitRange,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Grace for requests in flight at the end.
    pub stop_timeout: Duration,
    /// Open model: most requests in flight.
    pub max_in_flight: usize,
    /// Generator threads for users (closed and max models), as wrk's `-t`.
    pub threads: usize,
    /// Interval of the live line.
    pub live_interval: Duration,
    /// Interval of history points (Locust: 1 s).
    pub history_interval: Duration,
    /// Live output mode.
    pub live: LiveMode,
    /// Report files.
    pub reports: Reports,
    /// Pass/fail criteria.
    pub thresholds: Vec<Threshold>,
}

impl Config {
    /// A config for `host` with `model` and defaults for the rest: the
    /// seed's task mix, no think time, 10 s timeout, no reports.
    pub fn new(host: impl Into<String>, model: Model) -> Self {
        Self {
            host: host.into(),
            scenario: None,
            model,
            mix: TaskMix::seed(),
            wait: WaitRange::ZERO,
            timeout: Duration::from_secs(10),
            stop_timeout: Duration::from_secs(5),
            max_in_flight: 1000,
            threads: default_threads(),
            live_interval: Duration::from_secs(2),
            history_interval: Duration::from_secs(1),
            live: LiveMode::Off,
            reports: Reports::default(),
            thresholds: Vec::new(),
        }
    }
}

/// Half the CPUs (at least one): in the lab the target runs on the same
/// machine, and a generator that takes every core slows the very thing it
/// measures.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}
