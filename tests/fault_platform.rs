//! End-to-end: the platform faults — kill (one replica, all, TERM or KILL:
//! the supervisor restarts), redis stop/restart (the server process; the
//! AOF keeps the data), the failing deployments (wrong-image, bad-env,
//! bad-port: the revision fails, the old one keeps serving) — and "no data
//! lost": through kill, network block and redis restart, the counter grows
//! by at least the number of 200 answers and at most the requests sent.

mod fault_support;
#[path = "lab_support/mod.rs"]
mod lab_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fault_support::{fault_lab, get, ok, restarts};
use lab_support::{Lab, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_one_or_all_replicas_and_they_are_restarted() {
    let lab = fault_lab().replicas(2).start().await;
    let replicas = lab.active_replicas().await;
    let victim = replicas[0]["id"].as_str().unwrap().to_string();
    let out = ok(
        &lab,
        &["fault", "kill", "--replica", &victim, "--signal", "TERM"],
    )
    .await;
    assert!(out.contains(&victim) && out.contains("TERM"), "{out}");
    eventually(
        chaoslab_test_support::GENEROUS,
        "the killed replica restarted",
        || {
            let (lab, victim) = (&lab, victim.clone());
            async move {
                let r = lab.active_replicas().await;
                r.iter()
                    .any(|r| {
                        r["id"] == victim.as_str()
                            && r["restarts"].as_u64() >= Some(1)
                            && r["ready"] == true
                    })
                    .then_some(())
            }
        },
    )
    .await;
    let before = restarts(&lab).await;
    ok(&lab, &["fault", "kill", "--all"]).await;
    eventually(
        chaoslab_test_support::GENEROUS,
        "both restarted and ready",
        || {
            let lab = &lab;
            async move {
                let r = lab.active_replicas().await;
                (restarts(lab).await >= before + 2 && r.iter().all(|r| r["ready"] == true))
                    .then_some(())
            }
        },
    )
    .await;
    assert_eq!(get(&lab, &lab.ingress("/")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_deployments_leave_the_old_revision_serving() {
    let lab = fault_lab()
        .set("revisions", "provisioning_timeout_seconds", 6)
        .start()
        .await;
    let active = lab.status().await["active_revision"].clone();
    for (variant, reason) in [
        ("wrong-image", "ImagePullFailed"),
        ("bad-env", "CrashLoopBackOff"),
        ("bad-port", "NotReady"),
    ] {
        let out = ok(&lab, &["fault", "deploy", variant]).await;
        let revision = out
            .split(" on ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("{out}"))
            .to_string();
        let failed = eventually(
            chaoslab_test_support::GENEROUS,
            "the revision fails",
            || {
                let (lab, revision) = (&lab, revision.clone());
                async move {
                    let r = lab.api(&format!("/api/revisions/{revision}")).await;
                    (r["state"] == "Failed").then_some(r)
                }
            },
        )
        .await;
        assert!(
            failed["reason"].as_str().unwrap_or("").contains(reason),
            "{variant}: {failed}"
        );
        assert_eq!(lab.status().await["active_revision"], active);
        assert_eq!(get(&lab, &lab.ingress("/")).await.status, 200, "{variant}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stop_fails_requests_and_clearing_brings_it_back_with_the_data() {
    let lab = fault_lab().start().await;
    let first = get(&lab, &lab.ingress("/")).await;
    let count = first.body["request_count"].as_u64().unwrap();
    let out = ok(&lab, &["fault", "redis", "stop"]).await;
    let id = fault_support::fault_id(&out);
    eventually(
        chaoslab_test_support::GENEROUS,
        "requests fail while Redis is down",
        || {
            let lab = &lab;
            async move { (get(lab, &lab.ingress("/")).await.status == 503).then_some(()) }
        },
    )
    .await;
    ok(&lab, &["fault", "clear", &id]).await;
    let back = eventually(
        chaoslab_test_support::GENEROUS,
        "200 once Redis is back",
        || {
            let lab = &lab;
            async move {
                let a = get(lab, &lab.ingress("/")).await;
                (a.status == 200).then_some(a)
            }
        },
    )
    .await;
    assert!(
        back.body["request_count"].as_u64().unwrap() > count,
        "the AOF kept the counter"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_lost_through_kill_network_block_and_redis_restart() {
    let lab = fault_lab().replicas(2).start().await;
    let url = lab.ingress("/");
    let start = get(&lab, &url).await;
    let start_count = start.body["request_count"].as_u64().expect("count");
    let traffic = Traffic::start(&lab);
    // Between faults, wait until the client's requests succeed again (a
    // few more 200s): the service recovered, and the next fault hits a
    // service under load.
    traffic.served(5).await;
    ok(&lab, &["fault", "kill", "--all"]).await;
    traffic.served(5).await;
    let out = ok(
        &lab,
        &[
            "fault",
            "network",
            "block",
            "--mode",
            "reset",
            "--duration",
            "2",
        ],
    )
    .await;
    let id = fault_support::fault_id(&out);
    eventually(
        chaoslab_test_support::GENEROUS,
        "the 2 s block expired",
        || {
            let (lab, id) = (&lab, id.clone());
            async move {
                let active = fault_support::faults(lab).await;
                (!active.iter().any(|f| f["id"] == id.as_str())).then_some(())
            }
        },
    )
    .await;
    traffic.served(5).await;
    ok(&lab, &["fault", "redis", "restart"]).await;
    traffic.served(5).await;
    eventually(chaoslab_test_support::GENEROUS, "serving again", || {
        let lab = &lab;
        async move {
            let r = lab.active_replicas().await;
            r.iter().all(|r| r["ready"] == true).then_some(())
        }
    })
    .await;
    let (sent, client_oks) = traffic.stop().await;
    let (end, extra) = final_ok(&lab, &url).await;
    let end_count = end.body["request_count"].as_u64().expect("count");
    // A counter below where it started lost acknowledged writes: say so
    // (a u64 subtraction would overflow instead).
    let increase = end_count.checked_sub(start_count).unwrap_or_else(|| {
        panic!("the counter went back from {start_count} to {end_count}: acknowledged writes lost")
    });
    let (sent, oks) = (sent + extra, client_oks + 1);
    assert!(
        client_oks >= 20,
        "the client's requests succeeded between the faults: {client_oks} answers 200"
    );
    assert!(
        increase >= oks,
        "counter +{increase} ≥ {oks} answers 200: no acknowledged write lost"
    );
    assert!(
        increase <= sent,
        "counter +{increase} ≤ {sent} requests sent: nothing counted twice"
    );
}

/// One client sending GET `/` through the ingress (20 ms apart) until
/// stopped, counting what it sent and the 200s it got.
struct Traffic {
    sent: Arc<AtomicU64>,
    oks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(lab: &Lab) -> Self {
        let (sent, oks, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let task = {
            let (sent, oks, stop, http, url) = (
                sent.clone(),
                oks.clone(),
                stop.clone(),
                lab.http.clone(),
                lab.ingress("/"),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    sent.fetch_add(1, Ordering::Relaxed);
                    if let Ok(r) = http.get(&url).timeout(Duration::from_secs(5)).send().await
                        && r.status() == 200
                    {
                        oks.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        Self {
            sent,
            oks,
            stop,
            task,
        }
    }

    /// Waits (bounded) until `more` answers 200 came after this call.
    async fn served(&self, more: u64) {
        let from = self.oks.load(Ordering::Relaxed);
        let what = format!("{more} more answers 200");
        eventually(chaoslab_test_support::GENEROUS, &what, || {
            let oks = self.oks.clone();
            async move { (oks.load(Ordering::Relaxed) >= from + more).then_some(()) }
        })
        .await;
    }

    /// Stops the client; (requests sent, answers 200).
    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("client");
        (
            self.sent.load(Ordering::Relaxed),
            self.oks.load(Ordering::Relaxed),
        )
    }
}

/// Final requests to `url` until one is a 200 (each one is sent, and may
/// count): that answer and how many were sent.
async fn final_ok(lab: &Lab, url: &str) -> (fault_support::Answer, u64) {
    let (mut extra, deadline) = (
        0u64,
        std::time::Instant::now() + chaoslab_test_support::GENEROUS,
    );
    loop {
        extra += 1;
        let a = get(lab, url).await;
        if a.status == 200 {
            return (a, extra);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no final 200: {:?}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
