//! End-to-end: every command that prints a human table also takes `--json`
//! and then prints the control API's JSON (whole answers pretty, streams one
//! object per line), and the human views come from the one output crate in
//! one style — capitalised headers, no colour when standard output is not a
//! terminal (issue 12 item 3). Against a real `chaoslab up`.

#[path = "lab_support/mod.rs"]
mod lab_support;

use chaoslab_test_support::lab::ok;
use lab_support::{BIN, Lab, builder};
use serde_json::Value;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Every non-empty line is a JSON object.
fn json_lines(text: &str) -> Vec<Value> {
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(json)
        .collect();
    assert!(!lines.is_empty(), "no lines: {text}");
    lines
}

fn plain(what: &str, text: &str) {
    assert!(!text.contains('\x1b'), "{what} coloured on a pipe: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_and_their_json() {
    let lab = builder().start().await;

    let status = json(&ok(&lab, &["status", "--json"]).await);
    assert!(
        status["replicas"].as_array().is_some_and(|r| !r.is_empty()),
        "{status}"
    );
    let human = ok(&lab, &["status"]).await;
    plain("status", &human);
    assert!(human.lines().any(|l| l.starts_with("REPLICA ")), "{human}");
    assert!(human.lines().any(|l| l.starts_with("REVISION ")), "{human}");
    assert!(human.contains("faults     none"), "{human}");

    revisions_table_and_json(&lab, &status).await;

    let events = json_lines(&ok(&lab, &["events", "--json", "--tail", "50"]).await);
    assert!(
        events
            .iter()
            .all(|e| e["seq"].is_u64() && e["reason"].is_string())
    );
    plain("events", &ok(&lab, &["events", "--tail", "50"]).await);

    let logs = json_lines(&ok(&lab, &["logs", "--json", "--tail", "5"]).await);
    assert!(
        logs.iter()
            .all(|l| l["replica"].is_string() && l["line"].is_string())
    );

    let chaos = json(&ok(&lab, &["chaos", "status", "--json"]).await);
    assert_eq!(chaos["via"], "ingress", "{chaos}");
    assert_eq!(chaos["answers"][0]["status"], 200, "{chaos}");
    let human = ok(&lab, &["chaos", "status"]).await;
    assert!(human.contains(": 200 "), "{human}");

    fault_list_table_and_json(&lab).await;
    ok(&lab, &["fault", "clear", "--all"]).await;
}

/// `revisions --json` names the active revision first; the human table
/// shows it as its first row.
async fn revisions_table_and_json(lab: &Lab, status: &Value) {
    let revisions = json(&ok(lab, &["revisions", "--json"]).await);
    let name = revisions[0]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(status["active_revision"], name.as_str(), "{revisions}");
    let human = ok(lab, &["revisions"]).await;
    plain("revisions", &human);
    assert!(human.starts_with("REVISION "), "{human}");
    let row: Vec<&str> = human
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // Name, created, state (it may still be Provisioning just after up).
    assert_eq!(row.first(), Some(&name.as_str()), "{human}");
    assert!(
        matches!(row.get(2), Some(&"Running" | &"Provisioning")),
        "{human}"
    );
}

/// `fault list --json` is empty, then shows a latency fault; so does the
/// human table.
async fn fault_list_table_and_json(lab: &Lab) {
    assert_eq!(
        json(&ok(lab, &["fault", "list", "--json"]).await),
        Value::Array(vec![])
    );
    ok(
        lab,
        &[
            "fault",
            "network",
            "latency",
            "--ms",
            "5",
            "--duration",
            "0",
        ],
    )
    .await;
    let faults = json(&ok(lab, &["fault", "list", "--json"]).await);
    assert_eq!(faults[0]["mode"], "latency", "{faults}");
    let human = ok(lab, &["fault", "list"]).await;
    plain("fault list", &human);
    assert!(human.starts_with("ID "), "{human}");
    assert!(human.contains("latency_ms=5"), "{human}");
}

#[test]
fn experiment_list_as_a_table_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = json(&run(&["experiment", "list", "--json"]));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(names.contains(&"network-cut"), "{listed}");
    assert!(listed[0]["title"].is_string() && listed[0]["flow"].is_string());
    let human = run(&["experiment", "list"]);
    plain("experiment list", &human);
    assert!(human.starts_with("NAME "), "{human}");
    for name in names {
        assert!(
            human.lines().any(|l| l.starts_with(name)),
            "{name}: {human}"
        );
    }
}
