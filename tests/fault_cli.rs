//! End-to-end: bad input to the fault commands is one clear line, exit 1,
//! and changes nothing (unknown mode, negative duration, unknown replica, no
//! lab running); `chaos …` reaches the service's chaos API through the
//! ingress or on every replica; the Toxiproxy-compatible API's toxics show
//! in `fault list` and events; `down` clears every fault.

mod fault_support;
#[path = "lab_support/mod.rs"]
mod lab_support;

use fault_support::{fault_events, fault_lab, faults, get, ok};
use lab_support::BIN;

fn one_line_error(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "should fail: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_clear_line_and_changes_nothing() {
    let lab = fault_lab().start().await;
    let cases: [(&[&str], &str); 7] = [
        (
            &["fault", "network", "block", "--mode", "sideways"],
            "unknown network mode `sideways`",
        ),
        (
            &["fault", "network", "block", "--duration", "-5"],
            "--duration must be 0",
        ),
        (
            &["fault", "network", "latency", "--ms", "-1"],
            "--ms must be 0 or more",
        ),
        (
            &["fault", "kill", "--replica", "no-such-replica"],
            "unknown replica `no-such-replica`",
        ),
        (
            &["fault", "deploy", "bad-mood"],
            "unknown deploy variant `bad-mood`",
        ),
        (
            &["fault", "redis", "explode"],
            "unknown redis action `explode`",
        ),
        (&["fault", "auth", "forget"], "unknown auth action `forget`"),
    ];
    let names = async || {
        let revisions = lab.api("/api/revisions").await;
        let names: Vec<String> = revisions
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect();
        names
    };
    let revisions = names().await;
    for (args, expected) in cases {
        let err = one_line_error(&lab.cli(args).await);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert!(faults(&lab).await.is_empty());
    assert!(fault_events(&lab).await.is_empty());
    assert_eq!(names().await, revisions, "no revision was created");
    assert_eq!(get(&lab, &lab.ingress("/")).await.status, 200);
}

#[tokio::test]
async fn no_lab_running_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["fault", "list"][..],
        &["fault", "network", "block"],
        &["chaos", "status"],
    ] {
        let out = tokio::process::Command::new(BIN)
            .args(args)
            .current_dir(dir.path())
            .env_remove("CHAOSLAB_STATE_DIR")
            .output()
            .await
            .unwrap();
        let err = one_line_error(&out);
        assert!(
            err.contains("no lab running in .chaoslab: start one with `chaoslab up`"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_through_the_ingress_or_on_every_replica() {
    let lab = fault_lab().replicas(2).start().await;
    let out = ok(&lab, &["chaos", "status"]).await;
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(": 200 "), "{out}");
    let out = ok(&lab, &["chaos", "redis-reset", "--all-replicas"]).await;
    assert_eq!(out.matches("redis_connections_reset").count(), 2, "{out}");
    let out = ok(
        &lab,
        &["chaos", "load", "low", "--duration", "2", "--all-replicas"],
    )
    .await;
    assert_eq!(out.matches("load_started").count(), 2, "{out}");
    let out = ok(&lab, &["chaos", "status", "--all-replicas"]).await;
    assert_eq!(out.matches("\"active\":true").count(), 2, "{out}");
    // A request-scope hang is held open by the lab and reported as started.
    let out = ok(&lab, &["chaos", "hang", "--duration", "2"]).await;
    assert!(out.contains("hang started"), "{out}");
    // A bad level is the service's 400, reported, exit 1.
    let out = lab
        .cli(&["chaos", "load", "extreme", "--duration", "2"])
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 400 "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_api_toxics_are_faults_and_down_clears_everything() {
    let mut lab = fault_lab().start().await;
    let status = lab.api("/api/status").await;
    let toxiproxy = status["lab"]["toxiproxy_url"]
        .as_str()
        .expect("toxiproxy_url")
        .to_string();
    let proxies: serde_json::Value = lab
        .http
        .get(format!("{toxiproxy}/proxies"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(proxies["redis"]["upstream"].is_string(), "{proxies}");
    let added = lab
        .http
        .post(format!("{toxiproxy}/proxies/redis/toxics"))
        .json(&serde_json::json!({"name": "slow", "type": "latency", "attributes": {"latency": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let list = faults(&lab).await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["id"].as_str(), list[0]["origin"].as_str()),
        (Some("slow"), Some("api"))
    );
    ok(
        &lab,
        &[
            "fault",
            "network",
            "block",
            "--mode",
            "blackhole",
            "--no-reset",
            "--duration",
            "0",
        ],
    )
    .await;
    assert_eq!(faults(&lab).await.len(), 2);
    let events = fault_events(&lab).await;
    assert!(
        events.contains(&("FaultInjected".into(), "slow".into())),
        "{events:?}"
    );

    ok(&lab, &["down"]).await;
    assert_eq!(
        lab.wait_exit(chaoslab_test_support::GENEROUS).await,
        Some(0)
    );
    // `up` prints every event until the last one, LabStopped.
    let output = lab.output();
    assert_eq!(output.matches("FaultCleared").count(), 2, "{output}");
    assert!(output.contains("LabStopped"), "{output}");
}
