//! End-to-end: seed flows 5 (credential revoked → one refresh → 503
//! `Redis authentication failed`, logged; restored → 200), 9 (cascade:
//! network cut + internal load + external load → slow answers, then
//! timeouts, then recovery) and 10 (add, list, auto-expire, clear), with
//! the real binary, real replicas and real Redis.

mod fault_support;
#[path = "lab_support/mod.rs"]
mod lab_support;

use std::time::Duration;

use fault_support::{fault_events, fault_id, fault_lab, faults, get, ok, replica_url};
use lab_support::{Lab, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow5_revoked_credential_fails_after_one_refresh_and_restore_recovers() {
    let lab = fault_lab().start().await;
    let direct = replica_url(&lab, "/").await;
    assert_eq!(get(&lab, &direct).await.status, 200);
    let out = ok(&lab, &["fault", "auth", "revoke"]).await;
    assert!(out.contains("auth"), "{out}");
    let a = eventually(
        chaoslab_test_support::GENEROUS,
        "503 Redis authentication failed",
        || {
            let (lab, url) = (&lab, direct.clone());
            async move {
                let a = get(lab, &url).await;
                (a.status == 503 && a.detail() == "Redis authentication failed").then_some(a)
            }
        },
    )
    .await;
    // Answered, not hung (`get` gives up after 10 s).
    assert_ne!(a.status, 0, "{a:?}");
    eventually(
        chaoslab_test_support::GENEROUS,
        "the replica logged the refresh and the failure",
        || {
            let lab = &lab;
            async move {
                let out = lab.cli(&["logs", "--tail", "500"]).await;
                let logs = String::from_utf8_lossy(&out.stdout).to_string();
                (logs.contains("fetching it again and retrying once")
                    && logs.contains("Redis authentication failed after one credential refresh"))
                .then_some(())
            }
        },
    )
    .await;
    assert_eq!(faults(&lab).await.len(), 1);

    let out = ok(&lab, &["fault", "auth", "restore"]).await;
    assert!(out.contains("restored"), "{out}");
    eventually(
        chaoslab_test_support::GENEROUS,
        "200 with the new credential",
        || {
            let (lab, url) = (&lab, direct.clone());
            async move { (get(lab, &url).await.status == 200).then_some(()) }
        },
    )
    .await;
    assert!(faults(&lab).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow10_add_list_auto_expire_and_clear() {
    let lab = fault_lab().start().await;
    // Add, with a duration: listed, then gone by itself.
    let first = add_listed_then_expired(&lab).await;

    // Until cleared: clear by id, twice (idempotent), then --all.
    let (second, third) = add_two_then_clear(&lab).await;

    let events = fault_events(&lab).await;
    let expected: Vec<(String, String)> = [
        ("FaultInjected", &first),
        ("FaultExpired", &first),
        ("FaultInjected", &second),
        ("FaultInjected", &third),
        ("FaultCleared", &second),
        ("FaultCleared", &third),
    ]
    .iter()
    .map(|(r, id)| (r.to_string(), id.to_string()))
    .collect();
    assert_eq!(events, expected);
}

/// A network block with a 2 s duration: shown by `fault list` and
/// `status`, then gone by itself; its id.
async fn add_listed_then_expired(lab: &Lab) -> String {
    let out = ok(
        lab,
        &["fault", "network", "block", "--no-reset", "--duration", "2"],
    )
    .await;
    let first = fault_id(&out);
    let list = ok(lab, &["fault", "list"]).await;
    let header = list.lines().next().unwrap_or_default();
    for column in ["ID", "KIND", "TARGET", "STARTED", "REMAINING"] {
        assert!(header.contains(column), "{list}");
    }
    let status = ok(lab, &["status"]).await;
    assert!(
        status.contains(&format!("{first} network deny-new on redis")),
        "{status}"
    );
    let row = list
        .lines()
        .find(|l| l.starts_with(&first))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains("network") && row.contains("redis"), "{row}");
    eventually(
        chaoslab_test_support::GENEROUS,
        "the fault expires by itself",
        || async move { faults(lab).await.is_empty().then_some(()) },
    )
    .await;
    assert!(
        ok(lab, &["fault", "list"])
            .await
            .contains("no active faults")
    );
    first
}

/// A latency and a blackhole until cleared: one cleared by id (twice, the
/// second a no-op), the other by `--all`; their ids.
async fn add_two_then_clear(lab: &Lab) -> (String, String) {
    let second = fault_id(
        &ok(
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
        .await,
    );
    let third = fault_id(
        &ok(
            lab,
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
        .await,
    );
    assert_eq!(faults(lab).await.len(), 2);
    assert!(
        ok(lab, &["fault", "clear", &second])
            .await
            .contains("cleared")
    );
    assert!(
        ok(lab, &["fault", "clear", &second])
            .await
            .contains("not active")
    );
    assert!(ok(lab, &["fault", "clear", "--all"]).await.contains(&third));
    assert!(faults(lab).await.is_empty());
    assert_eq!(get(lab, &lab.ingress("/")).await.status, 200);
    (second, third)
}

/// `users` users sending GET `/` (50 ms think time) for `secs`: (status, time).
async fn external_load(lab: &lab_support::Lab, users: usize, secs: u64) -> Vec<(u16, Duration)> {
    let url = lab.ingress("/");
    let mut tasks = Vec::new();
    for _ in 0..users {
        let (http, url) = (lab.http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let end = std::time::Instant::now() + Duration::from_secs(secs);
            while std::time::Instant::now() < end {
                let start = std::time::Instant::now();
                let status = match http.get(&url).timeout(Duration::from_secs(10)).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                answers.push((status, start.elapsed()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.expect("user"));
    }
    answers
}

fn median(answers: &[(u16, Duration)]) -> Duration {
    if answers.is_empty() {
        return Duration::ZERO;
    }
    chaoslab_test_support::samples::median(answers.iter().map(|(_, t)| *t).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow9_cascade_slow_then_timeouts_then_recovery() {
    let lab = fault_lab().replicas(2).start().await;
    // Internal load on every replica for the whole cascade.
    let out = ok(
        &lab,
        &[
            "chaos",
            "load",
            // Not high: its 1000 MB is over the 512 MiB limit, and replicas
            // OOM-killed mid-phase answer fast 503s instead of slow 200s.
            "low",
            "--duration",
            "30",
            "--all-replicas",
        ],
    )
    .await;
    assert_eq!(out.matches("load_started").count(), 2, "{out}");
    let healthy = external_load(&lab, 8, 2).await;

    // The path to Redis degrades: slow answers, still 200.
    let slow_id = slow_but_answering(&lab, &healthy).await;

    // Then cut off: requests time out, replicas leave the ingress.
    let cut_id = cut_off_and_timing_out(&lab).await;

    // Full recovery after clearing.
    ok(&lab, &["fault", "clear", &cut_id]).await;
    ok(&lab, &["fault", "clear", &slow_id]).await;
    eventually(
        chaoslab_test_support::GENEROUS,
        "every replica ready again",
        || {
            let lab = &lab;
            async move {
                let r = lab.active_replicas().await;
                (r.len() == 2 && r.iter().all(|r| r["ready"] == true)).then_some(())
            }
        },
    )
    .await;
    let after = external_load(&lab, 8, 2).await;
    assert!(
        after.iter().all(|(s, _)| *s == 200),
        "recovered: {:?}",
        after.iter().filter(|(s, _)| *s != 200).count()
    );
}

/// 300 ms of latency to Redis: every 200 comes at least that late; the
/// fault's id.
async fn slow_but_answering(lab: &Lab, healthy: &[(u16, Duration)]) -> String {
    let slow_id = fault_id(
        &ok(
            lab,
            &[
                "fault",
                "network",
                "latency",
                "--ms",
                "300",
                "--duration",
                "0",
            ],
        )
        .await,
    );
    let slow = external_load(lab, 8, 3).await;
    let slow_ok: Vec<(u16, Duration)> = slow.iter().copied().filter(|(s, _)| *s == 200).collect();
    assert!(!slow_ok.is_empty(), "still answering");
    // Every 200 waited for Redis's reply, 300 ms late: a floor no machine
    // speed changes (unlike a difference with the healthy median).
    assert!(
        median(&slow_ok) >= Duration::from_millis(295),
        "slow: p50 {:?} → {:?}",
        median(healthy),
        median(&slow_ok)
    );
    slow_id
}

/// A blackhole to Redis: most requests fail, some by timing out; the
/// fault's id.
async fn cut_off_and_timing_out(lab: &Lab) -> String {
    let cut_id = fault_id(
        &ok(
            lab,
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
        .await,
    );
    let cut = external_load(lab, 8, 4).await;
    let timed_out = cut
        .iter()
        .filter(|(s, t)| *s != 200 && *t >= Duration::from_millis(900))
        .count();
    let failed = cut.iter().filter(|(s, _)| *s != 200).count();
    assert!(timed_out > 0, "timeouts: {timed_out} of {}", cut.len());
    assert!(
        failed * 2 > cut.len(),
        "mostly failing: {failed} of {}",
        cut.len()
    );
    cut_id
}
