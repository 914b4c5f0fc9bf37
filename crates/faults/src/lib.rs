//! chaoslab's faults (SPEC §7): what `chaoslab fault …` and the console's
//! fault buttons do to a running lab. Each kind is a small type behind one
//! trait ([`fault_kind::Fault`]) dispatched by a closed serde enum
//! ([`fault::FaultSpec`]): `network` (a toxic on the fault proxy between
//! the replicas and Redis), `deploy` (a failing revision), `kill` (a
//! replica's process), `redis` (the server process), `auth` (the service's
//! credential). The [`registry`] gives every fault an id, a duration after
//! which it ends by itself, and events; [`api`] serves `/api/faults` and
//! `/api/chaos` for the lab's control API. Faults live in the lab, so they
//! outlast the CLI command that made them; [`Faults::shutdown`] clears them
//! all when the lab stops.

#![forbid(unsafe_code)]

pub mod api;
pub mod chaos;
pub mod error;
pub mod fault;
pub mod fault_kind;
pub mod kinds;
pub mod registry;

use std::sync::Arc;
use std::time::Duration;

use chaoslab_faultproxy::FaultProxy;
use chaoslab_lab::{LabRedis, Platform};

pub use error::FaultError;
pub use registry::Registry;

/// The fault proxy's proxy in front of the lab's Redis (named by the lab,
/// which creates it).
pub use chaoslab_lab::REDIS_PROXY;

/// What the faults act on.
#[derive(Debug)]
pub struct LabHandle {
    /// Replicas, revisions, the event bus, the shutdown token.
    pub platform: Arc<Platform>,
    /// The fault proxy, with a proxy named [`REDIS_PROXY`] in front of Redis
    /// (none with an external Redis).
    pub proxy: Option<FaultProxy>,
    /// The lab's own redis-server (none with an external Redis).
    pub redis: Option<LabRedis>,
    /// `http://127.0.0.1:PORT` of the ingress.
    pub ingress_url: String,
    /// For the service's chaos API.
    pub http: reqwest::Client,
    /// Bounds the hung chaos requests held open.
    pub(crate) held: Arc<tokio::sync::Semaphore>,
}

/// The faults component of a running lab.
#[derive(Debug, Clone)]
pub struct Faults {
    registry: Arc<Registry>,
}

impl Faults {
    /// Starts the component (its proxy-event follower runs until the lab's
    /// shutdown token is cancelled).
    pub fn start(
        platform: Arc<Platform>,
        proxy: Option<FaultProxy>,
        redis: Option<LabRedis>,
        ingress_url: String,
    ) -> Result<Self, FaultError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| FaultError::Failed(format!("HTTP client: {e}")))?;
        let lab = Arc::new(LabHandle {
            platform,
            proxy,
            redis,
            ingress_url,
            http,
            held: Arc::new(tokio::sync::Semaphore::new(chaos::MAX_HELD)),
        });
        let registry = Registry::new(lab);
        tokio::spawn(registry.clone().follow_proxy());
        Ok(Self { registry })
    }

    /// The `/api/faults` and `/api/chaos` routes (to merge behind the
    /// control API's token).
    pub fn router(&self) -> axum::Router {
        api::router(self.registry.clone())
    }

    /// The registry (for tests and the lab's own use).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The lab is stopping (call after the replicas stopped): every fault is
    /// cleared (announced, nothing restarted), then the fault proxy and the
    /// lab's Redis are stopped.
    pub async fn shutdown(&self) {
        self.registry.clear_all(false).await;
        self.registry.close().await;
        let lab = self.registry.lab();
        if let Some(proxy) = &lab.proxy {
            proxy.shutdown().await;
        }
        if let Some(redis) = &lab.redis {
            redis.shutdown().await;
        }
    }
}

/// Plugs the faults into a lab being started (`chaoslab_lab::start_with`):
/// takes over the lab's Redis and fault proxy, gives back the control API
/// routes and the stop step (every fault cleared, then the proxy and Redis
/// stopped).
pub fn plug(parts: chaoslab_lab::LabParts) -> Result<chaoslab_lab::Plugin, String> {
    let faults = Faults::start(parts.platform, parts.proxy, parts.redis, parts.ingress_url)
        .map_err(|e| e.to_string())?;
    let stopper = faults.clone();
    Ok(chaoslab_lab::Plugin {
        routes: faults.router(),
        stop: Box::new(move || Box::pin(async move { stopper.shutdown().await })),
    })
}
