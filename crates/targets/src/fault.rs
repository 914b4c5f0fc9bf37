//! Faults with a target (SPEC §12, issue 14 item 5): `chaoslab fault …
//! --target k8s|aca` with the local lab's words, driven through the
//! platforms' own tools — `kubectl` on Kubernetes, `az` on Azure Container
//! Apps, as the seed's scripts did. Nothing here talks to a cluster or to
//! Azure itself.
//!
//! The CLI (`src/cmd/fault.rs`) keeps its subcommands and hands a
//! [`Fault`] and the [`TargetArgs`] here when `--target` is not `local`.
//! Bad input (a fault or engine the target lacks, a name that is not a DNS
//! label, a missing tool) is [`FaultError::BadInput`] — exit status 2 —
//! and is found before anything runs.

pub mod aca;
pub mod k8s;
pub mod runner;
pub mod yaml;

use std::io::Write;
use std::time::Duration;

use runner::{DryRun, Live, Shell, Tool, find_on_path};

/// Where a fault goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The lab on this machine (`chaoslab up`).
    Local,
    /// A Kubernetes cluster, through kubectl.
    K8s,
    /// Azure Container Apps, through az.
    Aca,
}

/// What carries a network fault out on a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// k8s (default): a NetworkPolicy.
    Networkpolicy,
    /// k8s: a Chaos Mesh NetworkChaos (Chaos Mesh must be installed).
    ChaosMesh,
    /// aca (default): the seed's NSG rule, created with az.
    Nsg,
    /// aca: Azure Chaos Studio's NSG security-rule fault (an experiment).
    ChaosStudio,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Networkpolicy => "networkpolicy",
            Engine::ChaosMesh => "chaos-mesh",
            Engine::Nsg => "nsg",
            Engine::ChaosStudio => "chaos-studio",
        }
    }
}

/// The flags that choose a target and name what is there (all global, so
/// they may follow any `fault` subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Where the fault goes: the local lab, a Kubernetes cluster (kubectl)
    /// or Azure Container Apps (az).
    #[arg(long, value_enum, default_value = "local", global = true)]
    pub target: Target,
    /// k8s: networkpolicy (default) or chaos-mesh; aca: nsg (default) or
    /// chaos-studio.
    #[arg(long, value_enum, global = true)]
    pub engine: Option<Engine>,
    /// Print exactly what would be applied or run, and run nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// k8s: the kubeconfig context (default: kubectl's current context).
    #[arg(long, env = "CHAOSLAB_KUBE_CONTEXT", global = true)]
    pub context: Option<String>,
    /// k8s: the namespace the service runs in.
    #[arg(
        long,
        env = "CHAOSLAB_NAMESPACE",
        default_value = "chaoslab",
        global = true
    )]
    pub namespace: String,
    /// The service: the Deployment (k8s, default chaoslab) or the container
    /// app (aca, default $AZURE_CONTAINER_APP_NAME, as the seed's azd env).
    #[arg(long, env = "CHAOSLAB_APP", global = true)]
    pub app: Option<String>,
    /// aca: the resource group.
    #[arg(long, env = "AZURE_RESOURCE_GROUP", global = true)]
    pub resource_group: Option<String>,
    /// aca: the network security group in front of Redis.
    #[arg(long, env = "AZURE_NSG_NAME", global = true)]
    pub nsg: Option<String>,
    /// aca with chaos-studio: the subscription id.
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID", global = true)]
    pub subscription: Option<String>,
    /// aca with chaos-studio: the experiment's Azure region.
    #[arg(long, env = "AZURE_LOCATION", global = true)]
    pub location: Option<String>,
}

/// One `chaoslab fault` command, as the CLI parsed it (numbers unchecked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    NetworkBlock {
        mode: String,
        duration: i64,
        no_reset: bool,
    },
    NetworkLatency {
        ms: i64,
        jitter: i64,
        duration: i64,
    },
    NetworkBandwidth {
        kbps: i64,
        duration: i64,
    },
    Deploy {
        variant: String,
    },
    Kill {
        replica: Option<String>,
        all: bool,
        signal: String,
    },
    /// A local-only fault (`redis`, `auth`): named for the message.
    LocalOnly(&'static str),
    List {
        json: bool,
    },
    Clear {
        id: Option<String>,
        all: bool,
    },
}

/// Why a target fault did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// Bad input: nothing was applied (exit status 2).
    #[error("{0}")]
    BadInput(String),
    /// A command failed or timed out (exit status 1).
    #[error("{0}")]
    Failed(String),
}

impl FaultError {
    pub fn exit_code(&self) -> u8 {
        match self {
            FaultError::BadInput(_) => 2,
            FaultError::Failed(_) => 1,
        }
    }
}

fn bad(message: impl Into<String>) -> FaultError {
    FaultError::BadInput(message.into())
}

/// Refuses target flags on the local lab (so `--dry-run` is never ignored).
pub fn check_local(args: &TargetArgs) -> Result<(), FaultError> {
    if args.dry_run {
        return Err(bad(
            "--dry-run is for --target k8s or aca; the local lab's faults are undone with `chaoslab fault clear`",
        ));
    }
    if let Some(engine) = args.engine {
        return Err(bad(format!(
            "--engine {} needs --target {}",
            engine.name(),
            match engine {
                Engine::Networkpolicy | Engine::ChaosMesh => "k8s",
                Engine::Nsg | Engine::ChaosStudio => "aca",
            }
        )));
    }
    Ok(())
}

/// Whether `name` is an RFC 1123 DNS label (what Kubernetes requires of a
/// namespace and a Deployment name, and Container Apps of an app name).
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

pub(crate) fn check_dns_label(what: &str, name: &str) -> Result<(), FaultError> {
    if is_dns_label(name) {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} `{name}` is not a valid DNS label (1-63 characters: lowercase letters, digits and '-', starting and ending with a letter or digit)"
        )))
    }
}

pub(crate) fn seconds(flag: &str, value: i64) -> Result<u64, FaultError> {
    u64::try_from(value).map_err(|_| bad(format!("{flag} must be 0 or more, not {value}")))
}

/// Carries out `fault` on the chosen target, printing to `out`. Every
/// check on the input happens before the first command runs.
pub fn run(args: &TargetArgs, fault: &Fault, out: &mut dyn Write) -> Result<(), FaultError> {
    let plan = match args.target {
        Target::Local => return check_local(args),
        Target::K8s => Plan::K8s(k8s::Plan::new(args, fault)?),
        Target::Aca => Plan::Aca(aca::Plan::new(args, fault)?),
    };
    if args.dry_run {
        let mut shell = DryRun { out };
        shell.say(
            "chaoslab fault --dry-run: what a real run would execute, in order (nothing was run)",
        )?;
        plan.carry_out(&mut shell)
    } else {
        for tool in plan.tools() {
            if find_on_path(tool.program()).is_none() {
                return Err(bad(tool.install_hint()));
            }
        }
        let mut shell = Live {
            out,
            timeout: Duration::from_secs(120),
        };
        plan.carry_out(&mut shell)
    }
}

enum Plan {
    K8s(k8s::Plan),
    Aca(aca::Plan),
}

impl Plan {
    fn tools(&self) -> Vec<Tool> {
        match self {
            Plan::K8s(_) => vec![Tool::Kubectl],
            Plan::Aca(plan) => plan.tools(),
        }
    }

    fn carry_out(&self, shell: &mut dyn Shell) -> Result<(), FaultError> {
        match self {
            Plan::K8s(plan) => plan.carry_out(shell),
            Plan::Aca(plan) => plan.carry_out(shell),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for good in ["chaoslab", "a", "my-app-2", &"a".repeat(63)] {
            assert!(is_dns_label(good), "{good}");
        }
        for badname in ["", "-a", "a-", "My-App", "a_b", "a.b", &"a".repeat(64), "ü"] {
            assert!(!is_dns_label(badname), "{badname}");
        }
    }
}
