//! End to end: the lab works in any directory path (SPEC section 13,
//! issue 11 item 7). `chaoslab up` with its state directory under a path
//! holding spaces, non-ASCII letters, a double quote and a backslash starts
//! the real redis-server from the generated `redis.conf`, serves `/` with
//! 200 through the ingress, answers `status` and stops with `down`.

#[path = "lab_support/mod.rs"]
mod lab_support;

use std::time::{Duration, Instant};

use lab_support::{alive, builder};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_works_under_a_path_with_spaces_quotes_and_non_ascii() {
    // Relative to the lab's working directory (a fresh temp dir).
    let state = "lab dir é/a \"quoted\" back\\slash ü/.chaoslab";
    let mut lab = builder()
        .no_wait()
        .arg("--state-dir")
        .arg(state)
        .start()
        .await;
    let state_dir = lab.dir().join(state);

    // The fixture waits on `.chaoslab/lab.json`; this lab writes elsewhere.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        assert!(
            alive(lab.pid()),
            "chaoslab up exited early:\n{}",
            lab.output()
        );
        if lab.state.is_null()
            && let Ok(text) = std::fs::read_to_string(state_dir.join("lab.json"))
            && let Ok(value) = serde_json::from_str::<Value>(&text)
        {
            lab.state = value;
        }
        if !lab.state.is_null()
            && let Ok(r) = lab
                .http
                .get(lab.ingress("/"))
                .timeout(Duration::from_secs(5))
                .send()
                .await
            && r.status() == 200
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "chaoslab up not serving / within 40 s:\n{}",
            lab.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Remember the replicas' pids for the fixture's cleanup.
    let _ = lab.status().await;

    // redis-server really uses the data dir under that path (AOF on).
    assert!(
        state_dir.join("redis/data/appendonlydir").is_dir(),
        "AOF directory under the quoted path"
    );
    let conf = std::fs::read_to_string(state_dir.join("redis/redis.conf")).unwrap();
    assert!(
        conf.lines()
            .any(|l| l.starts_with("dir \"") && l.ends_with('"')),
        "dir is quoted:\n{conf}"
    );

    let status = lab.cli(&["status", "--state-dir", state]).await;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{text}");
    assert!(text.contains("Running"), "{text}");

    lab.down(&["--state-dir", state]).await;
    assert!(!state_dir.join("lab.json").exists(), "state file removed");
}
