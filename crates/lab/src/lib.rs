//! The local lab platform behind `chaoslab up`: what the seed needed an
//! Azure subscription for, on one machine. A real Redis child, replicas of
//! the service supervised like containers (probes, restarts, resource
//! limits), revisions with a readiness gate, an HPA-style autoscaler, the
//! ingress (crate `chaoslab-ingress`), a control API with an event bus and
//! a metrics time series, and isolation (cgroups, a network namespace).
//!
//! Every module is private; what the lab's clients (the CLI, the faults,
//! experiments, the exports) use is re-exported here, and nothing else:
//!
//! **Configure and run a lab** (`chaoslab up`, experiments):
//! - [`LabConfig`]: a lab's resolved configuration; built by
//!   [`LabConfig::resolve`] from a [`FileConfig`] (`chaoslab.toml`),
//!   [`Overrides`] (command-line flags) and the replicas' executable.
//!   [`Preset`] names the probe timings, [`RedisAuthMode`] how replicas
//!   authenticate to Redis, [`IsolationMode`] the isolation asked for.
//! - [`start`] / [`start_with`]: start the lab (the second with a component
//!   plugged in: the faults); [`RunningLab`] is the started lab (its
//!   [`LabInfo`], its [`Platform`], `run`, `stop`); [`LabError`] says why a
//!   start failed.
//!
//! **Talk to a running lab** (the CLI's commands, experiments):
//! - [`LabClient`]: the one control-API client (finds the lab from its
//!   [`StateFile`], sends its token); [`ClientError`], [`Method`],
//!   [`CALL_TIMEOUT`]; [`path_segment`], [`query_value`] and [`url_on`]
//!   build the URLs it calls.
//! - [`Event`]: one entry of the lab's event log (what `up` prints and
//!   `/api/events` serves), published on the [`EventBus`].
//!
//! **Plug a component into the lab** (the faults, crate `chaoslab-faults`,
//! which depends on this one — the lab knows nothing of it):
//! - [`PlugFn`] gets the [`LabParts`] at start and gives back a [`Plugin`]
//!   (routes and a [`StopStep`]). The parts: the [`Platform`] (replicas as
//!   [`ReplicaStatus`], signalled through their pidfd or a [`SignalError`];
//!   revisions deployed with a [`DeployRequest`] → [`Revision`] or
//!   [`DeployError`]; the [`EventBus`]; the shutdown token; in kernel
//!   isolation the [`LabNetwork`] whose nftables rules [`Block`] Redis,
//!   failing with [`NetError`]), the fault proxy with [`REDIS_PROXY`] in front of Redis,
//!   and the lab's Redis handed over as a [`LabRedis`] (stop, start again,
//!   rotate the service user's password, with `--auth entra` revoke and
//!   restore the stand-in identity's access; failing with
//!   [`RedisControlError`]).
//!   A component tested on its own gets the same parts from
//!   [`Platform::standalone`] and [`LabRedis::standalone`].
//! - [`Spawner`]: starts child processes the way the lab does (parent-death
//!   [`DeathSignal`], own process group); [`signal_group`] signals one's
//!   group. Experiments run their actions through it.
//!
//! **Shared with the exports** (crate `chaoslab-targets`): the service's
//! Redis user [`SERVICE_USER`] and its rights [`SERVICE_ACL`], the probe
//! timings of a preset ([`preset_specs`], [`ProbeSpec`]).
//!
//! **Kernel isolation checks** (the kernel isolation tests): [`kernel`].

mod alerting;
mod autoscaler;
mod cgroup;
mod client;
mod config;
mod config_error;
mod config_sections;
mod control_api;
mod events;
mod files;
mod identity;
mod isolation;
mod kernel_claim;
mod kernel_name;
mod lab;
mod lab_redis;
mod logs;
mod loops;
mod netns;
mod platform;
mod plug;
mod probe;
mod redis_server;
mod resources;
mod revision;
mod revision_record;
mod spawner;
mod state;
mod supervisor;
mod timeseries;

pub use client::{
    CALL_TIMEOUT, ClientError, LabClient, Method, STREAM_SILENCE, path_segment, query_value, url_on,
};
pub use config::{FileConfig, LabConfig, Overrides, Preset, RedisAuthMode, preset_specs};
pub use control_api::LabInfo;
pub use events::{Event, EventBus};
pub use isolation::IsolationMode;
pub use lab::{LabError, RunningLab, start, start_with};
pub use lab_redis::{LabRedis, RedisControlError};
pub use netns::{Block, LabNetwork, NetError};
pub use platform::{Platform, ReplicaStatus, SignalError};
pub use plug::{LabParts, PlugFn, Plugin, REDIS_PROXY, StopStep};
pub use probe::ProbeSpec;
pub use redis_server::{SERVICE_ACL, SERVICE_USER};
pub use revision::{DeployError, DeployRequest, Revision};
pub use spawner::{DeathSignal, Spawner, signal_group};
pub use state::StateFile;

pub mod kernel {
    //! What the kernel isolation tests (`tests/isolation_kernel.rs`) check
    //! before they run and sweep after: whether this process is root, the
    //! cgroup hierarchies and their version, the `ip`/`nft` tools, a lab's
    //! kernel name ([`lab_id`] of its state dir, [`kernel_name`]), and the
    //! sweeps of what a lab of a given name left in the kernel
    //! ([`LabCgroups::sweep`], [`LabNetwork::sweep`](crate::LabNetwork::sweep));
    //! and what the lab reports per isolation mechanism ([`IsolationReport`],
    //! [`Mechanism`]: `status --json`'s `isolation`).

    pub use crate::cgroup::{CgroupVersion, Hierarchies, LabCgroups};
    pub use crate::isolation::{IsolationReport, Mechanism, not_root};
    pub use crate::kernel_name::{kernel_name, lab_id};
    pub use crate::netns::Tools;
}
