//! Terminal output: the live line during the run and, at the end, a
//! per-endpoint table like Locust's, the failures and the threshold
//! verdicts. Pure formatting of `LiveLine` and `Report` into strings.

use std::fmt::Write as _;

use crate::report::Report;
use crate::runner::LiveLine;

/// Formats a latency in ms with a precision that suits its size (the
/// command line's one spelling, `chaoslab-output`).
pub fn fmt_ms(ms: Option<f64>) -> String {
    chaoslab_output::units::latency_ms(ms)
}

/// The live line: elapsed, users or rate, req/s, failure %, p50, p95.
pub fn live_line(line: &LiveLine) -> String {
    let s = &line.snapshot;
    let load = match line.model {
        "open" => format!("rate {:>7.1}/s  in flight {:>5}", line.load, line.in_flight),
        "max" => format!("conns {:>5}", line.load),
        _ => format!("users {:>5}", line.load),
    };
    format!(
        "{:>6.0}s  {load}  req/s {:>8.1}  fail {:>5.2}%  p50 {:>7}ms  p95 {:>7}ms  total {} ({} failed)",
        s.elapsed.as_secs_f64(),
        s.rps,
        s.failure_percent,
        fmt_ms(s.p50_ms),
        fmt_ms(s.p95_ms),
        s.total_requests,
        s.total_failures,
    )
}

/// The end-of-run summary: header, table, failures, generator notes.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} {} model, {:.1}s{}: {}",
        report.target,
        report.model,
        report.duration_secs,
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        },
        report.plan
    );
    endpoint_table(&mut out, report);
    failures(&mut out, report);
    generator_notes(&mut out, report);
    out
}

/// The per-endpoint table like Locust's, the aggregate row last.
fn endpoint_table(out: &mut String, report: &Report) {
    let name_width = report
        .endpoints
        .iter()
        .map(|e| e.name.len())
        .chain([10])
        .max()
        .unwrap_or(10)
        .min(50);
    let header = format!(
        "{:<7} {:<name_width$} {:>9} {:>15} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>9} {:>9}",
        "Type",
        "Name",
        "# reqs",
        "# fails",
        "Median",
        "95%",
        "99%",
        "Max",
        "Avg",
        "Avg size",
        "req/s"
    );
    let rule = "-".repeat(header.len());
    let _ = writeln!(out, "{header}\n{rule}");
    for (i, row) in report
        .endpoints
        .iter()
        .chain([&report.aggregated])
        .enumerate()
    {
        if i == report.endpoints.len() {
            let _ = writeln!(out, "{rule}");
        }
        let fails = format!("{}({:.2}%)", row.failures, row.failure_percent);
        let _ = writeln!(
            out,
            "{:<7} {:<name_width$} {:>9} {:>15} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>9.0} {:>9.2}",
            row.method,
            row.name,
            row.requests,
            fails,
            fmt_ms(row.median_ms),
            fmt_ms(row.percentile(0.95)),
            fmt_ms(row.percentile(0.99)),
            fmt_ms(row.max_ms),
            fmt_ms(row.avg_ms),
            row.avg_size,
            row.rps,
        );
    }
    let _ = writeln!(out, "(latencies in ms)");
}

/// The 20 most frequent failures, and how many kinds more there are.
fn failures(out: &mut String, report: &Report) {
    if report.failures.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nFailures:");
    for f in report.failures.iter().take(20) {
        let _ = writeln!(
            out,
            "  {:>7}x  {} {}: {}",
            f.occurrences, f.method, f.name, f.error
        );
    }
    if report.failures.len() > 20 {
        let _ = writeln!(
            out,
            "  … {} more kinds (see the CSV or JSON report)",
            report.failures.len() - 20
        );
    }
}

/// Notes on the generator itself: late starts and abandoned requests.
fn generator_notes(out: &mut String, report: &Report) {
    let g = &report.generator;
    if g.late_starts > 0 {
        let _ = writeln!(
            out,
            "\nnote: {} requests started more than 10ms after their scheduled time (generator busy or --max-in-flight reached); their latency counts from the schedule",
            g.late_starts
        );
    }
    if g.abandoned > 0 {
        let _ = writeln!(
            out,
            "note: {} requests still in flight at the end were abandoned (--stop-timeout)",
            g.abandoned
        );
    }
}

/// One line per threshold, then the verdict. A threshold with nothing
/// measured shows `no requests` (the run finished none) or `no data`.
pub fn thresholds(report: &Report) -> String {
    let mut out = String::new();
    if report.thresholds.is_empty() {
        return out;
    }
    let _ = writeln!(out, "\nThresholds:");
    let nothing = if report.aggregated.requests == 0 {
        "no requests"
    } else {
        "no data"
    };
    for t in &report.thresholds {
        let actual = t
            .actual
            .filter(|v| v.is_finite())
            .map_or(nothing.to_owned(), |v| format!("{v:.2} {}", t.unit));
        let mark = if t.passed { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "  {mark} {:<20} actual {actual}", t.expression);
    }
    let failed = report.thresholds.iter().filter(|t| !t.passed).count();
    if failed == 0 {
        let _ = writeln!(out, "all {} thresholds hold", report.thresholds.len());
    } else {
        let _ = writeln!(
            out,
            "{failed} of {} thresholds FAILED",
            report.thresholds.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::stats::LiveSnapshot;

    #[test]
    fn latency_precision_follows_size() {
        assert_eq!(fmt_ms(None), "-");
        assert_eq!(fmt_ms(Some(0.4123)), "0.41");
        assert_eq!(fmt_ms(Some(42.26)), "42.3");
        assert_eq!(fmt_ms(Some(1234.4)), "1234");
    }

    #[test]
    fn live_line_names_the_load() {
        let snapshot = LiveSnapshot {
            elapsed: Duration::from_secs(4),
            rps: 120.5,
            failure_percent: 1.5,
            p50_ms: Some(3.2),
            p95_ms: Some(18.0),
            total_requests: 480,
            total_failures: 7,
        };
        let line = |model, load| LiveLine {
            model,
            load,
            in_flight: 3,
            snapshot: snapshot.clone(),
        };
        let closed = live_line(&line("closed", 10.0));
        assert!(closed.contains("users    10"), "{closed}");
        assert!(
            closed.contains("req/s    120.5") && closed.contains("fail  1.50%"),
            "{closed}"
        );
        assert!(
            closed.contains("p50    3.20ms") && closed.contains("p95    18.0ms"),
            "{closed}"
        );
        let open = live_line(&line("open", 200.0));
        assert!(
            open.contains("rate   200.0/s") && open.contains("in flight     3"),
            "{open}"
        );
    }

    fn empty_report(thresholds: Vec<crate::report::ThresholdResult>) -> Report {
        let aggregated = crate::report::EndpointReport {
            method: String::new(),
            name: "Aggregated".into(),
            requests: 0,
            failures: 0,
            failure_percent: 0.0,
            median_ms: None,
            avg_ms: None,
            min_ms: None,
            max_ms: None,
            avg_size: 0.0,
            rps: 0.0,
            failures_per_sec: 0.0,
            percentiles: Vec::new(),
            status_codes: Default::default(),
            bytes: 0,
            latency_sum_us: 0,
            histogram: None,
        };
        Report {
            target: "http://127.0.0.1:9".into(),
            model: "closed".into(),
            scenario: None,
            plan: "1 user".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_secs: 0.5,
            interrupted: true,
            endpoints: Vec::new(),
            aggregated,
            failures: Vec::new(),
            history: Vec::new(),
            history_interval_secs: 1.0,
            generator: Default::default(),
            thresholds,
            generators: 1,
        }
    }

    #[test]
    fn thresholds_of_a_run_without_requests_say_so() {
        let mut report = empty_report(Vec::new());
        let thresholds = ["errors<1%", "p95<1s", "rps<10"]
            .map(|t| crate::threshold::Threshold::parse(t).expect(t));
        crate::judge(&mut report, &thresholds);
        let out = thresholds_text(&report);
        assert!(!out.contains("NaN"), "{out}");
        assert!(
            out.contains("FAIL errors<1%            actual no requests"),
            "{out}"
        );
        assert!(
            out.contains("FAIL p95<1s               actual no requests"),
            "{out}"
        );
        assert!(out.contains("ok   rps<10"), "{out}");
        assert!(out.contains("2 of 3 thresholds FAILED"), "{out}");
        let summary = summary(&report);
        assert!(!summary.contains("NaN"), "{summary}");
    }

    fn thresholds_text(report: &Report) -> String {
        thresholds(report)
    }
}
