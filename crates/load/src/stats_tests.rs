//! Unit tests of the aggregator: exact counts, percentiles within HDR
//! precision, bounded failures and history.

use std::time::{Duration, Instant};

use super::*;
use crate::sample::Failure;

fn sample(task: usize, latency_us: u64, failure: Option<Failure>) -> Sample {
    Sample {
        task,
        intended: Instant::now(),
        latency: Duration::from_micros(latency_us),
        status: if failure.is_some() { 500 } else { 200 },
        bytes: 100,
        failure,
    }
}

fn stats() -> Stats {
    Stats::new(&TaskMix::seed(), Duration::from_secs(1)).expect("stats")
}

#[test]
fn percentiles_within_hdr_precision() {
    let mut s = stats();
    // 1 ms … 100 ms uniformly: p50 = 50 ms, p99 = 99 ms.
    for i in 1..=100_000u64 {
        s.record(&sample(1, i, None));
    }
    let (rows, all) = s.endpoint_reports(Duration::from_secs(10));
    assert_eq!(rows[1].requests, 100_000);
    assert_eq!(all.requests, 100_000);
    let close = |got: Option<f64>, want: f64, tol: f64| {
        let got = got.expect("value");
        assert!((got - want).abs() <= want * tol, "got {got}, want {want}");
    };
    close(all.median_ms, 50.0, 0.001);
    close(all.percentile(0.95), 95.0, 0.001);
    close(all.percentile(0.99), 99.0, 0.001);
    close(all.max_ms, 100.0, 0.001);
    close(all.min_ms, 0.001, 0.001);
    close(all.avg_ms, 50.0005, 0.0001);
    assert!((all.rps - 10_000.0).abs() < 1e-6);
    assert_eq!(all.avg_size, 100.0);
}

#[test]
fn counts_failures_and_codes() {
    let mut s = stats();
    for i in 0..1000 {
        let failure = (i % 4 == 0).then_some(Failure::Status(500));
        s.record(&sample(i % 3, 1000, failure));
    }
    s.record(&sample(
        0,
        1000,
        Some(Failure::Timeout(Duration::from_secs(1))),
    ));
    let (rows, all) = s.endpoint_reports(Duration::from_secs(1));
    assert_eq!(all.requests, 1001);
    assert_eq!(all.failures, 251);
    assert_eq!(rows.iter().map(|r| r.failures).sum::<u64>(), 251);
    assert_eq!(all.status_codes.get("500"), Some(&251));
    let failures = s.failure_reports();
    assert_eq!(failures.iter().map(|f| f.occurrences).sum::<u64>(), 251);
    assert!(failures.iter().any(|f| f.kind == "timeout"));
    assert_eq!(failures[0].error, "HTTPError: 500 Internal Server Error");
}

#[test]
fn failure_kinds_are_bounded() {
    let mut s = stats();
    for i in 0..(MAX_FAILURE_KINDS as u64 * 3) {
        s.record(&sample(0, 10, Some(Failure::Io(format!("error {i}")))));
    }
    assert!(s.failure_reports().len() <= MAX_FAILURE_KINDS + 1);
}

#[test]
fn history_is_bounded_and_thinned() {
    let mut s = stats();
    for t in 0..(MAX_HISTORY as u64 * 5) {
        s.record(&sample(0, 1000, None));
        s.history_tick(Duration::from_secs(t + 1), 10.0);
    }
    assert!(s.history().len() <= MAX_HISTORY);
    assert!(s.history_interval_secs() >= 4.0);
    let total: f64 = s.history().iter().map(|p| p.rps).sum();
    assert!(total > 0.0);
    let last = s.history().last().expect("points");
    assert_eq!(last.total_requests, MAX_HISTORY as u64 * 5);
}

#[test]
fn live_window_resets() {
    let mut s = stats();
    for _ in 0..20 {
        s.record(&sample(0, 2000, None));
    }
    let live = s.take_live(Duration::from_secs(2), Duration::from_secs(2));
    assert_eq!(live.rps, 10.0);
    assert_eq!(live.total_requests, 20);
    let again = s.take_live(Duration::from_secs(4), Duration::from_secs(2));
    assert_eq!(again.rps, 0.0);
    assert_eq!(again.p50_ms, None);
}
