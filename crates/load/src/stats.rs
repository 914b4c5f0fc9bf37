//! The aggregator: folds raw `Sample`s into per-endpoint HDR histograms
//! and counters, keeps windows for the live line and the history, and
//! turns it all into a `Report`. Memory is bounded whatever the run length:
//! fixed-size histograms, at most `MAX_FAILURE_KINDS` distinct failures and
//! at most `MAX_HISTORY` history points (older ones are thinned out).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use crate::error::LoadError;
use crate::report::{EndpointReport, FailureReport, HistoryPoint, PERCENTILES, Percentile};
use crate::sample::Sample;
use crate::scenario::TaskMix;

/// Distinct (endpoint, error) pairs kept; further ones are lumped together.
pub const MAX_FAILURE_KINDS: usize = 100;
/// History points kept; when full, every other one is dropped and the
/// interval doubles.
pub const MAX_HISTORY: usize = 1800;

fn histogram() -> Result<Histogram<u64>, LoadError> {
    crate::hdr::empty()
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

pub(crate) fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Counters and a histogram: one endpoint, the total, or a window (or,
/// in `merge`, the sum of several generators' rows).
pub(crate) struct Acc {
    pub(crate) hist: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) failures: u64,
    pub(crate) bytes: u64,
    pub(crate) latency_sum_us: u128,
}

impl Acc {
    pub(crate) fn new() -> Result<Self, LoadError> {
        Ok(Self {
            hist: histogram()?,
            requests: 0,
            failures: 0,
            bytes: 0,
            latency_sum_us: 0,
        })
    }

    fn record(&mut self, latency_us: u64, bytes: u64, failed: bool) {
        self.hist.saturating_record(latency_us);
        self.requests += 1;
        self.failures += u64::from(failed);
        self.bytes += bytes;
        self.latency_sum_us += u128::from(latency_us);
    }

    fn reset(&mut self) {
        self.hist.reset();
        self.requests = 0;
        self.failures = 0;
        self.bytes = 0;
        self.latency_sum_us = 0;
    }

    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        (self.requests > 0).then(|| ms(self.hist.value_at_quantile(q)))
    }

    pub(crate) fn avg_ms(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.latency_sum_us as f64 / self.requests as f64 / 1000.0)
    }

    pub(crate) fn min_ms(&self) -> Option<f64> {
        (self.requests > 0).then(|| ms(self.hist.min()))
    }

    pub(crate) fn max_ms(&self) -> Option<f64> {
        (self.requests > 0).then(|| ms(self.hist.max()))
    }

    pub(crate) fn avg_size(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.bytes as f64 / self.requests as f64
        }
    }
}

struct FailureAcc {
    kind: &'static str,
    occurrences: u64,
    first: SystemTime,
    last: SystemTime,
}

/// What the live line shows for the last interval.
#[derive(Debug, Clone)]
pub struct LiveSnapshot {
    /// Since the start.
    pub elapsed: Duration,
    /// Requests per second over the interval.
    pub rps: f64,
    /// Failed share of the interval's requests, percent.
    pub failure_percent: f64,
    /// Median latency of the interval, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile of the interval, ms.
    pub p95_ms: Option<f64>,
    /// Requests finished so far.
    pub total_requests: u64,
    /// Failures so far.
    pub total_failures: u64,
}

/// The running totals of a load test.
pub struct Stats {
    labels: Vec<(String, String)>,
    endpoints: Vec<Acc>,
    codes: Vec<BTreeMap<u16, u64>>,
    total: Acc,
    live: Acc,
    window: Acc,
    window_ticks: u32,
    stride: u32,
    failures: BTreeMap<(usize, String), FailureAcc>,
    history: Vec<HistoryPoint>,
    history_interval: Duration,
    /// When the current history window began (since the start).
    window_start: Duration,
}

impl Stats {
    /// Empty stats with one row per task of `mix`; history points every
    /// `history_interval`.
    pub fn new(mix: &TaskMix, history_interval: Duration) -> Result<Self, LoadError> {
        let labels: Vec<(String, String)> = mix
            .tasks
            .iter()
            .map(|t| (t.method.to_string(), t.path.clone()))
            .collect();
        Ok(Self {
            endpoints: labels
                .iter()
                .map(|_| Acc::new())
                .collect::<Result<_, _>>()?,
            codes: labels.iter().map(|_| BTreeMap::new()).collect(),
            labels,
            total: Acc::new()?,
            live: Acc::new()?,
            window: Acc::new()?,
            window_ticks: 0,
            stride: 1,
            failures: BTreeMap::new(),
            history: Vec::new(),
            history_interval,
            window_start: Duration::ZERO,
        })
    }

    /// Folds one sample in.
    pub fn record(&mut self, sample: &Sample) {
        let latency = us(sample.latency);
        let failed = sample.failure.is_some();
        let Some(endpoint) = self.endpoints.get_mut(sample.task) else {
            return;
        };
        endpoint.record(latency, sample.bytes, failed);
        self.total.record(latency, sample.bytes, failed);
        self.live.record(latency, sample.bytes, failed);
        self.window.record(latency, sample.bytes, failed);
        if let Some(codes) = self.codes.get_mut(sample.task)
            && (codes.len() < 64 || codes.contains_key(&sample.status))
        {
            *codes.entry(sample.status).or_default() += 1;
        }
        if let Some(failure) = &sample.failure {
            let now = SystemTime::now();
            let mut key = (sample.task, failure.message());
            if !self.failures.contains_key(&key) && self.failures.len() >= MAX_FAILURE_KINDS {
                key.1 = "other errors (too many distinct kinds to list)".into();
            }
            let acc = self.failures.entry(key).or_insert(FailureAcc {
                kind: failure.kind(),
                occurrences: 0,
                first: now,
                last: now,
            });
            acc.occurrences += 1;
            acc.last = now;
        }
    }

    /// Requests finished so far.
    pub fn total_requests(&self) -> u64 {
        self.total.requests
    }

    /// The live line's figures since the previous call, then restarts the
    /// live window.
    pub fn take_live(&mut self, elapsed: Duration, interval: Duration) -> LiveSnapshot {
        let secs = interval.as_secs_f64().max(1e-3);
        let snap = LiveSnapshot {
            elapsed,
            rps: self.live.requests as f64 / secs,
            failure_percent: percent(self.live.failures, self.live.requests),
            p50_ms: self.live.quantile_ms(0.5),
            p95_ms: self.live.quantile_ms(0.95),
            total_requests: self.total.requests,
            total_failures: self.total.failures,
        };
        self.live.reset();
        snap
    }

    /// Called every history interval; adds a point every `stride` calls.
    pub fn history_tick(&mut self, elapsed: Duration, load: f64) {
        self.window_ticks += 1;
        if self.window_ticks < self.stride {
            return;
        }
        self.push_point(elapsed, load);
    }

    /// Closes the current partial history window at the end of a run,
    /// unless it is too short for meaningful rates (under half an
    /// interval); the summary counts every request either way.
    pub fn history_flush(&mut self, elapsed: Duration, load: f64) {
        let span = elapsed.saturating_sub(self.window_start);
        if self.window.requests > 0 && span >= self.history_interval / 2 {
            self.push_point(elapsed, load);
        }
    }

    fn push_point(&mut self, elapsed: Duration, load: f64) {
        let secs = elapsed
            .saturating_sub(self.window_start)
            .as_secs_f64()
            .max(1e-3);
        self.window_start = elapsed;
        let w = &self.window;
        let percentiles = if w.requests > 0 {
            PERCENTILES
                .iter()
                .map(|&q| ms(w.hist.value_at_quantile(q)))
                .collect()
        } else {
            Vec::new()
        };
        let t = &self.total;
        self.history.push(HistoryPoint {
            timestamp: chrono::Utc::now().timestamp(),
            elapsed_secs: elapsed.as_secs_f64(),
            load,
            rps: w.requests as f64 / secs,
            failures_per_sec: w.failures as f64 / secs,
            percentiles,
            total_requests: t.requests,
            total_failures: t.failures,
            total_median_ms: t.quantile_ms(0.5),
            total_avg_ms: t.avg_ms(),
            total_min_ms: t.min_ms(),
            total_max_ms: t.max_ms(),
            total_avg_size: t.avg_size(),
            histogram: (w.requests > 0).then(|| crate::hdr::encode(&w.hist)),
        });
        self.window.reset();
        self.window_ticks = 0;
        if self.history.len() >= MAX_HISTORY {
            let mut i = 0;
            self.history.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            self.stride = self.stride.saturating_mul(2);
        }
    }

    /// Seconds between the history points kept.
    pub fn history_interval_secs(&self) -> f64 {
        self.history_interval.as_secs_f64() * f64::from(self.stride)
    }

    /// The per-endpoint rows and the aggregated row over `duration`.
    pub fn endpoint_reports(&self, duration: Duration) -> (Vec<EndpointReport>, EndpointReport) {
        let secs = duration.as_secs_f64().max(1e-3);
        let rows = self
            .labels
            .iter()
            .zip(&self.endpoints)
            .zip(&self.codes)
            .map(|(((method, name), acc), codes)| row(method, name, acc, Some(codes), secs))
            .collect();
        let mut all = BTreeMap::new();
        for codes in &self.codes {
            for (code, n) in codes {
                *all.entry(*code).or_default() += n;
            }
        }
        (rows, row("", "Aggregated", &self.total, Some(&all), secs))
    }

    /// Distinct failures, most frequent first.
    pub fn failure_reports(&self) -> Vec<FailureReport> {
        let stamp = |t: SystemTime| chaoslab_foundation::time::rfc3339_secs(t.into());
        let mut out: Vec<FailureReport> = self
            .failures
            .iter()
            .map(|((task, error), acc)| {
                let (method, name) = self.labels.get(*task).cloned().unwrap_or_default();
                FailureReport {
                    method,
                    name,
                    kind: acc.kind.to_owned(),
                    error: error.clone(),
                    occurrences: acc.occurrences,
                    first_seen: stamp(acc.first),
                    last_seen: stamp(acc.last),
                }
            })
            .collect();
        out.sort_by_key(|f| std::cmp::Reverse(f.occurrences));
        out
    }

    /// The history points so far.
    pub fn history(&self) -> &[HistoryPoint] {
        &self.history
    }
}

pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

pub(crate) fn row(
    method: &str,
    name: &str,
    acc: &Acc,
    codes: Option<&BTreeMap<u16, u64>>,
    secs: f64,
) -> EndpointReport {
    let percentiles = if acc.requests > 0 {
        PERCENTILES
            .iter()
            .map(|&q| Percentile {
                quantile: q,
                ms: ms(acc.hist.value_at_quantile(q)),
            })
            .collect()
    } else {
        Vec::new()
    };
    EndpointReport {
        method: method.to_owned(),
        name: name.to_owned(),
        requests: acc.requests,
        failures: acc.failures,
        failure_percent: percent(acc.failures, acc.requests),
        median_ms: acc.quantile_ms(0.5),
        avg_ms: acc.avg_ms(),
        min_ms: acc.min_ms(),
        max_ms: acc.max_ms(),
        avg_size: acc.avg_size(),
        rps: acc.requests as f64 / secs,
        failures_per_sec: acc.failures as f64 / secs,
        percentiles,
        status_codes: codes
            .map(|c| c.iter().map(|(k, v)| (k.to_string(), *v)).collect())
            .unwrap_or_default(),
        bytes: acc.bytes,
        latency_sum_us: u64::try_from(acc.latency_sum_us).unwrap_or(u64::MAX),
        histogram: Some(crate::hdr::encode(&acc.hist)),
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
