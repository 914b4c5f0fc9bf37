//! The lab's subcommands (placeholder until the lab lands).

use std::process::ExitCode;

/// Subcommands that run or inspect the local lab.
#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Start the whole lab on this machine (not implemented yet).
    Up,
}

pub async fn run(_command: LabCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the lab is not implemented yet")
}
