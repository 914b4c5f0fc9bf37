//! Component tests of what the lab holds for a replica's process: its port
//! (reserved for the replica's whole life, so no other process can take it
//! between the lab choosing it and the replica binding it, nor between two
//! runs; a port taken anyway is replaced by a fresh one) and its pidfd (the
//! kill fault's signal reaches the replica's current process or nobody).

use std::sync::Arc;

use chaoslab_foundation::proc::alive;
use chaoslab_test_support::wait::{GENEROUS, eventually_from_async};

use crate::config::{FileConfig, LabConfig, Overrides};
use crate::platform::{Phase, Platform, RedisEndpoint, ReplicaStatus};
use crate::spawner::Spawner;

fn platform(dir: &std::path::Path, script: &str) -> Arc<Platform> {
    let mut file = FileConfig::default();
    file.app.args = vec!["-c".into(), script.into()];
    file.restart.backoff_initial_seconds = 0.05;
    file.restart.backoff_max_seconds = 0.2;
    file.restart.termination_grace_seconds = 1.0;
    file.autoscaler.enabled = false;
    let config = LabConfig::resolve(file, &Overrides::default(), "/bin/sh".into()).unwrap();
    let redis = RedisEndpoint {
        env: Vec::new(),
        describe: "none".into(),
        admin: None,
    };
    Platform::new(config, Spawner::start().unwrap(), redis, dir.to_path_buf())
}

fn running(p: &Platform) -> Option<ReplicaStatus> {
    p.replicas()
        .into_iter()
        .find(|r| r.phase == Phase::Running && r.pid.is_some())
}

async fn stop(p: &Platform) {
    p.shutdown.cancel();
    p.replica_tasks.close();
    tokio::time::timeout(GENEROUS, p.replica_tasks.wait())
        .await
        .expect("replicas stopped");
}

/// A bind of `port` without SO_REUSEADDR. (A bind with SO_REUSEADDR of
/// that very port can share it, as the replica's own does: that case is
/// the next test's. Asking for any port, port 0, never gets it: the kernel
/// skips bound ports.)
fn bind(port: u16) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], port).into())?;
    Ok(socket)
}

#[tokio::test]
async fn a_replica_port_is_held_for_the_replica_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // Never listens: the port is the lab's alone while the replica lives.
    let p = platform(dir.path(), "exec sleep 30");
    p.start_initial().unwrap();
    let first = eventually_from_async(GENEROUS, "replica running", || running(&p)).await;
    let err = bind(first.port).expect_err("another process cannot take the replica's port");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    // Across a restart too (the run that ended released nothing).
    crate::spawner::signal(first.pid.unwrap(), libc::SIGKILL);
    let second = eventually_from_async(GENEROUS, "restarted", || {
        running(&p).filter(|r| r.restarts >= 1)
    })
    .await;
    assert_ne!(second.pid, first.pid);
    let err = bind(second.port).expect_err("still held after a restart");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    // The replica itself binds it as any server does (SO_REUSEADDR).
    stop(&p).await;
    assert!(!alive(second.pid.unwrap()));
    bind(second.port).expect("released when the replica is gone");
}

#[tokio::test]
async fn a_replica_whose_port_was_taken_restarts_on_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path(), "exec sleep 30");
    p.start_initial().unwrap();
    let first = eventually_from_async(GENEROUS, "replica running", || running(&p)).await;
    // A process that binds that very port with SO_REUSEADDR (as the
    // replica would) and listens: the replica's next run cannot have it.
    let squatter = tokio::net::TcpSocket::new_v4().unwrap();
    squatter.set_reuseaddr(true).unwrap();
    squatter
        .bind(([127, 0, 0, 1], first.port).into())
        .expect("a deliberate bind with SO_REUSEADDR");
    let _squatter = squatter.listen(8).unwrap();
    crate::spawner::signal(first.pid.unwrap(), libc::SIGKILL);
    let second = eventually_from_async(GENEROUS, "restarted", || {
        running(&p).filter(|r| r.restarts >= 1)
    })
    .await;
    assert_ne!(second.port, first.port, "a fresh port, not the taken one");
    assert_eq!(
        second.target_port, second.port,
        "probes and ingress follow it"
    );
    let err = bind(second.port).expect_err("the fresh port is held too");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let events = p.events.history(0, 1000);
    assert!(
        events.iter().any(|e| e.reason == "PortReassigned"),
        "{events:?}"
    );
    stop(&p).await;
}

#[tokio::test]
async fn a_replica_is_signalled_through_its_pidfd() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path(), "exec sleep 30");
    p.start_initial().unwrap();
    let first = eventually_from_async(GENEROUS, "replica running", || running(&p)).await;
    let pid = p.signal_replica(&first.id, libc::SIGKILL).unwrap();
    assert_eq!(Some(pid), first.pid, "the replica's current process");
    let second = eventually_from_async(GENEROUS, "restarted", || {
        running(&p).filter(|r| r.restarts >= 1)
    })
    .await;
    assert!(!alive(pid));
    assert_eq!(
        p.signal_replica(&second.id, libc::SIGTERM).unwrap(),
        second.pid.unwrap()
    );
    assert!(matches!(
        p.signal_replica("nobody", libc::SIGKILL),
        Err(crate::platform::SignalError::UnknownReplica(_))
    ));
    stop(&p).await;
}
