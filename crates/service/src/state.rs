//! Everything a request handler can reach, shared behind one `Arc`.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use crate::chaos::{HangController, LoadController};
use crate::config::Config;
use crate::health_report::HealthReport;
use crate::metrics::ServiceMetrics;
use crate::redis::{RedisStore, StoreError};

/// Renders every metric as Prometheus text (provided by the telemetry setup).
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// The service's shared state.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub config: Config,
    /// `None` when Redis is disabled.
    pub store: Option<Arc<RedisStore>>,
    pub load: LoadController,
    pub hang: HangController,
    pub metrics: ServiceMetrics,
    pub render_metrics: MetricsRenderer,
    /// The last /health verdict and when it was made.
    pub health_cache: Mutex<Option<(Instant, HealthReport)>>,
    /// Requests served while Redis is disabled (nothing to INCR).
    pub local_counter: AtomicU64,
}

impl AppState {
    /// Builds the state; creates the Redis client (without connecting).
    pub fn new(
        config: Config,
        metrics: ServiceMetrics,
        render_metrics: MetricsRenderer,
    ) -> Result<Self, StoreError> {
        crate::error::set_debug_errors(config.debug_errors);
        let store = match &config.redis {
            Some(redis) => Some(Arc::new(RedisStore::new(redis.clone(), metrics.clone())?)),
            None => None,
        };
        Ok(AppState(Arc::new(Inner {
            config,
            store,
            load: LoadController::new(),
            hang: HangController::new(),
            metrics,
            render_metrics,
            health_cache: Mutex::new(None),
            local_counter: AtomicU64::new(0),
        })))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn store(&self) -> Option<&Arc<RedisStore>> {
        self.0.store.as_ref()
    }

    pub fn load(&self) -> &LoadController {
        &self.0.load
    }

    pub fn hang(&self) -> &HangController {
        &self.0.hang
    }

    pub fn metrics(&self) -> &ServiceMetrics {
        &self.0.metrics
    }
}
