//! End-to-end: `chaoslab experiment` as a user runs it — the real binary
//! starting its own real lab (or attached to one), real faults, real load.
//! Exit statuses 0/1/2/130, the journal, JUnit and HTML files, validation
//! before any lab starts, rollbacks after a failed step and on SIGINT and
//! SIGTERM mid-method, nothing left running, Chaos Toolkit files.

#[path = "lab_support/mod.rs"]
mod lab_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use chaoslab_test_support::process;
use chaoslab_test_support::wait::{GENEROUS, until};

use lab_support::{BIN, builder, eventually};
use serde_json::Value;

/// How long one `chaoslab experiment` may take.
const RUN_DEADLINE: Duration = Duration::from_secs(180);

/// Runs `chaoslab experiment <args>` in `dir`, bounded in time.
fn experiment(dir: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .arg("experiment")
        .args(args)
        .current_dir(dir)
        .env_remove("CHAOSLAB_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chaoslab experiment");
    if process::wait_exit(&mut child, RUN_DEADLINE).is_none() {
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        panic!(
            "chaoslab experiment {args:?} did not finish within {RUN_DEADLINE:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.wait_with_output().expect("output")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn journal(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("journal written"))
        .expect("journal is JSON")
}

/// Pids of live processes whose command line or environment mentions
/// `marker` (the experiment's lab directory).
fn processes_mentioning(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() || !lab_support::alive(pid) {
            continue;
        }
        let read = |f: &str| std::fs::read(entry.path().join(f)).unwrap_or_default();
        let hay = [read("cmdline"), read("environ")].concat();
        if String::from_utf8_lossy(&hay).contains(marker) {
            found.push(pid);
        }
    }
    found
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write experiment");
    path
}

/// Writes `toml` as `name` in `dir` and runs it on its own lab with a
/// journal: its output and the journal.
fn run_journaled(dir: &Path, name: &str, toml: &str) -> (Output, Value) {
    let file = write(dir, name, toml);
    let out = experiment(dir, &["run", file.to_str().unwrap(), "--journal", "j.json"]);
    let j = journal(&dir.join("j.json"));
    (out, j)
}

/// A short experiment: latency on the Redis path, then cleared; background
/// load and the counter invariant.
const LATENCY: &str = r#"
title = "latency, then clear"
duration = "5s"

[lab]
replicas = 1
probes = "quick"

[lab.restart]
termination_grace_seconds = 1

[load]
rate = "20/s"
timeout = "3s"

[[steady_state]]
name = "root answers"
probe = { http = "/", status = 200 }

[[method]]
id = "slow"
at = "1s"
action = "fault network latency --ms 120 --duration 0"

[[method]]
id = "clear"
at = "3s"
action = "clear"

[[expect]]
name = "degraded"
after = "slow"
within = "4s"
probe = { http = "/health", field = "status", equals = "degraded" }

[[expect]]
name = "healthy again"
after = "clear"
within = "5s"
probe = { http = "/health", field = "status", equals = "healthy" }

[[expect]]
name = "no write lost"
probe = { invariant = "counter" }

[[rollback]]
action = "fault clear --all"
"#;

/// The journal of the held latency experiment: completed, steady before
/// and after, every expectation passed with what was measured and expected,
/// the measurements, spans and timeline filled in.
fn assert_the_held_journal(j: &Value) {
    assert_eq!(j["status"], "completed");
    assert_eq!(j["deviated"], false);
    assert_eq!(j["steady_states"]["before"]["steady_state_met"], true);
    assert_eq!(j["steady_states"]["after"]["steady_state_met"], true);
    assert_eq!(j["run"].as_array().unwrap().len(), 2);
    assert_eq!(j["rollbacks"][0]["status"], "succeeded");
    for e in j["expectations"].as_array().unwrap() {
        assert_eq!(e["passed"], true, "{e}");
        assert!(!e["measured"].as_str().unwrap().is_empty(), "{e}");
        assert!(!e["expected"].as_str().unwrap().is_empty(), "{e}");
    }
    let m = &j["measurements"];
    assert!(m["requests_sent"].as_u64().unwrap() > 40, "{m}");
    assert_eq!(m["counter_ok"], true, "{m}");
    assert!(m["time_to_detect_s"].as_f64().is_some(), "{m}");
    assert!(m["time_to_recover_s"].as_f64().is_some(), "{m}");
    let spans: Vec<&str> = m["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(spans, ["baseline", "slow..clear", "clear..end"]);
    assert!(
        !j["timeline"]["ready_replicas"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// The JUnit file has one passing test case per steady-state probe and
/// expectation; the HTML report is self-contained.
fn assert_the_held_junit_and_html(dir: &Path) {
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"latency\""), "{junit}");
    assert_eq!(
        junit.matches("<testcase").count(),
        5,
        "2 steady-state probes + 3 expectations: {junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("latency, then clear"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
}

#[test]
fn a_held_experiment_exits_0_with_journal_junit_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "latency.toml", LATENCY);
    let labs = dir.path().join("labs");
    let out = experiment(
        dir.path(),
        &[
            "run",
            file.to_str().unwrap(),
            "--journal",
            "j.json",
            "--junit",
            "junit.xml",
            "--html",
            "report.html",
            "--keep-lab",
            labs.to_str().unwrap(),
        ],
    );
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    // The live view and the verdict table.
    assert!(
        printed.contains("step slow: fault network latency"),
        "{printed}"
    );
    assert!(printed.contains("EXPECTATION"), "{printed}");
    assert!(
        printed.contains("latency: completed (3/3 expectations held)"),
        "{printed}"
    );

    assert_the_held_journal(&journal(&dir.path().join("j.json")));
    assert_the_held_junit_and_html(dir.path());

    // The lab was stopped: nothing runs from its directory any more.
    let leftover = processes_mentioning(labs.to_str().unwrap());
    assert!(leftover.is_empty(), "left running: {leftover:?}");
}

#[test]
fn a_deviation_exits_1_and_still_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = run_journaled(
        dir.path(),
        "never.toml",
        r#"
title = "expects an outage that never comes"
[lab]
replicas = 1
[[method]]
id = "pause"
action = "wait 500ms"
[[expect]]
name = "a 503 that never comes"
after = "pause"
within = "1s"
probe = { http = "/", status = 503 }
[[rollback]]
action = "fault clear --all"
"#,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(j["status"], "deviated");
    assert_eq!(j["deviated"], true);
    let e = &j["expectations"][0];
    assert_eq!(e["passed"], false);
    assert!(e["measured"].as_str().unwrap().contains("last: 200"), "{e}");
    assert_eq!(j["rollbacks"][0]["status"], "succeeded");
}

#[test]
fn a_failed_step_exits_2_after_rolling_back() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = run_journaled(
        dir.path(),
        "bad-step.toml",
        r#"
title = "a step that fails"
[lab]
replicas = 1
[[method]]
id = "cut"
action = "fault network block --duration 0 --no-reset"
[[method]]
id = "kill-nobody"
at = "500ms"
action = "fault kill --replica no-such-replica"
[[method]]
id = "never"
at = "1s"
action = "wait 1s"
[[expect]]
name = "anything"
after = "never"
within = "1s"
probe = { http = "/", status = 200 }
[[rollback]]
action = "fault clear --all"
"#,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(j["status"], "aborted");
    assert!(
        j["reason"].as_str().unwrap().contains("kill-nobody"),
        "{}",
        j["reason"]
    );
    let run: Vec<&str> = j["run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        run,
        ["succeeded", "failed"],
        "the method stopped at the failed step"
    );
    // The rollback cleared the network rule the first step added.
    assert_eq!(j["rollbacks"][0]["status"], "succeeded");
    assert!(
        j["rollbacks"][0]["output"]
            .as_str()
            .unwrap()
            .contains("cleared"),
        "{}",
        j["rollbacks"][0]
    );
}

#[test]
fn a_failed_rollback_exits_2_saying_what_may_be_left() {
    let dir = tempfile::tempdir().unwrap();
    let (out, j) = run_journaled(
        dir.path(),
        "stuck.toml",
        r#"
title = "a rollback that fails"
duration = "1s"
[lab]
replicas = 1
probes = "quick"
[[rollback]]
action = "revisions activate no-such-revision"
"#,
    );
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(2), "{printed}");
    assert_eq!(j["status"], "aborted", "{j}");
    assert_eq!(j["rollbacks"][0]["status"], "failed", "{j}");
    let reason = j["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("rollback failed (revisions activate no-such-revision)"),
        "{reason}"
    );
}

#[test]
fn validation_names_file_line_and_key_before_any_lab_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "broken.toml",
        r#"title = "broken"
[[method]]
id = "cut"
at = "soon"
action = "fault network blok"
[[expect]]
name = "e"
after = "cutt"
probe = { http = "/", stauts = 200 }
"#,
    );
    for command in ["validate", "run"] {
        let out = experiment(dir.path(), &[command, file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        // The runner says "starting a lab in …" before it starts one.
        assert!(
            !text(&out).contains("starting a lab"),
            "no lab was started: {err}"
        );
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(err.contains("broken.toml:4: method[0].at"), "{err}");
        assert!(
            err.contains("broken.toml:5: method[0].action: unrecognized subcommand 'blok'"),
            "{err}"
        );
        assert!(
            err.contains("expect[0].after: no step has the id `cutt` (did you mean `cut`?)"),
            "{err}"
        );
        assert!(err.contains("did you mean `status`"), "{err}");
    }
    let out = experiment(dir.path(), &["run", "no-such-experiment"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("not a built-in: startup"),
        "{}",
        text(&out)
    );
    let unknown = write(dir.path(), "unknown.toml", "title = \"x\"\ntitel = \"y\"\n");
    let out = experiment(dir.path(), &["validate", unknown.to_str().unwrap()]);
    assert!(
        text(&out).contains("unknown.toml:2: titel: unknown key `titel`; did you mean `title`?"),
        "{}",
        text(&out)
    );
}

#[test]
fn list_and_show_give_every_builtin_as_a_valid_starting_point() {
    let dir = tempfile::tempdir().unwrap();
    let out = experiment(dir.path(), &["list"]);
    let listed = text(&out);
    for name in [
        "startup",
        "root",
        "health",
        "network-cut",
        "credential-failure",
        "hang-restart",
        "hang-tcp-liveness",
        "internal-load",
        "autoscale",
        "cascade",
        "network-rule",
        "bad-image",
    ] {
        assert!(listed.contains(name), "{name} listed: {listed}");
        let shown = experiment(dir.path(), &["show", name]);
        assert_eq!(shown.status.code(), Some(0));
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, &shown.stdout).unwrap();
        let valid = experiment(dir.path(), &["validate", file.to_str().unwrap()]);
        assert_eq!(valid.status.code(), Some(0), "{}", text(&valid));
    }
    assert_eq!(
        experiment(dir.path(), &["show", "nope"]).status.code(),
        Some(2)
    );
}

/// Spawns `chaoslab experiment run FILE [extra]` in the background.
fn spawn_run(dir: &Path, file: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(["experiment", "run"])
        .arg(file)
        .args(extra)
        .current_dir(dir)
        .env_remove("CHAOSLAB_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("run.out")).unwrap())
        .stderr(std::fs::File::create(dir.join("run.err")).unwrap())
        .spawn()
        .expect("spawn")
}

/// Waits for the experiment to exit (killing it after `within`); its code.
fn wait_exit(child: &mut std::process::Child, within: Duration) -> Option<i32> {
    let status = process::wait_exit(child, within);
    if status.is_none() {
        process::kill_and_reap(child);
        panic!("the experiment did not exit within {within:?}");
    }
    status.and_then(|s| s.code())
}

const LONG_CUT: &str = r#"
title = "a long cut, interrupted"
duration = "60s"
[load]
rate = "10/s"
[[method]]
id = "cut"
at = "500ms"
action = "fault network block --duration 0 --no-reset"
[[method]]
id = "much-later"
at = "50s"
action = "clear"
[[expect]]
name = "recovers"
after = "much-later"
within = "5s"
probe = { http = "/", status = 200 }
[[rollback]]
action = "fault clear --all"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_method_rolls_back_the_attached_labs_fault_and_exits_130() {
    let lab = builder().start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "cut.toml", LONG_CUT);
    let mut child = spawn_run(
        dir.path(),
        &file,
        &[
            "--attach",
            lab.dir().to_str().unwrap(),
            "--journal",
            "j.json",
        ],
    );
    // The fault is in place: the method is under way.
    eventually(
        chaoslab_test_support::GENEROUS,
        "the cut is active",
        || async {
            let faults = lab.api("/api/faults").await;
            (faults.as_array().is_some_and(|f| !f.is_empty())).then_some(())
        },
    )
    .await;
    assert!(process::signal(child.id(), libc::SIGINT));
    let code = wait_exit(&mut child, GENEROUS);
    let out = std::fs::read_to_string(dir.path().join("run.out")).unwrap_or_default();
    assert_eq!(code, Some(130), "{out}");
    let faults = lab.api("/api/faults").await;
    assert_eq!(
        faults,
        serde_json::json!([]),
        "the rollback cleared the fault"
    );
    let j = journal(&dir.path().join("j.json"));
    assert_eq!(j["status"], "interrupted");
    assert_eq!(j["rollbacks"][0]["status"], "succeeded");
    assert_eq!(j["experiment"]["lab"], lab.dir().to_str().unwrap());
    // The attached lab is the user's: it keeps running.
    let r = lab.http.get(lab.ingress("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn sigterm_mid_method_stops_the_own_lab_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "cut.toml", LONG_CUT);
    let labs = dir.path().join("labs");
    let mut child = spawn_run(
        dir.path(),
        &file,
        &["--keep-lab", labs.to_str().unwrap(), "--journal", "j.json"],
    );
    let marker = labs.to_str().unwrap().to_string();
    // Wait until the method runs (its first step printed).
    until(GENEROUS, "the method to start (step cut printed)", || {
        std::fs::read_to_string(dir.path().join("run.out"))
            .unwrap_or_default()
            .contains("step cut")
    });
    assert!(!processes_mentioning(&marker).is_empty(), "the lab runs");
    assert!(process::signal(child.id(), libc::SIGTERM));
    let code = wait_exit(&mut child, GENEROUS);
    let out = std::fs::read_to_string(dir.path().join("run.out")).unwrap_or_default();
    assert_eq!(code, Some(130), "{out}");
    let j = journal(&dir.path().join("j.json"));
    assert_eq!(j["status"], "interrupted");
    assert_eq!(j["rollbacks"][0]["status"], "succeeded");
    // Lab, Redis, replicas and the load: all gone.
    let gone = chaoslab_test_support::wait::poll(GENEROUS, || {
        processes_mentioning(&marker).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "left running: {:?}",
        processes_mentioning(&marker)
    );
}

/// A lab whose replicas are not ready for half a minute: its start is
/// still under way when the run is interrupted.
const SLOW_START: &str = r#"
title = "a lab slow to be ready"
duration = "10s"
[lab.probes.readiness]
initial_delay_seconds = 30
[[method]]
id = "never-reached"
at = "1s"
action = "clear"
"#;

#[test]
fn sigterm_while_the_own_lab_starts_stops_it_as_any_lab_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "slow.toml", SLOW_START);
    let labs = dir.path().join("labs");
    // A relative --keep-lab (the run's directory is `dir`): the lab, which
    // runs in its own directory, must still find its files.
    let mut child = spawn_run(dir.path(), &file, &["--keep-lab", "labs"]);
    let marker = labs.to_str().unwrap().to_string();
    let lab = labs.join("slow-lab");
    // The lab is up but its replicas are not ready: the run is starting it.
    until(GENEROUS, "the lab's state file", || {
        lab.join(".chaoslab/lab.json").exists()
    });
    assert!(process::signal(child.id(), libc::SIGTERM));
    let stopping = std::time::Instant::now();
    let code = wait_exit(&mut child, GENEROUS);
    // The lab stops when asked, not when its wait for a ready replica
    // (30 s) runs out.
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "stopped after {:?}",
        stopping.elapsed()
    );
    let out = std::fs::read_to_string(dir.path().join("run.out")).unwrap_or_default();
    assert_eq!(code, Some(130), "{out}");
    assert!(
        !out.contains("never-reached"),
        "interrupted after the start: {out}"
    );
    // Stopped as a lab stops (SIGTERM: replicas, faults, Redis, its kernel
    // state), not killed half-way.
    let log = std::fs::read_to_string(lab.join("up.log")).unwrap_or_default();
    assert!(log.contains("lab stopped"), "{log}");
    let gone = chaoslab_test_support::wait::poll(GENEROUS, || {
        processes_mentioning(&marker).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "left running: {:?}",
        processes_mentioning(&marker)
    );
}

#[test]
fn a_chaostoolkit_file_runs_and_other_providers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ctk.json",
        r#"{
  "title": "Chaos Toolkit: kill a replica, the platform restarts it",
  "configuration": {"ingress": {"type": "env", "key": "CHAOSLAB_INGRESS_URL"}},
  "steady-state-hypothesis": {"title": "serving", "probes": [
    {"type": "probe", "name": "root-200", "tolerance": 200,
     "provider": {"type": "http", "url": "${ingress}/", "timeout": 3}}]},
  "method": [
    {"type": "action", "name": "kill", "pauses": {"after": 2},
     "provider": {"type": "process", "path": "chaoslab", "arguments": "fault kill --all"}},
    {"type": "probe", "name": "health",
     "provider": {"type": "http", "url": "${ingress}/health", "timeout": 3}}
  ],
  "rollbacks": []
}"#,
    );
    // The process provider finds `chaoslab` on PATH, as under `chaos run`.
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(BIN)
        .args(["experiment", "run", "ctk.json", "--journal", "j.json"])
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j = journal(&dir.path().join("j.json"));
    let run: Vec<(&str, &str)> = j["run"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["activity"]["name"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        run,
        [
            ("kill", "succeeded"),
            ("kill-2", "succeeded"),
            ("health", "succeeded")
        ]
    );
    assert_eq!(j["steady_states"]["after"]["steady_state_met"], true);

    // The shipped example drives Toxiproxy through a python provider.
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/chaostoolkit/redis-cut.json");
    let out = experiment(dir.path(), &["run", example.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("python provider (chaostoxi.proxy.actions.disable_proxy)"),
        "{}",
        text(&out)
    );
}

/// A short experiment: one replica, light load, one wait; run twice side
/// by side under two names.
const SHORT: &str = r#"
title = "short"
duration = "3s"
[lab]
replicas = 1
[load]
rate = "10/s"
[[method]]
id = "pause"
action = "wait 1s"
[[expect]]
name = "answers"
after = "pause"
within = "3s"
probe = { http = "/", status = 200 }
[[expect]]
name = "no error"
probe = { metric = "error_rate", equals = 0 }
"#;

/// `all.json` holds both journals, completed, in the order given; the
/// report directory has each one's journal and HTML and one JUnit file.
fn assert_both_journals_and_reports(dir: &Path) {
    let all = journal(&dir.join("all.json"));
    let all = all.as_array().expect("an array of journals");
    assert_eq!(all.len(), 2);
    let names: Vec<&str> = all
        .iter()
        .map(|j| {
            assert_eq!(j["status"], "completed", "{}", j["reason"]);
            j["experiment"]["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, ["first", "second"]);
    for name in [
        "first.journal.json",
        "first.html",
        "second.journal.json",
        "second.html",
        "junit.xml",
    ] {
        assert!(dir.join("reports").join(name).exists(), "{name} written");
    }
}

#[test]
fn jobs_run_experiments_side_by_side_each_with_its_own_lab() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "first.toml", SHORT);
    let b = write(dir.path(), "second.toml", SHORT);
    let out = experiment(
        dir.path(),
        &[
            "run",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--jobs",
            "2",
            "--report-dir",
            "reports",
            "--journal",
            "all.json",
        ],
    );
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    // Lines of concurrent runs are prefixed with their experiment.
    assert!(
        printed.contains("[first] ") && printed.contains("[second] "),
        "{printed}"
    );
    assert_both_journals_and_reports(dir.path());
    // --html is for one experiment.
    let out = experiment(
        dir.path(),
        &[
            "run",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--html",
            "x.html",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("use --report-dir"), "{}", text(&out));
}
