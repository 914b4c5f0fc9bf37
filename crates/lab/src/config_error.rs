//! The lab's configuration error ([`ConfigError`]), on its own so that
//! [`crate::config`], its sections ([`crate::config_sections`]) and
//! [`crate::isolation`] can all report it while dependencies point one way
//! (config -> config_sections -> isolation -> config_error). Re-exported as
//! `config::ConfigError`.

use std::path::PathBuf;

/// A configuration problem, reported before the lab starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for the lab.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}
