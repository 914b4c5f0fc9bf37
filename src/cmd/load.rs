//! `chaoslab load` (placeholder until the load generator lands).

use std::process::ExitCode;

/// Arguments of `chaoslab load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {}

pub async fn run(_args: LoadArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`chaoslab load` is not implemented yet")
}
