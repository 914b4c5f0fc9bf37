//! One run, as a sequence of phases: `Running` (follow the plan, fold
//! samples, emit live lines and history) → `Draining` (no new requests;
//! those in flight may finish within `--stop-timeout`) → `Aborting`
//! (cancel the rest) → `Done`. Ctrl-C (the `shutdown` future) moves from
//! `Running` to `Draining` at once, so the summary covers what was done.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::drive::Driver;
use crate::error::LoadError;
use crate::h1;
use crate::http::Target;
use crate::report::{GeneratorReport, Report};
use crate::sample::Sample;
use crate::shared::{Gauges, Shared};
use crate::stats::{LiveSnapshot, Stats};

/// Sample batches buffered between the senders and the aggregator.
const CHANNEL: usize = 1024;
/// Batches folded per wake-up.
const BATCH: usize = 256;
/// How often the plan is consulted.
const CONTROL: Duration = Duration::from_millis(100);
/// How long cancelled requests get to go away.
const ABORT_GRACE: Duration = Duration::from_secs(2);

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Following the plan.
    Running,
    /// No new requests; waiting for those in flight until the deadline.
    Draining(tokio::time::Instant),
    /// Requests still in flight were cancelled; waiting for them to go.
    Aborting(tokio::time::Instant),
    /// Finished.
    Done,
}

/// What the live line shows.
#[derive(Debug, Clone)]
pub struct LiveLine {
    /// `closed`, `open` or `max`.
    pub model: &'static str,
    /// Users running or the arrival rate.
    pub load: f64,
    /// Requests sent and not yet answered.
    pub in_flight: u64,
    /// Figures of the last interval.
    pub snapshot: LiveSnapshot,
}

/// Runs the load test of `config` until its plan ends or `shutdown`
/// resolves, calling `on_live` every live interval, and returns the report
/// (thresholds not yet judged).
pub async fn run<F, L>(config: &Config, shutdown: F, on_live: L) -> Result<Report, LoadError>
where
    F: Future<Output = ()>,
    L: FnMut(&LiveLine),
{
    run_tapped(config, shutdown, on_live, |_| {}).await
}

/// [`run`], also handing every raw [`Sample`] to `tap` as it is folded
/// (experiments judge availability and latency per span from them).
pub async fn run_tapped<F, L, T>(
    config: &Config,
    shutdown: F,
    mut on_live: L,
    mut tap: T,
) -> Result<Report, LoadError>
where
    F: Future<Output = ()>,
    L: FnMut(&LiveLine),
    T: FnMut(&Sample),
{
    let target = Target::resolve(&config.host).await?;
    let url = target.url.clone();
    let authority = target.authority.clone();
    let mut stats = Stats::new(&config.mix, config.history_interval)?;
    let (tx, mut rx) = mpsc::channel::<Vec<Sample>>(CHANNEL);
    let abort = CancellationToken::new();
    let gauges = Arc::new(Gauges::default());
    let shared = Arc::new(Shared {
        target,
        wires: config
            .mix
            .tasks
            .iter()
            .map(|t| h1::serialize(t.method.as_str(), &t.path, &authority, t.body.as_deref()))
            .collect(),
        mix: config.mix.clone(),
        timeout: config.timeout,
        tx,
        abort: abort.clone(),
        gauges: gauges.clone(),
    });
    let plan = config.model.plan().clone();
    let driver = Driver::start(
        &config.model,
        shared,
        config.wait,
        config.max_in_flight,
        config.threads,
    )
    .map_err(LoadError::Threads)?;
    let mut driver = Some(driver);

    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let tick = |every: Duration| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        i.set_missed_tick_behavior(MissedTickBehavior::Delay);
        i
    };
    let mut control = tick(CONTROL);
    let mut history = tick(config.history_interval);
    let mut live = tick(config.live_interval);
    let mut buf = Vec::with_capacity(BATCH);
    let mut interrupted = false;
    let mut abandoned = 0;
    let mut last_load = 0.0;
    let mut last_sample = Duration::ZERO;
    let mut stopped_at = Duration::ZERO;
    let mut phase = Phase::Running;
    if let (Some(d), Some(t)) = (driver.as_mut(), plan.target_at(Duration::ZERO)) {
        d.set_target(t);
    }
    tokio::pin!(shutdown);

    while phase != Phase::Done {
        match phase {
            Phase::Running => {
                tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        interrupted = true;
                        phase = Phase::Draining(tokio::time::Instant::now() + config.stop_timeout);
                    }
                    _ = control.tick() => match plan.target_at(started.elapsed()) {
                        Some(t) => if let Some(d) = driver.as_mut() { d.set_target(t) },
                        None => phase = Phase::Draining(tokio::time::Instant::now() + config.stop_timeout),
                    },
                    n = rx.recv_many(&mut buf, BATCH) => {
                        if n == 0 { phase = Phase::Done; }
                        fold(&mut stats, &mut buf, started, &mut last_sample, &mut tap);
                    }
                    _ = history.tick() => {
                        last_load = driver.as_ref().map_or(0.0, Driver::load);
                        stats.history_tick(started.elapsed(), last_load);
                    }
                    _ = live.tick() => {
                        let snapshot = stats.take_live(started.elapsed(), config.live_interval);
                        let load = driver.as_ref().map_or(0.0, Driver::load);
                        let in_flight = gauges.in_flight();
                        on_live(&LiveLine { model: config.model.name(), load, in_flight, snapshot });
                    }
                }
                if phase != Phase::Running {
                    stopped_at = started.elapsed();
                    if let Some(d) = driver.take() {
                        last_load = d.load();
                        d.stop();
                    }
                }
            }
            Phase::Draining(deadline) | Phase::Aborting(deadline) => {
                match tokio::time::timeout_at(deadline, rx.recv_many(&mut buf, BATCH)).await {
                    Ok(0) => phase = Phase::Done,
                    Ok(_) => fold(&mut stats, &mut buf, started, &mut last_sample, &mut tap),
                    Err(_) if matches!(phase, Phase::Draining(_)) => {
                        abandoned = gauges.in_flight();
                        abort.cancel();
                        phase = Phase::Aborting(tokio::time::Instant::now() + ABORT_GRACE);
                    }
                    Err(_) => phase = Phase::Done,
                }
            }
            Phase::Done => {}
        }
    }
    abort.cancel();
    let duration = stopped_at.max(last_sample).max(Duration::from_millis(1));
    stats.history_flush(started.elapsed(), last_load);
    let (endpoints, aggregated) = stats.endpoint_reports(duration);
    Ok(Report {
        target: url,
        model: config.model.name().to_owned(),
        scenario: config
            .scenario
            .and_then(|s| clap::ValueEnum::to_possible_value(&s))
            .map(|v| v.get_name().to_owned()),
        plan: plan.describe(),
        started_at: chaoslab_foundation::time::rfc3339(started_at),
        duration_secs: duration.as_secs_f64(),
        interrupted,
        endpoints,
        aggregated,
        failures: stats.failure_reports(),
        history: stats.history().to_vec(),
        history_interval_secs: stats.history_interval_secs(),
        generator: GeneratorReport {
            late_starts: gauges.late.load(Ordering::Relaxed),
            abandoned,
            peak_concurrency: gauges.peak.load(Ordering::Relaxed),
        },
        thresholds: Vec::new(),
        generators: 1,
    })
}

fn fold(
    stats: &mut Stats,
    buf: &mut Vec<Vec<Sample>>,
    started: Instant,
    last: &mut Duration,
    tap: &mut impl FnMut(&Sample),
) {
    for sample in buf.drain(..).flatten() {
        stats.record(&sample);
        tap(&sample);
    }
    *last = started.elapsed();
}
