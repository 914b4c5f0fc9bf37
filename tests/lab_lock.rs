//! End to end: one lab per directory. Two `chaoslab up` started at the same
//! moment in one directory race for its lock file: one runs, the other
//! fails at once with one line naming the pid of the first, and leaves
//! nothing behind (issue 11 item 9).

mod lab_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab_support::{BIN, alive, eventually};

/// `chaoslab up` children, killed (with what they started: their children
/// get a parent-death signal) when the test ends, pass or fail.
struct Ups(Vec<Child>);

impl Drop for Ups {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn up(dir: &Path, n: usize) -> Child {
    let out = std::fs::File::create(dir.join(format!("up{n}.out"))).expect("out");
    let err = std::fs::File::create(dir.join(format!("up{n}.err"))).expect("err");
    Command::new(BIN)
        .arg("up")
        .current_dir(dir)
        .env_remove("CHAOSLAB_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn chaoslab up")
}

fn output(dir: &Path, n: usize) -> String {
    let read = |ext: &str| std::fs::read_to_string(dir.join(format!("up{n}.{ext}")));
    format!(
        "{}{}",
        read("out").unwrap_or_default(),
        read("err").unwrap_or_default()
    )
}

const CONFIG: &str = "\
[ingress]\nport = 0\n\n[control]\nport = 0\n\n[faults]\ntoxiproxy_port = 0\n\n\
[probes.readiness]\ninitial_delay_seconds = 0.2\nperiod_seconds = 0.2\n\n\
[autoscaler]\nenabled = false\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ups_in_one_directory_one_runs_the_other_names_its_pid() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("chaoslab.toml"), CONFIG).expect("config");
    let mut ups = Ups(vec![up(dir.path(), 0), up(dir.path(), 1)]);
    let pids: Vec<u32> = ups.0.iter().map(Child::id).collect();

    // One of them gives up within seconds (it does not wait for anything).
    let (loser, code) = eventually(chaoslab_test_support::GENEROUS, "one `up` refused", || {
        let found = ups
            .0
            .iter_mut()
            .enumerate()
            .find_map(|(i, c)| Some((i, c.try_wait().ok()??.code())));
        async move { found }
    })
    .await;
    let winner = 1 - loser;
    let text = output(dir.path(), loser);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
    assert!(
        text.contains("already running") && text.contains(&format!("pid {}", pids[winner])),
        "names the running lab's pid {}: {text}",
        pids[winner]
    );

    // The other one runs and serves.
    wait_serving(dir.path(), pids[winner]).await;
    assert!(
        ups.0[winner].try_wait().expect("try_wait").is_none(),
        "{}",
        output(dir.path(), winner)
    );

    // A third `up` while it runs fails at once too.
    assert_refused_naming(dir.path(), 2, pids[winner]).await;

    // The winner still stops cleanly: SIGTERM, exit 0, lock released for
    // the next lab.
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pids[winner] as libc::pid_t, libc::SIGTERM);
    }
    let status = eventually(chaoslab_test_support::GENEROUS, "the lab stops", || {
        let status = ups.0[winner].try_wait().ok().flatten();
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(0), "{}", output(dir.path(), winner));
    assert!(!alive(pids[winner]));
    ups.0.push(up(dir.path(), 3));
    eventually(
        chaoslab_test_support::GENEROUS,
        "a new lab starts after it",
        || {
            let printed = output(dir.path(), 3).contains("chaoslab lab is up");
            async move { printed.then_some(()) }
        },
    )
    .await;
}

/// Waits until the lab of `winner_pid` in `dir` serves `/` through its
/// ingress (its `lab.json` must be the winner's).
async fn wait_serving(dir: &Path, winner_pid: u32) {
    let state_path = dir.join(".chaoslab/lab.json");
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    eventually(
        chaoslab_test_support::GENEROUS,
        "the first lab serves /",
        || {
            let (http, state_path) = (&http, &state_path);
            async move {
                let state: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(state_path).ok()?).ok()?;
                assert_eq!(state["pid"], winner_pid, "lab.json is the winner's");
                let url = format!("{}/", state["ingress_url"].as_str()?);
                (http.get(url).send().await.ok()?.status() == 200).then_some(())
            }
        },
    )
    .await;
}

/// `up` number `n` in `dir` fails at once (exit 1) naming `winner_pid`.
async fn assert_refused_naming(dir: &Path, n: usize, winner_pid: u32) {
    let started = Instant::now();
    let mut late = up(dir, n);
    let status = eventually(
        chaoslab_test_support::GENEROUS,
        "the late `up` exits",
        || {
            let status = late.try_wait().ok().flatten();
            async move { status }
        },
    )
    .await;
    let text = output(dir, n);
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("pid {winner_pid}")), "{text}");
    eprintln!("`up` {n} refused after {:?}", started.elapsed());
}
