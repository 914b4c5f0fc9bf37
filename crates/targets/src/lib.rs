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
