//! Open model against the test server: the arrival rate holds while the
//! server stalls, and the stall shows in the latency percentiles (latency
//! counts from the scheduled start: no coordinated omission).

mod support;

use std::time::Duration;

use chaoslab_load::testkit::{Behaviour, TestServer};
use chaoslab_load::{Model, Plan};
use support::{open, row, run};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_its_rate_when_the_server_stalls() {
    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let rate = 100.0;
    let mut config = open(&server.url(), rate, Duration::from_secs(4), &["GET /fast"]);
    config.live_interval = Duration::from_millis(100);
    // Stall the server from 1 s to 2 s into the run, driven by the run's
    // own clock (the live callback), not by sleeps.
    let mut stalled_at = None;
    let mut resumed_at = None;
    let report = tokio::time::timeout(
        LIMIT,
        chaoslab_load::run(&config, std::future::pending(), |line| {
            let t = line.snapshot.elapsed;
            if stalled_at.is_none() && t >= Duration::from_secs(1) {
                server.set_stalled(true);
                stalled_at = Some(t);
            } else if resumed_at.is_none() && t >= Duration::from_secs(2) {
                server.set_stalled(false);
                resumed_at = Some(t);
            }
        }),
    )
    .await
    .expect("ends")
    .expect("runs");
    let (Some(from), Some(to)) = (stalled_at, resumed_at) else {
        panic!("the stall did not happen");
    };
    // About a second; less if the machine delayed the live ticks.
    let stall_ms = (to - from).as_secs_f64() * 1000.0;
    assert!(stall_ms >= 300.0, "stall of {stall_ms} ms");
    let fast = row(&report, "/fast");
    // ~400 requests scheduled in 4 s: the stall did not lower the count.
    assert!(
        (340..=420).contains(&fast.requests),
        "requests: {}",
        fast.requests
    );
    assert_eq!(fast.requests, server.hits_any("/fast"));
    assert_eq!(fast.failures, 0);
    // Requests scheduled during the stall waited up to its length: more
    // than 5 % of them, so p95 and p99 show it, while the median stays fast.
    let p99 = fast.percentile(0.99).expect("p99");
    let p95 = fast.percentile(0.95).expect("p95");
    let p50 = fast.median_ms.expect("median");
    assert!(
        p99 >= 0.7 * stall_ms,
        "p99 {p99} for a stall of {stall_ms} ms"
    );
    assert!(
        p95 >= 0.3 * stall_ms,
        "p95 {p95} for a stall of {stall_ms} ms"
    );
    assert!(p50 < 100.0, "p50 {p50}");
    // The stall's worth of arrivals were in flight at once.
    let peak = report.generator.peak_concurrency as f64;
    assert!(
        peak >= 0.5 * rate * stall_ms / 1000.0,
        "peak {peak}, stall {stall_ms} ms"
    );
    // The schedule was kept: every second of history had arrivals.
    let rps: Vec<f64> = report.history.iter().map(|p| p.rps).collect();
    assert!(report.history.iter().all(|p| p.load == rate), "{rps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_ramps_follow_the_plan() {
    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let mut config = open(&server.url(), 1.0, Duration::from_secs(1), &["GET /fast"]);
    // 0 → 200/s over 2 s: about 200 requests in all.
    config.model = Model::Open(Plan::parse("0/s,0s;200/s,2s").expect("plan"));
    let report = run(&config, LIMIT).await;
    let n = report.aggregated.requests;
    assert!((150..=230).contains(&n), "requests: {n}");
    assert_eq!(report.model, "open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_bounds_requests_and_counts_late_starts() {
    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let mut config = open(
        &server.url(),
        200.0,
        Duration::from_secs(1),
        &["GET /delay/200"],
    );
    config.max_in_flight = 5;
    let report = run(&config, LIMIT).await;
    assert!(report.generator.peak_concurrency <= 5);
    assert!(report.generator.late_starts > 0);
    // Waiting for a slot counts as latency.
    let p95 = report.aggregated.percentile(0.95).expect("p95");
    assert!(p95 > 400.0, "p95 {p95}");
}
