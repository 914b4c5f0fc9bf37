//! End to end: `chaoslab up` brings up Redis, replicas and the ingress
//! within seconds; `down`, Ctrl-C and even SIGKILL of the lab leave no
//! process behind; a missing redis-server is one clear line.

mod lab_support;

use std::time::Duration;

use lab_support::{Lab, alive, builder, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_through_the_ingress_and_down_leaves_no_process() {
    let mut lab = builder().replicas(2).start().await;
    let ready_after = lab.started.elapsed();
    eprintln!("time to ready (debug build, loaded box): {ready_after:?}");

    assert_counter_and_round_robin(&lab).await;

    assert_metrics_cli_and_files(&lab).await;
    let state = lab.state_dir().join("lab.json");

    // Followers stream until the lab stops, then end by themselves.
    let mut followers = start_followers(&lab).await;

    let pids = lab.pids();
    assert!(pids.len() >= 4, "lab, redis and two replicas: {pids:?}");
    assert!(pids.iter().all(|&p| alive(p)));
    lab.down(&[]).await;
    eventually(
        chaoslab_test_support::GENEROUS,
        "no lab process left",
        || async { pids.iter().all(|&p| !alive(p)).then_some(()) },
    )
    .await;
    assert!(!state.exists(), "state file removed");
    for follower in &mut followers {
        assert_ends_with_the_lab(follower).await;
    }
    let events = std::fs::read_to_string(lab.dir().join("events.out")).unwrap();
    assert!(events.contains("ShutdownRequested"), "{events}");
    assert!(
        lab.state_dir().join("redis/data/appendonlydir").exists(),
        "AOF on"
    );
}

/// Four GETs through the ingress count up; once both replicas are ready,
/// four more reach both.
async fn assert_counter_and_round_robin(lab: &Lab) {
    let mut counts = Vec::new();
    let mut replicas = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let response = lab.http.get(lab.ingress("/")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-request-id"));
        let body: serde_json::Value = response.json().await.unwrap();
        counts.push(body["request_count"].as_i64().unwrap());
        replicas.insert(body["replica"].as_str().unwrap().to_string());
    }
    assert!(
        counts.windows(2).all(|w| w[1] > w[0]),
        "counter increases: {counts:?}"
    );
    // Round robin over both ready replicas.
    eventually(
        chaoslab_test_support::GENEROUS,
        "both replicas ready",
        || async {
            let ready = lab
                .active_replicas()
                .await
                .iter()
                .filter(|r| r["ready"] == true)
                .count();
            (ready == 2).then_some(())
        },
    )
    .await;
    for _ in 0..4 {
        let body: serde_json::Value = lab
            .http
            .get(lab.ingress("/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        replicas.insert(body["replica"].as_str().unwrap().to_string());
    }
    assert_eq!(replicas.len(), 2, "{replicas:?}");
}

/// The metrics time series, `status`, `up`'s banner, the owner-only Redis
/// password and state files, and `logs`.
async fn assert_metrics_cli_and_files(lab: &Lab) {
    // The time series has 1-second points with the traffic, readiness and
    // Redis state.
    eventually(
        chaoslab_test_support::GENEROUS,
        "a metrics point with traffic",
        || async {
            let points = lab.api("/api/metrics").await;
            points.as_array()?.iter().find(|p| {
                p["requests"].as_u64() > Some(0) && p["ready"] == 2 && p["redis_connected"] == true
            })?;
            Some(())
        },
    )
    .await;

    let status = lab.cli(&["status"]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(text.contains("Running"), "{text}");
    let output = lab.output();
    assert!(output.contains("chaoslab lab is up"), "{output}");
    assert!(output.contains("curl -s http://127.0.0.1:"), "{output}");

    // Redis has the AOF on and the password file is owner-only.
    use std::os::unix::fs::PermissionsExt;
    let password = lab.state_dir().join("redis/service.password");
    assert_eq!(
        std::fs::metadata(&password).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let state = lab.state_dir().join("lab.json");
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let logs = lab.cli(&["logs", "--tail", "5"]).await;
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.status.success() && text.contains("[chaoslab--"),
        "{text}"
    );
}

/// `events --follow` and `logs --follow`, once each has printed its tail.
async fn start_followers(lab: &Lab) -> [std::process::Child; 2] {
    let follow = |what: &str| {
        std::process::Command::new(lab_support::BIN)
            .args([what, "--follow", "--tail", "1"])
            .current_dir(lab.dir())
            .stdout(std::fs::File::create(lab.dir().join(format!("{what}.out"))).unwrap())
            .spawn()
            .unwrap()
    };
    let followers = [follow("events"), follow("logs")];
    // Connected once each has printed its tail.
    eventually(
        chaoslab_test_support::GENEROUS,
        "followers connected",
        || async {
            let printed = |f: &str| std::fs::metadata(lab.dir().join(f)).is_ok_and(|m| m.len() > 0);
            (printed("events.out") && printed("logs.out")).then_some(())
        },
    )
    .await;
    followers
}

/// A follow stream ends by itself (bounded) once the lab is gone.
async fn assert_ends_with_the_lab(follower: &mut std::process::Child) {
    let pid = follower.id();
    let deadline = std::time::Instant::now() + chaoslab_test_support::GENEROUS;
    while follower.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "follow stream {pid} did not end with the lab"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid));
}

/// With the default `quick` probes, `up` answers 200 through the ingress
/// within 3 s on an idle machine (release build: ~1.6 s; `bench/` measures
/// it). Here only that it gets ready with them and says when (a loaded
/// machine running debug builds in parallel may take longer; the fixture's
/// generous deadline bounds it), the time printed for the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_default_probes_is_ready_within_seconds() {
    let lab = builder().unset("probes.readiness").start().await;
    let ready_after = lab.started.elapsed();
    eprintln!("time to ready with the quick preset: {ready_after:?}");
    let output = lab.output();
    assert!(output.contains("ready in"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigkill_of_the_lab_leave_no_process() {
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let mut lab = builder().replicas(2).start().await;
        eventually(
            chaoslab_test_support::GENEROUS,
            "two replicas running",
            || async {
                let n = lab
                    .active_replicas()
                    .await
                    .iter()
                    .filter(|r| r["pid"].is_u64())
                    .count();
                (n == 2).then_some(())
            },
        )
        .await;
        let pids = lab.pids();
        assert!(pids.len() >= 4, "{pids:?}");
        lab.signal(signal);
        lab.wait_exit(chaoslab_test_support::GENEROUS).await;
        eventually(
            chaoslab_test_support::GENEROUS,
            "replicas and redis gone after the lab's death",
            || async {
                let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
                left.is_empty().then_some(())
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_redis_server_is_one_line_and_exit_1() {
    let mut lab = builder()
        .set("redis", "server", "\"/nonexistent/redis-server\"")
        .no_wait()
        .start()
        .await;
    assert_eq!(
        lab.wait_exit(chaoslab_test_support::GENEROUS).await,
        Some(1)
    );
    let output = lab.output();
    assert_eq!(output.trim().lines().count(), 1, "{output}");
    assert!(
        output.contains("apt-get install -y redis-server"),
        "{output}"
    );
}

/// A frozen lab (SIGSTOP: it holds its sockets and answers nothing) does
/// not hang `events --follow` for good: three missed heartbeats (30 s)
/// end it with an error that says so; the lab goes on once continued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_lab_ends_events_follow_with_an_error() {
    let mut lab = builder().start().await;
    let mut follower = tokio::process::Command::new(lab.bin())
        .args(["events", "--follow", "--tail", "1"])
        .current_dir(lab.dir())
        .env_remove("CHAOSLAB_STATE_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Frozen once the stream is flowing (its tail printed), so that the
    // silence, not the first answer's wait, is what ends it.
    let mut stdout = tokio::io::BufReader::new(follower.stdout.take().unwrap());
    let mut first = String::new();
    let tail = tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut first);
    tokio::time::timeout(Duration::from_secs(60), tail)
        .await
        .expect("the tail within 60 s")
        .unwrap();
    lab.signal(libc::SIGSTOP);
    let frozen_at = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(120), follower.wait_with_output()).await;
    lab.signal(libc::SIGCONT);
    let output = ended
        .expect("events --follow ended within 120 s of the freeze")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("frozen"), "{stderr}");
    assert!(stderr.contains("nothing on /api/events"), "{stderr}");
    assert!(
        frozen_at.elapsed() >= Duration::from_secs(25),
        "ended by the silence"
    );
    lab.down(&[]).await;
}
