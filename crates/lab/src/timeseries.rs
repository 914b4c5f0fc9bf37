//! The lab's metrics time series: one [`Point`] per second (ingress rates and
//! latency percentiles, replicas, readiness, CPU and memory per replica),
//! kept in a fixed ring of 15 minutes. The console's charts and
//! `GET /api/metrics` read it; nothing grows past the ring.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use tokio::sync::broadcast;

use crate::events::lock;

/// 15 minutes at 1 s resolution.
pub const CAPACITY: usize = 15 * 60;

/// One replica at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaPoint {
    pub id: String,
    pub revision: String,
    pub ready: bool,
    /// CPU used, % of one core.
    pub cpu_percent: f64,
    /// CPU used, % of the CPU request (what the autoscaler looks at).
    pub cpu_utilization: f64,
    pub rss_mb: f64,
    /// The service's internal chaos load: 0 none, 1 low, 2 medium, 3 high
    /// (from its `/chaos/status`; 0 when it does not answer).
    #[serde(default)]
    pub load_level: u8,
}

/// Everything sampled in one second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Milliseconds since the Unix epoch.
    pub unix_ms: i64,
    /// Requests answered by the ingress in this second.
    pub requests: u64,
    /// Of which 5xx (service or proxy made).
    pub errors_5xx: u64,
    /// Of which made by the ingress itself (503/502/504).
    pub proxy_errors: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Sum of the response times of `requests`, ms (their mean, with the
    /// count: what the "average response time" alert looks at).
    #[serde(default)]
    pub latency_sum_ms: f64,
    pub in_flight: u64,
    /// Replicas of the active revision (running or starting).
    pub replicas: u32,
    /// Of which ready (in the ingress).
    pub ready: u32,
    /// Of which waiting to restart (BackOff, CrashLoopBackOff,
    /// ImagePullBackOff) or starting again after a restart.
    #[serde(default)]
    pub restarting: u32,
    /// What the autoscaler wants.
    pub desired: u32,
    pub per_replica: Vec<ReplicaPoint>,
    /// Whether the lab's Redis answered PING (none with an external Redis).
    #[serde(default)]
    pub redis_connected: Option<bool>,
    /// Its PING round trip.
    #[serde(default)]
    pub redis_ping_ms: Option<f64>,
}

/// A fixed-size ring of points, plus a live feed of new ones.
#[derive(Debug)]
pub struct TimeSeries {
    points: Mutex<VecDeque<Point>>,
    capacity: usize,
    live: broadcast::Sender<Point>,
}

impl Default for TimeSeries {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl TimeSeries {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            points: Mutex::new(VecDeque::with_capacity(capacity.min(CAPACITY))),
            capacity: capacity.max(1),
            live: broadcast::channel(64).0,
        }
    }

    /// Appends a point, dropping the oldest when full.
    pub fn push(&self, point: Point) {
        let mut points = lock(&self.points);
        if points.len() == self.capacity {
            points.pop_front();
        }
        points.push_back(point.clone());
        let _ = self.live.send(point);
    }

    /// New points from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Point> {
        self.live.subscribe()
    }

    /// Points newer than `since_unix_ms`, oldest first.
    pub fn since(&self, since_unix_ms: i64) -> Vec<Point> {
        lock(&self.points)
            .iter()
            .filter(|p| p.unix_ms > since_unix_ms)
            .cloned()
            .collect()
    }

    /// The newest point.
    pub fn last(&self) -> Option<Point> {
        lock(&self.points).back().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest() {
        let ts = TimeSeries::with_capacity(3);
        for i in 0..5 {
            ts.push(Point {
                unix_ms: i,
                ..Default::default()
            });
        }
        let all = ts.since(i64::MIN);
        assert_eq!(all.iter().map(|p| p.unix_ms).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(ts.since(3).len(), 1);
        assert_eq!(ts.last().unwrap().unix_ms, 4);
    }
}
