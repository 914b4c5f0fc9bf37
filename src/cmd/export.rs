//! `chaoslab export` and `chaoslab image`: hand the parsed arguments to the
//! targets crate (SPEC §12).

use std::process::ExitCode;

use clap::Subcommand;

/// What to export.
#[derive(Debug, Subcommand)]
pub enum ExportTarget {
    /// Kubernetes manifests with a kustomization.yaml (`kubectl apply -k DIR`).
    K8s(chaoslab_targets::k8s::Args),
    /// Azure Container Apps: Bicep in the seed's module layout and a
    /// Container App YAML.
    Aca(chaoslab_targets::aca::Args),
}

/// Image commands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the container image from this binary with podman or buildah,
    /// without pulling anything.
    Build(chaoslab_targets::image::Args),
}

pub async fn export(target: ExportTarget) -> anyhow::Result<ExitCode> {
    let result = tokio::task::spawn_blocking(move || match target {
        ExportTarget::K8s(args) => chaoslab_targets::k8s::run(&args),
        ExportTarget::Aca(args) => chaoslab_targets::aca::run(&args),
    })
    .await?;
    exit_code(result)
}

/// Bad input ([`chaoslab_targets::BadInput`]) is exit status 2 with its one
/// line; any other error goes up to `main` (status 1).
fn exit_code(result: anyhow::Result<()>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => match err.downcast_ref::<chaoslab_targets::BadInput>() {
            Some(bad) => {
                eprintln!("chaoslab: {bad}");
                Ok(ExitCode::from(2))
            }
            None => Err(err),
        },
    }
}

pub async fn image(command: ImageCommand) -> anyhow::Result<ExitCode> {
    let result = tokio::task::spawn_blocking(move || match command {
        ImageCommand::Build(args) => chaoslab_targets::image::run(&args),
    })
    .await?;
    exit_code(result)
}
