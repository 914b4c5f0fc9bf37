//! End-to-end: Chaos Toolkit against a real `chaoslab up`.
//!
//! - What chaostoolkit-toxiproxy's `disable_proxy` sends (`POST
//!   /proxies/redis {"enabled": false}` on the lab's Toxiproxy-compatible
//!   API) is an active fault everywhere: `/` answers 503, `fault list`
//!   (table and JSON), `status` and `/api/faults` show `redis-disabled`, it
//!   is announced, `fault clear --all` and `fault clear redis-disabled`
//!   enable the proxy again (200 again), and `down` clears it.
//! - A real `chaos run` of docs/examples/chaostoolkit/redis-cut.json,
//!   unchanged, with the lab's endpoints in the environment: the journal
//!   says completed, not deviated, every activity and rollback succeeded,
//!   the 503 was seen and the lab listed the cut. Skipped with a note when
//!   `chaos` or chaostoolkit-toxiproxy is missing (fails under `CI`; run
//!   .ci/setup.d/chaostoolkit.sh).

mod fault_support;
#[path = "lab_support/mod.rs"]
mod lab_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chaoslab_test_support::tool;

use fault_support::{fault_events, fault_lab, faults, get, ok};
use lab_support::{BIN, Lab, eventually};
use serde_json::{Value, json};

/// `POST /proxies/redis` with `{"enabled": enabled}`, as
/// chaostoolkit-toxiproxy's `disable_proxy` / `enable_proxy` send it.
async fn set_enabled(lab: &Lab, toxiproxy: &str, enabled: bool) {
    let answer: Value = lab
        .http
        .post(format!("{toxiproxy}/proxies/redis"))
        .json(&json!({ "enabled": enabled }))
        .send()
        .await
        .expect("Toxiproxy API")
        .json()
        .await
        .expect("Toxiproxy API JSON");
    assert_eq!(answer["enabled"], enabled, "{answer}");
}

async fn proxy_enabled(lab: &Lab, toxiproxy: &str) -> bool {
    let proxy: Value = lab
        .http
        .get(format!("{toxiproxy}/proxies/redis"))
        .send()
        .await
        .expect("Toxiproxy API")
        .json()
        .await
        .expect("Toxiproxy API JSON");
    proxy["enabled"] == true
}

/// Waits until `/` answers `status` through the ingress.
async fn root_answers(lab: &Lab, status: u16, deadline: Duration) {
    let url = lab.ingress("/");
    eventually(deadline, &format!("/ answers {status}"), || {
        let url = url.clone();
        async move { (get(lab, &url).await.status == status).then_some(()) }
    })
    .await;
}

/// Waits until the lab's fault events are exactly `expected`.
async fn fault_events_are(lab: &Lab, expected: &[(&str, &str)]) {
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(r, id)| (r.to_string(), id.to_string()))
        .collect();
    let seen = chaoslab_test_support::wait::poll_async(chaoslab_test_support::GENEROUS, || async {
        (fault_events(lab).await == expected).then_some(())
    })
    .await;
    if seen.is_none() {
        assert_eq!(fault_events(lab).await, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_disabled_through_the_toxiproxy_api_is_an_active_fault_everywhere() {
    let mut lab = fault_lab().start().await;
    let toxiproxy = lab.toxiproxy_url().await;
    assert!(proxy_enabled(&lab, &toxiproxy).await);

    // disable_proxy: Redis cut off, the service answers 503.
    set_enabled(&lab, &toxiproxy, false).await;
    let answer = get(&lab, &lab.ingress("/")).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    // Listed with an id, kind and mode, by the API, the CLI and status.
    assert_listed_everywhere(&lab).await;
    fault_events_are(&lab, &[("FaultInjected", "redis-disabled")]).await;

    // `fault clear --all` enables it again: 200 without a restart.
    let out = ok(&lab, &["fault", "clear", "--all"]).await;
    assert!(out.contains("redis-disabled"), "{out}");
    assert!(proxy_enabled(&lab, &toxiproxy).await);
    assert!(faults(&lab).await.is_empty());
    root_answers(&lab, 200, Duration::from_secs(15)).await;
    fault_events_are(
        &lab,
        &[
            ("FaultInjected", "redis-disabled"),
            ("FaultCleared", "redis-disabled"),
        ],
    )
    .await;

    // `fault clear ID`, then again (idempotent).
    set_enabled(&lab, &toxiproxy, false).await;
    let out = ok(&lab, &["fault", "clear", "redis-disabled"]).await;
    assert!(out.contains("fault redis-disabled cleared"), "{out}");
    let out = ok(&lab, &["fault", "clear", "redis-disabled"]).await;
    assert!(out.contains("not active"), "{out}");
    assert!(proxy_enabled(&lab, &toxiproxy).await);
    root_answers(&lab, 200, Duration::from_secs(15)).await;

    // Disabled when the lab stops: cleared and announced before LabStopped.
    set_enabled(&lab, &toxiproxy, false).await;
    fault_events_are(
        &lab,
        &[
            ("FaultInjected", "redis-disabled"),
            ("FaultCleared", "redis-disabled"),
            ("FaultInjected", "redis-disabled"),
            ("FaultCleared", "redis-disabled"),
            ("FaultInjected", "redis-disabled"),
        ],
    )
    .await;
    ok(&lab, &["down"]).await;
    assert_eq!(
        lab.wait_exit(chaoslab_test_support::GENEROUS).await,
        Some(0)
    );
    let output = lab.output();
    assert_eq!(output.matches("FaultCleared").count(), 3, "{output}");
    let cleared = output.rfind("FaultCleared").unwrap_or(0);
    assert!(
        output
            .rfind("LabStopped")
            .is_some_and(|stopped| stopped > cleared),
        "{output}"
    );
}

/// The disabled proxy is the fault `redis-disabled` (network,
/// proxy-disabled, on redis, from the API) in `/api/faults`, `fault list`
/// (table and JSON) and `status`.
async fn assert_listed_everywhere(lab: &Lab) {
    let list = faults(lab).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], "redis-disabled");
    assert_eq!(list[0]["kind"], "network");
    assert_eq!(list[0]["mode"], "proxy-disabled");
    assert_eq!(list[0]["target"], "redis");
    assert_eq!(list[0]["origin"], "api");
    let table = ok(lab, &["fault", "list"]).await;
    assert!(
        table.contains("redis-disabled") && table.contains("mode=proxy-disabled"),
        "{table}"
    );
    let listed: Value =
        serde_json::from_str(&ok(lab, &["fault", "list", "--json"]).await).expect("JSON");
    assert_eq!(listed[0]["id"], "redis-disabled", "{listed}");
    let status = ok(lab, &["status"]).await;
    assert!(status.contains("redis-disabled"), "{status}");
}

/// Whether `chaos` and chaostoolkit-toxiproxy (module `chaostoxi`) are
/// installed.
fn chaos_toolkit_installed() -> bool {
    tool::runs("chaos", &["--version"])
        && tool::runs("python3", &["-c", "import chaostoxi.proxy.actions"])
}

/// `PATH` with the directory of the `chaoslab` under test first, so the
/// experiment's `process` activities run it.
fn path_with_chaoslab() -> std::ffi::OsString {
    let bin_dir = Path::new(BIN).parent().expect("binary directory");
    let mut dirs = vec![bin_dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("PATH")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/chaostoolkit/redis-cut.json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_run_of_the_redis_cut_example_succeeds_against_the_lab() {
    if !chaos_toolkit_installed() {
        let note =
            "chaostoolkit / chaostoolkit-toxiproxy not installed (run .ci/setup.d/chaostoolkit.sh)";
        tool::present_or_skip(false, note);
        return;
    }
    let lab = fault_lab().start().await;
    let toxiproxy = lab.toxiproxy_url().await;
    let port = toxiproxy.rsplit(':').next().expect("port").to_string();
    let journal_path = lab.dir().join("journal.json");

    let log = chaos_run(&lab, &journal_path, &port).await;
    assert_journal_completed_with_the_cut_seen(&journal_path, &log);

    // Nothing left behind: no fault, the proxy enabled, the events paired.
    assert!(faults(&lab).await.is_empty());
    assert!(proxy_enabled(&lab, &toxiproxy).await);
    fault_events_are(
        &lab,
        &[
            ("FaultInjected", "redis-disabled"),
            ("FaultCleared", "redis-disabled"),
        ],
    )
    .await;
}

/// `chaos run` of the example against the lab (bounded: 120 s); panics
/// unless it succeeds; what it printed.
async fn chaos_run(lab: &Lab, journal_path: &Path, toxiproxy_port: &str) -> String {
    let run = tokio::process::Command::new("chaos")
        .arg("--no-log-file")
        .arg("run")
        .arg("--journal-path")
        .arg(journal_path)
        .arg(example())
        .current_dir(lab.dir())
        .env("PATH", path_with_chaoslab())
        .env("CHAOSLAB_STATE_DIR", lab.state_dir())
        .env("CHAOSLAB_INGRESS_URL", lab.ingress(""))
        .env("CHAOSLAB_TOXIPROXY_HOST", "127.0.0.1")
        .env("CHAOSLAB_TOXIPROXY_PORT", toxiproxy_port)
        .env("CHAOSLAB_RECOVERY_SECONDS", "5")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chaos run finished within 120 s")
        .expect("chaos runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "chaos run failed:\n{log}");
    log
}

/// The journal: completed, not deviated, steady states met, every activity
/// succeeded, the cut seen as a 503 and listed by the lab as a fault.
fn assert_journal_completed_with_the_cut_seen(journal_path: &Path, log: &str) {
    let journal: Value = serde_json::from_str(
        &std::fs::read_to_string(journal_path).unwrap_or_else(|e| panic!("journal: {e}\n{log}")),
    )
    .expect("journal JSON");
    assert_eq!(journal["status"], "completed", "{log}");
    assert_eq!(journal["deviated"], false, "{log}");
    assert_eq!(journal["steady_states"]["before"]["steady_state_met"], true);
    assert_eq!(
        journal["steady_states"]["after"]["steady_state_met"], true,
        "{log}"
    );
    let entries = |key: &str| journal[key].as_array().cloned().unwrap_or_default();
    let (run, rollbacks) = (entries("run"), entries("rollbacks"));
    assert_eq!(run.len(), 4, "{log}");
    assert_eq!(rollbacks.len(), 2, "{log}");
    for entry in run.iter().chain(&rollbacks) {
        assert_eq!(
            entry["status"], "succeeded",
            "{}: {}",
            entry["activity"]["name"], entry["output"]
        );
    }
    let by_name = |name: &str| {
        run.iter()
            .find(|e| e["activity"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} in the journal"))
            .clone()
    };
    // The cut was seen: 503 from the service or the ingress.
    let cut = by_name("root-answers-503");
    assert_eq!(cut["output"]["status"], 503, "{}", cut["output"]);
    // The lab listed the disabled proxy as a fault.
    let listed = by_name("lab-lists-the-cut-as-a-fault");
    assert_eq!(listed["output"]["status"], 0, "{}", listed["output"]);
    let faults_then: Value =
        serde_json::from_str(listed["output"]["stdout"].as_str().unwrap_or_default())
            .expect("fault list --json output");
    assert_eq!(faults_then[0]["id"], "redis-disabled", "{faults_then}");
    assert_eq!(faults_then[0]["mode"], "proxy-disabled");
}
