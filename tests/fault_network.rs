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

use fault_support::{fault_id, fault_lab, faults, get, median_ms, ok, replica_url, restarts};
use lab_support::eventually;

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
        Duration::from_secs(15),
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
    assert!(
        failed.elapsed < Duration::from_secs(8),
        "{:?}",
        failed.elapsed
    );
    let h = get(&lab, &health).await;
    assert_eq!(
        (h.status, h.body["status"].as_str()),
        (503, Some("unhealthy")),
        "{:?}",
        h.body
    );
    // Readiness is /health: the replica leaves the ingress.
    eventually(
        Duration::from_secs(20),
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
        Duration::from_secs(20),
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

    let out = ok(
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
    ok(&lab, &["fault", "clear", &fault_id(&out)]).await;
    eventually(Duration::from_secs(15), "200 after the blackhole", || {
        let (lab, url) = (&lab, direct.clone());
        async move { (get(lab, &url).await.status == 200).then_some(()) }
    })
    .await;

    let out = ok(
        &lab,
        &[
            "fault",
            "network",
            "block",
            "--mode",
            "reset",
            "--no-reset",
            "--duration",
            "0",
        ],
    )
    .await;
    let a = get(&lab, &direct).await;
    assert_eq!(
        (a.status, a.detail()),
        (503, "Redis connection failed"),
        "{:?}",
        a.body
    );
    assert!(
        a.elapsed < Duration::from_millis(900),
        "a reset fails at once: {:?}",
        a.elapsed
    );
    ok(&lab, &["fault", "clear", &fault_id(&out)]).await;
    eventually(Duration::from_secs(15), "200 after the reset", || {
        let (lab, url) = (&lab, direct.clone());
        async move { (get(lab, &url).await.status == 200).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_and_bandwidth_slow_redis_and_clearing_restores() {
    let lab = fault_lab().start().await;
    let base = median_ms(&lab, 15).await;

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
    let slow = median_ms(&lab, 9).await;
    assert!(
        slow >= base + 150.0 && slow <= base + 1000.0,
        "latency 200 ms: p50 {base:.1} → {slow:.1} ms"
    );
    ok(&lab, &["fault", "clear", &fault_id(&out)]).await;
    let after = median_ms(&lab, 15).await;
    assert!(
        after < base + 100.0,
        "cleared: p50 {base:.1} → {after:.1} ms"
    );

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
    let thin = median_ms(&lab, 5).await;
    assert!(
        thin >= base + 50.0,
        "bandwidth 1 KB/s: p50 {base:.1} → {thin:.1} ms"
    );
    ok(&lab, &["fault", "clear", "--all"]).await;
    let after = median_ms(&lab, 15).await;
    assert!(
        after < base + 100.0,
        "cleared: p50 {base:.1} → {after:.1} ms"
    );
}
