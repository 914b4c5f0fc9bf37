//! End to end: `chaoslab up --auth entra` (issue 13 item 7) with the real
//! binary built with `--features entra-id`, real replicas and a real
//! redis-server. The lab runs its stand-in managed identity endpoint
//! (crates/lab/src/identity.rs); the replicas get their Redis credential
//! from it as Container Apps replicas do from Azure's. Through the ingress:
//! `/` counts while tokens expire and are renewed, `fault auth revoke` (the
//! identity's access removed) turns answers into 503 `Redis authentication
//! failed`, `fault auth restore` brings 200 back without a restart.
//!
//! Run with `cargo test --features entra-id --test lab_entra`.

#[path = "lab_support/mod.rs"]
mod lab_support;

use std::time::{Duration, Instant};

use chaoslab_test_support::GENEROUS;
use chaoslab_test_support::lab::{get, ok, replica_url, restarts};
use lab_support::{Lab, builder, eventually};

/// The stand-in's token lifetime here: short, so the test sees renewals.
const LIFETIME_S: u64 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_auth_counts_renews_tokens_and_the_credential_fault_is_a_503_until_restored() {
    if !chaoslab_test_support::redis::installed_or_skip() {
        return;
    }
    let lab = builder()
        .fault_sized()
        .replicas(2)
        .set("redis", "token_lifetime_seconds", LIFETIME_S)
        .arg("--auth")
        .arg("entra")
        .start()
        .await;

    // The lab says how the replicas authenticate.
    let status = lab.status().await;
    let redis = status.to_string();
    assert!(redis.contains("Entra ID as object id"), "{redis}");

    // The IDENTITY_HEADER secret: an owner-only file, never in a replica's
    // argv nor in the lab's output.
    let secret = identity_secret_kept_private(&lab).await;

    // `/` counts through the ingress across more than two token lifetimes
    // (tokens expire and are removed from Redis as they do): every answer
    // is 200 and the count goes up.
    let url = lab.ingress("/");
    let last = counts_across_token_lifetimes(&lab, &url).await;

    // The credential fault: the identity loses its access to Redis.
    let out = ok(&lab, &["fault", "auth", "revoke"]).await;
    assert!(out.contains("auth"), "{out}");
    // A replica asked directly answers why; the ingress answers 503 too
    // (once readiness takes the replicas out, `no healthy upstream`).
    let direct = replica_url(&lab, "/").await;
    let failed = eventually(GENEROUS, "503 Redis authentication failed", || {
        let (lab, url) = (&lab, direct.clone());
        async move {
            let a = get(lab, &url).await;
            (a.status == 503 && a.detail() == "Redis authentication failed").then_some(a)
        }
    })
    .await;
    assert!(
        failed.elapsed < Duration::from_secs(10),
        "answered, not hung: {failed:?}"
    );
    let through_ingress = get(&lab, &url).await;
    assert_eq!(through_ingress.status, 503, "{through_ingress:?}");

    // Restored: 200 again, the same replicas (no restart), the count goes on.
    let restarts_before = restarts(&lab).await;
    let out = ok(&lab, &["fault", "auth", "restore"]).await;
    assert!(out.contains("restored"), "{out}");
    let back = eventually(GENEROUS, "200 once the identity's access is back", || {
        let (lab, url) = (&lab, url.clone());
        async move {
            let a = get(lab, &url).await;
            (a.status == 200).then_some(a)
        }
    })
    .await;
    assert!(
        back.body["request_count"].as_i64().unwrap_or(0) > last,
        "{back:?}"
    );
    assert_eq!(
        restarts(&lab).await,
        restarts_before,
        "a replica was restarted to recover"
    );

    // Nothing in the lab's output or the replicas' logs shows the secret.
    let logs = lab.cli(&["logs", "--tail", "2000"]).await;
    assert!(!String::from_utf8_lossy(&logs.stdout).contains(&secret));
    assert!(!lab.output().contains(&secret));
}

/// The identity header secret: at least 32 characters, in an owner-only
/// file, in no lab process's argv; the secret.
async fn identity_secret_kept_private(lab: &Lab) -> String {
    let header_file = lab.state_dir().join("redis").join("identity-header");
    let secret = std::fs::read_to_string(&header_file).expect("the identity header file");
    assert!(secret.len() >= 32, "a weak secret: {} chars", secret.len());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&header_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{header_file:?} is readable by others");
    lab.active_replicas().await;
    for pid in lab.pids() {
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&argv).contains(&secret),
            "the identity secret is in the argv of pid {pid}"
        );
    }
    secret
}

/// GET `url` every 150 ms for two token lifetimes and more: every answer
/// 200 with a growing count, and each replica fetched and renewed its
/// token; the last count.
async fn counts_across_token_lifetimes(lab: &Lab, url: &str) -> i64 {
    let started = Instant::now();
    let mut last = 0;
    let mut answers = 0;
    while started.elapsed() < Duration::from_secs(LIFETIME_S * 2 + 2) {
        let a = get(lab, url).await;
        assert_eq!(a.status, 200, "{a:?}\n{}", lab.output());
        let count = a.body["request_count"].as_i64().unwrap_or(0);
        assert!(count > last, "the count went {last} -> {count}: {a:?}");
        last = count;
        answers += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(answers >= 10, "only {answers} answers");
    // Each replica fetched its first token and renewed it before expiry.
    let logs = lab.cli(&["logs", "--tail", "2000"]).await;
    let fetched = String::from_utf8_lossy(&logs.stdout)
        .matches("got an Entra ID token for Redis")
        .count();
    assert!(
        fetched >= 4,
        "{fetched} tokens fetched by 2 replicas in two lifetimes"
    );
    last
}
