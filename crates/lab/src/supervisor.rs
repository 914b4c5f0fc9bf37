//! One replica's life, as the kubelet runs a container: spawn the process
//! with its environment, probe it (readiness moves it in and out of the
//! ingress, liveness failure restarts it), watch its memory against the
//! limit (over it: SIGKILL, OOMKilled) and its CPU against the request, and
//! restart it after any exit with exponential back-off; a replica that keeps
//! failing is in CrashLoopBackOff, one whose executable is missing in
//! ImagePullBackOff. Stopping is SIGTERM, then SIGKILL after the grace.
//!
//! In kernel isolation (SPEC §14) each replica has its own cgroup with its
//! revision's memory and CPU limits, made before its first run and removed
//! when the replica ends; every run's process joins it between fork and
//! exec. The kernel then enforces the limits: a run that ends while the
//! cgroup's OOM-kill count rose was ended by the OOM killer (OOMKilled,
//! read from the cgroup, not guessed from the exit code).
//!
//! Every run gets the replica's reserved port (a fresh one when another
//! process took it, see [`Platform::ports_for_run`]) and is held by a
//! pidfd ([`ProcessHandle`]): the replica's process group is signalled only
//! while its leader is not reaped, so the group id cannot have been
//! recycled, and when the leader ends, by itself or not, whatever is left
//! of its group is killed as a container's processes end with it.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chaoslab_foundation::now_rfc3339;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use std::ffi::CString;

use crate::cgroup::ReplicaCgroup;
use crate::config::secs;
use crate::logs::LogPumps;
use crate::platform::{ExitInfo, Phase, Platform};
use crate::probe::{ProbeSpec, check, run_probe};
use crate::revision_record::Revision;
use crate::spawner::{DeathSignal, ProcessHandle};

/// Everything needed to (re)start one replica.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaSpec {
    pub id: String,
    pub revision: String,
    pub image: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The revision's target port; 0 = the replica's APP_PORT.
    pub target_port: u16,
    /// The revision's memory limit, MiB.
    pub memory_mb: u64,
    /// The revision's CPU limit, cores.
    pub cpu: f64,
}

/// Replica scheduling: the platform registers a replica
/// ([`Platform::schedule_replica`]); here its supervisor is started.
impl Platform {
    /// Starts one more replica of `revision`; returns its id.
    pub(crate) fn start_replica(self: &Arc<Self>, revision: &Revision) -> std::io::Result<String> {
        let (id, stop) = self.schedule_replica(revision)?;
        let spec = ReplicaSpec {
            id: id.clone(),
            revision: revision.name.clone(),
            image: revision.image.clone(),
            args: revision.args.clone(),
            env: revision.env.clone(),
            target_port: revision.target_port,
            memory_mb: revision.memory_mb,
            cpu: revision.cpu,
        };
        self.replica_tasks
            .spawn(supervise(self.clone(), spec, stop));
        Ok(id)
    }

    /// Starts or stops replicas of `revision` until it runs `desired`.
    pub(crate) fn reconcile(self: &Arc<Self>, revision: &str) {
        let Some(rev) = self.revision(revision) else {
            return;
        };
        let mut running = self.replicas_of(revision);
        let desired = rev.desired as usize;
        if running.len() < desired {
            for _ in running.len()..desired {
                if let Err(err) = self.start_replica(&rev) {
                    self.events.warning(
                        "FailedScheduling",
                        revision,
                        format!("cannot allocate a port for a replica: {err}"),
                        serde_json::Value::Null,
                    );
                }
            }
        } else if running.len() > desired {
            // Stop unready ones first, then the newest.
            running.sort_by_key(|r| (r.ready, std::cmp::Reverse(replica_seq(&r.id))));
            for r in running.iter().take(running.len() - desired) {
                self.stop_replica(&r.id, true);
            }
        }
    }
}

fn replica_seq(id: &str) -> u64 {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Variables passed through from the lab's environment (telemetry, logs);
/// everything else is the revision's, as in a container.
const PASS_THROUGH: &[&str] = &["PATH", "HOME", "LANG", "TZ", "LOG_LEVEL", "RUST_BACKTRACE"];
const PASS_PREFIXES: &[&str] = &["OTEL_", "APPLICATIONINSIGHTS_"];

/// Exponential back-off: initial × 2^n, capped.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            failures: 0,
        }
    }
    /// The next delay (and counts a failure).
    pub fn next_delay(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        self.initial.saturating_mul(factor).min(self.max)
    }
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

enum Outcome {
    Stopped,
    Exited(ExitInfo),
}

/// Runs the replica until `stop` is cancelled, then removes it.
pub(crate) async fn supervise(platform: Arc<Platform>, spec: ReplicaSpec, stop: CancellationToken) {
    let restart = &platform.config.file.restart;
    let mut backoff = Backoff::new(
        secs(restart.backoff_initial_seconds),
        secs(restart.backoff_max_seconds),
    );
    let reset_after = secs(restart.backoff_reset_seconds);
    let mut first = true;
    let mut cgroup: Option<ReplicaCgroup> = None;
    loop {
        if stop.is_cancelled() || (!first && platform.is_terminating(&spec.id)) {
            break;
        }
        let started = Instant::now();
        let outcome = run_once(&platform, &spec, &stop, &mut cgroup).await;
        first = false;
        let exit = match outcome {
            Outcome::Stopped => break,
            Outcome::Exited(exit) => exit,
        };
        if stop.is_cancelled() {
            break;
        }
        if started.elapsed() >= reset_after {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        let failures = note_exit(&platform, &spec.id, &exit, started.elapsed() >= reset_after);
        announce_backoff(&platform, &spec.id, &exit, failures, delay);
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        note_restart(&platform, &spec.id, &exit);
    }
    if let Some(group) = cgroup {
        // Kills what is left in it (nothing, normally) and waits for the
        // kernel to let the directory go: off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || group.remove()).await;
    }
    platform.events.normal(
        "Stopped",
        &spec.id,
        format!("replica {} stopped", spec.id),
        serde_json::Value::Null,
    );
    platform.remove_replica(&spec.id);
}

/// One life of the replica: its cgroup (kernel mode), its process, run
/// until it exits or is stopped; a process that cannot start is an exit.
async fn run_once(
    platform: &Arc<Platform>,
    spec: &ReplicaSpec,
    stop: &CancellationToken,
    cgroup: &mut Option<ReplicaCgroup>,
) -> Outcome {
    let spawned = match replica_cgroup(platform, spec, cgroup).await {
        Ok(group) => spawn(platform, spec, group).await,
        Err(e) => Err(e),
    };
    match spawned {
        Ok((child, process, target, pumps)) => {
            let outcome = run(
                platform,
                spec,
                child,
                &process,
                target,
                stop,
                cgroup.as_ref(),
            )
            .await;
            platform.set_process(&spec.id, None);
            pumps.finish().await;
            outcome
        }
        Err(err) => Outcome::Exited(start_error(&spec.image, &err)),
    }
}

/// Why a replica's process could not start, as an exit: the image is
/// missing (Kubernetes' ImagePullFailed) or it failed otherwise.
fn start_error(image: &std::path::Path, err: &std::io::Error) -> ExitInfo {
    let missing = matches!(
        err.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
    );
    let (reason, message) = if missing {
        (
            "ImagePullFailed",
            format!("image not found: {}: {err}", image.display()),
        )
    } else {
        (
            "StartError",
            format!("cannot start {}: {err}", image.display()),
        )
    };
    ExitInfo {
        reason: reason.into(),
        exit_code: None,
        signal: None,
        at: now_rfc3339(),
        message,
    }
}

/// Records an exit in the replica's status (its phase now a back-off);
/// returns its consecutive failures. `ran_long` (ran past the back-off
/// reset) makes this the first failure again.
fn note_exit(platform: &Platform, id: &str, exit: &ExitInfo, ran_long: bool) -> u32 {
    let crash_loop = platform.config.file.restart.crash_loop_restarts;
    let image_missing = exit.reason == "ImagePullFailed";
    let mut failures = 0;
    platform.update_replica(id, |s| {
        s.pid = None;
        s.ready = false;
        s.consecutive_failures = if ran_long {
            1
        } else {
            s.consecutive_failures + 1
        };
        failures = s.consecutive_failures;
        s.phase = if image_missing {
            Phase::ImagePullBackOff
        } else if s.consecutive_failures >= crash_loop {
            Phase::CrashLoopBackOff
        } else {
            Phase::BackOff
        };
        s.last_exit = Some(exit.clone());
    });
    failures
}

/// The warning that a replica exited and restarts after `delay`.
fn announce_backoff(
    platform: &Platform,
    id: &str,
    exit: &ExitInfo,
    failures: u32,
    delay: Duration,
) {
    let crash_loop = platform.config.file.restart.crash_loop_restarts;
    let level_reason = if exit.reason == "ImagePullFailed" {
        "ImagePullBackOff"
    } else if failures >= crash_loop {
        "CrashLoopBackOff"
    } else {
        "BackOff"
    };
    platform.events.warning(
        level_reason,
        id,
        format!(
            "{}: {}; restarting in {:.1}s",
            exit.reason,
            exit.message,
            delay.as_secs_f64()
        ),
        serde_json::json!({
            "reason": exit.reason, "exit_code": exit.exit_code, "signal": exit.signal,
            "consecutive_failures": failures, "backoff_seconds": delay.as_secs_f64(),
        }),
    );
}

/// Counts a restart after the back-off and announces it.
fn note_restart(platform: &Platform, id: &str, exit: &ExitInfo) {
    let mut restarts = 0;
    platform.update_replica(id, |s| {
        s.restarts += 1;
        restarts = s.restarts;
        s.phase = Phase::Starting;
    });
    let cause = restart_cause(&exit.reason);
    platform.events.normal(
        "Restarted",
        id,
        format!(
            "replica {id} restarted ({cause}: {}), restart #{restarts}",
            exit.reason
        ),
        serde_json::json!({"cause": cause, "reason": exit.reason, "restarts": restarts}),
    );
}

/// Kernel mode: the replica's cgroup, made on its first run (none in
/// process mode).
async fn replica_cgroup<'a>(
    platform: &Platform,
    spec: &ReplicaSpec,
    cgroup: &'a mut Option<ReplicaCgroup>,
) -> std::io::Result<Option<&'a ReplicaCgroup>> {
    let Some(lab) = platform.cgroups.clone() else {
        return Ok(None);
    };
    if cgroup.is_none() {
        let (id, memory_mb, cpu) = (spec.id.clone(), spec.memory_mb, spec.cpu);
        let group = tokio::task::spawn_blocking(move || lab.replica(&id, memory_mb, cpu))
            .await
            .map_err(std::io::Error::other)?
            .map_err(|e| std::io::Error::other(format!("cannot make the replica's cgroup: {e}")))?;
        let path = group.path().display().to_string();
        platform.update_replica(&spec.id, |s| s.cgroup = Some(path.clone()));
        platform.events.normal(
            "CgroupCreated",
            &spec.id,
            format!(
                "replica {} in cgroup {path}: memory limit {} MiB, CPU quota {} cores",
                spec.id, spec.memory_mb, spec.cpu
            ),
            serde_json::json!({"cgroup": path, "memory_mb": spec.memory_mb, "cpu": spec.cpu}),
        );
        *cgroup = Some(group);
    }
    Ok(cgroup.as_ref())
}

/// Starts one run: the process, its pidfd, its log pumps; returns them
/// with the port probes and the ingress target.
async fn spawn(
    platform: &Platform,
    spec: &ReplicaSpec,
    cgroup: Option<&ReplicaCgroup>,
) -> std::io::Result<(Child, Arc<ProcessHandle>, u16, LogPumps)> {
    let (port, target_port) = platform.ports_for_run(&spec.id, spec.target_port)?;
    let mut command = Command::new(&spec.image);
    command
        .args(&spec.args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in std::env::vars() {
        if PASS_THROUGH.contains(&key.as_str()) || PASS_PREFIXES.iter().any(|p| key.starts_with(p))
        {
            command.env(key, value);
        }
    }
    let grace = platform.config.file.restart.termination_grace_seconds;
    let lab = [
        ("APP_HOST", "127.0.0.1".to_string()),
        ("APP_PORT", port.to_string()),
        ("REPLICA_ID", spec.id.clone()),
        ("REVISION", spec.revision.clone()),
        ("LOG_FORMAT", "json".into()),
        ("HEALTH_CACHE_TTL_SECONDS", "0".into()),
        (
            "SHUTDOWN_GRACE_SECONDS",
            format!("{}", grace.ceil().max(1.0)),
        ),
        ("CHAOSLAB_PARENT_PID", std::process::id().to_string()),
    ];
    command.envs(lab);
    command.envs(platform.redis.env.iter().cloned());
    if let Some(token) = &platform.config.chaos_token {
        command.env("CHAOS_API_TOKEN", token);
    }
    // The revision's own environment wins (bad-env deploys rely on it).
    command.envs(spec.env.iter().cloned());
    if let Some(group) = cgroup {
        join_before_exec(&mut command, group.procs_files()?);
    }
    let mut child = platform.spawner.spawn(command, DeathSignal::Kill).await?;
    let process = match ProcessHandle::open(&child) {
        Ok(process) => Arc::new(process),
        Err(e) => {
            // Not reaped yet: its pid is still its own.
            let _ = child.kill().await;
            return Err(e);
        }
    };
    platform.set_process(&spec.id, Some(process.clone()));
    let pid = child.id();
    platform.update_replica(&spec.id, |s| {
        s.pid = pid;
        s.phase = Phase::Running;
        s.started_at = Some(now_rfc3339());
        s.cpu_measured = false;
    });
    platform.events.normal(
        "Started",
        &spec.id,
        format!("replica {} started (pid {})", spec.id, pid.unwrap_or(0)),
        serde_json::json!({"pid": pid, "port": port, "image": spec.image}),
    );
    let pumps = platform
        .logs
        .pumps(&spec.id, child.stdout.take(), child.stderr.take());
    Ok((child, process, target_port, pumps))
}

/// Makes the child join its cgroup (writes `0`, itself, to each
/// hierarchy's `cgroup.procs`) between fork and exec: the service never
/// runs outside its limits. A failure fails the spawn.
fn join_before_exec(command: &mut Command, procs_files: Vec<CString>) {
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: open, write and close are
    // system calls on C strings made before the fork; nothing allocates.
    unsafe {
        command.pre_exec(move || {
            for file in &procs_files {
                let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                let error = std::io::Error::last_os_error();
                libc::close(fd);
                if written != 1 {
                    return Err(error);
                }
            }
            Ok(())
        });
    }
}

/// One run of the process, until it exits, is killed, or the replica stops.
async fn run(
    platform: &Arc<Platform>,
    spec: &ReplicaSpec,
    mut child: Child,
    process: &ProcessHandle,
    target_port: u16,
    stop: &CancellationToken,
    cgroup: Option<&ReplicaCgroup>,
) -> Outcome {
    let config = &platform.config;
    let addr = SocketAddr::from(([127, 0, 0, 1], target_port));
    let grace = secs(config.file.restart.termination_grace_seconds);
    let pid = process.pid();

    let liveness = liveness_failure(&config.liveness, addr);
    let readiness = follow_readiness(platform, &spec.id, &config.readiness, addr);
    let limits = crate::resources::Limits {
        memory_mb: spec.memory_mb,
        cpu: spec.cpu,
    };
    let memory = crate::resources::watch(platform, &spec.id, pid, limits, cgroup);
    let oom_before = cgroup.and_then(ReplicaCgroup::oom_kills);

    tokio::select! {
        _ = process.exited() => {
            // What the leader left running goes with it (the leader, not
            // reaped yet, keeps the group id this group's).
            process.signal_group(libc::SIGKILL);
            let status = child.wait().await;
            match (cgroup, oom_before) {
                (Some(group), Some(before)) => {
                    oom_exit(platform, spec, group, before, status)
                }
                _ => Outcome::Exited(exit_info(status)),
            }
        }
        reason = liveness => liveness_failed(platform, spec, reason, &mut child, process, grace).await,
        rss = memory => memory_over(platform, spec, rss, &mut child, process).await,
        _ = readiness => Outcome::Stopped,
        _ = stop.cancelled() => {
            platform.update_replica(&spec.id, |s| s.ready = false);
            terminate(&mut child, process, grace).await;
            Outcome::Stopped
        }
    }
}

/// Runs the liveness probe until it fails; returns why.
async fn liveness_failure(probe: &ProbeSpec, addr: SocketAddr) -> String {
    let mut reason = String::new();
    run_probe(
        probe,
        true,
        || check(&probe.action, addr),
        |live, error| {
            if live {
                ControlFlow::Continue(())
            } else {
                reason = error.to_string();
                ControlFlow::Break(())
            }
        },
    )
    .await;
    reason
}

/// Runs the readiness probe for the replica's life: each change of
/// readiness goes into its status (and so the ingress) and is announced.
async fn follow_readiness(platform: &Platform, id: &str, probe: &ProbeSpec, addr: SocketAddr) {
    run_probe(
        probe,
        false,
        || check(&probe.action, addr),
        |ready, error| {
            platform.update_replica(id, |s| s.ready = ready);
            if ready {
                platform.events.normal(
                    "Ready",
                    id,
                    format!("replica {id} is ready"),
                    serde_json::Value::Null,
                );
            } else {
                platform.events.warning(
                    "Unhealthy",
                    id,
                    format!("readiness probe failed: {error}; replica left the ingress"),
                    serde_json::json!({"probe": "readiness", "error": error}),
                );
            }
            ControlFlow::Continue(())
        },
    )
    .await;
}

/// The liveness probe failed: the replica leaves the ingress and is
/// terminated (SIGTERM, then SIGKILL after the grace).
async fn liveness_failed(
    platform: &Platform,
    spec: &ReplicaSpec,
    reason: String,
    child: &mut Child,
    process: &ProcessHandle,
    grace: Duration,
) -> Outcome {
    let threshold = platform.config.liveness.failure_threshold;
    platform.update_replica(&spec.id, |s| s.ready = false);
    platform.events.warning(
        "Unhealthy",
        &spec.id,
        format!("liveness probe failed {threshold} times: {reason}; restarting the replica"),
        serde_json::json!({"probe": "liveness", "error": reason, "failure_threshold": threshold}),
    );
    let status = terminate(child, process, grace).await;
    Outcome::Exited(ExitInfo {
        reason: "LivenessProbeFailed".into(),
        exit_code: status.as_ref().and_then(|s| s.code()),
        signal: status
            .as_ref()
            .and_then(std::os::unix::process::ExitStatusExt::signal),
        at: now_rfc3339(),
        message: format!("liveness probe failed: {reason}"),
    })
}

/// The replica's memory went over its limit (process isolation's RSS
/// watch): killed at once.
async fn memory_over(
    platform: &Platform,
    spec: &ReplicaSpec,
    rss: f64,
    child: &mut Child,
    process: &ProcessHandle,
) -> Outcome {
    terminate(child, process, Duration::ZERO).await;
    let limit = spec.memory_mb;
    platform.events.warning(
        "OOMKilled",
        &spec.id,
        format!("replica used {rss:.0} MiB, over its {limit} MiB limit: killed"),
        serde_json::json!({"rss_mb": rss, "limit_mb": limit}),
    );
    Outcome::Exited(ExitInfo {
        reason: "OOMKilled".into(),
        exit_code: Some(137),
        signal: Some(libc::SIGKILL),
        at: now_rfc3339(),
        message: format!("memory {rss:.0} MiB over the {limit} MiB limit"),
    })
}

/// SIGTERM to the replica's process group, then SIGKILL after `grace` (at
/// once when it is zero); returns the exit status if seen. The group is
/// killed at the end either way, so nothing the replica started outlives
/// it. Every signal goes out before `wait` reaps the leader: until then the
/// pidfd and the group id surely name this run's processes.
async fn terminate(
    child: &mut Child,
    process: &ProcessHandle,
    grace: Duration,
) -> Option<ExitStatus> {
    if !grace.is_zero() {
        process.signal_group(libc::SIGTERM);
    }
    if grace.is_zero() || tokio::time::timeout(grace, process.exited()).await.is_err() {
        process.signal_group(libc::SIGKILL);
        let _ = process.signal(libc::SIGKILL);
        // SIGKILL cannot be caught: this is the kernel's time to tear the
        // process down.
        let _ = tokio::time::timeout(Duration::from_secs(5), process.exited()).await;
    }
    process.signal_group(libc::SIGKILL);
    // Bounded too: a process stuck in the kernel (a hung mount) outlives
    // SIGKILL until the kernel lets go, and the replica must not wait for
    // that; the runtime reaps it when it ends (the child is dropped).
    match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            tracing::warn!(pid = ?child.id(), "a replica's process did not end 10 s after SIGKILL (stuck in the kernel?): left to be reaped when it does");
            None
        }
    }
}

/// Kernel mode: a run that ended while its cgroup's OOM-kill count rose
/// was ended by the kernel's OOM killer.
fn oom_exit(
    platform: &Platform,
    spec: &ReplicaSpec,
    cgroup: &ReplicaCgroup,
    before: u64,
    status: std::io::Result<ExitStatus>,
) -> Outcome {
    let mut exit = exit_info(status);
    let Some(after) = cgroup.oom_kills() else {
        return Outcome::Exited(exit);
    };
    platform.update_replica(&spec.id, |s| s.oom_kills = after);
    if after <= before {
        return Outcome::Exited(exit);
    }
    let limit = spec.memory_mb;
    let path = cgroup.path().display().to_string();
    platform.events.warning(
        "OOMKilled",
        &spec.id,
        format!(
            "the kernel's OOM killer ended replica {} over its {limit} MiB limit (cgroup {path}: oom_kill {before} -> {after})",
            spec.id
        ),
        serde_json::json!({"limit_mb": limit, "oom_kill": after, "oom_kill_before": before, "cgroup": path, "source": "cgroup"}),
    );
    exit.reason = "OOMKilled".into();
    exit.message = format!(
        "killed by the kernel's OOM killer over the {limit} MiB limit ({})",
        exit.message
    );
    Outcome::Exited(exit)
}

fn exit_info(status: std::io::Result<ExitStatus>) -> ExitInfo {
    use std::os::unix::process::ExitStatusExt;
    let (reason, code, signal, message) = match status {
        Ok(s) if s.success() => (
            "Completed",
            Some(0),
            None,
            "exited with status 0".to_string(),
        ),
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (
                "Error",
                Some(code),
                None,
                format!("exited with status {code}"),
            ),
            (None, Some(sig)) => (
                "Signaled",
                Some(128 + sig),
                Some(sig),
                format!("killed by signal {sig}"),
            ),
            _ => ("Error", None, None, "exited".to_string()),
        },
        Err(e) => ("Error", None, None, format!("wait failed: {e}")),
    };
    ExitInfo {
        reason: reason.into(),
        exit_code: code,
        signal,
        at: now_rfc3339(),
        message,
    }
}

/// Why the platform restarts a replica, as `Restarted` events say it:
/// `liveness` (the probe gave up), `oom` (over its memory limit) or `exit`
/// (the process ended by itself).
fn restart_cause(reason: &str) -> &'static str {
    match reason {
        "LivenessProbeFailed" => "liveness",
        "OOMKilled" => "oom",
        _ => "exit",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_causes_name_the_mechanism() {
        assert_eq!(restart_cause("LivenessProbeFailed"), "liveness");
        assert_eq!(restart_cause("OOMKilled"), "oom");
        assert_eq!(restart_cause("Error"), "exit");
        assert_eq!(restart_cause("Signaled"), "exit");
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod component_tests;

#[cfg(test)]
#[path = "replica_process_tests.rs"]
mod process_tests;
