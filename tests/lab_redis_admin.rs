//! End to end: the lab's own admin connection to Redis goes to
//! redis-server directly, never through the fault proxy (SPEC section 13,
//! issue 11 item 1). With the seed's network rule in force (`chaoslab fault
//! network block --duration 0`) the replicas lose Redis and go unready, yet
//! the lab's own view — `redis_connected` in the metrics and `redis.up` in
//! `status --json` — still sees redis-server up; clearing the fault brings
//! the replicas back.

mod fault_support;
#[path = "lab_support/mod.rs"]
mod lab_support;

use fault_support::{fault_lab, ok};
use lab_support::{Lab, eventually};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_block_does_not_cut_the_labs_own_view_of_redis() {
    let lab = fault_lab().replicas(1).start().await;
    eventually(
        chaoslab_test_support::GENEROUS,
        "the lab's own PING answered",
        || async {
            (lab.api("/api/status").await["last_point"]["redis_connected"] == true).then_some(())
        },
    )
    .await;

    // deny-new (the default: established connections carry on) and
    // blackhole (they stall too, so a kept connection through the proxy
    // would see the cut).
    for mode in ["deny-new", "blackhole"] {
        ok(
            &lab,
            &[
                "fault",
                "network",
                "block",
                "--mode",
                mode,
                "--duration",
                "0",
            ],
        )
        .await;
        // The replicas see the cut: none stays ready.
        eventually(
            chaoslab_test_support::GENEROUS,
            "every replica unready (the block is in force)",
            || async {
                let replicas = lab.active_replicas().await;
                (!replicas.is_empty() && replicas.iter().all(|r| r["ready"] == false)).then_some(())
            },
        )
        .await;
        assert_lab_sees_redis_during_the_block(&lab, mode).await;
        let status = lab.cli(&["status", "--json"]).await;
        assert!(status.status.success(), "{status:?}");
        let status: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["redis"]["up"], true, "{mode}: {}", status["redis"]);
        assert!(
            lab.active_replicas()
                .await
                .iter()
                .all(|r| r["ready"] == false),
            "{mode}: the block was still in force"
        );

        ok(&lab, &["fault", "clear", "--all"]).await;
        eventually(
            chaoslab_test_support::GENEROUS,
            "the replica ready again",
            || async {
                let replicas = lab.active_replicas().await;
                replicas.iter().any(|r| r["ready"] == true).then_some(())
            },
        )
        .await;
    }
}

/// Three metric points taken once the block is in force all have the lab's
/// own PING answered and no replica ready.
async fn assert_lab_sees_redis_during_the_block(lab: &Lab, mode: &str) {
    let blocked_since = chaoslab_test_support::clock::unix_ms();
    // Points taken after that still have the lab's own PING answered.
    let points: Vec<Value> = eventually(
        chaoslab_test_support::GENEROUS,
        "three metric points taken during the block",
        || async {
            let points = lab
                .api(&format!("/api/metrics?since_ms={blocked_since}"))
                .await;
            let points: Vec<Value> = points
                .as_array()?
                .iter()
                .filter(|p| p["unix_ms"].as_i64() > Some(blocked_since))
                .cloned()
                .collect();
            (points.len() >= 3).then_some(points)
        },
    )
    .await;
    for point in &points {
        assert_eq!(
            point["redis_connected"], true,
            "{mode}: the lab's own view of redis-server during the block: {point}"
        );
        assert_eq!(point["ready"], 0, "{mode}: the replicas' view: {point}");
    }
}
