//! Seed flow 11 end to end: bad deployments (missing image, REDIS_PORT=
//! invalid, wrong port) each end Failed with the right reason while the old
//! revision keeps serving a steady load with zero failed requests; a good
//! deployment moves traffic with zero failures too, and `revisions activate`
//! rolls back.

mod lab_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lab_support::{Lab, builder};
use serde_json::Value;

/// Requests `/` through the ingress from a few users until stopped; counts
/// successes and keeps every failure.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, users: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let tasks = (0..users)
            .map(|_| {
                let (stop, ok, failures, client, url) = (
                    stop.clone(),
                    ok.clone(),
                    failures.clone(),
                    client.clone(),
                    url.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match client.get(&url).send().await {
                            Ok(r) if r.status() == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                let status = r.status();
                                let body = r.text().await.unwrap_or_default();
                                failures.lock().unwrap().push(format!("{status}: {body}"));
                            }
                            Err(e) => failures.lock().unwrap().push(format!("error: {e}")),
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Self {
            stop,
            ok,
            failures,
            tasks,
        }
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_deployments_fail_and_the_old_revision_keeps_serving() {
    let lab = builder()
        .replicas(2)
        .set("app", "name", "\"shop\"")
        .set("revisions", "provisioning_timeout_seconds", 8)
        .set("restart", "crash_loop_restarts", 3)
        .start()
        .await;
    let initial = lab.status().await["active_revision"]
        .as_str()
        .unwrap()
        .to_string();
    let load = Load::start(lab.ingress("/"), 3);

    deploy_bad_revisions(&lab, &initial).await;

    // A good deployment moves traffic, still without a failed request.
    let out = lab
        .cli(&["deploy", "--suffix", "good", "--env", "GREETING=hi"])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(lab.status().await["active_revision"], "shop--good");
    // Rollback.
    let out = lab.cli(&["revisions", "activate", &initial]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(lab.status().await["active_revision"], initial.as_str());

    let (ok, failures) = load.finish().await;
    assert!(ok > 50, "the load ran ({ok} requests)");
    assert!(
        failures.is_empty(),
        "{} failed requests of {}: {:?}",
        failures.len(),
        ok,
        &failures[..failures.len().min(5)]
    );

    let revisions: Value = lab.api("/api/revisions").await;
    let good = revisions
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "shop--good")
        .unwrap()
        .clone();
    assert_eq!(good["state"], "Deactivated", "{good}");
    eprintln!("flow 11: {ok} requests, 0 failures");
}

/// Three bad deployments (missing image, `REDIS_PORT=invalid`, a port the
/// service does not listen on) each end Failed with the right reason, and
/// `initial` stays active.
async fn deploy_bad_revisions(lab: &Lab, initial: &str) {
    let unused_port = chaoslab_test_support::free_port().to_string();
    let cases: [(&str, Vec<&str>, &str); 3] = [
        (
            "bad-image",
            vec!["--image", "/nonexistent/chaoslab-image"],
            "ImagePullFailed",
        ),
        (
            "bad-env",
            vec!["--env", "REDIS_PORT=invalid"],
            "CrashLoopBackOff",
        ),
        ("bad-port", vec!["--port", &unused_port], "NotReady"),
    ];
    for (suffix, extra, reason) in &cases {
        let mut args = vec!["deploy", "--suffix", suffix];
        args.extend(extra.iter().copied());
        let out = lab.cli(&args).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{suffix}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("Failed"), "{stdout}");
        let revision = lab.api(&format!("/api/revisions/shop--{suffix}")).await;
        assert_eq!(revision["state"], "Failed", "{revision}");
        let why = revision["reason"].as_str().unwrap_or_default();
        assert!(why.starts_with(reason), "{suffix}: {why}");
        assert_eq!(lab.status().await["active_revision"], initial);
    }
    let listed = lab.cli(&["revisions"]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.split_whitespace().nth(2) == Some("Failed"))
            .count(),
        3,
        "{text}"
    );
}
