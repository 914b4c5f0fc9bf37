//! The project's end-to-end suite: every built-in experiment (one per flow
//! of the seed system) run as a user runs it, `chaoslab experiment run
//! --all`, each with its own real lab; every expectation must hold. The
//! reports land in a temporary directory and the failing journals are
//! printed when one deviates.
//!
//! Two experiments run at once (`--jobs 2`, as the help suggests for CI):
//! each is bound by its own fixed phases (load for 8–18 s), not by CPU, so
//! this halves the suite's longest test (165 s → 91 s on a loaded 2-core
//! machine) with the same measurements, each within 0.1–1 s of a run one
//! at a time.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_chaoslab");

#[test]
fn every_builtin_experiment_holds() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["experiment", "run", "--all", "--jobs", "2", "--report-dir"])
        .arg(&reports)
        .current_dir(dir.path())
        .env_remove("CHAOSLAB_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("run.out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("run.err")).unwrap())
        .spawn()
        .expect("spawn chaoslab experiment run --all");
    let deadline = Duration::from_secs(15 * 60);
    let Some(status) = chaoslab_test_support::process::wait_exit(&mut child, deadline) else {
        chaoslab_test_support::process::kill_and_reap(&mut child);
        panic!("experiment run --all did not finish within {deadline:?}");
    };
    let out = std::fs::read_to_string(dir.path().join("run.out")).unwrap_or_default();
    let err = std::fs::read_to_string(dir.path().join("run.err")).unwrap_or_default();
    println!(
        "experiment run --all: {status} in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let summary: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" expectations held) in "))
        .collect();
    println!("{}", summary.join("\n"));
    if !status.success() {
        print_deviations(&reports);
        panic!("experiment run --all exited {status}:\n{err}\n{out}");
    }
    let junit = std::fs::read_to_string(reports.join("junit.xml")).expect("junit.xml");
    assert_eq!(
        junit.matches("<testsuite ").count(),
        12,
        "one suite per built-in"
    );
    assert!(
        !junit.contains("<failure") && !junit.contains("<error"),
        "{junit}"
    );
}

fn print_deviations(reports: &Path) {
    for entry in std::fs::read_dir(reports).into_iter().flatten().flatten() {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".journal.json") {
            continue;
        }
        let Ok(j) = serde_json::from_str::<serde_json::Value>(
            &std::fs::read_to_string(&path).unwrap_or_default(),
        ) else {
            continue;
        };
        if j["status"] == "completed" {
            continue;
        }
        println!(
            "== {} {}: {}",
            j["experiment"]["name"], j["status"], j["reason"]
        );
        for e in j["expectations"].as_array().into_iter().flatten() {
            println!("  {} {}: {}", e["passed"], e["name"], e["measured"]);
        }
        for r in j["run"].as_array().into_iter().flatten() {
            println!(
                "  step {} {}: {}",
                r["activity"]["name"], r["status"], r["output"]
            );
        }
    }
}
