//! The lab's TCP fault proxy: every replica reaches Redis through it, and
//! chaoslab's network faults are *toxics* on it, modelled on Shopify's
//! Toxiproxy.
//!
//! - A [`FaultProxy`] holds named proxies. Each accepts on a loopback
//!   listener the caller binds ([`FaultProxy::add_proxy`]) — or that the API
//!   binds ([`FaultProxy::create_proxy`]) — and forwards every connection to
//!   its upstream, one *link* per direction (upstream = client → server,
//!   downstream = server → client).
//! - A toxic ([`ToxicKind`], wrapped in a [`ToxicSpec`] with name, stream,
//!   toxicity and duration) acts on live and new connections the moment it
//!   is added, and stops the moment it is removed or expires; toxics stack
//!   in the order added. Kinds: chaoslab's `deny_new` (stateful NSG deny),
//!   `blackhole`, `reset`, and Toxiproxy's `latency`, `bandwidth`,
//!   `timeout`, `reset_peer`, `slow_close`, `limit_data`, `slicer`.
//! - A proxy can be disabled (listener and connections closed) and enabled
//!   again; [`ProxyInfo::disabled_since`] says since when, so the lab lists
//!   a disabled proxy as a fault.
//! - Every change is a [`FaultEvent`] on [`FaultProxy::subscribe`].
//! - [`api::serve`] answers a Toxiproxy-compatible HTTP API on its own
//!   listener.
//!
//! ```no_run
//! # async fn lab() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use chaoslab_faultproxy::{FaultProxy, ToxicKind, ToxicSpec, toxic::DenyNew};
//!
//! let faults = FaultProxy::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let redis_via_proxy = listener.local_addr()?; // give this to the replicas
//! faults.add_proxy("redis", listener, "127.0.0.1:6379").await?;
//! let mut events = faults.subscribe();
//!
//! let api = tokio::net::TcpListener::bind("127.0.0.1:8474").await?;
//! tokio::spawn(chaoslab_faultproxy::api::serve(api, faults.clone(), std::future::pending()));
//!
//! let fault = faults.add_toxic(
//!     "redis",
//!     ToxicSpec::new(ToxicKind::DenyNew(DenyNew {}))
//!         .named("f-1")
//!         .lasting(Duration::from_secs(60)),
//! )?;
//! faults.remove_toxic("redis", &fault.name)?; // or let it expire
//! faults.shutdown().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod address;
pub mod api;
mod chain;
mod conn;
mod connections;
mod error;
mod event;
mod fault_proxy;
mod info;
mod json;
mod link;
mod passthrough;
mod proxy;
mod socket;
mod splitmix;
pub mod toxic;
mod toxic_names;

pub use address::{MAX_ADDRESS, MAX_NAME, MAX_UNIX_PATH, UNIX_UPSTREAM_PREFIX, is_local_upstream};
pub use error::{Error, Result};
pub use event::{Change, EVENT_CAPACITY, FaultEvent};
pub use fault_proxy::{FaultProxy, ProxyConfig, ProxyUpdate};
pub use info::{Origin, ProxyInfo, ToxicInfo};
pub use toxic::{Stream, ToxicKind, ToxicSpec};
