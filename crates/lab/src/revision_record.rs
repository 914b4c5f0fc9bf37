//! What a revision is: the record the platform keeps for each one
//! ([`Revision`], [`RevisionState`]). It lives apart from
//! [`crate::revision`] (the deploy flow, which acts on the platform) so the
//! platform can hold revisions without depending on the deploy flow:
//! revision -> platform -> revision_record.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a revision is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevisionState {
    /// Replicas starting; no traffic yet (unless it is the first revision).
    Provisioning,
    /// Ready; serving if active.
    Running,
    /// Could not become ready; see `reason`.
    Failed,
    /// Replaced by another revision; no replicas.
    Deactivated,
}

/// One revision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revision {
    pub name: String,
    pub created: String,
    /// The executable (the "image").
    pub image: PathBuf,
    pub args: Vec<String>,
    /// Environment on top of the lab's (wins over it).
    pub env: Vec<(String, String)>,
    /// 0 = the replica's APP_PORT.
    pub target_port: u16,
    /// Memory limit per replica, MiB (`[limits] memory_mb` unless deployed
    /// with another).
    #[serde(default)]
    pub memory_mb: u64,
    /// CPU limit per replica, cores: the CFS quota in kernel mode and the
    /// base of CPU utilisation (`[limits] cpu` unless deployed with another).
    #[serde(default)]
    pub cpu: f64,
    pub state: RevisionState,
    pub active: bool,
    /// Share of ingress traffic, %.
    pub traffic: u8,
    /// Why it failed.
    pub reason: Option<String>,
    /// Replicas it should run.
    pub desired: u32,
    /// Replicas it runs (filled when listed).
    #[serde(default)]
    pub replicas: u32,
    /// Of which ready (filled when listed).
    #[serde(default)]
    pub ready_replicas: u32,
}
