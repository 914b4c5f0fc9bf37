//! The service's OpenTelemetry instruments (SPEC §5), created once from the
//! global meter after telemetry is initialised. Exported by OTLP / Azure
//! Monitor and rendered as Prometheus text at `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, ObservableGauge};

/// Values the gauges report, refreshed every second by the sampler task and
/// read by the exporters' callbacks.
#[derive(Debug, Default)]
pub struct GaugeValues {
    /// `f64` bits of the resident memory in MB.
    memory_mb: AtomicU64,
    /// `f64` bits of CPU use in percent of one CPU.
    cpu_percent: AtomicU64,
    /// 1 while a chaos load runs.
    load_active: AtomicU64,
    /// 0 none, 1 low, 2 medium, 3 high.
    load_level: AtomicU64,
}

impl GaugeValues {
    pub fn set_process(&self, memory_mb: f64, cpu_percent: f64) {
        self.memory_mb.store(memory_mb.to_bits(), Ordering::Relaxed);
        self.cpu_percent
            .store(cpu_percent.to_bits(), Ordering::Relaxed);
    }
    pub fn set_load(&self, active: bool, level: u64) {
        self.load_active.store(u64::from(active), Ordering::Relaxed);
        self.load_level.store(level, Ordering::Relaxed);
    }
    fn memory_mb(&self) -> f64 {
        f64::from_bits(self.memory_mb.load(Ordering::Relaxed))
    }
    fn cpu_percent(&self) -> f64 {
        f64::from_bits(self.cpu_percent.load(Ordering::Relaxed))
    }
}

/// Every instrument the service records into.
#[derive(Clone)]
pub struct ServiceMetrics {
    pub redis_connection_success: Counter<u64>,
    pub redis_connection_failure: Counter<u64>,
    pub redis_operation_latency: Histogram<f64>,
    pub http_server_duration: Histogram<f64>,
    pub gauges: Arc<GaugeValues>,
    /// Kept alive so their callbacks keep being called.
    _observables: Arc<Vec<ObservableGauge<f64>>>,
}

impl ServiceMetrics {
    /// Creates the instruments on the global meter provider.
    pub fn new() -> Self {
        let meter = opentelemetry::global::meter("chaoslab");
        let gauges = Arc::new(GaugeValues::default());
        let gauge = |name: &'static str,
                     unit: &'static str,
                     description: &'static str,
                     read: fn(&GaugeValues) -> f64| {
            let values = gauges.clone();
            meter
                .f64_observable_gauge(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(move |observer| observer.observe(read(&values), &[]))
                .build()
        };
        let observables = vec![
            gauge(
                "app.memory.usage",
                "MB",
                "Resident memory of the service process",
                GaugeValues::memory_mb,
            ),
            gauge(
                "app.cpu.usage",
                "%",
                "CPU used by the service process, percent of one CPU",
                GaugeValues::cpu_percent,
            ),
            gauge("chaos.load.active", "", "1 while a chaos load runs", |g| {
                g.load_active.load(Ordering::Relaxed) as f64
            }),
            gauge(
                "chaos.load.level",
                "1",
                "Chaos load level: 0 none, 1 low, 2 medium, 3 high",
                |g| g.load_level.load(Ordering::Relaxed) as f64,
            ),
        ];
        ServiceMetrics {
            redis_connection_success: meter
                .u64_counter("redis.connection.success")
                .with_description("Connections to Redis established")
                .build(),
            redis_connection_failure: meter
                .u64_counter("redis.connection.failure")
                .with_description("Connection attempts to Redis that failed")
                .build(),
            redis_operation_latency: meter
                .f64_histogram("redis.operation.latency")
                .with_unit("ms")
                .with_description("Latency of Redis operations, retries included")
                .with_boundaries(vec![
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
                    3000.0, 10000.0,
                ])
                .build(),
            http_server_duration: meter
                .f64_histogram("http.server.request.duration")
                .with_unit("s")
                .with_description("Duration of HTTP server requests")
                .with_boundaries(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0,
                ])
                .build(),
            gauges,
            _observables: Arc::new(observables),
        }
    }

    pub fn record_redis_op(&self, operation: &'static str, outcome: &'static str, millis: f64) {
        self.redis_operation_latency.record(
            millis,
            &[
                KeyValue::new("redis.operation", operation),
                KeyValue::new("outcome", outcome),
            ],
        );
    }
}

impl Default for ServiceMetrics {
    fn default() -> Self {
        Self::new()
    }
}
