//! End-to-end: the network faults on the real lab (`chaoslab up`, real
//! replicas, real Redis behind the fault proxy), driven by the real CLI.
//! Seed flow 4 (the NSG rule: deny-new + redis-reset → 503 `Redis
//! connection failed`, unhealthy, unready, the ingress's `no healthy
//! upstream`; clear → 200 without restarts), the seed's troubleshooting note
//! (without the reset established connections keep working), blackhole
//! (timeouts) against reset (immediate errors), latency and bandwidth.

mod fault_support;
#[path = "lab_support/mod.rs"]
mod lab_support;

use std::time::Duration;

use fault_support::{
    fault_id, fault_lab, faults, get, median_ms, min_ms, ok, replica_url, restarts,
    until_a_fast_answer,
};
use lab_support::{Lab, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow4_block_cuts_redis_off_and_clear_restores_without_restarts() {
    let lab = fault_lab().start().await;
    let direct = replica_url(&lab, "/").await;
    let health = replica_url(&lab, "/health").await;
    let before = restarts(&lab).await;

    let out = ok(&lab, &["fault", "network", "block", "--duration", "0"]).await;
    assert!(
        out.contains("deny-new") && out.contains("redis-reset on 1 replica"),
        "{out}"
    );
    let id = fault_id(&out);
    // Within the configured timeouts (connect 1 s, one retry): 503.
    let failed = eventually(
        chaoslab_test_support::GENEROUS,
        "/ answers 503 Redis connection failed",
        || {
            let (lab, url) = (&lab, direct.clone());
            async move {
                let a = get(lab, &url).await;
                (a.status == 503 && a.detail() == "Redis connection failed").then_some(a)
            }
        },
    )
    .await;
    // Answered, not hung: `get` gives up after 10 s (a loaded machine may
    // stretch the 1 s timeouts, so no tighter bound).
    assert_ne!(failed.status, 0);
    let h = get(&lab, &health).await;
    assert_eq!(
        (h.status, h.body["status"].as_str()),
        (503, Some("unhealthy")),
        "{:?}",
        h.body
    );
    // Readiness is /health: the replica leaves the ingress.
    eventually(
        chaoslab_test_support::GENEROUS,
        "replica unready, ingress 503 no healthy upstream",
        || {
            let lab = &lab;
            async move {
                let ready = lab
                    .active_replicas()
                    .await
                    .iter()
                    .any(|r| r["ready"] == true);
                let a = get(lab, &lab.ingress("/")).await;
                (!ready
                    && a.status == 503
                    && a.detail() == "no healthy upstream"
                    && a.proxy_error.as_deref() == Some("no-healthy-upstream"))
                .then_some(())
            }
        },
    )
    .await;

    ok(&lab, &["fault", "clear", &id]).await;
    eventually(
        chaoslab_test_support::GENEROUS,
        "back to 200 through the ingress",
        || {
            let lab = &lab;
            async move { (get(lab, &lab.ingress("/")).await.status == 200).then_some(()) }
        },
    )
    .await;
    assert_eq!(restarts(&lab).await, before, "recovered without a restart");
    assert!(faults(&lab).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reset_established_connections_keep_working() {
    let lab = fault_lab().start().await;
    let direct = replica_url(&lab, "/").await;
    assert_eq!(get(&lab, &direct).await.status, 200);
    let out = ok(
        &lab,
        &["fault", "network", "block", "--no-reset", "--duration", "0"],
    )
    .await;
    for _ in 0..10 {
        let a = get(&lab, &direct).await;
        assert_eq!(
            a.status, 200,
            "an established connection carries on: {:?}",
            a.body
        );
    }
    ok(&lab, &["fault", "clear", &fault_id(&out)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_times_out_while_reset_fails_at_once() {
    let lab = fault_lab().start().await;
    let direct = replica_url(&lab, "/").await;
    assert_eq!(get(&lab, &direct).await.status, 200);

    let id = block_until_cleared(&lab, "blackhole").await;
    let a = get(&lab, &direct).await;
    assert_eq!(a.status, 503, "{:?}", a.body);
    assert!(
        ["Redis operation timed out", "Redis connection failed"].contains(&a.detail()),
        "{:?}",
        a.body
    );
    assert!(
        a.elapsed >= Duration::from_millis(900),
        "a blackhole is a timeout: {:?}",
        a.elapsed
    );
    clear_then_200(&lab, &id, &direct, "200 after the blackhole").await;

    let id = block_until_cleared(&lab, "reset").await;
    let a = get(&lab, &direct).await;
    assert_eq!(
        (a.status, a.detail()),
        (503, "Redis connection failed"),
        "{:?}",
        a.body
    );
    // A reset fails at once: some answer comes well under the 1 s a
    // timeout needs (each is a 503 for a connection that failed).
    until_a_fast_answer(
        &lab,
        &direct,
        Duration::from_millis(900),
        "a reset fails at once",
        |a| a.status == 503 && a.detail() == "Redis connection failed",
    )
    .await;
    clear_then_200(&lab, &id, &direct, "200 after the reset").await;
}

/// `fault network block --mode MODE --no-reset --duration 0`; its id.
async fn block_until_cleared(lab: &Lab, mode: &str) -> String {
    let args = [
        "fault",
        "network",
        "block",
        "--mode",
        mode,
        "--no-reset",
        "--duration",
        "0",
    ];
    fault_id(&ok(lab, &args).await)
}

/// Clears fault `id`, then waits (bounded) until `url` answers 200.
async fn clear_then_200(lab: &Lab, id: &str, url: &str, what: &str) {
    ok(lab, &["fault", "clear", id]).await;
    eventually(chaoslab_test_support::GENEROUS, what, || async move {
        (get(lab, url).await.status == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_bandwidth_slow_redis_and_clearing_restores() {
    let lab = fault_lab().start().await;
    let base = min_ms(&lab, 15).await;
    let root = lab.ingress("/");
    let is_200 = |a: &fault_support::Answer| a.status == 200;

    let out = ok(
        &lab,
        &[
            "fault",
            "network",
            "latency",
            "--ms",
            "200",
            "--duration",
            "0",
        ],
    )
    .await;
    // Every answer waits for Redis's reply, 200 ms late: a floor no
    // machine speed changes. 200 ms and not much more: some answer comes
    // under 600 ms.
    let slow = median_ms(&lab, 9).await;
    assert!(
        slow >= 195.0,
        "latency 200 ms: fastest {base:.1} → p50 {slow:.1} ms"
    );
    until_a_fast_answer(
        &lab,
        &root,
        Duration::from_millis(600),
        "200 ms latency, not more",
        is_200,
    )
    .await;
    ok(&lab, &["fault", "clear", &fault_id(&out)]).await;
    until_a_fast_answer(
        &lab,
        &root,
        Duration::from_millis(190),
        "the latency cleared",
        is_200,
    )
    .await;

    // 1 KB/s: every reply of a few hundred bytes takes a noticeable time.
    ok(
        &lab,
        &[
            "fault",
            "network",
            "bandwidth",
            "--kbps",
            "1",
            "--duration",
            "0",
        ],
    )
    .await;
    // Compared with the fastest healthy answer (a loaded moment inflates
    // a baseline median, not its minimum).
    let thin = median_ms(&lab, 5).await;
    assert!(
        thin >= base + 50.0,
        "bandwidth 1 KB/s: fastest {base:.1} → p50 {thin:.1} ms"
    );
    ok(&lab, &["fault", "clear", "--all"]).await;
    until_a_fast_answer(
        &lab,
        &root,
        Duration::from_secs_f64((base + 40.0) / 1000.0),
        "the bandwidth limit cleared",
        is_200,
    )
    .await;
}
