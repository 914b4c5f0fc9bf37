//! `chaoslab load merge FILE…`: adds up the `--json` reports of several
//! generators (pods of a load Job, machines, or runs one after another)
//! into one report, as Locust's master adds up its workers.
//!
//! The summary is exact: each row's latency histograms are added bucket by
//! bucket (the same histogram one generator would have filled with every
//! sample), counts, bytes, latency sums and status codes are summed, so
//! counts, percentiles, mean, min and max equal one computation over the
//! union of the samples. Rates are the summed requests over the merged
//! span (earliest start to latest end). Failures are summed by endpoint and
//! error. The history (the charts and `_stats_history.csv`) is put on one
//! time axis in steps of the longest input interval: rates and loads of
//! the generators are added, an interval's percentiles come from its
//! merged histograms; it is a picture of the run, exact only while no
//! input thinned its history (runs under half an hour at 1 s).

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;

use crate::error::LoadError;
use crate::report::{EndpointReport, FailureReport, GeneratorReport, HistoryPoint, Report};
use crate::stats::{Acc, ms, row};

/// Largest report file read (a report with a full history is a few MB).
const MAX_FILE: u64 = 256 << 20;

/// Reads one `chaoslab load --json` report.
pub fn read(path: &Path) -> Result<Report, LoadError> {
    let bad = |detail: String| LoadError::Input {
        name: path.display().to_string(),
        detail,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    if meta.len() > MAX_FILE {
        return Err(bad(format!(
            "{} bytes is more than a report ({MAX_FILE} at most)",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "not a `chaoslab load --json` report ({e}): merge reads only those"
        ))
    })
}

/// One endpoint's sums across the inputs.
struct Sum {
    method: String,
    name: String,
    acc: Acc,
    codes: BTreeMap<u16, u64>,
}

impl Sum {
    fn new(method: &str, name: &str) -> Result<Self, LoadError> {
        Ok(Self {
            method: method.to_owned(),
            name: name.to_owned(),
            acc: Acc::new()?,
            codes: BTreeMap::new(),
        })
    }

    /// Adds `r`; why it cannot, in words.
    fn add(&mut self, r: &EndpointReport) -> Result<(), String> {
        let label = format!("row `{} {}`", r.method, r.name).replace("` ", "`");
        if r.failures > r.requests {
            return Err(format!(
                "{label}: {} failures out of {} requests",
                r.failures, r.requests
            ));
        }
        match &r.histogram {
            Some(text) => {
                let hist = crate::hdr::decode(text).map_err(|e| format!("{label}: {e}"))?;
                if hist.len() != r.requests {
                    return Err(format!(
                        "{label}: its histogram holds {} latencies but it counts {} requests",
                        hist.len(),
                        r.requests
                    ));
                }
                self.acc
                    .hist
                    .add(&hist)
                    .map_err(|e| format!("{label}: {e:?}"))?;
            }
            None if r.requests == 0 => {}
            None => {
                return Err(format!(
                    "{label} has no latency histogram: the report was written by a chaoslab \
                     load older than `merge`; run the load again with this version"
                ));
            }
        }
        let overflow = || format!("{label}: counts too large to add up");
        self.acc.requests = self
            .acc
            .requests
            .checked_add(r.requests)
            .ok_or_else(overflow)?;
        self.acc.failures = self
            .acc
            .failures
            .checked_add(r.failures)
            .ok_or_else(overflow)?;
        self.acc.bytes = self.acc.bytes.checked_add(r.bytes).ok_or_else(overflow)?;
        self.acc.latency_sum_us += u128::from(r.latency_sum_us);
        for (code, n) in &r.status_codes {
            let code: u16 = code
                .parse()
                .map_err(|_| format!("{label}: `{code}` is not a status code"))?;
            let entry = self.codes.entry(code).or_default();
            *entry = entry.checked_add(*n).ok_or_else(overflow)?;
        }
        Ok(())
    }

    fn report(&self, secs: f64) -> EndpointReport {
        row(&self.method, &self.name, &self.acc, Some(&self.codes), secs)
    }
}

/// Start and end of a report, Unix milliseconds.
fn span(name: &str, r: &Report) -> Result<(f64, f64), LoadError> {
    let bad = |detail: String| LoadError::Input {
        name: name.to_owned(),
        detail,
    };
    let start = chrono::DateTime::parse_from_rfc3339(&r.started_at)
        .map_err(|e| bad(format!("started_at `{}`: {e}", r.started_at)))?
        .timestamp_millis() as f64;
    if !(r.duration_secs.is_finite() && (0.0..=1e9).contains(&r.duration_secs)) {
        return Err(bad(format!(
            "duration_secs {} is not a run's length",
            r.duration_secs
        )));
    }
    Ok((start, start + r.duration_secs * 1000.0))
}

/// The distinct values of `f` over the inputs, joined.
fn distinct(inputs: &[(String, Report)], f: impl Fn(&Report) -> &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for (_, r) in inputs {
        if !seen.contains(&f(r)) {
            seen.push(f(r));
        }
    }
    seen.join(", ")
}

/// Adds up `inputs` (each named for errors, e.g. by its file) into one
/// report; its thresholds are left to judge.
pub fn merge(inputs: &[(String, Report)]) -> Result<Report, LoadError> {
    if inputs.is_empty() {
        return Err(LoadError::config("merge", "give at least one report file"));
    }
    let mut spans = Vec::new();
    for (name, r) in inputs {
        spans.push(span(name, r)?);
    }
    let t0 = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let t1 = spans.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    let duration_secs = ((t1 - t0) / 1000.0).max(0.001);

    let mut totals = Totals::new()?;
    for (name, r) in inputs {
        totals.add(name, r)?;
    }
    let mut failures: Vec<FailureReport> = totals.failures.into_values().collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.occurrences));
    let interval = inputs
        .iter()
        .map(|(_, r)| r.history_interval_secs)
        .filter(|s| s.is_finite() && *s > 0.0)
        .fold(0.0, f64::max);
    let interval = if interval > 0.0 { interval } else { 1.0 };
    let history = history(inputs, &spans, t0, interval)?;
    let started_at = chaoslab_foundation::time::rfc3339(
        chrono::DateTime::from_timestamp_millis(t0 as i64).unwrap_or_default(),
    );
    let scenario = distinct(inputs, |r| r.scenario.as_deref().unwrap_or(""));
    let generators = totals.generators;
    Ok(Report {
        target: distinct(inputs, |r| &r.target),
        model: distinct(inputs, |r| &r.model),
        scenario: (!scenario.is_empty() && !scenario.contains(", ")).then_some(scenario),
        plan: format!(
            "{generators} generators merged: {}",
            distinct(inputs, |r| &r.plan)
        ),
        started_at,
        duration_secs,
        interrupted: inputs.iter().any(|(_, r)| r.interrupted),
        endpoints: totals
            .rows
            .iter()
            .map(|s| s.report(duration_secs))
            .collect(),
        aggregated: totals.all.report(duration_secs),
        failures,
        history,
        history_interval_secs: interval,
        generator: totals.generator,
        thresholds: Vec::new(),
        generators,
    })
}

/// A failure's identity across reports: method, name, kind, error.
type FailureKey = (String, String, String, String);

/// The running sums of the inputs' whole-run figures.
struct Totals {
    /// One per (method, name), in order of first appearance.
    rows: Vec<Sum>,
    all: Sum,
    failures: BTreeMap<FailureKey, FailureReport>,
    generator: GeneratorReport,
    generators: u64,
}

impl Totals {
    fn new() -> Result<Self, LoadError> {
        Ok(Self {
            rows: Vec::new(),
            all: Sum::new("", "Aggregated")?,
            failures: BTreeMap::new(),
            generator: GeneratorReport::default(),
            generators: 0,
        })
    }

    /// Adds one input (`name` names it in errors).
    fn add(&mut self, name: &str, r: &Report) -> Result<(), LoadError> {
        let bad = |detail: String| LoadError::Input {
            name: name.to_string(),
            detail,
        };
        for e in &r.endpoints {
            let i = match self
                .rows
                .iter()
                .position(|s| s.method == e.method && s.name == e.name)
            {
                Some(i) => i,
                None => {
                    self.rows.push(Sum::new(&e.method, &e.name)?);
                    self.rows.len() - 1
                }
            };
            self.rows[i].add(e).map_err(bad)?;
        }
        self.all.add(&r.aggregated).map_err(bad)?;
        for f in &r.failures {
            self.add_failure(f);
        }
        let g = &mut self.generator;
        g.late_starts = g.late_starts.saturating_add(r.generator.late_starts);
        g.abandoned = g.abandoned.saturating_add(r.generator.abandoned);
        g.peak_concurrency = g
            .peak_concurrency
            .saturating_add(r.generator.peak_concurrency);
        self.generators = self.generators.saturating_add(r.generators.max(1));
        Ok(())
    }

    /// Counts a failure into the one of the same identity, widening its
    /// first and last seen.
    fn add_failure(&mut self, f: &FailureReport) {
        let key = (
            f.method.clone(),
            f.name.clone(),
            f.kind.clone(),
            f.error.clone(),
        );
        match self.failures.get_mut(&key) {
            Some(m) => {
                m.occurrences = m.occurrences.saturating_add(f.occurrences);
                if f.first_seen < m.first_seen {
                    m.first_seen.clone_from(&f.first_seen);
                }
                if f.last_seen > m.last_seen {
                    m.last_seen.clone_from(&f.last_seen);
                }
            }
            None => {
                self.failures.insert(key, f.clone());
            }
        }
    }
}

/// One history step's points from every input.
#[derive(Default)]
struct Step<'a> {
    points: Vec<(usize, &'a HistoryPoint)>,
}

/// What one step's points add up to across the inputs.
struct StepSum {
    /// The step's latencies, from every input that sent its histogram.
    window: Histogram<u64>,
    /// Whether every input that answered anything sent its histogram.
    complete: bool,
    rps: f64,
    fps: f64,
    load: f64,
}

/// The inputs' history on one time axis (see the module docs).
fn history(
    inputs: &[(String, Report)],
    spans: &[(f64, f64)],
    t0: f64,
    interval: f64,
) -> Result<Vec<HistoryPoint>, LoadError> {
    let mut steps: BTreeMap<u64, Step> = BTreeMap::new();
    for (i, ((_, r), (start, _))) in inputs.iter().zip(spans).enumerate() {
        for p in &r.history {
            if !p.elapsed_secs.is_finite() || p.elapsed_secs < 0.0 {
                continue;
            }
            let at = (start - t0) / 1000.0 + p.elapsed_secs;
            let k = (at / interval).ceil().clamp(1.0, 1e9) as u64;
            steps.entry(k).or_default().points.push((i, p));
        }
    }
    let mut running = Acc::new()?;
    let mut latest: Vec<Option<&HistoryPoint>> = vec![None; inputs.len()];
    let mut out = Vec::with_capacity(steps.len());
    for (k, step) in steps {
        let sum = sum_step(inputs, &step, &mut latest)?;
        let _ = running.hist.add(&sum.window);
        running.requests = running.hist.len();
        let elapsed_secs = k as f64 * interval;
        out.push(merged_point(sum, &running, &latest, t0, elapsed_secs));
    }
    Ok(out)
}

/// Adds up one step: rates averaged per input then summed, histograms
/// added; `latest` keeps each input's newest point so far.
fn sum_step<'a>(
    inputs: &[(String, Report)],
    step: &Step<'a>,
    latest: &mut [Option<&'a HistoryPoint>],
) -> Result<StepSum, LoadError> {
    let mut sum = StepSum {
        window: crate::hdr::empty()?,
        complete: true,
        rps: 0.0,
        fps: 0.0,
        load: 0.0,
    };
    for (i, latest) in latest.iter_mut().enumerate() {
        let mine: Vec<&HistoryPoint> = step
            .points
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, p)| *p)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let n = mine.len() as f64;
        sum.rps += mine.iter().map(|p| p.rps).sum::<f64>() / n;
        sum.fps += mine.iter().map(|p| p.failures_per_sec).sum::<f64>() / n;
        sum.load += mine.iter().map(|p| p.load).sum::<f64>() / n;
        for p in mine {
            match &p.histogram {
                Some(text) => {
                    let h = crate::hdr::decode(text).map_err(|e| LoadError::Input {
                        name: inputs[i].0.clone(),
                        detail: format!("history at {}s: {e}", p.elapsed_secs),
                    })?;
                    let _ = sum.window.add(&h);
                }
                None if p.rps == 0.0 => {}
                None => sum.complete = false,
            }
            if latest.is_none_or(|l| l.elapsed_secs <= p.elapsed_secs) {
                *latest = Some(p);
            }
        }
    }
    Ok(sum)
}

/// The merged history point of one step: its own figures from `sum`, the
/// run-so-far figures from `running` and each input's latest point.
fn merged_point(
    sum: StepSum,
    running: &Acc,
    latest: &[Option<&HistoryPoint>],
    t0: f64,
    elapsed_secs: f64,
) -> HistoryPoint {
    let window = sum.window;
    let known: Vec<&HistoryPoint> = latest.iter().flatten().copied().collect();
    let total_requests: u64 = known.iter().map(|p| p.total_requests).sum();
    let weighted = |f: fn(&HistoryPoint) -> f64| {
        let sum: f64 = known.iter().map(|p| f(p) * p.total_requests as f64).sum();
        (total_requests > 0).then(|| sum / total_requests as f64)
    };
    HistoryPoint {
        timestamp: ((t0 / 1000.0) + elapsed_secs) as i64,
        elapsed_secs,
        load: sum.load,
        rps: sum.rps,
        failures_per_sec: sum.fps,
        percentiles: if sum.complete && !window.is_empty() {
            crate::report::PERCENTILES
                .iter()
                .map(|&q| ms(window.value_at_quantile(q)))
                .collect()
        } else {
            Vec::new()
        },
        total_requests,
        total_failures: known.iter().map(|p| p.total_failures).sum(),
        total_median_ms: running.quantile_ms(0.5),
        total_avg_ms: weighted(|p| p.total_avg_ms.unwrap_or(0.0)),
        total_min_ms: running.min_ms(),
        total_max_ms: running.max_ms(),
        total_avg_size: weighted(|p| p.total_avg_size).unwrap_or(0.0),
        histogram: (!window.is_empty()).then(|| crate::hdr::encode(&window)),
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
