//! A real Toxiproxy client from PyPI (`toxiproxy-python`) drives the fault
//! proxy's HTTP API on a non-default port: create a proxy in front of Redis,
//! add a latency toxic, observe it, remove it. The library sees what the
//! client did. Fails under CI (`CI` set) when the client is missing; skips
//! with a note elsewhere. `.ci/setup.d/faultproxy.sh` installs it.

mod support;

use std::time::Duration;

use chaoslab_faultproxy::{Change, FaultProxy, Origin, api};
use chaoslab_test_support::{RedisServer, tool};
use support::bounded;
use tokio::net::TcpListener;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxiproxy_python_client_drives_the_api() {
    bounded(async {
        if !tool::present_or_skip(
            tool::runs("python3", &["-c", "import toxiproxy"]),
            "toxiproxy-python is not installed \
             (pip install toxiproxy-python, or run .ci/setup.d/faultproxy.sh)",
        ) {
            return;
        }
        let redis = RedisServer::start();
        let faults = FaultProxy::new();
        let mut events = faults.subscribe();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(api::serve(listener, faults.clone(), std::future::pending()));

        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/toxiproxy_client.py");
        let run = Command::new("python3")
            .args([script, &port.to_string(), &redis.addr().to_string()])
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(45), run)
            .await
            .expect("the Python client finished in time")
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{stdout}{stderr}");
        assert!(
            out.status.success(),
            "python client failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("toxiproxy-python: ok"));

        // The library saw the client's latency toxic come and go.
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            seen.push(event);
        }
        let added = seen.iter().find_map(|e| match &e.change {
            Change::Added { toxic } if toxic.name == "latency_downstream" => Some(toxic),
            _ => None,
        });
        let added = added.expect("an Added event for the client's toxic");
        assert_eq!(added.origin, Origin::Api);
        assert_eq!(added.proxy, "redis_py");
        assert!(seen.iter().any(|e| matches!(&e.change,
            Change::Removed { toxic } if toxic.name == "latency_downstream")));
        assert!(
            seen.iter()
                .any(|e| matches!(e.change, Change::ProxyRemoved))
        );
    })
    .await;
}
