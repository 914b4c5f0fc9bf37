//! Kubernetes manifests: `chaoslab export k8s` (SPEC §12).
//!
//! Not built yet: `run` says so and exits with an error.

/// Command-line arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: &Args) -> anyhow::Result<()> {
    anyhow::bail!("not available yet")
}
