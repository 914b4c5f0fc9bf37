//! `loadtest/locustfile.py` run by real Locust (PyPI), headless for a few
//! seconds: against `chaoslab serve` with Redis (no failures), against a
//! target whose /health is sometimes "unhealthy" (the same failure rule as
//! `chaoslab load`), and Locust's own CSV headers equal ours.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use chaoslab_load::testkit::{Behaviour, TestServer};
use common::{RedisServer, Service};

fn locust() -> Option<PathBuf> {
    chaoslab_test_support::tool::runs("locust", &["--version"]).then(|| PathBuf::from("locust"))
}

fn locustfile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("loadtest/locustfile.py")
}

/// Runs Locust headless against `host` for `secs`; returns the CSV prefix.
fn run_locust(bin: &Path, host: &str, dir: &Path, env: &[(&str, &str)]) -> PathBuf {
    let prefix = dir.join("locust");
    let mut child = Command::new(bin)
        .arg("-f")
        .arg(locustfile())
        .args([
            "--headless",
            "-u",
            "5",
            "-r",
            "5",
            "-t",
            "4s",
            "--only-summary",
            "--host",
            host,
        ])
        .arg("--csv")
        .arg(&prefix)
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn locust");
    let status = common::eventually(Duration::from_secs(90), "locust to finish", || {
        child.try_wait().ok().flatten()
    });
    let out = child.wait_with_output().expect("locust output");
    // Locust exits 1 when any request failed; 0 otherwise; others are errors.
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "locust failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    prefix
}

fn csv_rows(prefix: &Path, suffix: &str) -> Vec<Vec<String>> {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    std::fs::read_to_string(PathBuf::from(name))
        .expect("locust csv")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|f| f.trim_matches('"').to_owned())
                .collect()
        })
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], name: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.get(1).is_some_and(|n| n == name))
        .unwrap_or_else(|| panic!("no {name} row"))
}

fn require_locust() -> Option<PathBuf> {
    let found = locust();
    chaoslab_test_support::tool::present_or_skip(
        found.is_some(),
        "locust is not installed (pip install locust)",
    );
    found
}

#[test]
fn locustfile_runs_against_the_service_without_failures() {
    let Some(bin) = require_locust() else { return };
    let redis = RedisServer::start();
    let service = Service::builder().redis(&redis).start();
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = run_locust(
        &bin,
        &service.url(""),
        dir.path(),
        &[("CHAOSLAB_WAIT", "0.05..0.2")],
    );

    let stats = csv_rows(&prefix, "_stats.csv");
    let ours: Vec<String> = chaoslab_load::csv::stats_columns();
    assert_eq!(stats[0], ours, "Locust's _stats.csv columns equal ours");
    let history = csv_rows(&prefix, "_stats_history.csv");
    assert_eq!(history[0], chaoslab_load::csv::history_columns());
    let failures = csv_rows(&prefix, "_failures.csv");
    assert_eq!(
        failures[0],
        chaoslab_load::csv::FAILURES_COLUMNS.map(String::from)
    );

    let total = row(&stats, "Aggregated");
    let requests: u64 = total[2].parse().expect("count");
    assert!(requests >= 20, "{requests} requests");
    assert_eq!(total[3], "0", "no failures against a healthy service");
    for name in ["/health", "/", "/chaos/status"] {
        row(&stats, name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locustfile_applies_the_same_failure_rules() {
    let Some(bin) = require_locust() else { return };
    let srv = TestServer::start(Behaviour {
        unhealthy_every: 2,
        ..Behaviour::default()
    })
    .await
    .expect("test server");
    let url = srv.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_path = dir.path().to_owned();
    let prefix = tokio::task::spawn_blocking(move || {
        run_locust(&bin, &url, &dir_path, &[("CHAOSLAB_WAIT", "0.05..0.1")])
    })
    .await
    .expect("locust thread");
    let stats = csv_rows(&prefix, "_stats.csv");
    let health = row(&stats, "/health");
    let (requests, failures): (u64, u64) =
        (health[2].parse().expect("n"), health[3].parse().expect("f"));
    assert!(requests >= 4, "{requests}");
    // Locust drops requests in flight when its run time ends, so it may
    // count a few less than the server answered.
    assert!(requests <= srv.hits("/health", 200));
    let share = failures as f64 / requests as f64;
    assert!(
        (0.35..=0.65).contains(&share),
        "every second /health is unhealthy: {failures}/{requests}"
    );
    assert_eq!(row(&stats, "/")[3], "0");
    let failures =
        std::fs::read_to_string(format!("{}_failures.csv", prefix.display())).expect("failures");
    assert!(failures.contains("unhealthy"), "{failures}");
}
