//! Limits and the autoscaler end to end. OOM: a memory load over a small
//! limit gets the replica killed, reported OOMKilled and restarted. Seed
//! flow 8: CPU load on the replica drives the average utilisation over the
//! target, the autoscaler scales out at once, and back in after the load
//! and the stabilisation window; each decision is an event with its inputs.

mod lab_support;

use lab_support::{Lab, builder, eventually};
use serde_json::{Value, json};

async fn post_load(lab: &Lab, port: u64, body: Value) {
    let response = lab
        .http
        .post(format!("http://127.0.0.1:{port}/chaos/load"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_memory_limit_is_oomkilled_and_restarted() {
    let lab = builder().set("limits", "memory_mb", 150).start().await;
    let replica = lab.active_replicas().await.remove(0);
    let id = replica["id"].as_str().unwrap().to_string();
    post_load(
        &lab,
        replica["target_port"].as_u64().unwrap(),
        json!({"level": "low", "duration_seconds": 60, "memory_mb": 400, "cpu_percent": 1}),
    )
    .await;
    let restarted = eventually(
        chaoslab_test_support::GENEROUS,
        "replica OOMKilled and restarted",
        || async {
            let r = lab
                .active_replicas()
                .await
                .into_iter()
                .find(|r| r["id"] == id.as_str())?;
            (r["restarts"] == 1).then_some(r)
        },
    )
    .await;
    assert_eq!(restarted["last_exit"]["reason"], "OOMKilled", "{restarted}");
    assert_eq!(restarted["last_exit"]["exit_code"], 137, "{restarted}");
    let out = lab.cli(&["events", "--tail", "500"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OOMKilled"), "{text}");
    eventually(
        chaoslab_test_support::GENEROUS,
        "restarted replica ready again",
        || async {
            let ready = lab
                .active_replicas()
                .await
                .iter()
                .any(|r| r["id"] == id.as_str() && r["ready"] == true);
            ready.then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_load_scales_out_then_back_in_after_the_window() {
    let lab = builder()
        .set("autoscaler", "enabled", true)
        .set("autoscaler", "min_replicas", 1)
        .set("autoscaler", "max_replicas", 3)
        .set("autoscaler", "period_seconds", 0.5)
        .set("autoscaler", "scale_down_stabilization_seconds", 4)
        .set("limits", "cpu", 0.2)
        .start()
        .await;
    let replica = lab.active_replicas().await.remove(0);
    // 30 % of the machine's CPUs on one replica: far over 70 % of 0.2 core.
    post_load(
        &lab,
        replica["target_port"].as_u64().unwrap(),
        json!({"level": "low", "duration_seconds": 6, "memory_mb": 0, "cpu_percent": 30}),
    )
    .await;
    eventually(
        chaoslab_test_support::GENEROUS,
        "scaled out to more replicas",
        || async { (lab.active_replicas().await.len() > 1).then_some(()) },
    )
    .await;
    eventually(
        chaoslab_test_support::GENEROUS,
        "scaled back in to 1 after load and window",
        || async { (lab.active_replicas().await.len() == 1).then_some(()) },
    )
    .await;
    let out = lab.cli(&["events", "--tail", "500"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ScaledUp"), "{text}");
    assert!(text.contains("ScaledDown"), "{text}");
    // The decision's inputs are in the event data.
    let up: Value = lab
        .api_lines("/api/events?limit=500")
        .await
        .into_iter()
        .find(|e| e["reason"] == "ScaledUp")
        .expect("a ScaledUp event");
    assert!(up["data"]["utilization"].as_f64().unwrap() > 70.0, "{up}");
    assert_eq!(up["data"]["current"], 1, "{up}");
    assert!(up["data"]["desired"].as_u64().unwrap() > 1, "{up}");
    assert_eq!(up["data"]["target_utilization"], 70.0, "{up}");
}
