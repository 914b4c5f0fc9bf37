//! Unit tests of `merge`: two generators' reports, through their JSON,
//! add up to exactly the report of one aggregator fed every sample.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::sample::{Failure, Sample};
use crate::scenario::TaskMix;
use crate::stats::Stats;

fn sample(task: usize, latency_us: u64, status: u16, bytes: u64) -> Sample {
    Sample {
        task,
        intended: Instant::now(),
        latency: Duration::from_micros(latency_us),
        status,
        bytes,
        failure: (status >= 500).then_some(Failure::Status(status)),
    }
}

/// A report as the runner builds it.
fn report_of(stats: &mut Stats, started_at: &str, secs: f64) -> Report {
    stats.history_flush(Duration::from_secs_f64(secs), 1.0);
    let (endpoints, aggregated) = stats.endpoint_reports(Duration::from_secs_f64(secs));
    Report {
        target: "http://127.0.0.1:8000".into(),
        model: "closed".into(),
        scenario: None,
        plan: "2 users".into(),
        started_at: started_at.into(),
        duration_secs: secs,
        interrupted: false,
        endpoints,
        aggregated,
        failures: stats.failure_reports(),
        history: stats.history().to_vec(),
        history_interval_secs: stats.history_interval_secs(),
        generator: GeneratorReport::default(),
        thresholds: Vec::new(),
        generators: 1,
    }
}

/// … and through its JSON, as `--json` writes it and `merge` reads it.
fn through_json(report: &Report) -> Report {
    let json = crate::to_json(report).expect("json");
    serde_json::from_str(&json).expect("reads back")
}

fn stats() -> Stats {
    Stats::new(&TaskMix::seed(), Duration::from_secs(1)).expect("stats")
}

/// Every figure of the summary that does not depend on the run's length.
fn assert_same_row(merged: &EndpointReport, one: &EndpointReport) {
    assert_eq!(merged.name, one.name);
    assert_eq!(merged.requests, one.requests, "{}", one.name);
    assert_eq!(merged.failures, one.failures, "{}", one.name);
    assert_eq!(merged.status_codes, one.status_codes, "{}", one.name);
    assert_eq!(merged.median_ms, one.median_ms, "{}", one.name);
    assert_eq!(merged.avg_ms, one.avg_ms, "{}", one.name);
    assert_eq!(merged.min_ms, one.min_ms, "{}", one.name);
    assert_eq!(merged.max_ms, one.max_ms, "{}", one.name);
    assert_eq!(merged.avg_size, one.avg_size, "{}", one.name);
    assert_eq!(merged.bytes, one.bytes, "{}", one.name);
    assert_eq!(merged.latency_sum_us, one.latency_sum_us, "{}", one.name);
    let q = |r: &EndpointReport| {
        r.percentiles
            .iter()
            .map(|p| (p.quantile, p.ms))
            .collect::<Vec<_>>()
    };
    assert_eq!(q(merged), q(one), "{}", one.name);
    assert_eq!(merged.failure_percent, one.failure_percent);
}

type Raw = (usize, u64, u16, u64);

fn raw_samples() -> impl Strategy<Value = Vec<Raw>> {
    proptest::collection::vec(
        (
            0usize..3,
            prop_oneof![1u64..2_000, 1u64..5_000_000, Just(7_200_000_000u64)],
            prop_oneof![Just(200u16), Just(200), Just(404), Just(500), Just(0)],
            0u64..20_000,
        ),
        0..400,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The merge of two runs equals one aggregation over the union of
    /// their samples: counts, codes, every percentile, mean, min, max.
    #[test]
    fn merge_of_two_equals_one_over_the_union(samples in raw_samples(), split in any::<prop::sample::Index>()) {
        let cut = split.index(samples.len() + 1);
        let (mut a, mut b, mut union) = (stats(), stats(), stats());
        for (i, &(task, us, status, bytes)) in samples.iter().enumerate() {
            let s = sample(task, us, status, bytes);
            if i < cut { a.record(&s) } else { b.record(&s) }
            union.record(&s);
        }
        let ra = through_json(&report_of(&mut a, "2026-01-01T00:00:00.000Z", 10.0));
        let rb = through_json(&report_of(&mut b, "2026-01-01T00:00:05.000Z", 10.0));
        let one = report_of(&mut union, "2026-01-01T00:00:00.000Z", 15.0);
        let merged = merge(&[("a.json".into(), ra), ("b.json".into(), rb)]).expect("merges");
        assert_same_row(&merged.aggregated, &one.aggregated);
        prop_assert_eq!(merged.endpoints.len(), one.endpoints.len());
        for (m, o) in merged.endpoints.iter().zip(&one.endpoints) {
            assert_same_row(m, o);
        }
        // Both ran within 0 s .. 15 s: the merged span.
        prop_assert!((merged.duration_secs - 15.0).abs() < 1e-9);
        prop_assert!((merged.aggregated.rps - one.aggregated.rps).abs() < 1e-9);
        let occurrences = |r: &Report| r.failures.iter().map(|f| f.occurrences).sum::<u64>();
        prop_assert_eq!(occurrences(&merged), occurrences(&one));
        prop_assert_eq!(merged.generators, 2);
    }
}

#[test]
fn history_steps_add_the_generators_rates() {
    let (mut a, mut b) = (stats(), stats());
    for t in 1..=4u64 {
        for _ in 0..10 {
            a.record(&sample(0, 1000, 200, 1));
        }
        for _ in 0..30 {
            b.record(&sample(1, 3000, 200, 1));
        }
        a.history_tick(Duration::from_secs(t), 1.0);
        b.history_tick(Duration::from_secs(t), 3.0);
    }
    let ra = through_json(&report_of(&mut a, "2026-01-01T00:00:00Z", 4.0));
    let rb = through_json(&report_of(&mut b, "2026-01-01T00:00:00Z", 4.0));
    let merged = merge(&[("a".into(), ra), ("b".into(), rb)]).expect("merges");
    assert_eq!(merged.history.len(), 4);
    for p in &merged.history {
        assert_eq!(p.rps, 40.0);
        assert_eq!(p.load, 4.0);
        // A quarter of the samples at 1 ms, the rest at 3 ms.
        assert!((p.percentiles[0] - 3.0).abs() < 0.01, "{:?}", p.percentiles);
    }
    assert_eq!(merged.history[3].total_requests, 160);
    assert_eq!(merged.history[3].total_avg_ms, Some(2.5));
}

#[test]
fn unusable_reports_are_refused_by_name() {
    let mut a = stats();
    a.record(&sample(0, 1000, 200, 1));
    let good = report_of(&mut a, "2026-01-01T00:00:00Z", 1.0);

    let mut old = good.clone();
    old.aggregated.histogram = None;
    let err = merge(&[("old.json".into(), old)]).unwrap_err().to_string();
    assert!(
        err.starts_with("old.json: row `Aggregated` has no latency histogram"),
        "{err}"
    );

    let mut lying = good.clone();
    lying.aggregated.requests = 5;
    let err = merge(&[("x.json".into(), lying)]).unwrap_err().to_string();
    assert!(err.contains("holds 1 latencies but it counts 5"), "{err}");

    let mut garbage = good.clone();
    garbage.endpoints[0].histogram = Some("bm90IGEgaGlzdG9ncmFt".into());
    let err = merge(&[("g.json".into(), garbage)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("g.json: row `GET /health`"), "{err}");

    let mut when = good.clone();
    when.started_at = "yesterday".into();
    let err = merge(&[("w.json".into(), when)]).unwrap_err().to_string();
    assert!(err.contains("started_at `yesterday`"), "{err}");

    let mut codes = good;
    codes.aggregated.status_codes.insert("OK".into(), 1);
    let err = merge(&[("c.json".into(), codes)]).unwrap_err().to_string();
    assert!(err.contains("`OK` is not a status code"), "{err}");

    assert!(merge(&[]).is_err());
}

#[test]
fn files_that_are_not_reports_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.json");
    std::fs::write(&path, "[1, 2]").expect("write");
    let err = read(&path).unwrap_err().to_string();
    assert!(err.contains("not a `chaoslab load --json` report"), "{err}");
    let err = read(&dir.path().join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read it"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Arbitrary JSON where a report belongs: a report or an error.
    #[test]
    fn arbitrary_files_never_panic(text in ".{0,300}") {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.json");
        std::fs::write(&path, &text).expect("write");
        if let Ok(r) = read(&path) {
            let _ = merge(&[("r".into(), r)]);
        }
    }
}
