//! Closed model against the test server: request and failure counts match
//! what the server saw, latencies match its known delays within HDR
//! precision (plus scheduling slack), failure rules apply.

mod support;

use std::time::Duration;

use chaoslab_load::testkit::{Behaviour, TestServer};
use chaoslab_load::{Plan, WaitRange};
use support::{closed, row, run};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_failures_match_the_server() {
    let server = TestServer::start(Behaviour {
        flaky_every: 4,
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let config = closed(
        &server.url(),
        4,
        Duration::from_secs(2),
        &["GET /flaky", "GET /fast"],
    );
    let report = run(&config, LIMIT).await;

    let flaky = row(&report, "/flaky");
    let fast = row(&report, "/fast");
    assert!(flaky.requests > 20, "too few requests: {}", flaky.requests);
    assert_eq!(flaky.requests, server.hits_any("/flaky"));
    assert_eq!(fast.requests, server.hits_any("/fast"));
    assert_eq!(flaky.failures, server.hits("/flaky", 500));
    assert_eq!(flaky.failures, flaky.requests / 4);
    assert_eq!(fast.failures, 0);
    assert_eq!(report.aggregated.requests, flaky.requests + fast.requests);
    assert_eq!(report.aggregated.failures, flaky.failures);
    assert_eq!(flaky.status_codes.get("500"), Some(&flaky.failures));
    assert_eq!(report.failures.len(), 1);
    assert_eq!(
        report.failures[0].error,
        "HTTPError: 500 Internal Server Error"
    );
    assert_eq!(report.failures[0].occurrences, flaky.failures);
    assert_eq!(report.generator.peak_concurrency, 4);
    assert!(!report.interrupted);
    assert!(
        (1.5..8.0).contains(&report.duration_secs),
        "{}",
        report.duration_secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_match_known_latency() {
    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let mut config = closed(
        &server.url(),
        8,
        Duration::from_secs(3),
        &["GET /delay/20", "GET /delay/100"],
    );
    config.wait = WaitRange::ZERO;
    let report = run(&config, LIMIT).await;
    for (path, delay) in [("/delay/20", 20.0), ("/delay/100", 100.0)] {
        let r = row(&report, path);
        assert!(r.requests >= 10, "{path}: {} requests", r.requests);
        // Never faster than the server's delay (HDR rounds within 0.1 %).
        let min = r.min_ms.expect("min");
        assert!(min >= delay * 0.999, "{path}: min {min}");
        // And not much slower, even on a busy two-core machine.
        for (q, slack) in [(0.5, 60.0), (0.95, 150.0), (0.99, 250.0)] {
            let v = r.percentile(q).expect("percentile");
            assert!(v >= delay * 0.999 && v < delay + slack, "{path} p{q}: {v}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_health_is_a_failure() {
    let server = TestServer::start(Behaviour {
        unhealthy_every: 3,
        ..Behaviour::default()
    })
    .await
    .expect("server");
    let config = closed(&server.url(), 2, Duration::from_secs(1), &["GET /health"]);
    let report = run(&config, LIMIT).await;
    let health = row(&report, "/health");
    assert_eq!(health.requests, server.hits("/health", 200));
    assert_eq!(health.failures, health.requests / 3);
    assert_eq!(health.status_codes.get("200"), Some(&health.requests));
    assert_eq!(report.failures[0].kind, "unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_timed_out_requests_are_status_zero() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let config = closed(
        &format!("http://127.0.0.1:{port}"),
        1,
        Duration::from_millis(500),
        &["GET /"],
    );
    let mut config = config;
    config.wait = WaitRange {
        min: Duration::from_millis(50),
        max: Duration::from_millis(50),
    };
    let report = run(&config, LIMIT).await;
    let all = &report.aggregated;
    assert!(all.requests >= 2);
    assert_eq!(all.failures, all.requests);
    assert_eq!(all.status_codes.get("0"), Some(&all.requests));
    assert_eq!(report.failures[0].kind, "connect");

    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let mut config = closed(
        &server.url(),
        2,
        Duration::from_secs(1),
        &["GET /delay/3000"],
    );
    config.timeout = Duration::from_millis(200);
    let report = run(&config, LIMIT).await;
    let all = &report.aggregated;
    assert!(all.requests >= 4, "{}", all.requests);
    assert_eq!(all.failures, all.requests);
    assert_eq!(all.status_codes.get("0"), Some(&all.requests));
    assert_eq!(report.failures[0].kind, "timeout");
    assert_eq!(
        report.failures[0].error,
        "Timeout: no response within 200ms"
    );
    // Latency of a timed-out request is the timeout.
    let p50 = all.median_ms.expect("median");
    assert!((200.0..400.0).contains(&p50), "{p50}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_plan_ramps_users_and_accepts_409() {
    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let mut config = closed(
        &server.url(),
        1,
        Duration::from_secs(1),
        &["GET /fast", r#"POST /chaos/load {"level":"low"}"#],
    );
    let mut mix = config.mix.clone();
    mix.tasks[1].accept = vec![409];
    config.mix = chaoslab_load::TaskMix::new(mix.tasks).expect("mix");
    config.model = chaoslab_load::Model::Closed(Plan::parse("6,1s;6,1s;0,500ms").expect("plan"));
    config.wait = WaitRange {
        min: Duration::from_millis(20),
        max: Duration::from_millis(40),
    };
    let report = run(&config, LIMIT).await;
    assert_eq!(report.generator.peak_concurrency, 6);
    let peak_load = report.history.iter().map(|p| p.load).fold(0.0, f64::max);
    assert_eq!(peak_load, 6.0);
    let post = row(&report, "/chaos/load");
    assert!(post.requests >= 2);
    assert_eq!(post.failures, 0, "409 is accepted");
    assert_eq!(server.hits("/chaos/load", 409), post.requests - 1);
    assert!(
        (2.0..6.0).contains(&report.duration_secs),
        "{}",
        report.duration_secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_reports_what_was_done() {
    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let mut config = closed(&server.url(), 3, Duration::from_secs(600), &["GET /fast"]);
    config.live_interval = Duration::from_millis(200);
    config.wait = WaitRange {
        min: Duration::from_millis(10),
        max: Duration::from_millis(10),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut stop = Some(stop);
    let mut lines = 0;
    let run = chaoslab_load::run(
        &config,
        async {
            let _ = stopped.await;
        },
        |line| {
            lines += 1;
            if line.snapshot.total_requests > 20
                && let Some(stop) = stop.take()
            {
                let _ = stop.send(());
            }
        },
    );
    let report = tokio::time::timeout(LIMIT, run)
        .await
        .expect("stops")
        .expect("runs");
    assert!(report.interrupted);
    assert!(report.aggregated.requests > 20);
    assert_eq!(report.aggregated.requests, server.hits_any("/fast"));
    assert!(report.duration_secs < 30.0);
    assert!(lines >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closed_connections_are_reopened_without_failures() {
    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let config = closed(&server.url(), 3, Duration::from_secs(1), &["GET /close"]);
    let report = run(&config, LIMIT).await;
    let close = row(&report, "/close");
    assert!(close.requests > 20, "{}", close.requests);
    assert_eq!(close.failures, 0, "{:?}", report.failures);
    assert_eq!(close.requests, server.hits("/close", 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hung_past_the_stop_timeout_are_abandoned() {
    let server = TestServer::start(Behaviour::default())
        .await
        .expect("server");
    let mut config = closed(
        &server.url(),
        2,
        Duration::from_millis(300),
        &["GET /delay/20000"],
    );
    config.timeout = Duration::from_secs(30);
    config.stop_timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let report = run(&config, LIMIT).await;
    // Plan end + stop timeout + abort grace at most, not the 20 s delay.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.generator.abandoned, 2);
    assert_eq!(report.aggregated.requests, 0);
}
