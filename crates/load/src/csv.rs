//! Locust-compatible CSV files (`--csv PREFIX`): `PREFIX_stats.csv`,
//! `PREFIX_stats_history.csv`, `PREFIX_failures.csv` and an empty
//! `PREFIX_exceptions.csv`, with Locust 2's exact column names, so the
//! dashboards and scripts written for Locust read them unchanged.
//! Latencies are ms like Locust's, but keep their sub-millisecond part.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::LoadError;
use crate::report::{PERCENTILES, Report, percentile_label};

/// Columns of `_stats.csv` (Locust 2 `requests_csv_columns`).
pub fn stats_columns() -> Vec<String> {
    let mut cols: Vec<String> = [
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
    ]
    .map(String::from)
    .to_vec();
    cols.extend(PERCENTILES.iter().map(|&q| percentile_label(q)));
    cols
}

/// Columns of `_stats_history.csv`.
pub fn history_columns() -> Vec<String> {
    let mut cols: Vec<String> = [
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
    ]
    .map(String::from)
    .to_vec();
    cols.extend(PERCENTILES.iter().map(|&q| percentile_label(q)));
    cols.extend(
        [
            "Total Request Count",
            "Total Failure Count",
            "Total Median Response Time",
            "Total Average Response Time",
            "Total Min Response Time",
            "Total Max Response Time",
            "Total Average Content Size",
        ]
        .map(String::from),
    );
    cols
}

/// Columns of `_failures.csv`.
pub const FAILURES_COLUMNS: [&str; 6] = [
    "Method",
    "Name",
    "Error",
    "Occurrences",
    "First Seen",
    "Last Seen",
];
/// Columns of `_exceptions.csv` (always empty here: no user code runs).
pub const EXCEPTIONS_COLUMNS: [&str; 4] = ["Count", "Message", "Traceback", "Nodes"];

/// A number as Locust writes it: integers bare, fractions to 3 decimals.
fn num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "0".into(), num)
}

/// Quotes a field when it needs it (RFC 4180, as Python's csv module).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn line(out: &mut String, fields: impl IntoIterator<Item = String>) {
    let row: Vec<String> = fields.into_iter().map(|f| field(&f)).collect();
    let _ = write!(out, "{}\r\n", row.join(","));
}

/// The text of `_stats.csv`.
pub fn stats_csv(report: &Report) -> String {
    let mut out = String::new();
    line(&mut out, stats_columns());
    for row in report.endpoints.iter().chain([&report.aggregated]) {
        let mut fields = vec![
            row.method.clone(),
            row.name.clone(),
            row.requests.to_string(),
            row.failures.to_string(),
            opt(row.median_ms),
            opt(row.avg_ms),
            opt(row.min_ms),
            opt(row.max_ms),
            num(row.avg_size),
            num(row.rps),
            num(row.failures_per_sec),
        ];
        if row.percentiles.is_empty() {
            fields.extend(PERCENTILES.iter().map(|_| "N/A".to_owned()));
        } else {
            fields.extend(row.percentiles.iter().map(|p| num(p.ms)));
        }
        line(&mut out, fields);
    }
    out
}

/// The text of `_stats_history.csv` (aggregated rows, one per interval).
pub fn history_csv(report: &Report) -> String {
    let mut out = String::new();
    line(&mut out, history_columns());
    for p in &report.history {
        let mut fields = vec![
            p.timestamp.to_string(),
            format!("{}", p.load.round() as i64),
            String::new(),
            "Aggregated".into(),
            format!("{:.6}", p.rps),
            format!("{:.6}", p.failures_per_sec),
        ];
        if p.percentiles.is_empty() {
            fields.extend(PERCENTILES.iter().map(|_| "N/A".to_owned()));
        } else {
            fields.extend(p.percentiles.iter().map(|&v| num(v)));
        }
        fields.extend([
            p.total_requests.to_string(),
            p.total_failures.to_string(),
            opt(p.total_median_ms),
            opt(p.total_avg_ms),
            opt(p.total_min_ms),
            opt(p.total_max_ms),
            num(p.total_avg_size),
        ]);
        line(&mut out, fields);
    }
    out
}

/// The text of `_failures.csv`.
pub fn failures_csv(report: &Report) -> String {
    let mut out = String::new();
    line(&mut out, FAILURES_COLUMNS.map(String::from));
    for f in &report.failures {
        line(
            &mut out,
            [
                f.method.clone(),
                f.name.clone(),
                f.error.clone(),
                f.occurrences.to_string(),
                f.first_seen.clone(),
                f.last_seen.clone(),
            ],
        );
    }
    out
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes the four files next to `prefix`; returns their paths.
pub fn write(report: &Report, prefix: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut exceptions = String::new();
    line(&mut exceptions, EXCEPTIONS_COLUMNS.map(String::from));
    let files = [
        ("_stats.csv", stats_csv(report)),
        ("_stats_history.csv", history_csv(report)),
        ("_failures.csv", failures_csv(report)),
        ("_exceptions.csv", exceptions),
    ];
    let mut written = Vec::new();
    for (suffix, text) in files {
        let path = with_suffix(prefix, suffix);
        crate::write_file(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_locusts() {
        let stats = stats_columns().join(",");
        assert_eq!(
            stats,
            "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
             Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
             50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
        );
        let history = history_columns().join(",");
        assert_eq!(
            history,
            "Timestamp,User Count,Type,Name,Requests/s,Failures/s,\
             50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,\
             Total Request Count,Total Failure Count,Total Median Response Time,\
             Total Average Response Time,Total Min Response Time,Total Max Response Time,\
             Total Average Content Size"
        );
    }

    #[test]
    fn numbers_and_quoting() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(0.4123), "0.412");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
