//! The one error type of the load generator. Configuration mistakes are
//! caught before any request is sent and name the flag to fix; report
//! writing errors name the file. The binary turns them into one line and
//! exit status 2 for configuration mistakes, 1 otherwise (thresholds that
//! fail are not errors: see `threshold`).

use std::path::PathBuf;

/// Everything that can stop `chaoslab load` from running or reporting.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A flag or value that cannot be understood (`--plan`, `--wait`, …).
    #[error("{flag}: {detail}")]
    Config {
        /// The flag (or scenario field) at fault, e.g. `--plan`.
        flag: &'static str,
        /// What is wrong and what is expected instead.
        detail: String,
    },
    /// A report file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The generator threads could not be started.
    #[error("cannot start the load generator threads: {0}")]
    Threads(std::io::Error),
    /// A latency histogram could not be created (should not happen).
    #[error("cannot create a latency histogram: {0}")]
    Histogram(String),
    /// A report handed to `chaoslab load merge` cannot be used: which one
    /// and why.
    #[error("{name}: {detail}")]
    Input {
        /// The file (or name) of the report.
        name: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The JSON summary could not be serialised (should not happen).
    #[error("cannot encode the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

impl LoadError {
    /// A configuration error about `flag`.
    pub fn config(flag: &'static str, detail: impl Into<String>) -> Self {
        Self::Config {
            flag,
            detail: detail.into(),
        }
    }
}
