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
use crate::plan::Plan;
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
    on_live: L,
    tap: T,
) -> Result<Report, LoadError>
where
    F: Future<Output = ()>,
    L: FnMut(&LiveLine),
    T: FnMut(&Sample),
{
    let target = Target::resolve(&config.host).await?;
    let url = target.url.clone();
    let stats = Stats::new(&config.mix, config.history_interval)?;
    let (tx, rx) = mpsc::channel::<Vec<Sample>>(CHANNEL);
    let abort = CancellationToken::new();
    let gauges = Arc::new(Gauges::default());
    let shared = shared_state(config, target, tx, abort.clone(), gauges.clone());
    let driver = Driver::start(
        &config.model,
        shared,
        config.wait,
        config.max_in_flight,
        config.threads,
    )
    .map_err(LoadError::Threads)?;
    let started_at = chrono::Utc::now();
    let mut run = Run::new(config, stats, rx, driver, gauges, abort, on_live, tap);
    tokio::pin!(shutdown);
    let mut phase = Phase::Running;
    while phase != Phase::Done {
        phase = match phase {
            Phase::Running => run.running(&mut shutdown).await,
            Phase::Draining(deadline) | Phase::Aborting(deadline) => {
                run.draining(phase, deadline).await
            }
            Phase::Done => Phase::Done,
        };
    }
    Ok(run.report(url, started_at))
}

/// What every sender shares: the target, the requests serialized once,
/// the channel to the aggregator, the abort token and the gauges.
fn shared_state(
    config: &Config,
    target: Target,
    tx: mpsc::Sender<Vec<Sample>>,
    abort: CancellationToken,
    gauges: Arc<Gauges>,
) -> Arc<Shared> {
    let authority = target.authority.clone();
    Arc::new(Shared {
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
        abort,
        gauges,
    })
}

/// The clocks of the `Running` phase.
struct Ticks {
    /// When to consult the plan.
    control: tokio::time::Interval,
    /// When to close a history bucket.
    history: tokio::time::Interval,
    /// When to emit a live line.
    live: tokio::time::Interval,
}

impl Ticks {
    fn new(config: &Config) -> Self {
        let tick = |every: Duration| {
            let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        };
        Self {
            control: tick(CONTROL),
            history: tick(config.history_interval),
            live: tick(config.live_interval),
        }
    }
}

/// A run's state across its phases: the aggregator's side of the channel,
/// the driver while the plan is followed, and the figures the report
/// needs at the end.
struct Run<'c, L, T> {
    config: &'c Config,
    plan: Plan,
    stats: Stats,
    rx: mpsc::Receiver<Vec<Sample>>,
    buf: Vec<Vec<Sample>>,
    /// `None` once the run stopped starting requests.
    driver: Option<Driver>,
    gauges: Arc<Gauges>,
    abort: CancellationToken,
    started: Instant,
    ticks: Ticks,
    interrupted: bool,
    /// Requests still in flight when the drain deadline passed.
    abandoned: u64,
    last_load: f64,
    /// When the last sample was folded (from `started`).
    last_sample: Duration,
    /// When the run stopped starting requests (from `started`).
    stopped_at: Duration,
    on_live: L,
    tap: T,
}

impl<'c, L, T> Run<'c, L, T>
where
    L: FnMut(&LiveLine),
    T: FnMut(&Sample),
{
    #[allow(clippy::too_many_arguments)] // the parts the caller built, handed over once
    fn new(
        config: &'c Config,
        stats: Stats,
        rx: mpsc::Receiver<Vec<Sample>>,
        mut driver: Driver,
        gauges: Arc<Gauges>,
        abort: CancellationToken,
        on_live: L,
        tap: T,
    ) -> Self {
        let plan = config.model.plan().clone();
        if let Some(t) = plan.target_at(Duration::ZERO) {
            driver.set_target(t);
        }
        Self {
            config,
            plan,
            stats,
            rx,
            buf: Vec::with_capacity(BATCH),
            driver: Some(driver),
            gauges,
            abort,
            started: Instant::now(),
            ticks: Ticks::new(config),
            interrupted: false,
            abandoned: 0,
            last_load: 0.0,
            last_sample: Duration::ZERO,
            stopped_at: Duration::ZERO,
            on_live,
            tap,
        }
    }

    /// One wake-up of the `Running` phase: Ctrl-C or the end of the plan
    /// starts the drain (and stops the driver); otherwise follow the plan,
    /// fold samples, close history buckets, emit live lines.
    async fn running<F: Future<Output = ()>>(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut F>,
    ) -> Phase {
        let stop_timeout = self.config.stop_timeout;
        let drain = || Phase::Draining(tokio::time::Instant::now() + stop_timeout);
        let phase = tokio::select! {
            biased;
            () = shutdown.as_mut() => {
                self.interrupted = true;
                drain()
            }
            _ = self.ticks.control.tick() => match self.plan.target_at(self.started.elapsed()) {
                Some(t) => {
                    if let Some(d) = self.driver.as_mut() { d.set_target(t) }
                    Phase::Running
                }
                None => drain(),
            },
            n = self.rx.recv_many(&mut self.buf, BATCH) => {
                self.fold();
                if n == 0 { Phase::Done } else { Phase::Running }
            }
            _ = self.ticks.history.tick() => {
                self.last_load = self.driver.as_ref().map_or(0.0, Driver::load);
                self.stats.history_tick(self.started.elapsed(), self.last_load);
                Phase::Running
            }
            _ = self.ticks.live.tick() => {
                self.emit_live();
                Phase::Running
            }
        };
        if phase != Phase::Running {
            self.stopped_at = self.started.elapsed();
            if let Some(d) = self.driver.take() {
                self.last_load = d.load();
                d.stop();
            }
        }
        phase
    }

    fn emit_live(&mut self) {
        let snapshot = self
            .stats
            .take_live(self.started.elapsed(), self.config.live_interval);
        let load = self.driver.as_ref().map_or(0.0, Driver::load);
        let in_flight = self.gauges.in_flight();
        (self.on_live)(&LiveLine {
            model: self.config.model.name(),
            load,
            in_flight,
            snapshot,
        });
    }

    /// One wake-up of `Draining` or `Aborting`: fold what arrives until
    /// the deadline; a passed drain deadline cancels what is still in
    /// flight, a passed abort deadline ends the run.
    async fn draining(&mut self, phase: Phase, deadline: tokio::time::Instant) -> Phase {
        match tokio::time::timeout_at(deadline, self.rx.recv_many(&mut self.buf, BATCH)).await {
            Ok(0) => Phase::Done,
            Ok(_) => {
                self.fold();
                phase
            }
            Err(_) if matches!(phase, Phase::Draining(_)) => {
                self.abandoned = self.gauges.in_flight();
                self.abort.cancel();
                Phase::Aborting(tokio::time::Instant::now() + ABORT_GRACE)
            }
            Err(_) => Phase::Done,
        }
    }

    fn fold(&mut self) {
        fold(
            &mut self.stats,
            &mut self.buf,
            self.started,
            &mut self.last_sample,
            &mut self.tap,
        );
    }

    /// The report of the finished run (thresholds not yet judged).
    fn report(mut self, url: String, started_at: chrono::DateTime<chrono::Utc>) -> Report {
        self.abort.cancel();
        let config = self.config;
        let duration = self
            .stopped_at
            .max(self.last_sample)
            .max(Duration::from_millis(1));
        self.stats
            .history_flush(self.started.elapsed(), self.last_load);
        let (endpoints, aggregated) = self.stats.endpoint_reports(duration);
        Report {
            target: url,
            model: config.model.name().to_owned(),
            scenario: config
                .scenario
                .and_then(|s| clap::ValueEnum::to_possible_value(&s))
                .map(|v| v.get_name().to_owned()),
            plan: self.plan.describe(),
            started_at: chaoslab_foundation::time::rfc3339(started_at),
            duration_secs: duration.as_secs_f64(),
            interrupted: self.interrupted,
            endpoints,
            aggregated,
            failures: self.stats.failure_reports(),
            history: self.stats.history().to_vec(),
            history_interval_secs: self.stats.history_interval_secs(),
            generator: GeneratorReport {
                late_starts: self.gauges.late.load(Ordering::Relaxed),
                abandoned: self.abandoned,
                peak_concurrency: self.gauges.peak.load(Ordering::Relaxed),
            },
            thresholds: Vec::new(),
            generators: 1,
        }
    }
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
