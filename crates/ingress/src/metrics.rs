//! Per-request counters of the ingress: requests by status class, proxy-made
//! errors, in-flight requests and a fixed-bucket latency histogram. Lock-free
//! (atomics only) so the hot path never waits; the lab samples a
//! [`MetricsSnapshot`] every second and turns deltas into rates and
//! percentiles for its time series.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Upper bounds of the latency buckets, in microseconds; the last bucket
/// (index `LATENCY_BUCKETS_US.len()`) holds everything slower.
pub const LATENCY_BUCKETS_US: &[u64] = &[
    100,
    200,
    300,
    500,
    750,
    1_000,
    1_500,
    2_000,
    3_000,
    5_000,
    7_500,
    10_000,
    15_000,
    20_000,
    30_000,
    50_000,
    75_000,
    100_000,
    150_000,
    200_000,
    300_000,
    500_000,
    750_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
    240_000_000,
];

/// Live counters, shared between the proxy and whoever samples them.
#[derive(Debug)]
pub struct IngressMetrics {
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    by_class: [AtomicU64; 5],
    /// Responses the ingress made itself (503/502/504).
    proxy_errors: AtomicU64,
    /// Requests currently being proxied.
    in_flight: AtomicU64,
    /// Latency histogram, one counter per bucket plus the overflow bucket.
    latency: Vec<AtomicU64>,
    /// Sum of all latencies, µs: with the count, the mean (for the
    /// "average response time" alert).
    latency_sum_us: AtomicU64,
}

impl Default for IngressMetrics {
    fn default() -> Self {
        Self {
            by_class: Default::default(),
            proxy_errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            latency: (0..=LATENCY_BUCKETS_US.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            latency_sum_us: AtomicU64::new(0),
        }
    }
}

/// A copy of the counters at one instant (all monotonic except `in_flight`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    /// All responses sent.
    pub requests_total: u64,
    /// Responses by status class: `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub by_class: [u64; 5],
    /// Responses made by the ingress itself.
    pub proxy_errors: u64,
    /// Requests in flight when the snapshot was taken.
    pub in_flight: u64,
    /// Latency histogram counts, aligned with [`LATENCY_BUCKETS_US`] + overflow.
    pub latency_buckets: Vec<u64>,
    /// Sum of every request's latency, µs.
    pub latency_sum_us: u64,
}

/// One request in flight; see [`IngressMetrics::request_started`].
pub(crate) struct InFlight<'a> {
    metrics: &'a IngressMetrics,
}

impl InFlight<'_> {
    /// Records the request's answer; the gauge comes back on drop.
    pub(crate) fn finish(self, status: u16, elapsed: Duration, proxy_made: bool) {
        self.metrics.request_finished(status, elapsed, proxy_made);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl IngressMetrics {
    /// Counts a request in flight until the returned guard is dropped:
    /// whether it finishes ([`InFlight::finish`]) or its client leaves
    /// first and the request's future is dropped, the gauge comes back.
    pub(crate) fn request_started(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { metrics: self }
    }

    /// Records a finished request (response headers sent).
    fn request_finished(&self, status: u16, elapsed: Duration, proxy_made: bool) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        if proxy_made {
            self.proxy_errors.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        if let Some(counter) = self.latency.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let by_class: [u64; 5] = std::array::from_fn(|i| self.by_class[i].load(Ordering::Relaxed));
        MetricsSnapshot {
            requests_total: by_class.iter().sum(),
            by_class,
            proxy_errors: self.proxy_errors.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency_buckets: self
                .latency
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            latency_sum_us: self.latency_sum_us.load(Ordering::Relaxed),
        }
    }
}

/// The `q` quantile (0..=1) in milliseconds of the requests counted between
/// two snapshots' histograms (`current - previous`), as the upper bound of
/// the bucket it falls in. `None` when no request finished in between.
pub fn latency_quantile_ms(previous: &[u64], current: &[u64], q: f64) -> Option<f64> {
    let deltas: Vec<u64> = current
        .iter()
        .enumerate()
        .map(|(i, c)| c.saturating_sub(previous.get(i).copied().unwrap_or(0)))
        .collect();
    let total: u64 = deltas.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, d) in deltas.iter().enumerate() {
        seen += d;
        if seen >= rank {
            let bound = LATENCY_BUCKETS_US
                .get(i)
                .copied()
                .unwrap_or(*LATENCY_BUCKETS_US.last().unwrap_or(&0));
            return Some(bound as f64 / 1000.0);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class_and_latency() {
        let m = IngressMetrics::default();
        for (status, ms) in [(200, 1), (200, 1), (503, 40), (404, 2)] {
            m.request_started()
                .finish(status, Duration::from_millis(ms), status == 503);
        }
        let s = m.snapshot();
        assert_eq!(s.requests_total, 4);
        assert_eq!(s.by_class, [0, 2, 0, 1, 1]);
        assert_eq!(s.proxy_errors, 1);
        assert_eq!(s.in_flight, 0);
        let empty = vec![0; s.latency_buckets.len()];
        assert_eq!(
            latency_quantile_ms(&empty, &s.latency_buckets, 0.5),
            Some(1.0)
        );
        assert_eq!(
            latency_quantile_ms(&empty, &s.latency_buckets, 0.99),
            Some(50.0)
        );
        assert_eq!(
            latency_quantile_ms(&s.latency_buckets, &s.latency_buckets, 0.5),
            None
        );
    }
}
