//! The result of a run as plain data: what the printers (terminal table,
//! CSV, JSON, HTML) and the thresholds read. `--json` writes exactly this,
//! and `chaoslab load merge` reads it back: each row carries its latency
//! histogram (HdrHistogram V2 + DEFLATE, base64, see `hdr`), its byte and
//! latency sums, so several generators' reports add up exactly.

use std::collections::BTreeMap;

/// Locust's reported percentiles, in its order (the CSV columns).
pub const PERCENTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// Locust's label of a percentile: `50%`, `99.9%`, `100%`.
pub fn percentile_label(q: f64) -> String {
    let pct = q * 100.0;
    if (pct - pct.round()).abs() < 1e-9 {
        format!("{}%", pct.round())
    } else {
        format!("{}%", (pct * 1e6).round() / 1e6)
    }
}

/// A whole run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// `http://host:port` of the target.
    pub target: String,
    /// `closed` (users), `open` (arrival rate) or `max` (as fast as the
    /// connections allow).
    pub model: String,
    /// The named scenario, if one was used.
    pub scenario: Option<String>,
    /// The plan in words.
    pub plan: String,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// Wall-clock length of the measured run.
    pub duration_secs: f64,
    /// Stopped by Ctrl-C before the plan ended.
    pub interrupted: bool,
    /// One row per task, in the mix's order.
    pub endpoints: Vec<EndpointReport>,
    /// All tasks together (Locust's "Aggregated" row).
    pub aggregated: EndpointReport,
    /// Distinct failures with their counts.
    pub failures: Vec<FailureReport>,
    /// Time series, one point per `history_interval_secs`.
    pub history: Vec<HistoryPoint>,
    /// Seconds between history points (grows on long runs to bound memory).
    pub history_interval_secs: f64,
    /// How the load generator itself kept up.
    pub generator: GeneratorReport,
    /// Verdicts of `--threshold`, filled in after the run.
    pub thresholds: Vec<ThresholdResult>,
    /// How many generators' runs this report adds up (1 for a run; the
    /// sum of the inputs' for `chaoslab load merge`).
    #[serde(default = "one")]
    pub generators: u64,
}

fn one() -> u64 {
    1
}

/// Statistics of one endpoint (or of all together).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EndpointReport {
    /// HTTP method (empty on the aggregated row, as in Locust).
    pub method: String,
    /// Path (or `Aggregated`).
    pub name: String,
    /// Requests finished.
    pub requests: u64,
    /// Of which failed.
    pub failures: u64,
    /// Failures / requests, in percent.
    pub failure_percent: f64,
    /// Median latency, ms (None without requests).
    pub median_ms: Option<f64>,
    /// Mean latency, ms.
    pub avg_ms: Option<f64>,
    /// Fastest, ms.
    pub min_ms: Option<f64>,
    /// Slowest, ms.
    pub max_ms: Option<f64>,
    /// Mean body size, bytes.
    pub avg_size: f64,
    /// Requests per second over the run.
    pub rps: f64,
    /// Failures per second over the run.
    pub failures_per_sec: f64,
    /// Locust's percentiles (`PERCENTILES`), ms.
    pub percentiles: Vec<Percentile>,
    /// Responses by status code (`"0"` = no response).
    pub status_codes: BTreeMap<String, u64>,
    /// Body bytes received, all requests together.
    #[serde(default)]
    pub bytes: u64,
    /// Sum of the latencies, µs (the exact mean when merged).
    #[serde(default)]
    pub latency_sum_us: u64,
    /// The latency histogram, µs (HdrHistogram V2 + DEFLATE, base64);
    /// absent in reports written before `merge` existed.
    #[serde(default)]
    pub histogram: Option<String>,
}

impl EndpointReport {
    /// The latency at quantile `q` (0–1), ms, if any request finished.
    pub fn percentile(&self, q: f64) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|p| (p.quantile - q).abs() < 1e-9)
            .map(|p| p.ms)
    }
}

/// One percentile of an endpoint.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Percentile {
    /// 0.5, 0.95, …
    pub quantile: f64,
    /// Latency, ms.
    pub ms: f64,
}

/// One distinct failure.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FailureReport {
    /// HTTP method of the task.
    pub method: String,
    /// Path of the task.
    pub name: String,
    /// `connect`, `timeout`, `io`, `http` or `unhealthy`.
    pub kind: String,
    /// Locust's "Error" text.
    pub error: String,
    /// How many times.
    pub occurrences: u64,
    /// First and last time seen, UTC `YYYY-MM-DDTHH:MM:SSZ`.
    pub first_seen: String,
    /// Last time seen.
    pub last_seen: String,
}

/// The load and the results over one history interval.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HistoryPoint {
    /// Unix seconds at the end of the interval.
    pub timestamp: i64,
    /// Seconds since the start.
    pub elapsed_secs: f64,
    /// Users running (closed model) or the target rate (open model).
    pub load: f64,
    /// Requests per second finished in the interval.
    pub rps: f64,
    /// Failures per second in the interval.
    pub failures_per_sec: f64,
    /// Latency percentiles of the interval, ms (`PERCENTILES`), empty
    /// when nothing finished.
    pub percentiles: Vec<f64>,
    /// Requests so far.
    pub total_requests: u64,
    /// Failures so far.
    pub total_failures: u64,
    /// Median so far, ms.
    pub total_median_ms: Option<f64>,
    /// Mean so far, ms.
    pub total_avg_ms: Option<f64>,
    /// Fastest so far, ms.
    pub total_min_ms: Option<f64>,
    /// Slowest so far, ms.
    pub total_max_ms: Option<f64>,
    /// Mean body size so far.
    pub total_avg_size: f64,
    /// The interval's latency histogram (as `EndpointReport::histogram`),
    /// absent when nothing finished in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
}

/// How the generator itself behaved.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct GeneratorReport {
    /// Open model: requests that started more than 10 ms after their
    /// scheduled time because `--max-in-flight` was reached (their latency
    /// still counts from the schedule).
    pub late_starts: u64,
    /// Requests still unanswered when the run stopped after
    /// `--stop-timeout` (not counted in the stats).
    pub abandoned: u64,
    /// Most requests in flight at once (open model) or most users.
    pub peak_concurrency: u64,
}

/// One threshold's verdict.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ThresholdResult {
    /// As written, e.g. `p95<500ms`.
    pub expression: String,
    /// The measured value, in the threshold's unit.
    pub actual: Option<f64>,
    /// `ms`, `%` or `req/s`.
    pub unit: String,
    /// Whether it holds.
    pub passed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_match_locust() {
        let labels: Vec<String> = PERCENTILES.iter().map(|&q| percentile_label(q)).collect();
        assert_eq!(
            labels,
            [
                "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"
            ]
        );
    }
}
