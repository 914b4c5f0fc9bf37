//! The lab's configuration: `chaoslab.toml` (every section optional, every
//! field defaulted) plus command-line overrides, resolved and validated into
//! a [`LabConfig`] before anything binds or spawns. Durations are seconds as
//! floats so tests can use tenths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::probe::{ProbeAction, ProbeSpec};

pub use crate::config_error::ConfigError;
pub use crate::config_sections::*;

/// `chaoslab.toml` as written by the user.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Where the lab keeps its state (`.chaoslab` in the current directory).
    pub state_dir: Option<PathBuf>,
    pub lab: LabSection,
    pub app: AppSection,
    pub ingress: IngressSection,
    pub control: ControlSection,
    pub redis: RedisSection,
    pub probes: ProbesSection,
    pub limits: LimitsSection,
    pub restart: RestartSection,
    pub autoscaler: AutoscalerSection,
    pub revisions: RevisionsSection,
    pub faults: FaultsSection,
    /// Alert rules on the lab's metrics (the seed's two by default).
    pub alerts: chaoslab_console::alerts::AlertsConfig,
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
    /// `--chaos-token`.
    pub chaos_token: bool,
    /// `--allow-remote-upstream`.
    pub allow_remote_upstream: bool,
    /// `--isolation`.
    pub isolation: Option<crate::isolation::IsolationMode>,
}

/// The validated configuration the lab runs with.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub file: FileConfig,
    pub state_dir: PathBuf,
    pub image: PathBuf,
    pub liveness: ProbeSpec,
    pub readiness: ProbeSpec,
    /// The replicas' CHAOS_API_TOKEN, which every chaos call of the lab
    /// sends: made at start when `[app] chaos_token` is on, or the one set
    /// in `[app.env]`. Never serialised.
    pub chaos_token: Option<String>,
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
        // The lab's listeners read the SERVER_* bounds from the environment
        // (SPEC §13): a bad value stops `up` here, not one listener later.
        chaoslab_httpguard::ServerLimits::PUBLIC
            .from_env()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
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
        if o.chaos_token {
            file.app.chaos_token = true;
        }
        if o.allow_remote_upstream {
            file.faults.allow_remote_upstream = true;
        }
        if let Some(v) = o.isolation {
            file.lab.isolation = v;
        }
        let (live_preset, ready_preset) = preset_specs(file.probes.preset);
        let liveness = apply(live_preset, &file.probes.liveness, "probes.liveness")?;
        let readiness = apply(ready_preset, &file.probes.readiness, "probes.readiness")?;
        let image = file.app.image.clone().unwrap_or(default_image);
        let state_dir = file.state_dir.clone().unwrap_or_else(|| ".chaoslab".into());
        let chaos_token = file.app.env.get("CHAOS_API_TOKEN").cloned();
        let config = Self {
            file,
            state_dir,
            image,
            liveness,
            readiness,
            chaos_token,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        validate_names_and_sizes(&self.file)?;
        validate_durations(&self.file)?;
        validate_redis(&self.file)
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

/// The app's name, the alert rules, replica counts, threads and limits.
fn validate_names_and_sizes(f: &FileConfig) -> Result<(), ConfigError> {
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
    f.alerts
        .validate()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let a = &f.autoscaler;
    if a.min_replicas == 0 || a.min_replicas > a.max_replicas || a.max_replicas > 50 {
        return invalid(format!(
            "autoscaler needs 1 <= min_replicas ({}) <= max_replicas ({}) <= 50",
            a.min_replicas, a.max_replicas
        ));
    }
    if f.ingress.threads == 0 || f.ingress.threads > 64 {
        return invalid(format!(
            "ingress.threads ({}) must be 1..=64",
            f.ingress.threads
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
    Ok(())
}

/// Every duration: positive where 0 makes no sense, else at least 0;
/// at least one crash before a crash loop.
fn validate_durations(f: &FileConfig) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    let a = &f.autoscaler;
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
    Ok(())
}

/// Redis: Entra auth needs the lab's own Redis; URLs are redis:// ones.
fn validate_redis(f: &FileConfig) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    if f.redis.auth == RedisAuthMode::Entra {
        if f.redis.url.is_some() {
            return invalid(
                "redis.auth = \"entra\" needs the lab's own Redis (its ACL user is the identity's); drop --redis-url".into(),
            );
        }
        if !(2.0..=86400.0).contains(&f.redis.token_lifetime_seconds) {
            return invalid("redis.token_lifetime_seconds must be 2..86400".into());
        }
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
#[path = "config_tests.rs"]
mod tests;
