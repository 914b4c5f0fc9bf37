//! The raw measurement a user (or an open-model arrival) emits for each
//! request, and the failure rules that classify it. Measuring emits these;
//! `stats` folds them; nothing else looks at a single request.

use std::time::{Duration, Instant};

/// Why a request counts as a failure. Status 0 (no response) is
/// `Connect`, `Timeout` or `Io`; the rest had an HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The TCP connection could not be opened (refused, unreachable…).
    Connect(String),
    /// No complete response within `--timeout`.
    Timeout(Duration),
    /// The connection broke mid-request (reset, closed early, bad HTTP).
    Io(String),
    /// A non-2xx status that the task does not accept.
    Status(u16),
    /// A health endpoint answered `"status": "unhealthy"`.
    Unhealthy,
}

impl Failure {
    /// Short machine name of the kind (JSON `kind`, failures table).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Timeout(_) => "timeout",
            Self::Io(_) => "io",
            Self::Status(_) => "http",
            Self::Unhealthy => "unhealthy",
        }
    }

    /// The text of the "Error" column in the failures report.
    pub fn message(&self) -> String {
        match self {
            Self::Connect(e) => format!("ConnectionError: {e}"),
            Self::Timeout(d) => format!(
                "Timeout: no response within {}",
                crate::parse::format_duration(*d)
            ),
            Self::Io(e) => format!("ConnectionError: {e}"),
            Self::Status(code) => {
                let reason = http::StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                format!("HTTPError: {code} {reason}").trim_end().to_owned()
            }
            Self::Unhealthy => "HealthCheck: status is \"unhealthy\"".into(),
        }
    }
}

/// One finished request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index of the task in the mix (its stats row).
    pub task: usize,
    /// When the request should have started: the scheduled arrival in the
    /// open model, the actual start in the closed model. Latency counts
    /// from here, so a generator held up by a stalled server still shows
    /// the stall (no coordinated omission).
    pub intended: Instant,
    /// Intended start to last byte of the body (or to the failure).
    pub latency: Duration,
    /// HTTP status, 0 when no response came.
    pub status: u16,
    /// Body bytes received.
    pub bytes: u64,
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
}
