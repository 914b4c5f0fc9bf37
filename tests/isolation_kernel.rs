//! Kernel isolation end to end (SPEC §14, issue 13): the real `chaoslab up
//! --isolation kernel` as root. A replica over its memory limit is ended by
//! the kernel's OOM killer (its cgroup's oom_kill count rises) and
//! restarted; under `chaos load high` a replica uses at most 0.30 CPU,
//! measured from its cgroup; under deny-new an established Redis connection
//! still answers PING while a new connect gets no answer; blackhole
//! stalls; reset resets; after `down`, and after `kill -9` and the next
//! `up`, nothing of the lab remains in the kernel.
//!
//! Needs root, cgroups (v1 or v2), `ip` and `nft`: without them the tests
//! say what is missing and skip. Under CI (`CI` set) a missing piece is a
//! failure where kernel isolation is expected: running as root on a kernel
//! that has the memory and cpu cgroup controllers (`/proc/cgroups`), as the
//! CI machine runs `.ci/run` (`.ci/setup.d/isolation.sh` installs `ip`,
//! `nft` and `conntrack`). A CI run that is not root, or on a kernel
//! without those controllers at all (some containers), skips with the
//! reason; `CHAOSLAB_KERNEL_TESTS=require` makes every missing piece a
//! failure. The first-time user's `chaoslab up` (auto) runs everywhere:
//! kernel mode as root where the machine allows it, else process mode
//! saying why.

mod lab_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chaoslab_lab::kernel::{CgroupVersion, Hierarchies};
use lab_support::{BIN, Lab, builder, eventually};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Whether the running kernel has the memory and cpu cgroup controllers
/// (enabled in `/proc/cgroups`), mounted or not.
fn kernel_has_cgroup_controllers() -> bool {
    let text = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let enabled = |name: &str| {
        text.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.first() == Some(&name) && fields.get(3) == Some(&"1")
        })
    };
    enabled("memory") && enabled("cpu")
}

/// Whether a cgroup can be made in the memory hierarchy (not so in a
/// container without cgroup delegation, where /sys/fs/cgroup is read-only).
fn cgroups_writable(h: &Hierarchies) -> Result<(), String> {
    // One name per call: the tests of this file probe in parallel threads.
    static PROBES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = h
        .memory
        .join(format!("chaoslab-probe-{}-{n}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| {
        format!(
            "cannot create a cgroup in {}: {e} (a container without cgroup delegation?)",
            h.memory.display()
        )
    })?;
    let _ = std::fs::remove_dir(&probe);
    Ok(())
}

/// Why kernel isolation cannot run here, if so.
fn kernel_unavailable() -> Option<String> {
    if let Some(why) = chaoslab_lab::kernel::not_root() {
        Some(why)
    } else if let Err(e) = Hierarchies::detect().and_then(|h| cgroups_writable(&h)) {
        Some(format!("no usable cgroups: {e}"))
    } else if chaoslab_lab::kernel::Tools::find().is_err() {
        Some(
            "ip (iproute2) or nft (nftables) missing: .ci/setup.d/isolation.sh installs them"
                .into(),
        )
    } else {
        None
    }
}

/// [`kernel_unavailable`] under the skip policy (see the module doc for
/// when it fails the test instead).
fn kernel_missing() -> Option<String> {
    let root = chaoslab_lab::kernel::not_root().is_none();
    let why = kernel_unavailable()?;
    let required = std::env::var("CHAOSLAB_KERNEL_TESTS").is_ok_and(|v| v == "require");
    let on_ci = chaoslab_test_support::tool::on_ci();
    let expected = required || (on_ci && root && kernel_has_cgroup_controllers());
    assert!(
        !expected,
        "kernel isolation is expected here (root, and the kernel has the memory and cpu cgroup controllers) but: {why}"
    );
    if on_ci {
        eprintln!(
            "SKIPPED under CI: kernel isolation is not expected on this machine ({}): {why}",
            if root {
                "the kernel has no memory and cpu cgroup controllers"
            } else {
                "not root; `sudo bash .ci/run` runs these tests"
            }
        );
    } else {
        eprintln!("SKIPPED kernel isolation test: {why}");
    }
    Some(why)
}

fn kernel_lab() -> lab_support::LabBuilder {
    builder().set("lab", "isolation", "\"kernel\"")
}

/// Stops a kernel-mode lab on every way out of a test (the fixture's drop
/// SIGKILLs it, which leaves its cgroups and namespace behind): `down`,
/// then whatever still carries its name is removed as the next `up` would.
struct Teardown {
    dir: PathBuf,
    name: String,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let mut down = std::process::Command::new(BIN);
        down.arg("down")
            .current_dir(&self.dir)
            .env_remove("CHAOSLAB_STATE_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Ok(mut child) = down.spawn() {
            let deadline = Instant::now() + Duration::from_secs(40);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let id = self.name.trim_start_matches("chaoslab-");
        chaoslab_lab::kernel::LabCgroups::sweep(&self.name);
        chaoslab_lab::LabNetwork::sweep(id, &self.name);
    }
}

/// The lab's kernel name and its teardown (declared after the lab, so it
/// runs before the fixture's drop).
async fn teardown(lab: &Lab) -> (String, Teardown) {
    let name = kernel_name(lab).await;
    let guard = Teardown {
        dir: lab.dir().to_path_buf(),
        name: name.clone(),
    };
    (name, guard)
}

/// The lab's name in the kernel (`chaoslab-<id>`), from its status.
async fn kernel_name(lab: &Lab) -> String {
    let status = lab.status().await;
    for kind in ["memory", "cpu", "network"] {
        assert_eq!(status["isolation"][kind]["mode"], "kernel", "{status}");
    }
    status["isolation"]["name"].as_str().unwrap().to_string()
}

/// What of lab `name` exists in the kernel: cgroup dirs, namespace, veth,
/// nftables tables (in the lab's namespace: the host's).
fn leftovers(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(h) = Hierarchies::detect() {
        for root in [&h.memory, &h.cpu, &h.cpuacct] {
            let dir = root.join(name);
            if dir.exists() {
                found.push(dir.display().to_string());
            }
        }
    }
    let run = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    if run(&["netns", "list"]).lines().any(|l| l.starts_with(name)) {
        found.push(format!("netns {name}"));
    }
    let id = name.trim_start_matches("chaoslab-");
    if run(&["-o", "link", "show"]).contains(&format!("clh{id}")) {
        found.push(format!("veth clh{id}"));
    }
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if tables.contains(name) {
        found.push(format!("nft table {name}"));
    }
    found
}

async fn nothing_left(name: &str, what: &str) {
    eventually(Duration::from_secs(30), what, || async {
        leftovers(name).is_empty().then_some(())
    })
    .await;
}

async fn post_load(lab: &Lab, port: u64, body: Value) {
    let response = lab
        .http
        .post(format!("http://127.0.0.1:{port}/chaos/load"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_oom_kills_a_replica_over_its_limit_and_it_restarts() {
    if kernel_missing().is_some() {
        return;
    }
    let lab = kernel_lab().set("limits", "memory_mb", 150).start().await;
    let (_name, _teardown) = teardown(&lab).await;
    let replica = lab.active_replicas().await.remove(0);
    let id = replica["id"].as_str().unwrap().to_string();
    let cgroup = PathBuf::from(replica["cgroup"].as_str().expect("a cgroup"));
    let oom_kills = |dir: &Path| -> u64 {
        let h = Hierarchies::detect().unwrap();
        let file = match h.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .expect("an oom_kill counter")
    };
    assert_eq!(oom_kills(&cgroup), 0);
    post_load(
        &lab,
        replica["target_port"].as_u64().unwrap(),
        json!({"level": "low", "duration_seconds": 60, "memory_mb": 400, "cpu_percent": 1}),
    )
    .await;
    let restarted = eventually(
        chaoslab_test_support::GENEROUS,
        "replica OOM-killed by the kernel and restarted",
        || async {
            let r = lab
                .active_replicas()
                .await
                .into_iter()
                .find(|r| r["id"] == id.as_str())?;
            (r["restarts"].as_u64() >= Some(1) && r["last_exit"]["reason"] == "OOMKilled")
                .then_some(r)
        },
    )
    .await;
    assert!(oom_kills(&cgroup) >= 1, "the cgroup counted the kill");
    assert!(restarted["oom_kills"].as_u64() >= Some(1), "{restarted}");
    assert_eq!(restarted["last_exit"]["signal"], 9, "{restarted}");
    let text =
        String::from_utf8_lossy(&lab.cli(&["events", "--tail", "500"]).await.stdout).into_owned();
    assert!(text.contains("the kernel's OOM killer"), "{text}");
    eventually(
        chaoslab_test_support::GENEROUS,
        "restarted replica ready again",
        || async {
            let ready = lab
                .active_replicas()
                .await
                .iter()
                .any(|r| r["id"] == id.as_str() && r["ready"] == true);
            ready.then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_under_high_load_stays_within_its_cpu_quota() {
    if kernel_missing().is_some() {
        return;
    }
    let lab = kernel_lab().start().await;
    let (name, _teardown) = teardown(&lab).await;
    let replica = lab.active_replicas().await.remove(0);
    let id = replica["id"].as_str().unwrap().to_string();
    post_load(
        &lab,
        replica["target_port"].as_u64().unwrap(),
        json!({"level": "high", "duration_seconds": 30, "memory_mb": 0, "cpu_percent": 100}),
    )
    .await;
    let h = Hierarchies::detect().unwrap();
    let usage_ns = || -> u64 {
        match h.version {
            CgroupVersion::V1 => {
                std::fs::read_to_string(h.cpuacct.join(&name).join(&id).join("cpuacct.usage"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            }
            CgroupVersion::V2 => {
                std::fs::read_to_string(h.cpu.join(&name).join(&id).join("cpu.stat"))
                    .unwrap()
                    .lines()
                    .find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse::<u64>().ok())
                    .unwrap()
                    * 1000
            }
        }
    };
    // 4 s windows of the cgroup's CPU time until one shows the load
    // running; no window may exceed the quota (plus scheduling slack).
    let cores = eventually(
        chaoslab_test_support::GENEROUS,
        "a 4 s window of the replica's cgroup showing the load",
        || async {
            let (t0, u0) = (Instant::now(), usage_ns());
            tokio::time::sleep(Duration::from_secs(4)).await;
            let cores = (usage_ns() - u0) as f64 / 1e9 / t0.elapsed().as_secs_f64();
            eprintln!("replica under high load: {cores:.3} cores (quota 0.25)");
            assert!(cores <= 0.30, "{cores:.3} cores over the 0.25 quota");
            (cores >= 0.10).then_some(cores)
        },
    )
    .await;
    assert!(cores <= 0.30, "{cores:.3} cores over the 0.25 quota");
    let throttled = eventually(
        chaoslab_test_support::GENEROUS,
        "throttling shown",
        || async {
            let r = lab
                .active_replicas()
                .await
                .into_iter()
                .find(|r| r["id"] == id.as_str())?;
            (r["cpu_throttled_periods"].as_u64() > Some(0)).then_some(r)
        },
    )
    .await;
    assert!(
        throttled["cpu_percent"].as_f64().unwrap() <= 30.0,
        "{throttled}"
    );
}

/// The replicas' Redis (host, port) and the service password.
async fn redis_of(lab: &Lab) -> (String, String) {
    let status = lab.status().await;
    let describe = status["lab"]["redis"].as_str().unwrap().to_string();
    let addr = describe
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let password =
        std::fs::read_to_string(lab.state_dir().join("redis").join("service.password")).unwrap();
    (addr, password.trim().to_string())
}

/// A Redis connection as the service user.
async fn connect(addr: &str, password: &str, within: Duration) -> std::io::Result<TcpStream> {
    let mut s = tokio::time::timeout(within, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let reply = command(&mut s, &format!("AUTH chaoslab {password}\r\n"), within).await?;
    assert_eq!(reply, "+OK\r\n");
    Ok(s)
}

/// Sends `text`, returns the reply (an error on timeout or reset).
async fn command(s: &mut TcpStream, text: &str, within: Duration) -> std::io::Result<String> {
    s.write_all(text.as_bytes()).await?;
    let mut buf = [0u8; 128];
    let n = tokio::time::timeout(within, s.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply"))??;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

async fn block(lab: &Lab, mode: &str) -> String {
    let out = lab
        .cli(&["fault", "network", "block", "--mode", mode, "--no-reset"])
        .await;
    assert!(out.status.success(), "{out:?}");
    chaoslab_test_support::lab::fault_id(&String::from_utf8_lossy(&out.stdout))
}

/// deny-new: the `established` connection answers, a new one gets none;
/// after clear new connections pass again.
async fn deny_new_keeps_established_flows(
    lab: &Lab,
    addr: &str,
    password: &str,
    established: &mut TcpStream,
) {
    let short = Duration::from_secs(2);
    assert_eq!(
        command(established, "PING\r\n", short).await.unwrap(),
        "+PONG\r\n"
    );
    let id = block(lab, "deny-new").await;
    assert_eq!(
        command(established, "PING\r\n", short).await.unwrap(),
        "+PONG\r\n",
        "established flows pass deny-new"
    );
    let new = connect(addr, password, short).await;
    assert_eq!(
        new.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::TimedOut),
        "a new connect gets no answer"
    );
    lab.cli(&["fault", "clear", &id]).await;
    let mut again = connect(addr, password, Duration::from_secs(10))
        .await
        .expect("cleared: new connections pass");
    assert_eq!(
        command(&mut again, "PING\r\n", short).await.unwrap(),
        "+PONG\r\n"
    );
}

/// blackhole: nothing passes on `established`, nothing is closed; the PING
/// sent into the blackhole is answered once it is gone.
async fn blackhole_stalls_without_cutting(lab: &Lab, established: &mut TcpStream) {
    let id = block(lab, "blackhole").await;
    let stalled = command(established, "PING\r\n", Duration::from_secs(2)).await;
    assert_eq!(
        stalled.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::TimedOut)
    );
    lab.cli(&["fault", "clear", &id]).await;
    // The PING sent into the blackhole is answered once it is gone (TCP
    // retransmits it): the connection was stalled, not cut.
    let late = {
        let mut buf = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(30), established.read(&mut buf))
            .await
            .expect("the stalled PING answered after clear")
            .unwrap()
    };
    assert!(late > 0);
}

/// reset: open connections are reset at once, new ones refused; the lab's
/// own view of Redis (its Unix socket) never goes down.
async fn reset_cuts_open_and_refuses_new(lab: &Lab, addr: &str, password: &str) {
    let short = Duration::from_secs(2);
    let mut open = connect(addr, password, short).await.unwrap();
    let id = block(lab, "reset").await;
    let reset = command(&mut open, "PING\r\n", short).await;
    let kind = reset.err().map(|e| e.kind());
    assert!(
        matches!(
            kind,
            Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof)
        ),
        "{kind:?}"
    );
    let refused = connect(addr, password, short).await;
    assert_eq!(
        refused.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    lab.cli(&["fault", "clear", &id]).await;
    connect(addr, password, Duration::from_secs(10))
        .await
        .expect("cleared: connections pass again");
    // The lab's own view of Redis (its Unix socket) never went down.
    let status = lab.status().await;
    assert_eq!(status["redis"]["up"], true, "{status}");
}

/// The admin path — the faults' and the lab's, over Redis's Unix socket —
/// works while every TCP path to Redis is cut: under deny-new and
/// blackhole a credential revoke and a Redis restart both succeed, and the
/// revoke takes effect.
async fn admin_path_works_while_tcp_is_cut(lab: &Lab, addr: &str, password: &str) {
    let short = Duration::from_secs(2);
    let deny = block(lab, "deny-new").await;
    let hole = block(lab, "blackhole").await;
    let revoke = lab.cli(&["fault", "auth", "revoke"]).await;
    assert!(
        revoke.status.success(),
        "revoke under blackhole: {revoke:?}"
    );
    let revoke = chaoslab_test_support::lab::fault_id(&String::from_utf8_lossy(&revoke.stdout));
    let restart = lab.cli(&["fault", "redis", "restart"]).await;
    assert!(
        restart.status.success(),
        "Redis restart under blackhole: {restart:?}"
    );
    eventually(
        chaoslab_test_support::GENEROUS,
        "the lab sees its restarted Redis up while the network is cut",
        || async { (lab.status().await["redis"]["up"] == true).then_some(()) },
    )
    .await;
    lab.cli(&["fault", "clear", &hole]).await;
    lab.cli(&["fault", "clear", &deny]).await;
    // The revoke took effect (the restart kept it): the old password fails.
    let mut old = eventually(
        chaoslab_test_support::GENEROUS,
        "a connection to the restarted Redis",
        || async {
            tokio::time::timeout(short, TcpStream::connect(addr))
                .await
                .ok()?
                .ok()
        },
    )
    .await;
    let refused = command(&mut old, &format!("AUTH chaoslab {password}\r\n"), short)
        .await
        .unwrap();
    assert!(refused.starts_with("-WRONGPASS"), "{refused}");
    lab.cli(&["fault", "clear", &revoke]).await;
    let (_, issued) = redis_of(lab).await;
    assert_ne!(issued, password, "a new credential was issued");
    let mut fresh = connect(addr, &issued, short).await.unwrap();
    assert_eq!(
        command(&mut fresh, "PING\r\n", short).await.unwrap(),
        "+PONG\r\n"
    );
}

/// One lab through deny-new, blackhole, reset and the admin path under a
/// cut network, in that order: each step starts from the state the one
/// before left (the established connection lives through the first two).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_faults_are_nftables_rules_in_redis_namespace() {
    if kernel_missing().is_some() {
        return;
    }
    let lab = kernel_lab().fault_sized().start().await;
    let (_name, _teardown) = teardown(&lab).await;
    let (addr, password) = redis_of(&lab).await;
    let mut established = connect(&addr, &password, Duration::from_secs(2))
        .await
        .unwrap();
    deny_new_keeps_established_flows(&lab, &addr, &password, &mut established).await;
    blackhole_stalls_without_cutting(&lab, &mut established).await;
    reset_cuts_open_and_refuses_new(&lab, &addr, &password).await;
    admin_path_works_while_tcp_is_cut(&lab, &addr, &password).await;
}

/// `chaoslab <args>` run in the lab directory `dir`, as a user there would
/// (no state-dir override).
fn chaoslab_in(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_remove("CHAOSLAB_STATE_DIR");
    cmd
}

/// Starts the next `up --isolation kernel` in `dir` and waits until it
/// runs under the same kernel name `name`.
async fn next_up_in(dir: &Path, name: &str) -> tokio::process::Child {
    let next = chaoslab_in(dir, &["up", "--isolation", "kernel"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually(
        chaoslab_test_support::GENEROUS,
        "the next lab started",
        || async {
            let out = chaoslab_in(dir, &["status", "--json"])
                .output()
                .await
                .ok()?;
            let v: Value = serde_json::from_slice(&out.stdout).ok()?;
            (v["isolation"]["name"] == name).then_some(())
        },
    )
    .await;
    next
}

/// The next `up` after a `kill -9` removed what the killed lab left: it
/// says so in the events, the killed lab's processes (replicas, Redis in
/// its namespace) are gone, and so is its NAT table.
async fn the_killed_labs_leftovers_are_removed(lab: &Lab, name: &str) {
    let events = chaoslab_in(lab.dir(), &["events", "--tail", "500"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&events.stdout);
    assert!(text.contains("KernelLeftoversRemoved"), "{text}");
    // The killed lab's processes (replicas, Redis in its namespace) are
    // gone: the next `up` killed what ran in its cgroups and namespace.
    for pid in lab.pids() {
        eventually(
            Duration::from_secs(10),
            "the killed lab's processes gone",
            || async { (!lab_support::alive(pid)).then_some(()) },
        )
        .await;
    }
    let host_table = std::process::Command::new("nft")
        .args(["list", "table", "ip", name])
        .output()
        .unwrap();
    assert!(
        !host_table.status.success(),
        "the killed lab's NAT table is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_the_lab_remains_after_down_or_after_kill_9_and_up() {
    if kernel_missing().is_some() {
        return;
    }
    let mut lab = kernel_lab().start().await;
    let (name, _teardown) = teardown(&lab).await;
    assert!(!leftovers(&name).is_empty(), "kernel mode made something");
    // A latency fault makes the lab's NAT table too.
    let out = lab
        .cli(&["fault", "network", "latency", "--ms", "50"])
        .await;
    assert!(out.status.success(), "{out:?}");
    assert!(leftovers(&name).iter().any(|l| l.starts_with("nft table")));

    // kill -9: the lab cannot clean up; the next `up` in the same directory does.
    lab.signal(libc::SIGKILL);
    lab.wait_exit(Duration::from_secs(30)).await;
    assert!(
        !leftovers(&name).is_empty(),
        "a killed lab leaves things behind"
    );
    let dir = lab.dir().to_path_buf();
    let mut next = next_up_in(&dir, &name).await;
    the_killed_labs_leftovers_are_removed(&lab, &name).await;

    // `down`: everything goes.
    let down = chaoslab_in(&dir, &["down"]).output().await.unwrap();
    assert!(down.status.success(), "{down:?}");
    let _ = tokio::time::timeout(Duration::from_secs(30), next.wait()).await;
    nothing_left(&name, "nothing of the lab after down").await;
}

/// SIGTERM (or Ctrl-C) while `up` is still starting — its cgroups and
/// namespace made, no replica ready yet — lets the start finish and then
/// stops the lab the usual way: it exits 0 and nothing of it remains in
/// the kernel (before, the signal's default action ended `up` on the spot
/// and left all of it behind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_while_up_starts_still_removes_what_it_made() {
    if kernel_missing().is_some() {
        return;
    }
    let mut lab = kernel_lab().no_wait().start().await;
    let id = chaoslab_lab::kernel::lab_id(&lab.state_dir());
    let name = chaoslab_lab::kernel::kernel_name(&id);
    // As soon as the first kernel object exists.
    let deadline = Instant::now() + chaoslab_test_support::GENEROUS;
    while leftovers(&name).is_empty() {
        assert!(
            Instant::now() < deadline,
            "up made nothing in the kernel:\n{}",
            lab.output()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready_before_signal = lab.state_dir().join("lab.json").exists();
    lab.signal(libc::SIGTERM);
    let code = lab.wait_exit(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{}", lab.output());
    nothing_left(&name, "nothing of a lab stopped while it started").await;
    if !ready_before_signal {
        assert!(
            lab.output()
                .contains("stopping as soon as the lab has started"),
            "{}",
            lab.output()
        );
    }
}

/// A lab killed with SIGKILL in a directory never used again: the next
/// lab started anywhere removes its cgroups, namespace, veth and tables
/// (its claim on the name died with it), and never touches a running
/// lab's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_later_up_removes_a_killed_labs_kernel_objects_but_never_a_running_labs() {
    if kernel_missing().is_some() {
        return;
    }
    let mut killed = kernel_lab().start().await;
    let (killed_name, _killed_teardown) = teardown(&killed).await;
    let running = kernel_lab().start().await;
    let (running_name, _running_teardown) = teardown(&running).await;
    killed.signal(libc::SIGKILL);
    killed.wait_exit(Duration::from_secs(30)).await;
    assert!(
        !leftovers(&killed_name).is_empty(),
        "a killed lab leaves things behind"
    );

    // Another directory's lab.
    let next = kernel_lab().start().await;
    let (next_name, _next_teardown) = teardown(&next).await;
    assert_ne!(next_name, killed_name);
    nothing_left(
        &killed_name,
        "the killed lab's kernel objects removed by another lab's up",
    )
    .await;
    let events = chaoslab_test_support::lab::events(&next).await;
    let removed = events
        .iter()
        .find(|e| e["reason"] == "KernelLeftoversRemoved")
        .unwrap_or_else(|| panic!("no KernelLeftoversRemoved event: {events:?}"));
    let names = removed["data"]["names"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(names.iter().any(|n| n == killed_name.as_str()), "{removed}");
    assert!(
        !names.iter().any(|n| n == running_name.as_str()),
        "{removed}"
    );
    for pid in killed.pids() {
        eventually(
            Duration::from_secs(10),
            "the killed lab's processes gone",
            || async { (!lab_support::alive(pid)).then_some(()) },
        )
        .await;
    }

    // The running lab kept everything and still serves.
    let kept = leftovers(&running_name);
    assert!(kept.iter().any(|l| l.starts_with("netns")), "{kept:?}");
    let status = running.status().await;
    assert_eq!(status["isolation"]["network"]["mode"], "kernel", "{status}");
    eventually(
        chaoslab_test_support::GENEROUS,
        "the running lab serves /",
        || async {
            (chaoslab_test_support::lab::get(&running, &running.ingress("/"))
                .await
                .status
                == 200)
                .then_some(())
        },
    )
    .await;
}

/// The first-time user's `chaoslab up`: no `--isolation`, no `[lab]
/// isolation` (auto). Where kernel isolation is available every mechanism
/// is in kernel mode; as a user who is not root every one is in process
/// mode and says why; `status` prints each with its detail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_takes_kernel_mode_where_the_machine_allows_it_and_says_why_not() {
    if !chaoslab_test_support::redis::installed_or_skip() {
        return;
    }
    let unavailable = kernel_unavailable();
    let lab = builder().unset("lab").start().await;
    let status = lab.status().await;
    let isolation = &status["isolation"];
    let _teardown = Teardown {
        dir: lab.dir().to_path_buf(),
        name: isolation["name"].as_str().unwrap().to_string(),
    };
    assert_eq!(isolation["requested"], "auto", "{isolation}");
    let not_root = chaoslab_lab::kernel::not_root();
    for kind in ["memory", "cpu", "network"] {
        let mechanism = &isolation[kind];
        let detail = mechanism["detail"].as_str().unwrap_or_default();
        assert!(!detail.is_empty(), "{kind}: {mechanism}");
        match (&unavailable, &not_root) {
            (None, _) => assert_eq!(mechanism["mode"], "kernel", "{kind}: {mechanism}"),
            (Some(_), Some(why)) => {
                assert_eq!(mechanism["mode"], "process", "{kind}: {mechanism}");
                assert!(detail.contains(why.as_str()), "{kind}: {detail}");
            }
            // Root without some kernel feature: kernel where possible,
            // process with the reason elsewhere (checked just above).
            (Some(_), None) => {}
        }
    }
    let text = String::from_utf8_lossy(&lab.cli(&["status"]).await.stdout).into_owned();
    for kind in ["memory", "cpu", "network"] {
        let mode = isolation[kind]["mode"].as_str().unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with(kind) && l.contains(&format!("{mode} isolation: "))),
            "`status` shows {kind}: {mode}:\n{text}"
        );
    }
    let served = lab.http.get(lab.ingress("/")).send().await.unwrap();
    assert_eq!(served.status(), 200);
}
