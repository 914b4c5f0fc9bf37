//! The real lab for end-to-end tests: [`LabBuilder`] writes a test-sized
//! `chaoslab.toml` in a temp dir (free ports, fast probes and back-off, no
//! autoscaler), runs `chaoslab up` there, waits (bounded) until the ingress
//! serves `/`, and [`Lab`]'s drop kills `up` and every process it was seen
//! to run, so no process outlives a test. Also the requests tests make to a
//! lab: its control API (through [`LabClient`], the one client the CLI and
//! experiments use too), timed GETs through the ingress, `chaoslab …` in
//! its directory, faults and events. Tests that check the control API's
//! HTTP surface itself (Host/Origin guard, token refusal, error bodies)
//! build their requests by hand on [`Lab::control`] and [`Lab::token`].
//!
//! The binary is passed in (`env!("CARGO_BIN_EXE_chaoslab")` exists only in
//! the root package's tests). At most [`MAX_STARTING`] labs start at once
//! in one test process, whatever the number of test threads: a start is a
//! burst of processes (Redis, replicas, probes) and more of them at once
//! only makes each slower. The slot is held until the lab serves, not for
//! its life, so a test holding several labs cannot deadlock another.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chaoslab_lab::LabClient;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::{process, wait};

/// Labs starting at once in one test process.
pub const MAX_STARTING: usize = 2;

fn start_slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| Arc::new(Semaphore::new(MAX_STARTING)))
        .clone()
}

/// Builds a lab: `[section] key = value` settings on top of test defaults.
pub struct LabBuilder {
    bin: PathBuf,
    settings: BTreeMap<String, BTreeMap<String, String>>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    wait_ready: bool,
}

impl LabBuilder {
    /// Test-sized defaults for the `chaoslab` binary at `bin`: free ports,
    /// fast probes and back-off, no autoscaler.
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        LabBuilder {
            bin: bin.into(),
            settings: BTreeMap::new(),
            args: Vec::new(),
            env: Vec::new(),
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
        // The suites test process isolation (the portable fallback);
        // tests/isolation_*.rs ask for kernel mode themselves.
        .set("lab", "isolation", "\"process\"")
    }

    /// For fault tests: small Redis timeouts and back-off in the replicas
    /// (a cut-off Redis fails in about a second, not three) and probes
    /// patient enough not to restart replicas during a fault.
    pub fn fault_sized(self) -> Self {
        self.set("faults", "toxiproxy_port", 0)
            .set("app.env", "REDIS_SOCKET_TIMEOUT", "\"1\"")
            .set("app.env", "REDIS_SOCKET_CONNECT_TIMEOUT", "\"1\"")
            .set("app.env", "REDIS_BACKOFF_BASE", "\"0.1\"")
            .set("app.env", "REDIS_BACKOFF_CAP", "\"0.2\"")
            .set("probes.readiness", "timeout_seconds", 2.5)
            .set("probes.liveness", "timeout_seconds", 2)
            .set("probes.liveness", "initial_delay_seconds", 30)
    }

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

    /// An environment variable for `chaoslab up` itself (e.g. the
    /// `SERVER_*` limits of its listeners).
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
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
    /// `/` with 200. [`Lab::started`] is taken once a start slot is
    /// granted, when `up` is spawned.
    pub async fn start(self) -> Lab {
        let slot = start_slots()
            .acquire_owned()
            .await
            .expect("the lab slots are never closed");
        let dir = tempfile::Builder::new()
            .prefix("chaoslab-test-lab-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("chaoslab.toml"), self.toml()).expect("write chaoslab.toml");
        let stdout = std::fs::File::create(dir.path().join("up.out")).expect("up.out");
        let stderr = std::fs::File::create(dir.path().join("up.err")).expect("up.err");
        let started = Instant::now();
        let child = Command::new(&self.bin)
            .arg("up")
            .args(&self.args)
            .current_dir(dir.path())
            .env_remove("CHAOSLAB_STATE_DIR")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn chaoslab up");
        // `--state-dir X` (relative to the lab's directory) moves lab.json.
        let state_dir = self
            .args
            .iter()
            .position(|a| a == "--state-dir")
            .and_then(|i| self.args.get(i + 1))
            .map_or_else(|| dir.path().join(".chaoslab"), |d| dir.path().join(d));
        let mut lab = Lab {
            bin: self.bin,
            dir,
            state_dir,
            child: Some(child),
            state: Value::Null,
            client: OnceLock::new(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            seen_pids: Mutex::new(BTreeSet::new()),
            started,
        };
        if self.wait_ready {
            lab.wait_serving().await;
        }
        drop(slot);
        lab
    }
}

/// A running `chaoslab up`.
pub struct Lab {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// `.chaoslab` in `dir` unless `--state-dir` said otherwise.
    state_dir: PathBuf,
    child: Option<Child>,
    /// Contents of the state dir's `lab.json`.
    pub state: Value,
    /// The control API's client, made from `lab.json` on first use.
    client: OnceLock<LabClient>,
    pub http: reqwest::Client,
    seen_pids: Mutex<BTreeSet<u32>>,
    pub started: Instant,
}

impl Lab {
    /// Waits until `lab.json` is written and the ingress answers `/` with
    /// 200; an early exit of `up` fails at once with what it printed.
    async fn wait_serving(&mut self) {
        let state_path = self.state_dir.join("lab.json");
        let deadline = Instant::now() + wait::GENEROUS;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("chaoslab up exited early ({status}):\n{}", self.output());
            }
            if self.state.is_null()
                && let Ok(text) = std::fs::read_to_string(&state_path)
                && let Ok(state) = serde_json::from_str::<Value>(&text)
            {
                self.state = state;
            }
            if !self.state.is_null()
                && let Ok(r) = self
                    .http
                    .get(self.ingress("/"))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                && r.status() == 200
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {:?} waiting for: chaoslab up serving / through its ingress\n{}",
                    wait::GENEROUS,
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The `chaoslab` binary this lab runs.
    pub fn bin(&self) -> &Path {
        &self.bin
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

    /// A URL on the control API.
    pub fn control(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.state["control_url"].as_str().unwrap_or_default()
        )
    }

    /// The control API's bearer token.
    pub fn token(&self) -> &str {
        self.state["token"].as_str().unwrap_or_default()
    }

    pub fn redis_pid(&self) -> Option<u32> {
        self.state["redis_pid"].as_u64().map(|p| p as u32)
    }

    /// The control API's client (the CLI's and the experiments'), found
    /// through the lab's `lab.json`: a panic with `up`'s output when the
    /// lab has not written it (the builder waits for it unless `no_wait`)
    /// or is gone.
    pub fn client(&self) -> &LabClient {
        self.client.get_or_init(|| {
            LabClient::discover(&self.state_dir())
                .unwrap_or_else(|e| panic!("no control API client: {e}\n{}", self.output()))
        })
    }

    /// GET on the control API; its JSON body (a panic naming the lab's
    /// error unless it answers 2xx).
    pub async fn api(&self, path: &str) -> Value {
        self.client()
            .get(path)
            .await
            .unwrap_or_else(|e| panic!("control API GET {path}: {e}"))
    }

    /// A JSON-lines endpoint of the control API (events, logs), one value
    /// per line that parses.
    pub async fn api_lines(&self, path: &str) -> Vec<Value> {
        let mut values = Vec::new();
        self.client()
            .lines(path, |line| {
                values.extend(serde_json::from_str::<Value>(line).ok());
                std::ops::ControlFlow::Continue(())
            })
            .await
            .unwrap_or_else(|e| panic!("control API GET {path}: {e}"));
        values
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

    /// The Toxiproxy-compatible API, `http://127.0.0.1:PORT` (no slash).
    pub async fn toxiproxy_url(&self) -> String {
        self.status().await["lab"]["toxiproxy_url"]
            .as_str()
            .expect("toxiproxy_url in /api/status")
            .trim_end_matches('/')
            .to_string()
    }

    /// `path` on the first active replica's own port (APP_PORT).
    pub async fn replica_url(&self, path: &str) -> String {
        let replicas = self.active_replicas().await;
        let port = replicas
            .first()
            .and_then(|r| r["port"].as_u64())
            .unwrap_or_else(|| panic!("a replica with a port: {replicas:?}"));
        format!("http://127.0.0.1:{port}{path}")
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

    /// Runs `chaoslab <args>` in the lab's directory (bounded).
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let run = tokio::process::Command::new(&self.bin)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("CHAOSLAB_STATE_DIR")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        wait::bounded(
            Duration::from_secs(120),
            &format!("chaoslab {args:?} to finish"),
            run,
        )
        .await
        .expect("CLI ran")
    }

    /// `chaoslab down [extra…]` in the lab's directory, which must succeed
    /// (its stderr in the panic otherwise); then waits (generously) for
    /// this lab's `up` to exit 0.
    pub async fn down(&mut self, extra: &[&str]) {
        let args: Vec<&str> = std::iter::once("down")
            .chain(extra.iter().copied())
            .collect();
        let down = self.cli(&args).await;
        assert!(
            down.status.success(),
            "chaoslab {args:?}: {}",
            String::from_utf8_lossy(&down.stderr)
        );
        assert_eq!(
            self.wait_exit(wait::GENEROUS).await,
            Some(0),
            "{}",
            self.output()
        );
    }

    /// Waits for the `up` process to exit; its exit code.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let status = wait::eventually_async(deadline, "chaoslab up to exit", || {
            let exited = child.try_wait().ok().flatten();
            async move { exited }
        })
        .await;
        status.code()
    }

    /// Sends a signal to the `up` process.
    pub fn signal(&self, signal: i32) {
        process::signal(self.pid(), signal);
    }

    /// What `up` printed so far.
    pub fn output(&self) -> String {
        let out = std::fs::read_to_string(self.dir.path().join("up.out")).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.path().join("up.err")).unwrap_or_default();
        format!("{out}{err}")
    }

    /// Where the lab keeps its state (`--state-dir`, else `.chaoslab`).
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let pids = self.pids();
        if let Some(mut child) = self.child.take() {
            process::kill_and_reap(&mut child);
        }
        for pid in pids {
            if pid != 0 && process::alive(pid) {
                process::signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// One HTTP answer, timed.
#[derive(Debug, Clone)]
pub struct Answer {
    /// 0 = no answer (connection error or client timeout).
    pub status: u16,
    pub body: Value,
    pub elapsed: Duration,
    /// `x-chaoslab-error` when the ingress made the answer itself.
    pub proxy_error: Option<String>,
}

impl Answer {
    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }
}

/// GET `url` with a 10 s client timeout, timed.
pub async fn get(lab: &Lab, url: &str) -> Answer {
    let start = Instant::now();
    match lab
        .http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let proxy_error = r
                .headers()
                .get("x-chaoslab-error")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let body = r.json().await.unwrap_or(Value::Null);
            Answer {
                status,
                body,
                elapsed: start.elapsed(),
                proxy_error,
            }
        }
        Err(_) => Answer {
            status: 0,
            body: Value::Null,
            elapsed: start.elapsed(),
            proxy_error: None,
        },
    }
}

/// Runs `chaoslab <args>`; panics unless it exits 0; its stdout.
pub async fn ok(lab: &Lab, args: &[&str]) -> String {
    let out = lab.cli(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "chaoslab {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The fault id in `fault … ` output ("fault f-3 injected: …").
pub fn fault_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// `/api/faults`.
pub async fn faults(lab: &Lab) -> Vec<Value> {
    lab.api("/api/faults")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `path` on the first active replica's own port.
pub async fn replica_url(lab: &Lab, path: &str) -> String {
    lab.replica_url(path).await
}

/// Sum of restarts of the active replicas.
pub async fn restarts(lab: &Lab) -> u64 {
    lab.active_replicas()
        .await
        .iter()
        .map(|r| r["restarts"].as_u64().unwrap_or(0))
        .sum()
}

/// Median latency (ms) of `n` sequential GET `/` through the ingress (all
/// must be 200).
pub async fn median_ms(lab: &Lab, n: usize) -> f64 {
    let url = lab.ingress("/");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let a = get(lab, &url).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        times.push(a.elapsed.as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[n / 2]
}

/// The fastest of `n` sequential GET `/` through the ingress, in ms (all
/// must be 200): a baseline a loaded moment inflates less than a median.
pub async fn min_ms(lab: &Lab, n: usize) -> f64 {
    let url = lab.ingress("/");
    let mut fastest = f64::INFINITY;
    for _ in 0..n {
        let a = get(lab, &url).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        fastest = fastest.min(a.elapsed.as_secs_f64() * 1000.0);
    }
    fastest
}

/// GETs `url` until an answer `accept`s and came in under `bound`; a
/// generous deadline. A fault that delays every answer never lets one
/// through under its delay, so a fast one proves it is gone (or smaller);
/// a loaded machine only makes fast answers rarer, never impossible.
pub async fn until_a_fast_answer(
    lab: &Lab,
    url: &str,
    bound: Duration,
    what: &str,
    accept: impl Fn(&Answer) -> bool,
) -> Answer {
    wait::eventually_async(
        wait::GENEROUS,
        &format!("{what} (an answer under {bound:?})"),
        || async {
            let a = get(lab, url).await;
            (accept(&a) && a.elapsed < bound).then_some(a)
        },
    )
    .await
}

/// Every lab event (`/api/events`, oldest first).
pub async fn events(lab: &Lab) -> Vec<Value> {
    lab.api_lines("/api/events?limit=2000").await
}

/// Lab events with a reason starting with `Fault`: (reason, id).
pub async fn fault_events(lab: &Lab) -> Vec<(String, String)> {
    events(lab)
        .await
        .into_iter()
        .filter(|e| e["reason"].as_str().is_some_and(|r| r.starts_with("Fault")))
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["data"]["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
