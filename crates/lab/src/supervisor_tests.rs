//! Component tests of the supervisor with stand-in "images" (shell
//! one-liners, real processes): a crash loop is visible as such with its
//! exit reason, a missing executable is ImagePullBackOff, and stopping the
//! platform leaves no process.

use std::sync::Arc;

use chaoslab_foundation::proc::alive;
use chaoslab_test_support::wait::{GENEROUS, eventually_from_async};

use crate::config::{FileConfig, LabConfig, Overrides};
use crate::platform::{Phase, Platform, RedisEndpoint};
use crate::spawner::Spawner;

fn platform(dir: &std::path::Path, image: &str, args: &[&str]) -> Arc<Platform> {
    let mut file = FileConfig::default();
    file.app.args = args.iter().map(|a| a.to_string()).collect();
    file.restart.backoff_initial_seconds = 0.05;
    file.restart.backoff_max_seconds = 0.2;
    file.restart.crash_loop_restarts = 3;
    file.restart.termination_grace_seconds = 1.0;
    file.autoscaler.enabled = false;
    let config = LabConfig::resolve(file, &Overrides::default(), image.into()).unwrap();
    let redis = RedisEndpoint {
        env: Vec::new(),
        describe: "none".into(),
        admin: None,
    };
    Platform::new(config, Spawner::start().unwrap(), redis, dir.to_path_buf())
}

#[tokio::test]
async fn a_crashing_replica_backs_off_into_crash_loop() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path(), "/bin/sh", &["-c", "echo starting; exit 3"]);
    p.start_initial().unwrap();
    let r = eventually_from_async(GENEROUS, "crash loop", || {
        p.replicas()
            .into_iter()
            .find(|r| r.phase == Phase::CrashLoopBackOff)
    })
    .await;
    let exit = r.last_exit.unwrap();
    assert_eq!((exit.reason.as_str(), exit.exit_code), ("Error", Some(3)));
    assert!(r.consecutive_failures >= 3);
    assert!(!r.ready);
    assert!(p.upstreams().borrow().is_empty(), "never in the ingress");
    let events = p.events.history(0, 1000);
    assert!(events.iter().any(|e| e.reason == "CrashLoopBackOff"));
    let restarted = events
        .iter()
        .find(|e| e.reason == "Restarted")
        .expect("a Restarted event");
    assert_eq!(restarted.data["cause"], "exit");
    assert_eq!(restarted.data["restarts"], 1);
    let logs = p.logs.tail(&r.id, 10);
    assert!(logs.iter().any(|l| l.line == "starting"), "{logs:?}");
}

#[tokio::test]
async fn a_missing_image_is_image_pull_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path(), "/nonexistent/image", &[]);
    p.start_initial().unwrap();
    let r = eventually_from_async(GENEROUS, "image pull back-off", || {
        p.replicas()
            .into_iter()
            .find(|r| r.phase == Phase::ImagePullBackOff)
    })
    .await;
    let exit = r.last_exit.unwrap();
    assert_eq!(exit.reason, "ImagePullFailed");
    assert!(
        exit.message.contains("/nonexistent/image"),
        "{}",
        exit.message
    );
}

#[tokio::test]
async fn stopping_the_platform_stops_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("grandchild.pid");
    let script = format!(
        "trap '' TERM; sleep 30 & echo $! > {}; wait",
        marker.display()
    );
    let p = platform(dir.path(), "/bin/sh", &["-c", &script]);
    p.start_initial().unwrap();
    let pid = eventually_from_async(GENEROUS, "replica running", || {
        p.replicas().into_iter().find_map(|r| r.pid)
    })
    .await;
    let grandchild: u32 = eventually_from_async(GENEROUS, "grandchild started", || {
        std::fs::read_to_string(&marker).ok()?.trim().parse().ok()
    })
    .await;
    assert!(alive(pid) && alive(grandchild));
    p.shutdown.cancel();
    p.replica_tasks.close();
    // SIGTERM is ignored: SIGKILL to the group after the 1 s grace.
    tokio::time::timeout(GENEROUS, p.replica_tasks.wait())
        .await
        .unwrap();
    eventually_from_async(GENEROUS, "process and its child gone", || {
        (!alive(pid) && !alive(grandchild)).then_some(())
    })
    .await;
    assert!(p.replicas().is_empty());
}
