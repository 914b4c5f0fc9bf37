//! The sections of `chaoslab.toml`, one struct each, with the defaults the
//! docs list (docs/lab.md). Every field is optional in the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config_error::ConfigError;

/// `[app]`: what the replicas run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSection {
    /// Application name; revisions are `<name>--<suffix>`.
    pub name: String,
    /// The "image": an executable path. Empty = the lab's own binary.
    pub image: Option<PathBuf>,
    /// Arguments given to the image (`["serve"]`).
    pub args: Vec<String>,
    /// Replicas at start (clamped to the autoscaler's min/max when enabled).
    pub replicas: u32,
    /// Extra environment for every replica.
    pub env: BTreeMap<String, String>,
    /// Port the probes and the ingress target; 0 = the port the lab gives
    /// the replica in APP_PORT.
    pub target_port: u16,
    /// Protect the replicas' chaos API with a token: the lab makes one,
    /// keeps it in `<state dir>/chaos-token` (0600), gives it to every
    /// replica as CHAOS_API_TOKEN and sends it on every chaos call it makes.
    pub chaos_token: bool,
}

impl Default for AppSection {
    fn default() -> Self {
        Self {
            name: "chaoslab".into(),
            image: None,
            args: vec!["serve".into()],
            replicas: 1,
            env: BTreeMap::new(),
            target_port: 0,
            chaos_token: false,
        }
    }
}

/// `[lab]`: the lab as a whole.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabSection {
    /// `auto` (kernel mechanisms where the machine allows them), `kernel`
    /// or `process` (SPEC §14, docs/lab.md).
    pub isolation: crate::isolation::IsolationMode,
}

/// `[ingress]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngressSection {
    pub port: u16,
    pub request_timeout_seconds: f64,
    /// OS threads serving the ingress, each with its own event loop.
    pub threads: usize,
}

impl Default for IngressSection {
    fn default() -> Self {
        Self {
            port: 8000,
            request_timeout_seconds: 240.0,
            threads: 1,
        }
    }
}

/// `[control]`: the control API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSection {
    pub port: u16,
}

impl Default for ControlSection {
    fn default() -> Self {
        Self { port: 8090 }
    }
}

/// `[faults]`: the fault proxy in front of the lab's Redis.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsSection {
    /// Loopback port of the Toxiproxy-compatible HTTP API (Toxiproxy's
    /// 8474 by default); 0 = any free port.
    pub toxiproxy_port: u16,
    /// Let proxies created through that API forward off this machine (by
    /// default only to loopback upstreams). The lab's own `redis` proxy
    /// never moves either way.
    pub allow_remote_upstream: bool,
}

impl Default for FaultsSection {
    fn default() -> Self {
        Self {
            toxiproxy_port: 8474,
            allow_remote_upstream: false,
        }
    }
}

/// `[redis]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// The redis-server executable (looked up on PATH).
    pub server: PathBuf,
    /// Port of the lab's Redis; 0 = any free port.
    pub port: u16,
    /// Use this external Redis instead of starting one.
    pub url: Option<String>,
    /// How long Redis has to answer PING at start.
    pub start_timeout_seconds: f64,
    /// How the replicas authenticate: `password` (an ACL user, its
    /// password in a file) or `entra` (Entra ID tokens from the lab's
    /// stand-in managed identity endpoint; a binary built with
    /// `--features entra-id`).
    pub auth: RedisAuthMode,
    /// Lifetime of the stand-in identity's tokens (`auth = "entra"`).
    pub token_lifetime_seconds: f64,
}

/// `[redis] auth`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisAuthMode {
    #[default]
    Password,
    Entra,
}

impl std::str::FromStr for RedisAuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "password" => Ok(Self::Password),
            "entra" => Ok(Self::Entra),
            other => Err(format!("--auth `{other}` must be password or entra")),
        }
    }
}

impl Default for RedisSection {
    fn default() -> Self {
        Self {
            server: "redis-server".into(),
            port: 0,
            url: None,
            start_timeout_seconds: 10.0,
            auth: RedisAuthMode::Password,
            token_lifetime_seconds: 600.0,
        }
    }
}

/// `[probes]`: a preset plus per-field overrides.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbesSection {
    pub preset: Preset,
    pub liveness: ProbeOverrides,
    pub readiness: ProbeOverrides,
}

/// Probe presets: `aca` is the seed deployment, `quick` the same at a tenth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Aca,
    #[default]
    Quick,
}

impl std::str::FromStr for Preset {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aca" => Ok(Self::Aca),
            "quick" => Ok(Self::Quick),
            other => Err(ConfigError::Invalid(format!(
                "unknown probe preset `{other}` (expected aca or quick)"
            ))),
        }
    }
}

/// Any probe field; unset fields come from the preset.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeOverrides {
    /// `tcp` or `http`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Path of an http probe.
    pub path: Option<String>,
    pub initial_delay_seconds: Option<f64>,
    pub period_seconds: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub failure_threshold: Option<u32>,
    pub success_threshold: Option<u32>,
}

/// `[limits]`, per replica.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Memory limit in MiB (0.5 Gi as the seed).
    pub memory_mb: u64,
    /// CPU request in cores, the base of CPU utilisation (0.25 as ACA pairs
    /// with 0.5 Gi).
    pub cpu: f64,
    /// How often CPU and memory are sampled.
    pub sample_period_seconds: f64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            memory_mb: 512,
            cpu: 0.25,
            sample_period_seconds: 0.25,
        }
    }
}

/// `[restart]`: restart policy of replicas.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartSection {
    /// First back-off delay; doubles per consecutive failure.
    pub backoff_initial_seconds: f64,
    /// Back-off ceiling.
    pub backoff_max_seconds: f64,
    /// A replica that ran this long resets its back-off.
    pub backoff_reset_seconds: f64,
    /// Consecutive failed starts after which a replica is in CrashLoopBackOff.
    pub crash_loop_restarts: u32,
    /// SIGTERM to SIGKILL delay when stopping a replica.
    pub termination_grace_seconds: f64,
}

impl Default for RestartSection {
    fn default() -> Self {
        Self {
            backoff_initial_seconds: 1.0,
            backoff_max_seconds: 30.0,
            backoff_reset_seconds: 60.0,
            crash_loop_restarts: 3,
            termination_grace_seconds: 5.0,
        }
    }
}

/// `[autoscaler]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoscalerSection {
    pub enabled: bool,
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Target average CPU utilisation, % of the CPU request.
    pub target_cpu_utilization: f64,
    /// How often the autoscaler decides (HPA: 15 s).
    pub period_seconds: f64,
    /// Scale-down stabilisation window (HPA: 300 s).
    pub scale_down_stabilization_seconds: f64,
    /// No change while |ratio - 1| is within this (HPA: 0.1).
    pub tolerance: f64,
}

impl Default for AutoscalerSection {
    fn default() -> Self {
        Self {
            enabled: true,
            min_replicas: 1,
            max_replicas: 5,
            target_cpu_utilization: 70.0,
            period_seconds: 5.0,
            scale_down_stabilization_seconds: 60.0,
            tolerance: 0.1,
        }
    }
}

/// `[revisions]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RevisionsSection {
    /// A new revision must be ready within this or it is Failed.
    pub provisioning_timeout_seconds: f64,
    /// Time between leaving the ingress and SIGTERM, so picked requests land.
    pub drain_seconds: f64,
}

impl Default for RevisionsSection {
    fn default() -> Self {
        Self {
            provisioning_timeout_seconds: 60.0,
            drain_seconds: 1.0,
        }
    }
}
