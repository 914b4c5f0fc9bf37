//! Seed flow 6 end to end: a process-scope hang on one replica. With an
//! http liveness probe the replica leaves the ingress, is restarted (restart
//! count 1) and traffic keeps flowing through the other; with the seed's tcp
//! liveness probe the hung process still accepts connections, so it is only
//! unready, never restarted — the lesson the seed deployment teaches.

mod lab_support;

use std::time::Duration;

use lab_support::{Lab, builder, eventually};
use serde_json::{Value, json};

fn lab_with_liveness(kind: &str) -> lab_support::LabBuilder {
    builder()
        .replicas(2)
        .set("probes.liveness", "type", format!("\"{kind}\""))
        .set("probes.liveness", "initial_delay_seconds", 0.5)
        .set("probes.liveness", "period_seconds", 0.3)
        .set("probes.liveness", "timeout_seconds", 0.3)
        .set("probes.liveness", "failure_threshold", 3)
        .set("probes.readiness", "failure_threshold", 2)
        .set("probes.readiness", "success_threshold", 1)
}

async fn replica(lab: &Lab, id: &str) -> Value {
    lab.status().await["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Hangs one of two ready replicas; returns (hung id, other id, the hanging
/// request). A hang ends when its client goes away, so the request is kept
/// open until the test drops it.
async fn hang_one(lab: &Lab) -> (String, String, tokio::task::JoinHandle<()>) {
    let replicas = eventually(
        chaoslab_test_support::GENEROUS,
        "two ready replicas",
        || async {
            let r = lab.active_replicas().await;
            (r.iter().filter(|r| r["ready"] == true).count() == 2).then_some(r)
        },
    )
    .await;
    let hung = replicas[0]["id"].as_str().unwrap().to_string();
    let other = replicas[1]["id"].as_str().unwrap().to_string();
    let port = replicas[0]["target_port"].as_u64().unwrap();
    let hanging = tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/chaos/hang"))
            .json(&json!({"duration_seconds": 0, "scope": "process"}))
            .timeout(Duration::from_secs(60))
            .send()
            .await;
    });
    eventually(
        chaoslab_test_support::GENEROUS,
        "hung replica unready",
        || async { (replica(lab, &hung).await["ready"] == false).then_some(()) },
    )
    .await;
    (hung, other, hanging)
}

async fn traffic_flows_through(lab: &Lab, other: &str) {
    for _ in 0..10 {
        let response = lab
            .http
            .get(lab.ingress("/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["replica"], other);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_liveness_restarts_a_hung_replica() {
    let lab = lab_with_liveness("http").start().await;
    let (hung, other, _hanging) = hang_one(&lab).await;
    traffic_flows_through(&lab, &other).await;
    let restarted = eventually(
        chaoslab_test_support::GENEROUS,
        "hung replica restarted",
        || async {
            let r = replica(&lab, &hung).await;
            (r["restarts"] == 1).then_some(r)
        },
    )
    .await;
    assert_eq!(
        restarted["last_exit"]["reason"], "LivenessProbeFailed",
        "{restarted}"
    );
    eventually(
        chaoslab_test_support::GENEROUS,
        "restarted replica ready again",
        || async { (replica(&lab, &hung).await["ready"] == true).then_some(()) },
    )
    .await;
    let events = lab.cli(&["events", "--tail", "200"]).await;
    let text = String::from_utf8_lossy(&events.stdout);
    assert!(text.contains("liveness probe failed"), "{text}");
    // Which probe notices first depends on timing (both time out on the hung
    // replica); either way it left the ingress (checked by `hang_one`) and
    // was restarted.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_liveness_does_not_notice_a_hung_process() {
    let lab = lab_with_liveness("tcp").start().await;
    let (hung, other, _hanging) = hang_one(&lab).await;
    traffic_flows_through(&lab, &other).await;
    // Liveness would have failed 3 × 0.3 s after the hang; watch well past
    // it. Not a synchronisation: a window in which nothing may happen (a
    // slow machine can only make it see less, never fail).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = replica(&lab, &hung).await;
    assert_eq!(r["restarts"], 0, "{r}");
    assert_eq!(r["phase"], "Running", "{r}");
    assert_eq!(r["ready"], false, "{r}");
}
