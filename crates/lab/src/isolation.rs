//! Which isolation the lab is in, per mechanism (SPEC §14): `kernel` — the
//! replicas' memory and CPU limits are cgroup limits the kernel enforces,
//! Redis sits in a network namespace of the lab's own whose faults are
//! nftables rules — or `process`, the portable fallback (RSS polling and
//! SIGKILL, the userspace TCP fault proxy). `--isolation auto` (the
//! default) takes kernel mode for each mechanism the machine allows and
//! says, in `detail`, why it did not for the others; `kernel` fails the
//! start instead; `process` never touches the kernel.
//!
//! Everything the lab creates in the kernel is named after the lab
//! ([`lab_id`]: a hash of its state dir, so the next `up` in the same
//! directory finds what a SIGKILLed lab left behind, and never touches
//! another lab's): cgroups `chaoslab-<id>/…`, namespace `chaoslab-<id>`,
//! veth `clh<id>`/`clr<id>`, nftables tables `chaoslab-<id>`.

pub use crate::kernel_name::{kernel_name, lab_id};

use serde::{Deserialize, Serialize};

use crate::config_error::ConfigError;

/// What `--isolation` / `[lab] isolation` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IsolationMode {
    /// Kernel mechanisms where the machine allows them, else process.
    #[default]
    Auto,
    /// Kernel mechanisms or no start.
    Kernel,
    /// The portable fallback only.
    Process,
}

impl std::str::FromStr for IsolationMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "kernel" => Ok(Self::Kernel),
            "process" => Ok(Self::Process),
            other => Err(ConfigError::Invalid(format!(
                "unknown isolation `{other}` (expected auto, kernel or process)"
            ))),
        }
    }
}

/// The level in force for one mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Kernel,
    Process,
}

/// One mechanism's level and, in words, how it works or why kernel mode
/// was not chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mechanism {
    pub mode: Level,
    pub detail: String,
}

impl Mechanism {
    pub fn kernel(detail: impl Into<String>) -> Self {
        Self {
            mode: Level::Kernel,
            detail: detail.into(),
        }
    }
    pub fn process(detail: impl Into<String>) -> Self {
        Self {
            mode: Level::Process,
            detail: detail.into(),
        }
    }
    pub fn is_kernel(&self) -> bool {
        self.mode == Level::Kernel
    }
}

/// `status --json`'s `isolation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IsolationReport {
    /// What was asked for.
    pub requested: IsolationMode,
    /// The lab's name in the kernel (`chaoslab-<id>`).
    pub name: String,
    pub memory: Mechanism,
    pub cpu: Mechanism,
    pub network: Mechanism,
}

impl IsolationReport {
    /// Process mode for every mechanism, each with `why`.
    pub fn process(requested: IsolationMode, name: String, why: &str) -> Self {
        Self {
            requested,
            name,
            memory: Mechanism::process(format!(
                "RSS polled every sample period, SIGKILL over the limit ({why})"
            )),
            cpu: Mechanism::process(format!("CPU read from /proc, no limit enforced ({why})")),
            network: Mechanism::process(format!(
                "every replica↔Redis byte through the userspace fault proxy ({why})"
            )),
        }
    }
}

/// What kernel mode made for a lab, handed to the platform.
#[derive(Debug, Clone)]
pub struct KernelParts {
    pub report: IsolationReport,
    /// The lab's cgroups (kernel memory and CPU).
    pub cgroups: Option<crate::cgroup::LabCgroups>,
    /// Redis's namespace (kernel network).
    pub network: Option<std::sync::Arc<crate::netns::LabNetwork>>,
}

impl KernelParts {
    /// Nothing in the kernel.
    pub fn process(report: IsolationReport) -> Self {
        Self {
            report,
            cgroups: None,
            network: None,
        }
    }
}

/// Why the machine does not allow kernel mode at all (not root), if so.
pub fn not_root() -> Option<String> {
    (!rustix::process::geteuid().is_root())
        .then(|| "not running as root: cgroups and network namespaces need root".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_report_as_json() {
        assert_eq!(
            "kernel".parse::<IsolationMode>().unwrap(),
            IsolationMode::Kernel
        );
        assert!(
            "vm".parse::<IsolationMode>()
                .unwrap_err()
                .to_string()
                .contains("auto, kernel or process")
        );
        let r = IsolationReport::process(IsolationMode::Process, "chaoslab-x".into(), "asked");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["memory"]["mode"], "process");
        assert_eq!(v["network"]["mode"], "process");
        assert!(v["cpu"]["detail"].as_str().unwrap().contains("asked"));
    }
}
