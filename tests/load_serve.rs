//! `chaoslab load` against the real service: `chaoslab serve` with a
//! private redis-server. A 10-second baseline has no failure, and the
//! service's request counter grows by exactly the number of 200s to `/`.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{RedisServer, Service};

fn counter(redis: &RedisServer) -> u64 {
    redis
        .admin(&["GET", "chaos_lab:counter:requests"])
        .expect("redis-cli GET")
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn baseline_has_no_failures_and_counts_match_redis() {
    let redis = RedisServer::start();
    let service = Service::builder().redis(&redis).start();
    let before = counter(&redis);
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("baseline.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chaoslab"))
        .args([
            "load",
            "--scenario",
            "baseline",
            "--run-time",
            "10s",
            "-q",
            "--host",
        ])
        .arg(service.url(""))
        .arg("--json")
        .arg(&json)
        .args(["--threshold", "errors<0.001%"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chaoslab load");
    let status = common::eventually(Duration::from_secs(60), "chaoslab load to finish", || {
        child.try_wait().ok().flatten()
    });
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        status.code(),
        Some(0),
        "{stdout}\n{}\nservice logs:\n{}",
        String::from_utf8_lossy(&out.stderr),
        service.logs()
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json report"))
            .expect("parses");
    assert_eq!(report["scenario"], "baseline");
    assert_eq!(report["aggregated"]["failures"], 0, "{stdout}");
    let total = report["aggregated"]["requests"].as_u64().expect("requests");
    assert!(
        total >= 20,
        "10 users for 10 s with 1–3 s think time: {total}"
    );
    let index = report["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["name"] == "/")
        .expect("row for /");
    let ok = index["status_codes"]["200"].as_u64().expect("200s to /");
    assert_eq!(ok, index["requests"].as_u64().expect("requests to /"));
    assert!(ok > 0);
    assert_eq!(
        counter(&redis) - before,
        ok,
        "the counter grows by the 200s to /"
    );
}
