//! The lab's configuration: `chaoslab.toml` (every section optional, every
//! field defaulted) plus command-line overrides, resolved and validated into
//! a [`LabConfig`] before anything binds or spawns. Durations are seconds as
//! floats so tests can use tenths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::probe::{ProbeAction, ProbeSpec};

/// A configuration problem, reported before the lab starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for the lab.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// `chaoslab.toml` as written by the user.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Where the lab keeps its state (`.chaoslab` in the current directory).
    pub state_dir: Option<PathBuf>,
    pub app: AppSection,
    pub ingress: IngressSection,
    pub control: ControlSection,
    pub redis: RedisSection,
    pub probes: ProbesSection,
    pub limits: LimitsSection,
    pub restart: RestartSection,
    pub autoscaler: AutoscalerSection,
    pub revisions: RevisionsSection,
}

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
        }
    }
}

/// `[ingress]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngressSection {
    pub port: u16,
    pub request_timeout_seconds: f64,
}

impl Default for IngressSection {
    fn default() -> Self {
        Self {
            port: 8000,
            request_timeout_seconds: 240.0,
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
}

impl Default for RedisSection {
    fn default() -> Self {
        Self {
            server: "redis-server".into(),
            port: 0,
            url: None,
            start_timeout_seconds: 10.0,
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

/// Command-line overrides of `chaoslab up` (each wins over the file).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub state_dir: Option<PathBuf>,
    pub ingress_port: Option<u16>,
    pub control_port: Option<u16>,
    pub replicas: Option<u32>,
    pub image: Option<PathBuf>,
    pub redis_url: Option<String>,
    pub redis_server: Option<PathBuf>,
    pub preset: Option<Preset>,
}

/// The validated configuration the lab runs with.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub file: FileConfig,
    pub state_dir: PathBuf,
    pub image: PathBuf,
    pub liveness: ProbeSpec,
    pub readiness: ProbeSpec,
}

impl LabConfig {
    /// Loads `path` (a missing default file is fine: `required = false`),
    /// applies `overrides`, resolves probes and validates everything.
    pub fn load(
        path: &Path,
        required: bool,
        overrides: &Overrides,
        default_image: PathBuf,
    ) -> Result<Self, ConfigError> {
        let file = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                FileConfig::default()
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::resolve(file, overrides, default_image)
    }

    /// Applies overrides to a parsed file and validates.
    pub fn resolve(
        mut file: FileConfig,
        o: &Overrides,
        default_image: PathBuf,
    ) -> Result<Self, ConfigError> {
        if let Some(v) = &o.state_dir {
            file.state_dir = Some(v.clone());
        }
        if let Some(v) = o.ingress_port {
            file.ingress.port = v;
        }
        if let Some(v) = o.control_port {
            file.control.port = v;
        }
        if let Some(v) = o.replicas {
            file.app.replicas = v;
        }
        if let Some(v) = &o.image {
            file.app.image = Some(v.clone());
        }
        if let Some(v) = &o.redis_url {
            file.redis.url = Some(v.clone());
        }
        if let Some(v) = &o.redis_server {
            file.redis.server = v.clone();
        }
        if let Some(v) = o.preset {
            file.probes.preset = v;
        }
        let (live_preset, ready_preset) = preset_specs(file.probes.preset);
        let liveness = apply(live_preset, &file.probes.liveness, "probes.liveness")?;
        let readiness = apply(ready_preset, &file.probes.readiness, "probes.readiness")?;
        let image = file.app.image.clone().unwrap_or(default_image);
        let state_dir = file.state_dir.clone().unwrap_or_else(|| ".chaoslab".into());
        let config = Self {
            file,
            state_dir,
            image,
            liveness,
            readiness,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.file;
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if f.app.name.is_empty()
            || !f
                .app
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return invalid(format!(
                "app.name `{}` must be letters, digits and -",
                f.app.name
            ));
        }
        let a = &f.autoscaler;
        if a.min_replicas == 0 || a.min_replicas > a.max_replicas || a.max_replicas > 50 {
            return invalid(format!(
                "autoscaler needs 1 <= min_replicas ({}) <= max_replicas ({}) <= 50",
                a.min_replicas, a.max_replicas
            ));
        }
        if f.app.replicas == 0 || f.app.replicas > 50 {
            return invalid(format!("app.replicas ({}) must be 1..=50", f.app.replicas));
        }
        if f.limits.memory_mb == 0 || f.limits.cpu <= 0.0 {
            return invalid("limits.memory_mb and limits.cpu must be positive".into());
        }
        if a.target_cpu_utilization.is_nan()
            || a.target_cpu_utilization <= 0.0
            || a.tolerance.is_nan()
            || a.tolerance < 0.0
        {
            return invalid("autoscaler.target_cpu_utilization must be > 0, tolerance >= 0".into());
        }
        let positive = [
            (
                "ingress.request_timeout_seconds",
                f.ingress.request_timeout_seconds,
            ),
            ("redis.start_timeout_seconds", f.redis.start_timeout_seconds),
            (
                "limits.sample_period_seconds",
                f.limits.sample_period_seconds,
            ),
            (
                "restart.backoff_initial_seconds",
                f.restart.backoff_initial_seconds,
            ),
            ("restart.backoff_max_seconds", f.restart.backoff_max_seconds),
            ("autoscaler.period_seconds", a.period_seconds),
            (
                "revisions.provisioning_timeout_seconds",
                f.revisions.provisioning_timeout_seconds,
            ),
        ];
        for (name, value) in positive {
            if !(value > 0.0 && value < 1e7) {
                return invalid(format!("{name} must be a positive number of seconds"));
            }
        }
        let non_negative = [
            (
                "restart.backoff_reset_seconds",
                f.restart.backoff_reset_seconds,
            ),
            (
                "restart.termination_grace_seconds",
                f.restart.termination_grace_seconds,
            ),
            (
                "autoscaler.scale_down_stabilization_seconds",
                a.scale_down_stabilization_seconds,
            ),
            ("revisions.drain_seconds", f.revisions.drain_seconds),
        ];
        for (name, value) in non_negative {
            if !(0.0..1e7).contains(&value) {
                return invalid(format!("{name} must be >= 0 seconds"));
            }
        }
        if f.restart.crash_loop_restarts == 0 {
            return invalid("restart.crash_loop_restarts must be >= 1".into());
        }
        if let Some(url) = &f.redis.url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return invalid(format!(
                "redis url `{url}` must start with redis:// or rediss://"
            ));
        }
        Ok(())
    }

    /// Replicas at start: `app.replicas` clamped to the autoscaler's range.
    pub fn initial_replicas(&self) -> u32 {
        let a = &self.file.autoscaler;
        if a.enabled {
            self.file.app.replicas.clamp(a.min_replicas, a.max_replicas)
        } else {
            self.file.app.replicas
        }
    }
}

/// Seconds (validated finite and non-negative) as a Duration.
pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.clamp(0.0, 1e7))
}

/// The seed deployment's probes (`aca`) or the same at a tenth (`quick`).
pub fn preset_specs(preset: Preset) -> (ProbeSpec, ProbeSpec) {
    let scale = match preset {
        Preset::Aca => 1.0,
        Preset::Quick => 0.1,
    };
    let liveness = ProbeSpec {
        action: ProbeAction::Tcp,
        initial_delay: secs(60.0 * scale),
        period: secs(10.0 * scale),
        timeout: secs(10.0 * scale),
        failure_threshold: 5,
        success_threshold: 1,
    };
    let readiness = ProbeSpec {
        action: ProbeAction::Http {
            path: "/health".into(),
        },
        initial_delay: secs(10.0 * scale),
        period: secs(5.0 * scale),
        timeout: secs(3.0 * scale),
        failure_threshold: 2,
        success_threshold: 2,
    };
    (liveness, readiness)
}

fn apply(mut spec: ProbeSpec, o: &ProbeOverrides, name: &str) -> Result<ProbeSpec, ConfigError> {
    let default_path = match &spec.action {
        ProbeAction::Http { path } => path.clone(),
        ProbeAction::Tcp => "/livez".to_string(),
    };
    match o.kind.as_deref() {
        None => {}
        Some("tcp") => spec.action = ProbeAction::Tcp,
        Some("http") => spec.action = ProbeAction::Http { path: default_path },
        Some(other) => {
            return Err(ConfigError::Invalid(format!(
                "{name}.type `{other}` must be tcp or http"
            )));
        }
    }
    if let (Some(path), ProbeAction::Http { path: p }) = (&o.path, &mut spec.action) {
        if !path.starts_with('/') {
            return Err(ConfigError::Invalid(format!(
                "{name}.path must start with /"
            )));
        }
        *p = path.clone();
    }
    let check = |v: f64, field: &str, min: f64| {
        if v >= min && v < 1e6 {
            Ok(secs(v))
        } else {
            Err(ConfigError::Invalid(format!(
                "{name}.{field} must be >= {min}"
            )))
        }
    };
    if let Some(v) = o.initial_delay_seconds {
        spec.initial_delay = check(v, "initial_delay_seconds", 0.0)?;
    }
    if let Some(v) = o.period_seconds {
        spec.period = check(v, "period_seconds", 0.01)?;
    }
    if let Some(v) = o.timeout_seconds {
        spec.timeout = check(v, "timeout_seconds", 0.01)?;
    }
    if let Some(v) = o.failure_threshold {
        spec.failure_threshold = v;
    }
    if let Some(v) = o.success_threshold {
        spec.success_threshold = v;
    }
    if spec.failure_threshold == 0 || spec.success_threshold == 0 {
        return Err(ConfigError::Invalid(format!(
            "{name} thresholds must be >= 1"
        )));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str) -> Result<LabConfig, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "t".into(),
            message: e.to_string(),
        })?;
        LabConfig::resolve(file, &Overrides::default(), "/bin/chaoslab".into())
    }

    #[test]
    fn aca_preset_is_the_seed_deployment() {
        let c = resolve("[probes]\npreset = \"aca\"").unwrap();
        assert_eq!(c.liveness.action, ProbeAction::Tcp);
        assert_eq!(c.liveness.initial_delay, Duration::from_secs(60));
        assert_eq!(c.liveness.period, Duration::from_secs(10));
        assert_eq!(c.liveness.timeout, Duration::from_secs(10));
        assert_eq!(c.liveness.failure_threshold, 5);
        assert_eq!(
            c.readiness.action,
            ProbeAction::Http {
                path: "/health".into()
            }
        );
        assert_eq!(c.readiness.initial_delay, Duration::from_secs(10));
        assert_eq!(c.readiness.period, Duration::from_secs(5));
        assert_eq!(c.readiness.timeout, Duration::from_secs(3));
        assert_eq!(
            (c.readiness.failure_threshold, c.readiness.success_threshold),
            (2, 2)
        );
    }

    #[test]
    fn quick_is_the_default_and_a_tenth() {
        let c = resolve("").unwrap();
        assert_eq!(c.liveness.initial_delay, Duration::from_secs(6));
        assert_eq!(c.readiness.period, Duration::from_millis(500));
        assert_eq!(c.readiness.timeout, Duration::from_millis(300));
        assert_eq!(c.file.ingress.port, 8000);
        assert_eq!(c.file.control.port, 8090);
        assert_eq!(c.file.limits.memory_mb, 512);
        assert_eq!(c.image, PathBuf::from("/bin/chaoslab"));
    }

    #[test]
    fn overrides_apply_per_field() {
        let c = resolve("[probes.liveness]\ntype = \"http\"\nperiod_seconds = 0.2").unwrap();
        assert_eq!(
            c.liveness.action,
            ProbeAction::Http {
                path: "/livez".into()
            }
        );
        assert_eq!(c.liveness.period, Duration::from_millis(200));
        assert_eq!(c.liveness.failure_threshold, 5);
    }

    #[test]
    fn bad_values_are_rejected_before_start() {
        assert!(resolve("[autoscaler]\nmin_replicas = 3\nmax_replicas = 2").is_err());
        assert!(resolve("[probes.readiness]\nfailure_threshold = 0").is_err());
        assert!(resolve("[probes.liveness]\ntype = \"grpc\"").is_err());
        assert!(resolve("[app]\nunknown = 1").is_err());
        assert!(resolve("[redis]\nurl = \"http://x\"").is_err());
    }
}
