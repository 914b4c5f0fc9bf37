//! Chaos load is real (seed flow 7): while a load runs, the service
//! process's resident memory grows by the level's megabytes and its CPU time
//! grows at the level's share of the machine's CPUs, both read from /proc;
//! afterwards both fall back. Its own test binary, so no other test competes
//! for the CPUs it measures.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{RedisServer, Service, eventually, get_json, http, proc_usage};

const MB: u64 = 1024 * 1024;

/// The tests here measure one process's CPU: run them one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn medium_load_really_uses_cpu_and_memory_then_releases_them() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let pid = svc.pid();
    let client = http(Duration::from_secs(10));
    let (base_rss, _) = proc_usage(pid);
    let resp = client
        .post(svc.url("/chaos/load"))
        .json(&json!({"level": "medium", "duration_seconds": 12}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let started: Value = resp.json().await.unwrap();
    assert_eq!(started["cpu_percent"], 60);
    assert_eq!(started["memory_mb"], 500);

    // Memory: at least 80 % of 500 MB resident.
    let grown = eventually(Duration::from_secs(10), "RSS grows by 400 MB", || {
        let (rss, _) = proc_usage(pid);
        (rss >= base_rss + 400 * MB).then_some(rss)
    });
    eprintln!("RSS {} MB -> {} MB", base_rss / MB, grown / MB);

    // CPU: 60 % of every CPU, measured over 3 s.
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let (_, cpu0) = proc_usage(pid);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, cpu1) = proc_usage(pid);
    let rate = (cpu1 - cpu0).as_secs_f64() / t0.elapsed().as_secs_f64();
    let expected = 0.6 * cpus;
    eprintln!("CPU rate {rate:.2} CPU-s/s, expected {expected:.2}");
    assert!(
        rate > expected * 0.4 && rate < expected * 1.5 + 0.2,
        "CPU rate {rate:.2}, expected about {expected:.2}"
    );

    let status: Value = get_json(&client, svc.url("/chaos/status")).await;
    assert_eq!(status["load"]["level"], "medium");

    // Stop early: memory is given back, CPU goes quiet.
    client.delete(svc.url("/chaos/load")).send().await.unwrap();
    eventually(Duration::from_secs(10), "RSS falls back", || {
        let (rss, _) = proc_usage(pid);
        (rss < base_rss + 100 * MB).then_some(())
    });
    let (_, c0) = proc_usage(pid);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, c1) = proc_usage(pid);
    let idle_rate = (c1 - c0).as_secs_f64() / t0.elapsed().as_secs_f64();
    assert!(
        idle_rate < 0.25,
        "CPU still busy after the load: {idle_rate:.2}"
    );
}

#[tokio::test]
async fn load_ends_by_itself_at_its_deadline() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let pid = svc.pid();
    let client = http(Duration::from_secs(10));
    let (base_rss, _) = proc_usage(pid);
    client
        .post(svc.url("/chaos/load"))
        .json(&json!({"level": "low", "duration_seconds": 2}))
        .send()
        .await
        .unwrap();
    eventually(Duration::from_secs(5), "RSS grows by 80 MB", || {
        (proc_usage(pid).0 >= base_rss + 80 * MB).then_some(())
    });
    eventually(
        Duration::from_secs(10),
        "RSS falls back after the deadline",
        || (proc_usage(pid).0 < base_rss + 40 * MB).then_some(()),
    );
    let status: Value = get_json(&client, svc.url("/chaos/status")).await;
    assert_eq!(status["load"]["active"], false);
}
