//! Beyond one machine (SPEC §12): what chaoslab generates for the platforms
//! users already run, and how it drives their faults with those platforms'
//! own tools. Nothing here reimplements a cluster: each module writes files
//! (image build context, manifests, Bicep) or runs `podman`, `kubectl`, `az`.
//!
//! - [`image`]: the container image (`chaoslab image build`).
//! - [`k8s`]: Kubernetes manifests (`chaoslab export k8s`).
//! - [`aca`]: Azure Container Apps Bicep and YAML (`chaoslab export aca`).
//! - [`fault`]: faults on a target (`chaoslab fault … --target k8s|aca`).

pub mod aca;
pub mod fault;
pub mod image;
pub mod k8s;

/// Bad input on the command line (a name that is not a DNS label, a value out
/// of range…), found before anything was written or applied: the binary
/// prints it as one line and exits with status 2, as for a flag clap refuses.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
