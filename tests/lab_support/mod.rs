//! Fixtures for the lab's end-to-end tests: a fluent `Lab::builder()` that
//! runs the real `chaoslab up` in a temp dir with free ports and a
//! test-sized `chaoslab.toml`, clients for its ingress and control API, an
//! `eventually` helper instead of sleeps, and kill-on-drop so no process
//! outlives a test.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_chaoslab");

/// Polls `check` every 100 ms until it returns `Some`, or panics after
/// `deadline` naming `what`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if start.elapsed() > deadline {
            panic!("not within {deadline:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X")
    })
}

/// Builds a lab: `[section] key = value` settings on top of test defaults.
pub struct LabBuilder {
    settings: BTreeMap<String, BTreeMap<String, String>>,
    args: Vec<String>,
    wait_ready: bool,
}

impl LabBuilder {
    /// Sets `key = value` (a TOML literal) in `[section]`.
    pub fn set(mut self, section: &str, key: &str, value: impl ToString) -> Self {
        self.settings
            .entry(section.into())
            .or_default()
            .insert(key.into(), value.to_string());
        self
    }

    /// Drops every test default of `[section]` (back to the product's).
    pub fn unset(mut self, section: &str) -> Self {
        self.settings.remove(section);
        self
    }

    pub fn replicas(self, n: u32) -> Self {
        self.set("app", "replicas", n)
    }

    /// Extra arguments for `chaoslab up`.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Do not wait for a ready replica (for start-up failure tests).
    pub fn no_wait(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    fn toml(&self) -> String {
        let mut out = String::new();
        for (section, keys) in &self.settings {
            out.push_str(&format!("[{section}]\n"));
            for (k, v) in keys {
                out.push_str(&format!("{k} = {v}\n"));
            }
            out.push('\n');
        }
        out
    }

    /// Spawns `chaoslab up` and (by default) waits until the ingress serves
    /// `/` with 200.
    pub async fn start(self) -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("chaoslab.toml"), self.toml()).expect("write chaoslab.toml");
        let stdout = std::fs::File::create(dir.path().join("up.out")).expect("up.out");
        let stderr = std::fs::File::create(dir.path().join("up.err")).expect("up.err");
        let started = Instant::now();
        let child = Command::new(BIN)
            .arg("up")
            .args(&self.args)
            .current_dir(dir.path())
            .env_remove("CHAOSLAB_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn chaoslab up");
        let mut lab = Lab {
            dir,
            child: Some(child),
            state: Value::Null,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            seen_pids: Mutex::new(BTreeSet::new()),
            started,
        };
        if !self.wait_ready {
            return lab;
        }
        // Poll by hand so a failure shows what `up` printed (and an early
        // exit is reported at once).
        let state_path = lab.dir.path().join(".chaoslab/lab.json");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(child) = lab.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("chaoslab up exited early ({status}):\n{}", lab.output());
            }
            if lab.state.is_null()
                && let Ok(text) = std::fs::read_to_string(&state_path)
                && let Ok(state) = serde_json::from_str::<Value>(&text)
            {
                lab.state = state;
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
            if Instant::now() > deadline {
                panic!("chaoslab up not serving / within 40 s:\n{}", lab.output());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        lab
    }
}

/// A running `chaoslab up`.
pub struct Lab {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Contents of `.chaoslab/lab.json`.
    pub state: Value,
    pub http: reqwest::Client,
    seen_pids: Mutex<BTreeSet<u32>>,
    pub started: Instant,
}

/// Test-sized defaults: free ports, fast probes and back-off, no autoscaler.
pub fn builder() -> LabBuilder {
    LabBuilder {
        settings: BTreeMap::new(),
        args: Vec::new(),
        wait_ready: true,
    }
    .set("ingress", "port", 0)
    .set("control", "port", 0)
    .set("faults", "toxiproxy_port", 0)
    .set("probes.readiness", "initial_delay_seconds", 0.2)
    .set("probes.readiness", "period_seconds", 0.2)
    .set("probes.readiness", "timeout_seconds", 0.5)
    .set("restart", "backoff_initial_seconds", 0.2)
    .set("restart", "backoff_max_seconds", 2)
    .set("restart", "termination_grace_seconds", 2)
    .set("revisions", "drain_seconds", 0.5)
    .set("autoscaler", "enabled", false)
}

impl Lab {
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn ingress(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.state["ingress_url"].as_str().unwrap_or_default()
        )
    }

    pub fn redis_pid(&self) -> Option<u32> {
        self.state["redis_pid"].as_u64().map(|p| p as u32)
    }

    /// GET on the control API.
    pub async fn api(&self, path: &str) -> Value {
        let url = format!(
            "{}{path}",
            self.state["control_url"].as_str().unwrap_or_default()
        );
        let token = self.state["token"].as_str().unwrap_or_default();
        let value: Value = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("control API")
            .json()
            .await
            .expect("control API JSON");
        value
    }

    /// `/api/status`, remembering every replica pid for cleanup.
    pub async fn status(&self) -> Value {
        let status = self.api("/api/status").await;
        let mut seen = self.seen_pids.lock().unwrap_or_else(|p| p.into_inner());
        for r in status["replicas"].as_array().into_iter().flatten() {
            if let Some(pid) = r["pid"].as_u64() {
                seen.insert(pid as u32);
            }
        }
        status
    }

    /// Replicas of the active revision.
    pub async fn active_replicas(&self) -> Vec<Value> {
        let status = self.status().await;
        let active = status["active_revision"].clone();
        status["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["revision"] == active)
            .cloned()
            .collect()
    }

    /// Every pid seen so far (lab, Redis, replicas).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .seen_pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        pids.extend(self.redis_pid());
        pids.push(self.pid());
        pids
    }

    /// Runs `chaoslab <args>` in the lab's directory.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let run = tokio::process::Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("CHAOSLAB_STATE_DIR")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .expect("CLI finished in time")
            .expect("CLI ran")
    }

    /// Waits for the `up` process to exit; returns its exit code.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if start.elapsed() > deadline {
                panic!("chaoslab up did not exit within {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a signal to the `up` process.
    pub fn signal(&self, signal: i32) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, signal);
        }
    }

    /// What `up` printed so far.
    pub fn output(&self) -> String {
        let out = std::fs::read_to_string(self.dir.path().join("up.out")).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.path().join("up.err")).unwrap_or_default();
        format!("{out}{err}")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join(".chaoslab")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let pids = self.pids();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pid in pids {
            if pid != 0 && alive(pid) {
                #[allow(unsafe_code)]
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
    }
}
