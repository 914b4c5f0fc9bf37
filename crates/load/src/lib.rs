//! `chaoslab load`: a Locust-style HTTP load generator with an open model.
//!
//! The pieces, each in its own module, follow oha's split of measuring,
//! aggregating and printing, and goose's plans as data:
//!
//! - configuration: [`LoadArgs`] (flags) → [`Config`] (validated), with the
//!   load shape as a [`Plan`] of steps and [`Scenario`]s bundling a plan,
//!   a task mix and a think time;
//! - measuring: users (closed model) or a scheduler (open model), on
//!   generator threads with their own event loops, send requests through
//!   keep-alive sessions of a lean HTTP/1.1 client and emit raw
//!   [`Sample`]s, latency counted from the intended start;
//! - aggregating: one task folds samples into bounded HDR histograms
//!   ([`stats`]) and builds a [`Report`];
//! - printing: the live line and table ([`print`](mod@print)), Locust's CSVs
//!   ([`csv`]), JSON and a self-contained HTML page ([`html`]);
//! - judging: [`Threshold`]s decide the exit status.
//!
//! Tests drive it as the CLI does: `Config` → [`run`] → `Report`.

#![forbid(unsafe_code)]

mod args;
mod arrivals;
pub mod chart;
mod cli;
mod config;
pub mod csv;
mod drive;
mod error;
mod h1;
pub mod hdr;
pub mod html;
mod http;
pub mod merge;
mod parse;
mod plan;
pub mod print;
mod report;
mod runner;
mod sample;
mod scenario;
mod shared;
pub mod stats;
pub mod testkit;
mod threads;
mod threshold;
mod users;

use std::path::Path;

pub use args::{LoadArgs, LoadCommand, MergeArgs};
pub use cli::main;
pub use config::{Config, LiveMode, Model, Reports};
pub use error::LoadError;
pub use http::is_unhealthy;
pub use parse::{WaitRange, duration as parse_duration, format_duration, rate as parse_rate};
pub use plan::{Plan, Step, Unit};
pub use report::{
    EndpointReport, FailureReport, GeneratorReport, HistoryPoint, PERCENTILES, Percentile, Report,
    ThresholdResult, percentile_label,
};
pub use runner::{LiveLine, Phase, run, run_tapped};
pub use sample::{Failure, Sample};
pub use scenario::{Check, Scenario, Task, TaskMix};
pub use threshold::{Metric, Op, Threshold};

/// Judges `thresholds` on the aggregated results, stores the verdicts in
/// the report and says whether all hold.
pub fn judge(report: &mut Report, thresholds: &[Threshold]) -> bool {
    report.thresholds = thresholds
        .iter()
        .map(|t| t.evaluate(&report.aggregated))
        .collect();
    report.thresholds.iter().all(|t| t.passed)
}

/// The JSON summary (`--json`).
pub fn to_json(report: &Report) -> Result<String, LoadError> {
    Ok(serde_json::to_string_pretty(report)?)
}

/// Writes `bytes` to `path`, creating its directory.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let io = |source| LoadError::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::write(path, bytes).map_err(io)
}

/// Writes every report file `reports` asks for; returns their paths.
pub fn write_reports(
    report: &Report,
    reports: &Reports,
) -> Result<Vec<std::path::PathBuf>, LoadError> {
    let mut written = Vec::new();
    if let Some(prefix) = &reports.csv {
        written.extend(csv::write(report, prefix)?);
    }
    if let Some(path) = &reports.json {
        write_file(path, to_json(report)?.as_bytes())?;
        written.push(path.clone());
    }
    if let Some(path) = &reports.html {
        write_file(path, html::render(report).as_bytes())?;
        written.push(path.clone());
    }
    Ok(written)
}
