//! Revisions in single-active-revision mode, as Container Apps runs them: a
//! revision is an immutable "image" (executable), environment and target
//! port. `deploy` creates `<app>--<suffix>` and provisions it next to the
//! active one; only when all its replicas are ready within the provisioning
//! timeout does traffic move to it, then the old revision drains and stops.
//! Otherwise it is Failed with the reason (image not found, crash loop,
//! never ready) and the previous revision keeps every request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chaoslab_foundation::now_rfc3339;
use serde::{Deserialize, Serialize};

use crate::config::secs;
use crate::files::secret;
use crate::platform::{Phase, Platform};
pub use crate::revision_record::{Revision, RevisionState};

/// `chaoslab deploy`'s request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeployRequest {
    /// Executable path; default: the lab's configured image.
    pub image: Option<PathBuf>,
    /// `KEY=VALUE` pairs added to the app's environment.
    pub env: Vec<String>,
    /// Target port for probes and ingress.
    pub port: Option<u16>,
    /// Revision suffix; default: 7 random characters.
    pub suffix: Option<String>,
    /// Memory limit per replica, MiB; default `[limits] memory_mb`.
    pub memory_mb: Option<u64>,
    /// CPU limit per replica, cores; default `[limits] cpu`.
    pub cpu: Option<f64>,
}

/// Why a deploy or activation was refused (each maps to an HTTP status).
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("another deployment is in progress")]
    Busy,
    #[error("revision {0} already exists")]
    Exists(String),
    #[error("revision {0} not found")]
    NotFound(String),
    #[error("revision {0} is already active")]
    AlreadyActive(String),
    #[error("{0}")]
    Invalid(String),
}

impl Platform {
    /// Revisions with their replica counts filled in, oldest first.
    pub fn revisions_view(&self) -> Vec<Revision> {
        let replicas = self.replicas();
        let mut revisions = self.revisions();
        for r in &mut revisions {
            let mine = replicas
                .iter()
                .filter(|x| x.revision == r.name && x.phase != Phase::Terminating);
            r.replicas = mine.clone().count() as u32;
            r.ready_replicas = mine.filter(|x| x.ready).count() as u32;
        }
        revisions
    }

    fn new_revision(&self, request: &DeployRequest) -> Result<Revision, DeployError> {
        let app = &self.config.file.app;
        let suffix = match &request.suffix {
            Some(s) => s.clone(),
            None => secret(7).to_lowercase(),
        };
        if suffix.is_empty()
            || suffix.len() > 30
            || !suffix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(DeployError::Invalid(format!(
                "suffix `{suffix}` must be 1-30 lowercase letters, digits or -"
            )));
        }
        if let Some(mb) = request.memory_mb
            && !(4..=1_048_576).contains(&mb)
        {
            return Err(DeployError::Invalid(format!(
                "memory_mb {mb} must be 4..=1048576"
            )));
        }
        if let Some(cpu) = request.cpu
            && !(cpu.is_finite() && (0.01..=1024.0).contains(&cpu))
        {
            return Err(DeployError::Invalid(format!(
                "cpu {cpu} must be 0.01..=1024 cores"
            )));
        }
        let memory_mb = request
            .memory_mb
            .unwrap_or(self.config.file.limits.memory_mb);
        let cpu = request.cpu.unwrap_or(self.config.file.limits.cpu);
        let name = format!("{}--{suffix}", app.name);
        if self.revision(&name).is_some() {
            return Err(DeployError::Exists(name));
        }
        let mut env: BTreeMap<String, String> = app.env.clone();
        for pair in &request.env {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(DeployError::Invalid(format!(
                    "--env `{pair}` must be KEY=VALUE"
                )));
            };
            if key.is_empty() {
                return Err(DeployError::Invalid(format!(
                    "--env `{pair}` has an empty name"
                )));
            }
            env.insert(key.to_string(), value.to_string());
        }
        Ok(Revision {
            name,
            created: now_rfc3339(),
            image: request
                .image
                .clone()
                .unwrap_or_else(|| self.config.image.clone()),
            args: app.args.clone(),
            env: env.into_iter().collect(),
            target_port: request.port.unwrap_or(app.target_port),
            memory_mb,
            cpu,
            state: RevisionState::Provisioning,
            active: false,
            traffic: 0,
            reason: None,
            desired: self.config.initial_replicas(),
            replicas: 0,
            ready_replicas: 0,
        })
    }

    /// The first revision at `up`: active at once (nothing else could serve),
    /// Running when its replicas are ready.
    pub(crate) fn start_initial(self: &Arc<Self>) -> Result<Revision, DeployError> {
        let revision = self.new_revision(&DeployRequest::default())?;
        let name = revision.name.clone();
        self.add_revision(revision.clone());
        self.set_active(&name);
        self.events.normal(
            "RevisionCreated",
            &name,
            format!(
                "revision {name} created with {} replica(s)",
                revision.desired
            ),
            serde_json::json!({"image": revision.image, "replicas": revision.desired}),
        );
        self.reconcile(&name);
        let platform = self.clone();
        tokio::spawn(async move {
            if let Err(reason) = platform.wait_provisioned(&name).await {
                platform.update_revision(&name, |r| {
                    r.state = RevisionState::Failed;
                    r.reason = Some(reason.clone());
                });
                platform
                    .events
                    .warning("RevisionFailed", &name, reason, serde_json::Value::Null);
            } else {
                platform.update_revision(&name, |r| r.state = RevisionState::Running);
                platform.events.normal(
                    "RevisionReady",
                    &name,
                    format!("revision {name} is ready"),
                    serde_json::Value::Null,
                );
            }
        });
        Ok(self.revision(&revision.name).unwrap_or(revision))
    }

    /// Creates a revision and provisions it in the background; returns it
    /// as created (state Provisioning).
    pub fn deploy(self: &Arc<Self>, request: &DeployRequest) -> Result<Revision, DeployError> {
        let guard = self
            .deploy_lock
            .clone()
            .try_lock_owned()
            .map_err(|_| DeployError::Busy)?;
        let revision = self.new_revision(request)?;
        self.add_revision(revision.clone());
        self.events.normal(
            "RevisionCreated",
            &revision.name,
            format!("revision {} created from {}", revision.name, revision.image.display()),
            serde_json::json!({"image": revision.image, "env": revision.env, "target_port": revision.target_port}),
        );
        let platform = self.clone();
        let name = revision.name.clone();
        tokio::spawn(async move {
            platform.roll_out(&name).await;
            drop(guard);
        });
        Ok(revision)
    }

    /// Makes an existing inactive revision active again (rollback), with the
    /// same readiness gate as a deploy.
    pub fn activate(self: &Arc<Self>, name: &str) -> Result<Revision, DeployError> {
        let guard = self
            .deploy_lock
            .clone()
            .try_lock_owned()
            .map_err(|_| DeployError::Busy)?;
        let revision = self
            .revision(name)
            .ok_or_else(|| DeployError::NotFound(name.to_string()))?;
        if revision.active {
            return Err(DeployError::AlreadyActive(name.to_string()));
        }
        self.update_revision(name, |r| {
            r.state = RevisionState::Provisioning;
            r.reason = None;
        });
        self.events.normal(
            "RevisionActivating",
            name,
            format!("activating revision {name}"),
            serde_json::Value::Null,
        );
        let platform = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            platform.roll_out(&name).await;
            drop(guard);
        });
        Ok(self.revision(&revision.name).unwrap_or(revision))
    }

    /// Provisions `name` next to the active revision and switches traffic
    /// only if it gets ready in time.
    async fn roll_out(self: &Arc<Self>, name: &str) {
        let previous = self.active();
        let desired = previous
            .as_deref()
            .and_then(|p| self.revision(p))
            .map_or(self.config.initial_replicas(), |r| r.desired)
            .max(1);
        self.update_revision(name, |r| r.desired = desired);
        self.reconcile(name);
        match self.wait_provisioned(name).await {
            Ok(()) => {
                self.update_revision(name, |r| {
                    r.state = RevisionState::Running;
                    r.reason = None;
                });
                self.set_active(name);
                self.events.normal(
                    "TrafficSwitched",
                    name,
                    format!("revision {name} is ready and receives 100% of traffic"),
                    serde_json::json!({"previous": previous}),
                );
                if let Some(previous) = previous.filter(|p| p != name) {
                    self.update_revision(&previous, |r| {
                        r.state = RevisionState::Deactivated;
                        r.desired = 0;
                    });
                    for replica in self.replicas_of(&previous) {
                        self.stop_replica(&replica.id, true);
                    }
                    self.events.normal(
                        "RevisionDeactivated",
                        &previous,
                        format!("revision {previous} drained and stopped"),
                        serde_json::Value::Null,
                    );
                }
            }
            Err(reason) => {
                self.update_revision(name, |r| {
                    r.state = RevisionState::Failed;
                    r.reason = Some(reason.clone());
                    r.desired = 0;
                });
                for replica in self.replicas_of(name) {
                    self.stop_replica(&replica.id, false);
                }
                self.events.warning(
                    "RevisionFailed",
                    name,
                    format!(
                        "revision {name} failed: {reason}; {} keeps serving",
                        previous.as_deref().unwrap_or("nothing")
                    ),
                    serde_json::json!({"reason": reason, "active": previous}),
                );
            }
        }
    }

    /// Waits until every desired replica of `name` is ready; the error is
    /// the Failed reason.
    async fn wait_provisioned(&self, name: &str) -> Result<(), String> {
        let timeout = secs(self.config.file.revisions.provisioning_timeout_seconds);
        let crash_loop = self.config.file.restart.crash_loop_restarts;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Some(revision) = self.revision(name) else {
                return Err("revision removed".into());
            };
            let replicas = self.replicas_of(name);
            if let Some(r) = replicas.iter().find(|r| r.phase == Phase::ImagePullBackOff) {
                let detail = r
                    .last_exit
                    .as_ref()
                    .map_or(String::new(), |e| e.message.clone());
                return Err(format!("ImagePullFailed: {detail}"));
            }
            if let Some(r) = replicas
                .iter()
                .find(|r| r.consecutive_failures >= crash_loop)
            {
                let detail = r
                    .last_exit
                    .as_ref()
                    .map_or(String::new(), |e| e.message.clone());
                return Err(format!(
                    "CrashLoopBackOff: replica {} failed {} times in a row, last: {detail}",
                    r.id, r.consecutive_failures
                ));
            }
            let ready = replicas.iter().filter(|r| r.ready).count() as u32;
            if ready >= revision.desired.max(1) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "NotReady: {ready}/{} replicas ready within the {}s provisioning timeout (probes on port {})",
                    revision.desired,
                    timeout.as_secs_f64(),
                    replicas.first().map_or(0, |r| r.target_port),
                ));
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err("lab stopping".into()),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}
