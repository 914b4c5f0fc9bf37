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
use lab_support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow5_revoked_credential_fails_after_one_refresh_and_restore_recovers() {
    let lab = fault_lab().start().await;
    let direct = replica_url(&lab, "/").await;
    assert_eq!(get(&lab, &direct).await.status, 200);
    let out = ok(&lab, &["fault", "auth", "revoke"]).await;
    assert!(out.contains("auth"), "{out}");
    let a = eventually(
        Duration::from_secs(15),
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
    assert!(a.elapsed < Duration::from_secs(8), "{:?}", a.elapsed);
    eventually(
        Duration::from_secs(10),
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
        Duration::from_secs(15),
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
    let out = ok(
        &lab,
        &["fault", "network", "block", "--no-reset", "--duration", "2"],
    )
    .await;
    let first = fault_id(&out);
    let list = ok(&lab, &["fault", "list"]).await;
    let header = list.lines().next().unwrap_or_default();
    for column in ["ID", "KIND", "TARGET", "STARTED", "REMAINING"] {
        assert!(header.contains(column), "{list}");
    }
    let row = list
        .lines()
        .find(|l| l.starts_with(&first))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains("network") && row.contains("redis"), "{row}");
    eventually(
        Duration::from_secs(10),
        "the fault expires by itself",
        || {
            let lab = &lab;
            async move { faults(lab).await.is_empty().then_some(()) }
        },
    )
    .await;
    assert!(
        ok(&lab, &["fault", "list"])
            .await
            .contains("no active faults")
    );

    // Until cleared: clear by id, twice (idempotent), then --all.
    let second = fault_id(
        &ok(
            &lab,
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
        .await,
    );
    assert_eq!(faults(&lab).await.len(), 2);
    assert!(
        ok(&lab, &["fault", "clear", &second])
            .await
            .contains("cleared")
    );
    assert!(
        ok(&lab, &["fault", "clear", &second])
            .await
            .contains("not active")
    );
    assert!(
        ok(&lab, &["fault", "clear", "--all"])
            .await
            .contains(&third)
    );
    assert!(faults(&lab).await.is_empty());
    assert_eq!(get(&lab, &lab.ingress("/")).await.status, 200);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow9_cascade_slow_then_timeouts_then_recovery() {
    let lab = fault_lab().replicas(2).start().await;
    let out = ok(
        &lab,
        &[
            "chaos",
            "load",
            "high",
            "--duration",
            "20",
            "--all-replicas",
        ],
    )
    .await;
    assert!(out.contains("load_started"), "{out}");
    let id = fault_id(
        &ok(
            &lab,
            &[
                "fault",
                "network",
                "block",
                "--mode",
                "blackhole",
                "--duration",
                "0",
            ],
        )
        .await,
    );
    // External load: 16 users for 4 s.
    let url = lab.ingress("/");
    let mut users = Vec::new();
    for _ in 0..16 {
        let (http, url) = (lab.http.clone(), url.clone());
        users.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let end = std::time::Instant::now() + Duration::from_secs(4);
            while std::time::Instant::now() < end {
                let start = std::time::Instant::now();
                let status = match http.get(&url).timeout(Duration::from_secs(10)).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                answers.push((status, start.elapsed()));
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for u in users {
        answers.extend(u.await.expect("user"));
    }
    let slow = answers
        .iter()
        .filter(|(_, t)| *t >= Duration::from_millis(900))
        .count();
    let failed = answers.iter().filter(|(s, _)| *s != 200).count();
    assert!(
        slow > 0 && failed > 0,
        "slow {slow}, failed {failed} of {}",
        answers.len()
    );
    // Recovery.
    ok(&lab, &["fault", "clear", &id]).await;
    let _ = lab
        .cli(&["chaos", "load", "high", "--duration", "1", "--all-replicas"])
        .await;
    eventually(
        Duration::from_secs(30),
        "full recovery: 200 in under a second",
        || {
            let lab = &lab;
            async move {
                let a = get(lab, &lab.ingress("/")).await;
                (a.status == 200 && a.elapsed < Duration::from_secs(1)).then_some(())
            }
        },
    )
    .await;
}
