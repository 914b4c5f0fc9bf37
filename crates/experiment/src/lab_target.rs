//! The lab an experiment runs against. By default its own: `chaoslab up`
//! in a fresh directory with free ports, as a child in its own process
//! group (a terminal's Ctrl-C reaches only the runner, which rolls back and
//! then stops the lab itself) that also dies if the runner is killed
//! (parent-death signal, through the lab's [`Spawner`]). With `--attach
//! DIR`, a lab the user runs; it is left running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chaoslab_foundation::proc::alive;
use chaoslab_lab::LabClient;
use chaoslab_lab::{DeathSignal, Spawner, signal_group};
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::model::LabPlan;
use crate::run_error::RunError;

/// How long a lab has to write its state file and get a ready replica.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping lab gets before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A lab to run against.
pub struct LabTarget {
    pub client: LabClient,
    /// Its state directory (actions get it as CHAOSLAB_STATE_DIR).
    pub state_dir: PathBuf,
    /// `http://127.0.0.1:PORT` of its ingress.
    pub ingress_url: String,
    /// The Toxiproxy-compatible API, when the lab has one.
    pub toxiproxy_url: Option<String>,
    own: Option<OwnLab>,
}

struct OwnLab {
    child: Child,
    pid: u32,
    dir: PathBuf,
}

impl std::fmt::Debug for LabTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabTarget")
            .field("state_dir", &self.state_dir)
            .field("ingress_url", &self.ingress_url)
            .field("own", &self.own.as_ref().map(|o| o.pid))
            .finish()
    }
}

impl LabTarget {
    /// Starts `chaoslab up` (the executable `exe`) in `dir` with the plan's
    /// `chaoslab.toml` and waits until a replica is ready.
    pub async fn start(
        exe: &Path,
        plan: &LabPlan,
        dir: &Path,
        spawner: &Spawner,
        interrupt: &CancellationToken,
    ) -> Result<Self, RunError> {
        let io = |what: &str| {
            let what = format!("{what} in {}", dir.display());
            move |e: std::io::Error| RunError::Lab(format!("{what}: {e}"))
        };
        std::fs::create_dir_all(dir).map_err(io("cannot create the lab directory"))?;
        let text = toml::to_string(&plan.file)
            .map_err(|e| RunError::Lab(format!("cannot write the lab's configuration: {e}")))?;
        let config = dir.join("chaoslab.toml");
        std::fs::write(&config, text).map_err(io("cannot write chaoslab.toml"))?;
        let state_dir = dir.join(".chaoslab");
        let out = std::fs::File::create(dir.join("up.log")).map_err(io("cannot create up.log"))?;
        let err = out.try_clone().map_err(io("cannot create up.log"))?;
        let mut command = Command::new(exe);
        command
            .arg("up")
            .arg("--config")
            .arg(&config)
            .env("CHAOSLAB_STATE_DIR", &state_dir)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = spawner
            .spawn(command, DeathSignal::Term)
            .await
            .map_err(|e| RunError::Lab(format!("cannot start {} up: {e}", exe.display())))?;
        let pid = child.id().unwrap_or(0);
        let mut own = OwnLab {
            child,
            pid,
            dir: dir.to_path_buf(),
        };
        let started = Instant::now();
        let interrupted = || RunError::Lab("interrupted while starting".into());
        let client = loop {
            // Stopped as any lab is (SIGTERM, its kernel state removed),
            // never dropped: that would SIGKILL it half-way.
            if interrupt.is_cancelled() {
                stop_child(&mut own).await;
                return Err(interrupted());
            }
            if let Ok(Some(status)) = own.child.try_wait() {
                return Err(RunError::Lab(format!(
                    "`chaoslab up` exited ({status}) before the lab was up: {}",
                    tail(&dir.join("up.log"))
                )));
            }
            if let Ok(client) = LabClient::discover(&state_dir) {
                break client;
            }
            if started.elapsed() > START_TIMEOUT {
                stop_child(&mut own).await;
                return Err(RunError::Lab(format!(
                    "the lab did not start within {START_TIMEOUT:?}: {}",
                    tail(&dir.join("up.log"))
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut target = Self::from_client(client, state_dir).await;
        target.own = Some(own);
        let ready = tokio::select! {
            ready = target.wait_ready(START_TIMEOUT - started.elapsed().min(START_TIMEOUT / 2)) => ready,
            () = interrupt.cancelled() => Err(interrupted()),
        };
        if let Err(e) = ready {
            target.stop().await;
            return Err(e);
        }
        Ok(target)
    }

    /// A lab the user runs in `dir` (its state directory, or the directory
    /// holding `.chaoslab`).
    pub async fn attach(dir: &Path) -> Result<Self, RunError> {
        let state_dir = if dir.join("lab.json").exists() {
            dir.to_path_buf()
        } else {
            dir.join(".chaoslab")
        };
        let client = LabClient::discover(&state_dir).map_err(|e| RunError::Lab(e.to_string()))?;
        let target = Self::from_client(client, state_dir).await;
        target.wait_ready(Duration::from_secs(10)).await?;
        Ok(target)
    }

    async fn from_client(client: LabClient, state_dir: PathBuf) -> Self {
        let toxiproxy_url = client
            .get::<Value>("/api/status")
            .await
            .ok()
            .and_then(|s| s["lab"]["toxiproxy_url"].as_str().map(String::from));
        Self {
            ingress_url: client.state.ingress_url.clone(),
            client,
            state_dir,
            toxiproxy_url,
            own: None,
        }
    }

    /// Whether this is the experiment's own lab.
    pub fn is_own(&self) -> bool {
        self.own.is_some()
    }

    /// The directory of the experiment's own lab.
    pub fn dir(&self) -> Option<&Path> {
        self.own.as_ref().map(|o| o.dir.as_path())
    }

    /// Waits until the active revision has a ready replica.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), RunError> {
        let started = Instant::now();
        loop {
            if let Ok(status) = self.client.get::<Value>("/api/status").await
                && ready_replicas(&status) > 0
            {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(RunError::Lab(format!(
                    "no replica of the lab became ready within {timeout:?} (see its events: chaoslab events --state-dir {})",
                    self.state_dir.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the experiment's own lab (through its control API, then
    /// SIGTERM, then SIGKILL to its process group); an attached lab is left
    /// running.
    pub async fn stop(mut self) {
        if let Some(mut own) = self.own.take() {
            let _ = self.client.shutdown(STOP_TIMEOUT).await;
            stop_child(&mut own).await;
        }
    }
}

/// Ready replicas of the active revision in an `/api/status` answer.
pub fn ready_replicas(status: &Value) -> u32 {
    let active = status["active_revision"].as_str().unwrap_or_default();
    status["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["revision"] == active && r["ready"] == true)
        .count() as u32
}

async fn stop_child(own: &mut OwnLab) {
    if let Ok(Some(_)) = own.child.try_wait() {
        return;
    }
    signal_group(own.pid, libc::SIGTERM);
    if tokio::time::timeout(STOP_TIMEOUT, own.child.wait())
        .await
        .is_err()
    {
        signal_group(own.pid, libc::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(5), own.child.wait()).await;
    }
    // The lab's own children (replicas, Redis) are in their own groups and
    // die with it (parent-death signal); wait until they are gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(own.pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last lines of a log, for error messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let joined = lines[start..].join(" | ");
    if joined.is_empty() {
        format!("nothing in {}", path.display())
    } else {
        joined
    }
}
