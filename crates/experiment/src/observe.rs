//! What a run sees, recorded on one clock (seconds since the run started):
//! every background-load request (bounded), the lab's gauges sampled twice
//! a second (replicas, ready replicas, restarts, CPU, memory), every lab
//! event as it streams in, and the step marks. Probes read it
//! ([`Observer::observe`]); measurements and reports are computed from it
//! at the end.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chaoslab_lab::LabClient;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::lab_target::ready_replicas;
use crate::probe::{EventProbe, HttpProbe, Metric, MetricProbe, Probe};

/// Load samples kept for per-span figures (16 bytes each).
pub const MAX_SAMPLES: usize = 1_000_000;
/// Gauge points kept (two a second: over 2 hours).
pub const MAX_GAUGES: usize = 16_000;
/// Events kept.
pub const MAX_EVENTS: usize = 10_000;
/// Replica log lines kept (only when a probe looks at logs).
pub const MAX_LOG_LINES: usize = 20_000;
/// How often the lab's gauges are sampled.
pub const GAUGE_PERIOD: Duration = Duration::from_millis(500);
/// Load figures without a window look at this much of the recent past.
pub const DEFAULT_LOAD_WINDOW: Duration = Duration::from_secs(2);

/// One background-load request.
#[derive(Debug, Clone, Copy)]
pub struct LoadPoint {
    /// Intended start, seconds since the run started.
    pub t: f32,
    pub latency_ms: f32,
    /// HTTP status, 0 when no answer came.
    pub status: u16,
    /// Not a failure by the load's rules.
    pub ok: bool,
    /// A `GET /` (it increments the Redis counter).
    pub root: bool,
}

impl LoadPoint {
    /// When the answer (or the failure) came.
    pub fn done(&self) -> f64 {
        f64::from(self.t) + f64::from(self.latency_ms) / 1000.0
    }
}

/// The lab's gauges at one moment.
#[derive(Debug, Clone, Copy)]
pub struct GaugePoint {
    pub t: f64,
    pub replicas: u32,
    pub ready: u32,
    pub restarts: u32,
    /// Highest CPU utilisation of a replica, % of its request.
    pub cpu_max: f64,
    /// Highest RSS of a replica, MiB.
    pub mem_max: f64,
}

/// A lab event as the run saw it.
#[derive(Debug, Clone)]
pub struct SeenEvent {
    pub t: f64,
    pub reason: String,
    pub subject: String,
    pub message: String,
    pub data: Value,
}

/// A replica's log line as the run saw it.
#[derive(Debug, Clone)]
pub struct SeenLog {
    pub t: f64,
    pub replica: String,
    pub line: String,
}

/// A step that started.
#[derive(Debug, Clone)]
pub struct StepMark {
    pub id: String,
    pub action: String,
    pub t: f64,
    /// None while it runs.
    pub ok: Option<bool>,
}

/// Everything recorded. Samples, gauges, events and log lines are kept up
/// to their caps, the newest: a long run judges its late windows on what
/// happened then. The load's totals count every request, kept or not.
#[derive(Debug, Default)]
pub struct Timeline {
    pub samples: VecDeque<LoadPoint>,
    /// Samples let go (the oldest) to stay within [`MAX_SAMPLES`].
    pub samples_dropped: u64,
    /// Every background-load request: sent, answered (any status), and the
    /// `GET /`s sent and answered 200.
    pub sent: u64,
    pub answered: u64,
    pub root_sent: u64,
    pub root_ok: u64,
    pub gauges: VecDeque<GaugePoint>,
    /// The run's first gauge point, kept whatever the cap drops.
    pub first_gauge: Option<GaugePoint>,
    pub events: VecDeque<SeenEvent>,
    pub logs: VecDeque<SeenLog>,
    pub marks: Vec<StepMark>,
    /// Start of the method (None before).
    pub method_start: Option<f64>,
    /// End of the method (None while it runs).
    pub method_end: Option<f64>,
    /// `GET /` requests the probes sent, and their 200s.
    pub probe_root_sent: u64,
    pub probe_root_ok: u64,
}

impl Timeline {
    /// Counts a background-load request and keeps it (the oldest kept one
    /// goes at the cap).
    pub fn record_sample(&mut self, point: LoadPoint) {
        self.sent += 1;
        self.answered += u64::from(point.status != 0);
        self.root_sent += u64::from(point.root);
        self.root_ok += u64::from(point.root && point.status == 200);
        if keep_newest(&mut self.samples, point, MAX_SAMPLES) {
            self.samples_dropped += 1;
        }
    }

    /// Keeps a gauge point (the oldest kept one goes at the cap).
    pub fn record_gauge(&mut self, point: GaugePoint) {
        self.first_gauge.get_or_insert(point);
        keep_newest(&mut self.gauges, point, MAX_GAUGES);
    }

    /// When the step `id` started.
    pub fn mark(&self, id: &str) -> Option<f64> {
        self.marks.iter().find(|m| m.id == id).map(|m| m.t)
    }
}

/// Pushes `item`, dropping the oldest beyond `max`; whether one was.
fn keep_newest<T>(list: &mut VecDeque<T>, item: T, max: usize) -> bool {
    list.push_back(item);
    if list.len() > max {
        list.pop_front();
        return true;
    }
    false
}

/// The result of looking once.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub holds: bool,
    /// What was seen, in words (`503 Redis connection failed, 3 ms`).
    pub measured: String,
    /// The number compared, for metric probes.
    pub value: Option<f64>,
}

impl Observation {
    fn new(holds: bool, measured: impl Into<String>) -> Self {
        Self {
            holds,
            measured: measured.into(),
            value: None,
        }
    }
}

/// Records and probes one run.
#[derive(Clone)]
pub struct Observer {
    pub timeline: Arc<Mutex<Timeline>>,
    pub started: Instant,
    client: LabClient,
    ingress_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("ingress_url", &self.ingress_url)
            .finish_non_exhaustive()
    }
}

impl Observer {
    pub fn new(client: LabClient, ingress_url: String, started: Instant) -> Self {
        // No connection reuse: a probe must see what a new client sees
        // (a hung replica, a refused connection), not a pooled socket.
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default();
        Self {
            timeline: Arc::new(Mutex::new(Timeline::default())),
            started,
            client,
            ingress_url,
            http,
        }
    }

    /// Seconds since the run started.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn lock(&self) -> MutexGuard<'_, Timeline> {
        self.timeline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a background-load sample.
    pub fn record_sample(&self, sample: &chaoslab_load::Sample, root: bool) {
        let t = sample
            .intended
            .checked_duration_since(self.started)
            .unwrap_or_default()
            .as_secs_f32();
        let point = LoadPoint {
            t,
            latency_ms: sample.latency.as_secs_f32() * 1000.0,
            status: sample.status,
            ok: sample.failure.is_none(),
            root,
        };
        self.lock().record_sample(point);
    }

    /// Samples the lab's gauges every [`GAUGE_PERIOD`] until `stop`.
    pub async fn sample_gauges(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(GAUGE_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Ok(status) = self.client.get::<Value>("/api/status").await else {
                continue;
            };
            let point = gauge_point(&status, self.now());
            self.lock().record_gauge(point);
        }
    }

    /// Follows the lab's event stream until `stop`.
    pub async fn follow_events(&self, stop: CancellationToken) {
        let observer = self.clone();
        let stream = self
            .client
            .lines("/api/events?follow=true&limit=0", move |line| {
                if let Ok(e) = serde_json::from_str::<Value>(line)
                    && let Some(reason) = e["reason"].as_str()
                {
                    let seen = SeenEvent {
                        t: observer.now(),
                        reason: reason.to_string(),
                        subject: e["subject"].as_str().unwrap_or_default().to_string(),
                        message: e["message"].as_str().unwrap_or_default().to_string(),
                        data: e["data"].clone(),
                    };
                    keep_newest(&mut observer.lock().events, seen, MAX_EVENTS);
                }
                std::ops::ControlFlow::Continue(())
            });
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = stream => {}
        }
    }

    /// Follows the replicas' logs until `stop` (for `log` probes).
    pub async fn follow_logs(&self, stop: CancellationToken) {
        let observer = self.clone();
        let stream = self
            .client
            .lines("/api/logs?follow=true&tail=0", move |line| {
                if let Ok(l) = serde_json::from_str::<Value>(line)
                    && let Some(text) = l["line"].as_str()
                {
                    let seen = SeenLog {
                        t: observer.now(),
                        replica: l["replica"].as_str().unwrap_or_default().to_string(),
                        line: text.chars().take(2000).collect(),
                    };
                    keep_newest(&mut observer.lock().logs, seen, MAX_LOG_LINES);
                }
                std::ops::ControlFlow::Continue(())
            });
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = stream => {}
        }
    }

    /// Looks once: does `probe` hold now? Event probes look at events seen
    /// since `since` (seconds since the run started).
    pub async fn observe(&self, probe: &Probe, since: f64) -> Observation {
        match probe {
            Probe::Http(h) => self.http_probe(h).await,
            Probe::Event(e) => self.event_probe(e, since),
            Probe::Metric(m) => {
                let window = m.window.unwrap_or(if m.metric.from_load() {
                    DEFAULT_LOAD_WINDOW
                } else {
                    Duration::ZERO
                });
                let now = self.now();
                self.metric_between(m, now - window.as_secs_f64(), now)
            }
            Probe::Log(l) => {
                let tl = self.lock();
                let found = tl.logs.iter().find(|seen| {
                    seen.t >= since
                        && seen.line.contains(&l.text)
                        && l.replica.as_ref().is_none_or(|r| seen.replica.contains(r))
                });
                match found {
                    Some(seen) => Observation::new(
                        true,
                        format!("logged by {} at +{:.1}s", seen.replica, seen.t - since),
                    ),
                    None => Observation::new(false, "no such log line yet"),
                }
            }
            Probe::Counter => Observation::new(true, "judged at the end of the run"),
        }
    }

    async fn http_probe(&self, h: &HttpProbe) -> Observation {
        let root = crate::probe::visits_the_counter(&h.method, &h.path);
        let method =
            reqwest::Method::from_bytes(h.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let url = match chaoslab_lab::url_on(&self.ingress_url, &h.path) {
            Ok(url) => url,
            Err(e) => return Observation::new(false, e),
        };
        let mut request = self.http.request(method, url).timeout(h.timeout);
        if let Some(body) = &h.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let started = Instant::now();
        if root {
            self.lock().probe_root_sent += 1;
        }
        let response = request.send().await;
        let (status, body) = match response {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }
            Err(e) => {
                let what = if e.is_timeout() {
                    format!(
                        "no answer within {}",
                        chaoslab_load::format_duration(h.timeout)
                    )
                } else {
                    "connection failed".to_string()
                };
                return Observation::new(false, what);
            }
        };
        let latency = started.elapsed();
        if root && status == 200 {
            self.lock().probe_root_ok += 1;
        }
        judge_http(h, status, &body, latency)
    }

    fn event_probe(&self, e: &EventProbe, since: f64) -> Observation {
        let tl = self.lock();
        let found = tl.events.iter().find(|seen| {
            seen.t >= since
                && seen.reason == e.reason
                && e.subject.as_ref().is_none_or(|s| seen.subject.contains(s))
                && e.message.as_ref().is_none_or(|m| seen.message.contains(m))
                && e.data.iter().all(|(k, v)| seen.data.get(k) == Some(v))
        });
        match found {
            Some(seen) => Observation::new(
                true,
                format!(
                    "{} on {} at +{:.1}s",
                    seen.reason,
                    seen.subject,
                    seen.t - since
                ),
            ),
            None => Observation::new(false, format!("no {} event yet", e.reason)),
        }
    }

    /// A metric over `[from, to]` (seconds since the run started).
    pub fn metric_between(&self, m: &MetricProbe, from: f64, to: f64) -> Observation {
        let value = {
            let tl = self.lock();
            metric_value(&tl, m.metric, from, to)
        };
        match value {
            Some(v) => Observation {
                holds: m.cmp.holds(v, m.value),
                measured: format!("{} = {}", m.metric.name(), round(v)),
                value: Some(v),
            },
            None => Observation::new(false, format!("no {} measured yet", m.metric.name())),
        }
    }
}

/// Rounds for display.
pub fn round(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn gauge_point(status: &Value, t: f64) -> GaugePoint {
    let active = status["active_revision"].as_str().unwrap_or_default();
    let replicas: Vec<&Value> = status["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["revision"] == active)
        .collect();
    let max = |key: &str| {
        replicas
            .iter()
            .filter_map(|r| r[key].as_f64())
            .fold(0.0, f64::max)
    };
    GaugePoint {
        t,
        replicas: replicas.len() as u32,
        ready: ready_replicas(status),
        restarts: status["replicas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["restarts"].as_u64())
            .sum::<u64>() as u32,
        cpu_max: max("cpu_utilization"),
        mem_max: max("rss_mb"),
    }
}

/// Judges an HTTP answer against the probe.
pub fn judge_http(h: &HttpProbe, status: u16, body: &str, latency: Duration) -> Observation {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let target: Option<Value> = match (&h.field, &json) {
        (Some(path), Some(j)) => path.split('.').try_fold(j, |v, k| v.get(k)).cloned(),
        (Some(_), None) => None,
        (None, j) => j.clone(),
    };
    let mut holds = h.status.is_none_or(|s| s == status);
    if let Some(expected) = &h.equals {
        holds &= target.as_ref() == Some(expected);
    }
    if let Some(needle) = &h.contains {
        let hay = match (&h.field, &target) {
            (Some(_), Some(Value::String(s))) => s.clone(),
            (Some(_), Some(v)) => v.to_string(),
            (Some(_), None) => String::new(),
            (None, _) => body.to_string(),
        };
        holds &= hay.contains(needle.as_str());
    }
    if let Some(bound) = h.latency_below {
        holds &= latency < bound;
    }
    let mut measured = status.to_string();
    let shown = match (&h.field, &target, &json) {
        (Some(f), Some(v), _) => Some(format!("{f}={}", short(v))),
        (Some(f), None, _) => Some(format!("no {f}")),
        (None, _, Some(j)) => j.get("detail").or_else(|| j.get("status")).map(short),
        (None, _, None) => None,
    };
    if let Some(s) = shown {
        measured.push(' ');
        measured.push_str(&s);
    }
    measured.push_str(&format!(", {} ms", latency.as_millis()));
    Observation {
        holds,
        measured,
        value: Some(f64::from(status)),
    }
}

fn short(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(60).collect()
}

/// The value of a metric over `[from, to]`.
pub fn metric_value(tl: &Timeline, metric: Metric, from: f64, to: f64) -> Option<f64> {
    if metric.from_load() {
        let points: Vec<&LoadPoint> = tl
            .samples
            .iter()
            .filter(|p| (from..=to).contains(&p.done()))
            .collect();
        return load_figure(&points, metric, (to - from).max(1e-3));
    }
    let gauges: Vec<&GaugePoint> = tl
        .gauges
        .iter()
        .filter(|g| g.t >= from && g.t <= to)
        .collect();
    let values: Vec<f64> = if gauges.is_empty() {
        // No sample in a short window: the latest one.
        tl.gauges
            .iter()
            .rev()
            .find(|g| g.t <= to)
            .map(|g| vec![gauge(g, metric)])
            .unwrap_or_default()
    } else {
        gauges.iter().map(|g| gauge(g, metric)).collect()
    };
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn gauge(g: &GaugePoint, metric: Metric) -> f64 {
    match metric {
        Metric::Replicas => f64::from(g.replicas),
        Metric::ReadyReplicas => f64::from(g.ready),
        Metric::Restarts => f64::from(g.restarts),
        Metric::ReplicaCpu => g.cpu_max,
        Metric::ReplicaMemoryMb => g.mem_max,
        _ => 0.0,
    }
}

/// A background-load figure over some points (`secs` long).
pub fn load_figure(points: &[&LoadPoint], metric: Metric, secs: f64) -> Option<f64> {
    if points.is_empty() {
        return match metric {
            Metric::Rps => Some(0.0),
            _ => None,
        };
    }
    let n = points.len() as f64;
    let ok = points.iter().filter(|p| p.ok).count() as f64;
    Some(match metric {
        Metric::ErrorRate => (n - ok) / n * 100.0,
        Metric::Availability => ok / n * 100.0,
        Metric::Rps => n / secs,
        Metric::P50Ms | Metric::P99Ms => {
            let mut lat: Vec<f32> = points.iter().map(|p| p.latency_ms).collect();
            lat.sort_by(f32::total_cmp);
            let q = if metric == Metric::P50Ms { 0.50 } else { 0.99 };
            let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len()) - 1;
            f64::from(lat[i])
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the cap, the newest samples are kept (late windows judged on
    /// what happened then) and the totals still count every request (the
    /// counter check compares them with Redis's counter).
    #[test]
    fn a_long_run_keeps_its_newest_samples_and_counts_them_all() {
        let mut tl = Timeline::default();
        let extra = 10;
        for i in 0..MAX_SAMPLES + extra {
            tl.record_sample(LoadPoint {
                t: i as f32,
                latency_ms: 1.0,
                status: if i % 2 == 0 { 200 } else { 0 },
                ok: i % 2 == 0,
                root: true,
            });
        }
        assert_eq!(tl.samples.len(), MAX_SAMPLES);
        assert_eq!(tl.samples_dropped, extra as u64);
        assert_eq!(tl.samples.front().map(|p| p.t), Some(extra as f32));
        assert_eq!(tl.sent, (MAX_SAMPLES + extra) as u64);
        assert_eq!(tl.root_sent, tl.sent);
        assert_eq!(tl.answered, tl.sent / 2);
        assert_eq!(tl.root_ok, tl.answered);
        for i in 0..MAX_GAUGES + 1 {
            tl.record_gauge(GaugePoint {
                t: i as f64,
                replicas: 1,
                ready: 1,
                restarts: i as u32,
                cpu_max: 0.0,
                mem_max: 0.0,
            });
        }
        assert_eq!(tl.gauges.len(), MAX_GAUGES);
        assert_eq!(tl.first_gauge.map(|g| g.restarts), Some(0));
        assert_eq!(
            tl.gauges.back().map(|g| g.restarts),
            Some(MAX_GAUGES as u32)
        );
    }

    fn http(text: &str) -> HttpProbe {
        let table: toml::Table = toml::from_str(&format!("p = {text}")).unwrap();
        match crate::probe::parse(table["p"].as_table().unwrap()).unwrap() {
            Probe::Http(h) => h,
            _ => unreachable!(),
        }
    }

    #[test]
    fn http_answers_are_judged_on_status_field_and_latency() {
        let body = r#"{"error":"Service Unavailable","detail":"Redis connection failed"}"#;
        let p = http(
            r#"{ http = "/", status = 503, field = "detail", equals = "Redis connection failed" }"#,
        );
        let o = judge_http(&p, 503, body, Duration::from_millis(3));
        assert!(o.holds, "{o:?}");
        assert!(
            o.measured.starts_with("503 detail=Redis connection failed"),
            "{o:?}"
        );
        assert!(!judge_http(&p, 200, "{}", Duration::ZERO).holds);
        let p = http(r#"{ http = "/health", field = "redis.connected", equals = false }"#);
        assert!(judge_http(&p, 503, r#"{"redis":{"connected":false}}"#, Duration::ZERO).holds);
        let p = http(r#"{ http = "/", latency_below = "100ms" }"#);
        assert!(!judge_http(&p, 200, "", Duration::from_millis(150)).holds);
        let p = http(r#"{ http = "/", contains = "Hello" }"#);
        assert!(judge_http(&p, 200, "Hello there", Duration::ZERO).holds);
    }

    #[test]
    fn load_figures_over_points() {
        let points: Vec<LoadPoint> = (0..100)
            .map(|i| LoadPoint {
                t: i as f32 / 100.0,
                latency_ms: i as f32,
                status: if i < 90 { 200 } else { 503 },
                ok: i < 90,
                root: true,
            })
            .collect();
        let refs: Vec<&LoadPoint> = points.iter().collect();
        assert_eq!(load_figure(&refs, Metric::ErrorRate, 1.0), Some(10.0));
        assert_eq!(load_figure(&refs, Metric::Availability, 1.0), Some(90.0));
        assert_eq!(load_figure(&refs, Metric::P50Ms, 1.0), Some(49.0));
        assert_eq!(load_figure(&refs, Metric::P99Ms, 1.0), Some(98.0));
        assert_eq!(load_figure(&[], Metric::P99Ms, 1.0), None);
    }

    #[test]
    fn gauge_metrics_average_over_the_window() {
        let mut tl = Timeline::default();
        for (t, ready) in [(0.0, 2), (0.5, 1), (1.0, 0)] {
            tl.record_gauge(GaugePoint {
                t,
                replicas: 2,
                ready,
                restarts: 0,
                cpu_max: 0.0,
                mem_max: 0.0,
            });
        }
        assert_eq!(
            metric_value(&tl, Metric::ReadyReplicas, 0.9, 1.0),
            Some(0.0)
        );
        assert_eq!(
            metric_value(&tl, Metric::ReadyReplicas, 0.0, 1.0),
            Some(1.0)
        );
        // A window with no sample reads the latest one before it.
        assert_eq!(
            metric_value(&tl, Metric::ReadyReplicas, 1.2, 1.3),
            Some(0.0)
        );
    }
}
