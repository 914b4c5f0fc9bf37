//! The platform's shared state: revisions, replicas and what the ingress
//! may route to. Replica supervisors, the deploy flow, the autoscaler, the
//! sampler and the control API all go through [`Platform`]; its lock is a
//! plain mutex never held across an await. Whenever readiness or the active
//! revision changes, the ready set of the active revision is republished to
//! the ingress at once.
//!
//! Each replica's port is reserved for the replica's whole life (a
//! [`PortReservation`]), and its current process is held by a pidfd, so
//! whoever signals a replica (the kill fault) reaches its current process
//! or nobody.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaoslab_foundation::listen::PortReservation;
use chaoslab_foundation::now_rfc3339;
use chaoslab_ingress::{IngressMetrics, Upstream, UpstreamSet};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cgroup::LabCgroups;
use crate::config::{LabConfig, secs};
use crate::events::{EventBus, lock};
use crate::isolation::{IsolationReport, KernelParts};
use crate::logs::LogHub;
use crate::netns::LabNetwork;
use crate::revision_record::Revision;
use crate::spawner::{ProcessHandle, Spawner};
use crate::timeseries::TimeSeries;

/// Lifecycle phase of a replica, named as Kubernetes shows container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Spawned, probes not yet passing.
    Starting,
    /// Process running.
    Running,
    /// Waiting to restart after an exit.
    BackOff,
    /// Waiting to restart after repeated failed starts.
    CrashLoopBackOff,
    /// The executable is missing: waiting to retry.
    ImagePullBackOff,
    /// Being stopped (left the ingress).
    Terminating,
}

/// How a replica's previous run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExitInfo {
    /// `Completed`, `Error`, `OOMKilled`, `LivenessProbeFailed`, `Signaled`,
    /// `ImagePullFailed`.
    pub reason: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub at: String,
    pub message: String,
}

/// What anyone may know about a replica.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaStatus {
    pub id: String,
    pub revision: String,
    pub pid: Option<u32>,
    /// The port given in APP_PORT.
    pub port: u16,
    /// Where probes and the ingress look.
    pub target_port: u16,
    pub phase: Phase,
    pub ready: bool,
    pub restarts: u32,
    /// Failed runs in a row (reset by a long enough run).
    pub consecutive_failures: u32,
    pub last_exit: Option<ExitInfo>,
    pub started_at: Option<String>,
    /// CPU use, % of one core, over the last second.
    pub cpu_percent: f64,
    /// CPU use, % of the CPU request.
    pub cpu_utilization: f64,
    pub rss_mb: f64,
    /// Whether CPU has been measured over a full second of this run.
    pub cpu_measured: bool,
    /// The replica's memory limit (its revision's), MiB.
    pub memory_limit_mb: u64,
    /// The replica's CPU limit (kernel mode: a CFS quota) and request, cores.
    pub cpu_limit: f64,
    /// Kernel mode: the replica's cgroup (memory hierarchy), where CPU,
    /// memory and OOM kills are read.
    pub cgroup: Option<String>,
    /// Kernel mode: kills by the kernel's OOM killer in the replica's cgroup.
    pub oom_kills: u64,
    /// Kernel mode: CFS periods in which the replica ran out of quota.
    pub cpu_throttled_periods: u64,
    /// Kernel mode: time the replica spent throttled, seconds.
    pub cpu_throttled_seconds: f64,
}

struct ReplicaEntry {
    status: ReplicaStatus,
    stop: CancellationToken,
    /// The replica's APP_PORT, held by the lab while the replica lives.
    port: PortReservation,
    /// The current run's process (none between runs).
    process: Option<Arc<ProcessHandle>>,
}

/// Why a replica could not be signalled.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("no replica {0}")]
    UnknownReplica(String),
    #[error("replica {0} has no process now")]
    NoProcess(String),
    #[error("cannot signal replica {id} (pid {pid}): {source}")]
    Signal {
        id: String,
        pid: u32,
        #[source]
        source: std::io::Error,
    },
}

struct State {
    revisions: Vec<Revision>,
    active: Option<String>,
    replicas: BTreeMap<String, ReplicaEntry>,
    next_replica: u64,
}

/// How replicas reach Redis (set once at start: through the fault proxy)
/// and how the lab itself reaches it.
#[derive(Debug, Clone)]
pub(crate) struct RedisEndpoint {
    /// Environment given to every replica.
    pub env: Vec<(String, String)>,
    /// For status output.
    pub describe: String,
    /// The lab's own Redis, for admin commands and the lab's own PING every
    /// second (none when external): redis-server itself, never the fault
    /// proxy, so the admin password never passes through a proxy and the
    /// lab's view of Redis is not what a network fault does to the replicas.
    pub admin: Option<crate::redis_server::AdminTarget>,
}

/// The running lab's replicas, revisions and shared state: what a
/// plugged-in component (the faults) acts on and what the CLI reads
/// (events, the active revision). Outside the crate, only its methods.
pub struct Platform {
    pub(crate) config: LabConfig,
    pub(crate) events: EventBus,
    pub(crate) series: TimeSeries,
    pub(crate) logs: Arc<LogHub>,
    pub(crate) ingress_metrics: Arc<IngressMetrics>,
    pub(crate) redis: RedisEndpoint,
    pub(crate) started_at: String,
    pub(crate) spawner: Spawner,
    upstreams: watch::Sender<UpstreamSet>,
    state: Mutex<State>,
    /// Cancelled when the lab stops: every loop ends.
    pub(crate) shutdown: CancellationToken,
    pub(crate) replica_tasks: TaskTracker,
    /// One deploy or activation at a time.
    pub(crate) deploy_lock: Arc<tokio::sync::Mutex<()>>,
    /// Which isolation is in force, per mechanism (`status`'s `isolation`).
    pub(crate) isolation: IsolationReport,
    /// Kernel mode: the lab's cgroups, one per replica inside.
    pub(crate) cgroups: Option<LabCgroups>,
    /// Kernel mode: Redis's namespace and its fault rules.
    pub(crate) network: Option<Arc<LabNetwork>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// A platform on its own, to test a plugged-in component without a
    /// lab: no Redis for replicas, none started, process isolation.
    pub fn standalone(config: LabConfig, logs_dir: PathBuf) -> std::io::Result<Arc<Self>> {
        let redis = RedisEndpoint {
            env: Vec::new(),
            describe: "none (a standalone platform)".into(),
            admin: None,
        };
        Ok(Self::new(config, Spawner::start()?, redis, logs_dir))
    }

    /// The lab's event log (what `up` prints, `/api/events` serves).
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Cancelled when the lab stops: every loop ends.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The bearer token the service's chaos API wants, if it wants one.
    pub fn chaos_token(&self) -> Option<&str> {
        self.config.chaos_token.as_deref()
    }

    /// Kernel isolation: Redis's network namespace and its fault rules
    /// (none in process isolation).
    pub fn network(&self) -> Option<&Arc<LabNetwork>> {
        self.network.as_ref()
    }

    /// A platform in process isolation.
    pub(crate) fn new(
        config: LabConfig,
        spawner: Spawner,
        redis: RedisEndpoint,
        logs_dir: PathBuf,
    ) -> Arc<Self> {
        let report = IsolationReport::process(
            config.file.lab.isolation,
            String::new(),
            "a platform without kernel parts",
        );
        Self::with_kernel(
            config,
            spawner,
            redis,
            logs_dir,
            KernelParts::process(report),
        )
    }

    /// A platform with what kernel mode made (cgroups, Redis's namespace).
    pub(crate) fn with_kernel(
        config: LabConfig,
        spawner: Spawner,
        redis: RedisEndpoint,
        logs_dir: PathBuf,
        kernel: KernelParts,
    ) -> Arc<Self> {
        Arc::new(Self {
            isolation: kernel.report,
            cgroups: kernel.cgroups,
            network: kernel.network,
            config,
            events: EventBus::default(),
            series: TimeSeries::default(),
            logs: Arc::new(LogHub::new(logs_dir)),
            ingress_metrics: Arc::new(IngressMetrics::default()),
            redis,
            started_at: now_rfc3339(),
            spawner,
            upstreams: watch::channel(Arc::new(Vec::new())).0,
            state: Mutex::new(State {
                revisions: Vec::new(),
                active: None,
                replicas: BTreeMap::new(),
                next_replica: 1,
            }),
            shutdown: CancellationToken::new(),
            replica_tasks: TaskTracker::new(),
            deploy_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The ready set the ingress routes over.
    pub fn upstreams(&self) -> watch::Receiver<UpstreamSet> {
        self.upstreams.subscribe()
    }

    /// Recomputes the ready set of the active revision and publishes it if
    /// it changed.
    pub(crate) fn publish(&self) {
        let set: Vec<Upstream> = {
            let state = lock(&self.state);
            state
                .replicas
                .values()
                .filter(|r| Some(&r.status.revision) == state.active.as_ref())
                .filter(|r| r.status.ready && r.status.phase == Phase::Running)
                .map(|r| Upstream {
                    id: r.status.id.clone(),
                    addr: SocketAddr::from(([127, 0, 0, 1], r.status.target_port)),
                })
                .collect()
        };
        self.upstreams.send_if_modified(|current| {
            if **current == set {
                false
            } else {
                *current = Arc::new(set);
                true
            }
        });
    }

    // ----- replicas -------------------------------------------------------

    /// Registers one more replica of `revision` (port reserved, phase
    /// Starting, announced as Scheduled); returns its id and the token that
    /// stops it. Its supervisor is started by [`Platform::start_replica`]
    /// (in the supervisor module).
    pub(crate) fn schedule_replica(
        &self,
        revision: &Revision,
    ) -> std::io::Result<(String, CancellationToken)> {
        let reservation = PortReservation::any()?;
        let port = reservation.port();
        self.logs.prune(MAX_LOG_FILES);
        let target_port = if revision.target_port == 0 {
            port
        } else {
            revision.target_port
        };
        let (id, stop) = {
            let mut state = lock(&self.state);
            let id = format!("{}-{}", revision.name, state.next_replica);
            state.next_replica += 1;
            let stop = self.shutdown.child_token();
            state.replicas.insert(
                id.clone(),
                ReplicaEntry {
                    status: ReplicaStatus {
                        id: id.clone(),
                        revision: revision.name.clone(),
                        pid: None,
                        port,
                        target_port,
                        phase: Phase::Starting,
                        ready: false,
                        restarts: 0,
                        consecutive_failures: 0,
                        last_exit: None,
                        started_at: None,
                        cpu_percent: 0.0,
                        cpu_utilization: 0.0,
                        rss_mb: 0.0,
                        cpu_measured: false,
                        memory_limit_mb: revision.memory_mb,
                        cpu_limit: revision.cpu,
                        cgroup: None,
                        oom_kills: 0,
                        cpu_throttled_periods: 0,
                        cpu_throttled_seconds: 0.0,
                    },
                    stop: stop.clone(),
                    port: reservation,
                    process: None,
                },
            );
            (id, stop)
        };
        self.events.normal(
            "Scheduled",
            &id,
            format!("replica {id} of {} scheduled on port {port}", revision.name),
            serde_json::json!({"revision": revision.name, "port": port, "target_port": target_port}),
        );
        Ok((id, stop))
    }

    /// Takes a replica out of the ingress now, and stops it after the drain
    /// delay (so requests already routed to it land).
    pub(crate) fn stop_replica(&self, id: &str, drain: bool) {
        let stop = {
            let mut state = lock(&self.state);
            let Some(entry) = state.replicas.get_mut(id) else {
                return;
            };
            if entry.status.phase == Phase::Terminating {
                return;
            }
            entry.status.phase = Phase::Terminating;
            entry.status.ready = false;
            entry.stop.clone()
        };
        self.publish();
        let delay = if drain {
            secs(self.config.file.revisions.drain_seconds)
        } else {
            Duration::ZERO
        };
        self.replica_tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            stop.cancel();
        });
    }

    /// Updates a replica's status; republishes when readiness may change.
    pub(crate) fn update_replica(&self, id: &str, f: impl FnOnce(&mut ReplicaStatus)) {
        let changed = {
            let mut state = lock(&self.state);
            let Some(entry) = state.replicas.get_mut(id) else {
                return;
            };
            let before = (entry.status.ready, entry.status.phase);
            f(&mut entry.status);
            if entry.status.phase == Phase::Terminating {
                entry.status.ready = false;
            }
            before != (entry.status.ready, entry.status.phase)
        };
        if changed {
            self.publish();
        }
    }

    /// The ports for a replica's next run: its reserved port, or a fresh
    /// one when another process now listens on it (it bound that very port
    /// with SO_REUSEADDR, which the reservation cannot prevent; or a process
    /// of the replica's last run outlived it). Returns (port, target port).
    pub(crate) fn ports_for_run(&self, id: &str, fixed_target: u16) -> std::io::Result<(u16, u16)> {
        let moved = {
            let mut state = lock(&self.state);
            let entry = state
                .replicas
                .get_mut(id)
                .ok_or_else(|| std::io::Error::other(format!("no replica {id}")))?;
            let old = entry.port.port();
            let moved = if entry.port.still_free() {
                None
            } else {
                entry.port = PortReservation::any()?;
                entry.status.port = entry.port.port();
                if fixed_target == 0 {
                    entry.status.target_port = entry.status.port;
                }
                Some((old, entry.status.port))
            };
            (entry.status.port, entry.status.target_port, moved)
        };
        if let (_, _, Some((old, new))) = moved {
            self.events.warning(
                "PortReassigned",
                id,
                format!("port {old} of replica {id} is taken by another process: the replica moves to port {new}"),
                serde_json::json!({"old_port": old, "port": new}),
            );
        }
        Ok((moved.0, moved.1))
    }

    /// Records the process of a replica's current run (none once it ended).
    pub(crate) fn set_process(&self, id: &str, process: Option<Arc<ProcessHandle>>) {
        if let Some(entry) = lock(&self.state).replicas.get_mut(id) {
            entry.process = process;
        }
    }

    /// Sends `signal` to replica `id`'s current process through its pidfd
    /// (never by pid number: a pid read earlier may name another process
    /// by now); returns the pid signalled. The supervisor sees the exit.
    pub fn signal_replica(&self, id: &str, signal: i32) -> Result<u32, SignalError> {
        let process = {
            let state = lock(&self.state);
            let entry = state
                .replicas
                .get(id)
                .ok_or_else(|| SignalError::UnknownReplica(id.to_string()))?;
            entry
                .process
                .clone()
                .ok_or_else(|| SignalError::NoProcess(id.to_string()))?
        };
        match process.signal(signal) {
            Ok(()) => Ok(process.pid()),
            // Exited and reaped since: no process now.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(SignalError::NoProcess(id.to_string()))
            }
            Err(source) => Err(SignalError::Signal {
                id: id.to_string(),
                pid: process.pid(),
                source,
            }),
        }
    }

    /// Forgets a replica whose supervisor ended.
    pub(crate) fn remove_replica(&self, id: &str) {
        lock(&self.state).replicas.remove(id);
        self.publish();
    }

    /// Whether a replica is being stopped (its supervisor should not restart).
    pub(crate) fn is_terminating(&self, id: &str) -> bool {
        lock(&self.state)
            .replicas
            .get(id)
            .is_none_or(|r| r.status.phase == Phase::Terminating)
    }

    /// Every replica, sorted by id.
    pub fn replicas(&self) -> Vec<ReplicaStatus> {
        lock(&self.state)
            .replicas
            .values()
            .map(|r| r.status.clone())
            .collect()
    }

    /// Replicas of one revision that are not being stopped.
    pub fn replicas_of(&self, revision: &str) -> Vec<ReplicaStatus> {
        lock(&self.state)
            .replicas
            .values()
            .filter(|r| r.status.revision == revision && r.status.phase != Phase::Terminating)
            .map(|r| r.status.clone())
            .collect()
    }

    // ----- revisions ------------------------------------------------------

    /// The active revision's name.
    pub fn active(&self) -> Option<String> {
        lock(&self.state).active.clone()
    }

    /// All revisions, oldest first.
    pub fn revisions(&self) -> Vec<Revision> {
        lock(&self.state).revisions.clone()
    }

    /// One revision.
    pub fn revision(&self, name: &str) -> Option<Revision> {
        lock(&self.state)
            .revisions
            .iter()
            .find(|r| r.name == name)
            .cloned()
    }

    /// Adds a revision, dropping the oldest inactive ones past 50.
    pub(crate) fn add_revision(&self, revision: Revision) {
        let mut state = lock(&self.state);
        state.revisions.push(revision);
        while state.revisions.len() > 50 {
            let Some(i) = state.revisions.iter().position(|r| !r.active) else {
                break;
            };
            state.revisions.remove(i);
        }
    }

    /// Changes a revision.
    pub(crate) fn update_revision(&self, name: &str, f: impl FnOnce(&mut Revision)) {
        if let Some(r) = lock(&self.state)
            .revisions
            .iter_mut()
            .find(|r| r.name == name)
        {
            f(r);
        }
    }

    /// Makes `name` the revision that receives all traffic.
    pub(crate) fn set_active(&self, name: &str) {
        {
            let mut state = lock(&self.state);
            state.active = Some(name.to_string());
            for r in state.revisions.iter_mut() {
                r.active = r.name == name;
                r.traffic = if r.active { 100 } else { 0 };
            }
        }
        self.publish();
    }
}

/// Replica log files kept in the state dir (current and recent replicas).
const MAX_LOG_FILES: usize = 200;
