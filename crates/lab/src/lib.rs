//! The local lab platform behind `chaoslab up`: what the seed needed an
//! Azure subscription for, on one machine. A real Redis child
//! ([`redis_server`]), replicas of the service supervised like containers
//! ([`supervisor`], [`probe`], [`resources`]), revisions with a readiness
//! gate ([`revision`]), an HPA-style autoscaler ([`autoscaler`]), the
//! ingress (crate `chaoslab-ingress`), a control API ([`control_api`]) with
//! an event bus ([`events`]) and a metrics time series ([`timeseries`]).
//! [`lab::start`] wires them in order; the CLI uses [`client::LabClient`].

mod alerting;
pub mod autoscaler;
pub mod cgroup;
pub mod client;
pub mod config;
mod config_error;
mod config_sections;
pub mod control_api;
pub mod events;
mod files;
pub mod identity;
pub mod isolation;
mod kernel_claim;
mod kernel_name;
pub mod lab;
pub mod logs;
mod loops;
pub mod netns;
pub mod platform;
pub mod probe;
pub mod redis_server;
mod resources;
pub mod revision;
mod revision_record;
pub mod spawner;
pub mod state;
mod supervisor;
pub mod timeseries;

pub use config::{LabConfig, Overrides, Preset};
pub use lab::{LabError, LabParts, PlugFn, Plugin, RunningLab, start, start_with};
