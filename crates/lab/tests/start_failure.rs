//! A lab that cannot start leaves nothing behind (issue 11 item 9): a
//! taken Toxiproxy port is found before any child starts (every listener
//! is bound first), and a failure after Redis started (a component that
//! cannot plug in, a state file that cannot be written) stops everything,
//! Redis gracefully, so no child of this process is left. One test function: the checks look at every
//! child of this process, so nothing else may run beside them.

use chaoslab_test_support::wait::GENEROUS;
use std::path::Path;

use chaoslab_lab::{FileConfig, LabConfig, Overrides};
use chaoslab_lab::{LabError, PlugFn};

fn config(state_dir: &Path, toxiproxy_port: u16) -> LabConfig {
    let mut file = FileConfig {
        state_dir: Some(state_dir.to_path_buf()),
        ..FileConfig::default()
    };
    file.ingress.port = 0;
    file.control.port = 0;
    file.faults.toxiproxy_port = toxiproxy_port;
    file.autoscaler.enabled = false;
    LabConfig::resolve(file, &Overrides::default(), "/bin/sh".into()).expect("config")
}

/// Live (not zombie) children of this process, as (pid, command name).
fn children() -> Vec<(u32, String)> {
    let me = std::process::id();
    chaoslab_foundation::proc::processes()
        .filter(|stat| stat.ppid == me && !stat.is_gone())
        .map(|stat| (stat.pid, stat.comm))
        .collect()
}

async fn until_no_child(what: &str) {
    let left = chaoslab_test_support::wait::poll_async(GENEROUS, || async {
        children().is_empty().then_some(())
    })
    .await;
    assert!(
        left.is_some(),
        "{what}: children left after {GENEROUS:?}: {:?}",
        children()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_leaves_no_child_and_stops_redis_cleanly() {
    if !chaoslab_test_support::redis::installed_or_skip() {
        return;
    }
    until_no_child("before the test").await;

    // 1. The Toxiproxy port is taken: the start fails before Redis starts.
    let dir = tempfile::tempdir().expect("temp dir");
    let state_dir = dir.path().join("state");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("blocker");
    let port = taken.local_addr().expect("addr").port();
    let err = chaoslab_lab::start(config(&state_dir, port))
        .await
        .expect_err("the Toxiproxy port is taken");
    assert!(
        matches!(&err, LabError::Bind(bind) if bind.what.contains("Toxiproxy")),
        "{err}"
    );
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    assert!(
        !state_dir.join("logs/redis.log").exists(),
        "no redis-server was started before the Toxiproxy port was bound"
    );
    until_no_child("after a taken Toxiproxy port").await;
    drop(taken);

    // 2. A component that cannot plug in, after Redis and the fault proxy
    // started: nothing is left (the component was handed Redis and dropped
    // it, which kills it).
    let state_dir = dir.path().join("state2");
    let plug: PlugFn = Box::new(|_parts| Err("no faults today".to_string()));
    let err = chaoslab_lab::start_with(config(&state_dir, 0), Some(plug))
        .await
        .expect_err("the plug fails");
    assert!(err.to_string().contains("no faults today"), "{err}");
    until_no_child("after a failing plug").await;

    // 3. The very last step fails (lab.json cannot be written), with Redis,
    // the fault proxy, replicas and every server running: all of it stops,
    // Redis gracefully (it flushes its AOF), and the lock is released.
    let state_dir = dir.path().join("state3");
    std::fs::create_dir_all(state_dir.join("lab.json/blocked")).expect("a directory in the way");
    let err = chaoslab_lab::start(config(&state_dir, 0))
        .await
        .expect_err("lab.json cannot be written");
    assert!(err.to_string().contains("lab.json"), "{err}");
    until_no_child("after a failed state file").await;
    let log = std::fs::read_to_string(state_dir.join("logs/redis.log")).expect("redis.log");
    assert!(
        log.contains("ready to exit"),
        "redis-server was shut down, not killed:\n{log}"
    );
    std::fs::remove_dir_all(state_dir.join("lab.json")).expect("clear the way");
    let lab = chaoslab_lab::start(config(&state_dir, 0))
        .await
        .expect("a new lab in the same directory");
    assert!(state_dir.join("lab.json").is_file());
    lab.stop().await;
    until_no_child("after a stopped lab").await;
    assert!(!state_dir.join("lab.json").exists(), "removed at stop");
}
