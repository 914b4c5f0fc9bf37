//! One run, as phases (goose's habit: the flow is data, not one function
//! per combination): start or attach the lab → background load → steady
//! state before → method with its expectations watched → stop the load →
//! rollbacks → steady state after → counter → stop the lab. Rollbacks run
//! on every path: after a failed step, a deviation, an error, and when the
//! run is interrupted (the caller cancels `interrupt` on Ctrl-C/SIGTERM).
//! The result is always a [`Journal`], also when the run could not start.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chaoslab_foundation::now_rfc3339;
use chaoslab_lab::Spawner;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::actions::ActionRunner;
use crate::background::{BackgroundLoad, read_counter};
use crate::journal::{
    Activity, ActivityRun, ExpectationResult, ExperimentInfo, Journal, Measurements, Status,
    SteadyState, SteadyStates,
};
use crate::judge::{self, Phases};
use crate::lab_target::LabTarget;
use crate::measure::{self, CounterReadings};
use crate::model::{Check, Experiment, Window};
use crate::observe::{Observer, StepMark};
use crate::probe::Probe;
use crate::progress::Progress;
pub use crate::run_error::RunError;

/// How long a steady-state probe may take to hold before the method.
const STEADY_BEFORE: Duration = Duration::from_secs(10);
/// … and after the rollbacks (recovery may still be under way).
const STEADY_AFTER: Duration = Duration::from_secs(20);
/// A method never runs longer than its duration plus this.
const METHOD_GRACE: Duration = Duration::from_secs(120);

/// What a run needs besides the experiment.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `chaoslab` executable: `up` for the own lab, and actions.
    pub exe: PathBuf,
    /// Run against the lab in this directory instead of starting one.
    pub attach: Option<PathBuf>,
    /// Where the own lab's directory goes (`<dir>/<name>-lab`, or
    /// `<name>-lab-2`, `-3`… when that is taken: see [`claim_lab_dir`]); a
    /// temporary directory, removed afterwards, when None.
    pub lab_parent: Option<PathBuf>,
    /// Cancelled on Ctrl-C or SIGTERM.
    pub interrupt: CancellationToken,
}

/// Claims a directory of its own for the lab of experiment `name` under
/// `parent`, creating it: `<name>-lab`, or `<name>-lab-2`, `-3`… when that
/// exists — a lab kept by an earlier run (whose evidence stays), or one of
/// another job of this run with the same name (two files `cut.toml` in
/// different places): two labs never share a directory. The path is
/// absolute (`--keep-lab labs` once made the lab look for
/// `labs/x-lab/chaoslab.toml` inside `labs/x-lab`).
pub fn claim_lab_dir(parent: &std::path::Path, name: &str) -> std::io::Result<PathBuf> {
    const MOST: usize = 1000;
    std::fs::create_dir_all(parent)?;
    // Absolute: the lab runs in its directory and is handed paths in it.
    let parent = std::fs::canonicalize(parent)?;
    for n in 1..=MOST {
        let dir = match n {
            1 => parent.join(format!("{name}-lab")),
            n => parent.join(format!("{name}-lab-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{MOST} labs of {name} are kept there already; remove some"),
    ))
}

/// Runs one experiment to its journal.
pub async fn run(exp: &Experiment, opts: &RunOptions, progress: Arc<Progress>) -> Journal {
    let mut run = Run::new(exp, opts, progress);
    run.execute().await;
    run.into_journal()
}

struct Run<'a> {
    exp: &'a Experiment,
    opts: &'a RunOptions,
    progress: Arc<Progress>,
    started: Instant,
    start_time: String,
    status: Option<Status>,
    reason: String,
    steady: SteadyStates,
    run: Vec<ActivityRun>,
    rollbacks: Vec<ActivityRun>,
    results: Vec<ExpectationResult>,
    measurements: Measurements,
    timeline: crate::journal::Timeline,
    lab_desc: String,
    runner_cpu: Option<f64>,
}

impl<'a> Run<'a> {
    fn new(exp: &'a Experiment, opts: &'a RunOptions, progress: Arc<Progress>) -> Self {
        Self {
            exp,
            opts,
            progress,
            started: Instant::now(),
            start_time: now_rfc3339(),
            status: None,
            reason: String::new(),
            steady: SteadyStates::default(),
            run: Vec::new(),
            rollbacks: Vec::new(),
            results: Vec::new(),
            measurements: Measurements::default(),
            timeline: crate::journal::Timeline::default(),
            lab_desc: String::new(),
            runner_cpu: None,
        }
    }

    fn abort(&mut self, reason: String) {
        if self.status.is_none() {
            self.progress.line(&format!("ABORTED: {reason}"));
            self.status = Some(Status::Aborted);
            self.reason = reason;
        }
    }

    fn interrupted(&mut self) -> bool {
        if self.opts.interrupt.is_cancelled() && self.status.is_none() {
            self.status = Some(Status::Interrupted);
            self.reason = "interrupted (Ctrl-C or SIGTERM); rolled back".into();
        }
        self.status == Some(Status::Interrupted)
    }

    async fn execute(&mut self) {
        let spawner = match Spawner::start() {
            Ok(s) => s,
            Err(e) => return self.abort(format!("cannot start the spawner thread: {e}")),
        };
        let temp;
        let lab = match &self.opts.attach {
            Some(dir) => {
                self.lab_desc = dir.display().to_string();
                LabTarget::attach(dir).await
            }
            None => {
                let dir = match &self.opts.lab_parent {
                    Some(parent) => match claim_lab_dir(parent, &self.exp.name) {
                        Ok(dir) => dir,
                        Err(e) => {
                            return self.abort(format!(
                                "cannot create a directory for the lab in {}: {e}",
                                parent.display()
                            ));
                        }
                    },
                    None => match tempfile::Builder::new()
                        .prefix("chaoslab-experiment-")
                        .tempdir()
                    {
                        Ok(t) => {
                            temp = t;
                            temp.path().to_path_buf()
                        }
                        Err(e) => {
                            return self
                                .abort(format!("cannot create a directory for the lab: {e}"));
                        }
                    },
                };
                self.lab_desc = "own".into();
                self.progress
                    .line(&format!("starting a lab in {}", dir.display()));
                LabTarget::start(
                    &self.opts.exe,
                    &self.exp.lab,
                    &dir,
                    &spawner,
                    &self.opts.interrupt,
                )
                .await
            }
        };
        let lab = match lab {
            Ok(lab) => lab,
            Err(e) => {
                if !self.interrupted() {
                    self.abort(e.to_string());
                }
                return;
            }
        };
        self.progress.line(&format!(
            "lab ready in {:.1}s: ingress {}",
            self.started.elapsed().as_secs_f64(),
            lab.ingress_url
        ));
        self.with_lab(&lab, spawner).await;
        if lab.is_own() {
            self.progress.line("stopping the lab");
        }
        lab.stop().await;
    }

    async fn with_lab(&mut self, lab: &LabTarget, spawner: Spawner) {
        let observer = Observer::new(lab.client.clone(), lab.ingress_url.clone(), self.started);
        let recording = CancellationToken::new();
        let tasks: Vec<JoinHandle<()>> = vec![
            tokio::spawn({
                let (o, stop) = (observer.clone(), recording.clone());
                async move { o.sample_gauges(stop).await }
            }),
            tokio::spawn({
                let (o, stop) = (observer.clone(), recording.clone());
                async move { o.follow_events(stop).await }
            }),
        ];
        let watches_logs = self
            .exp
            .expect
            .iter()
            .map(|e| &e.probe)
            .chain(self.exp.steady_state.iter().map(|c| &c.probe))
            .any(|p| matches!(p, Probe::Log(_)));
        let mut tasks = tasks;
        if watches_logs {
            let (o, stop) = (observer.clone(), recording.clone());
            tasks.push(tokio::spawn(async move { o.follow_logs(stop).await }));
        }
        let actions = ActionRunner::new(
            self.opts.exe.clone(),
            lab.state_dir.clone(),
            lab.ingress_url.clone(),
            spawner,
        );
        let wants_counter = self.exp.expect.iter().any(|e| e.probe == Probe::Counter);
        let mut counter = CounterReadings::default();
        if wants_counter {
            counter.before = read_counter(&lab.ingress_url, Duration::from_secs(10))
                .await
                .map(|(n, _)| n);
        }
        let load = match &self.exp.load {
            Some(plan) => match BackgroundLoad::start(plan, &lab.ingress_url, &observer) {
                Ok(load) => Some(load),
                Err(e) => {
                    self.abort(e.to_string());
                    None
                }
            },
            None => None,
        };
        if self.status.is_none() {
            self.method_phase(&observer, &actions).await;
        }
        if let Some(load) = load {
            load.stop().await;
        }
        actions.stop_background().await;
        self.rollback_phase(&actions).await;
        let mut extra_sent = 0;
        if !self.interrupted() && self.status != Some(Status::Aborted) {
            let after = self.check_steady(&observer, STEADY_AFTER, "after").await;
            self.steady.after = Some(after);
        }
        if wants_counter
            && let Some((n, failed)) = read_counter(&lab.ingress_url, Duration::from_secs(15)).await
        {
            counter.after = Some(n);
            extra_sent = failed;
        }
        recording.cancel();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        let tl = observer.lock();
        let root_sent = tl.root_sent + extra_sent;
        self.measurements = measure::measurements(&tl, &self.results, counter, root_sent);
        self.timeline = measure::timeline(&tl);
        drop(tl);
        self.measurements.runner_cpu_percent = self.runner_cpu;
        self.judge_counter();
    }

    /// Steady state before, then the method with its watchers.
    async fn method_phase(&mut self, observer: &Observer, actions: &ActionRunner) {
        let before = self.check_steady(observer, STEADY_BEFORE, "before").await;
        let met = before.steady_state_met;
        self.steady.before = Some(before);
        if self.interrupted() {
            return;
        }
        if !met {
            self.status = Some(Status::Deviated);
            self.reason =
                "the steady state did not hold before the method; the method was not run".into();
            self.progress.line(&format!("DEVIATED: {}", self.reason));
            return;
        }
        let method_start = observer.now();
        observer.lock().method_start = Some(method_start);
        let cpu_before = chaoslab_foundation::proc::sample(None).ok();
        let phases = Phases {
            method_done: CancellationToken::new(),
            stop: CancellationToken::new(),
        };
        let tally = Arc::new(Tally::default());
        let (after_watchers, other_watchers) = self.spawn_watchers(observer, &phases, &tally);
        let status_line = self.spawn_status_line(observer, &phases, &tally);
        self.progress.line(&format!(
            "method: {} step(s), {} expectation(s)",
            self.exp.method.len(),
            self.exp.expect.len()
        ));
        self.run_steps(observer, actions, method_start).await;
        if self.status.is_some() {
            phases.stop.cancel();
        }
        self.wait_method_end(observer, method_start, &phases, &after_watchers)
            .await;
        phases.method_done.cancel();
        if self.opts.interrupt.is_cancelled() {
            phases.stop.cancel();
        }
        let mut all: Vec<Watcher> = after_watchers;
        all.extend(other_watchers);
        all.sort_by_key(|(i, _)| *i);
        for (i, handle) in all {
            let result = match handle.await {
                Ok(r) => r,
                Err(e) => ExpectationResult {
                    name: self.exp.expect[i].name.clone(),
                    expected: judge::expected(&self.exp.expect[i]),
                    measured: format!("watcher failed: {e}"),
                    passed: false,
                    detected_after_s: None,
                    kind: judge::kind(&self.exp.expect[i], &self.exp.method).into(),
                },
            };
            self.results.push(result);
        }
        status_line.abort();
        self.progress.finish();
        observer.lock().method_end = Some(observer.now());
        if let (Some(before), Ok(after)) = (cpu_before, chaoslab_foundation::proc::sample(None)) {
            self.runner_cpu = Some((after.cpu_percent_since(&before) * 10.0).round() / 10.0);
        }
    }

    fn spawn_watchers(
        &self,
        observer: &Observer,
        phases: &Phases,
        tally: &Arc<Tally>,
    ) -> (Vec<Watcher>, Vec<Watcher>) {
        let steps = Arc::new(self.exp.method.clone());
        let (mut after, mut other) = (Vec::new(), Vec::new());
        for (i, e) in self.exp.expect.iter().enumerate() {
            let (e, steps, o, p) = (e.clone(), steps.clone(), observer.clone(), phases.clone());
            let (progress, tally) = (self.progress.clone(), tally.clone());
            let is_after = matches!(e.window, Window::After { .. });
            let is_counter = e.probe == Probe::Counter;
            let handle = tokio::spawn(async move {
                let result = judge::watch(&e, &steps, &o, &p).await;
                if !is_counter {
                    tally.record(result.passed);
                    progress.line(&format!(
                        "{} {}: {}",
                        if result.passed { "PASS" } else { "FAIL" },
                        result.name,
                        result.measured
                    ));
                }
                result
            });
            if is_after {
                after.push((i, handle));
            } else {
                other.push((i, handle));
            }
        }
        (after, other)
    }

    fn spawn_status_line(
        &self,
        observer: &Observer,
        phases: &Phases,
        tally: &Arc<Tally>,
    ) -> JoinHandle<()> {
        let (o, stop) = (observer.clone(), phases.method_done.clone());
        let (progress, tally) = (self.progress.clone(), tally.clone());
        let has_load = self.exp.load.is_some();
        let watching = self.exp.expect.len();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                progress.status(&status_text(&o, has_load, &tally, watching));
            }
        })
    }

    async fn run_steps(&mut self, observer: &Observer, actions: &ActionRunner, method_start: f64) {
        for step in &self.exp.method {
            let due = method_start + step.at.as_secs_f64();
            let wait = (due - observer.now()).max(0.0);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(wait)) => {}
                _ = self.opts.interrupt.cancelled() => {}
            }
            if self.interrupted() {
                return;
            }
            let t = observer.now();
            let text = step.action.describe();
            observer.lock().marks.push(StepMark {
                id: step.id.clone(),
                action: text.clone(),
                t,
                ok: None,
            });
            self.progress.line(&format!(
                "+{:>5.1}s  step {}: {text}",
                t - method_start,
                step.id
            ));
            let start_time = now_rfc3339();
            let outcome = actions.run(&step.action, &self.opts.interrupt).await;
            if let Some(m) = observer.lock().marks.iter_mut().find(|m| m.id == step.id) {
                m.ok = Some(outcome.ok);
            }
            self.run.push(activity_run(
                "action",
                &step.id,
                &text,
                &outcome.output,
                outcome.ok,
                start_time,
                outcome.duration,
                t - method_start,
            ));
            if self.interrupted() {
                return;
            }
            if !outcome.ok {
                let first = outcome.output.lines().last().unwrap_or("").to_string();
                self.abort(format!("step {} (`{text}`) failed: {first}", step.id));
                return;
            }
        }
    }

    async fn wait_method_end(
        &mut self,
        observer: &Observer,
        method_start: f64,
        phases: &Phases,
        after: &[Watcher],
    ) {
        let duration = self.exp.duration.unwrap_or_default();
        let cap = method_start + duration.as_secs_f64() + METHOD_GRACE.as_secs_f64();
        loop {
            if phases.stop.is_cancelled() || self.opts.interrupt.is_cancelled() {
                return;
            }
            let now = observer.now();
            let duration_done = now >= method_start + duration.as_secs_f64();
            if duration_done && after.iter().all(|(_, h)| h.is_finished()) {
                return;
            }
            if now > cap {
                // Windows still open (a long `within` or `sustained`) end
                // here, unmet: the run, its fault still in place, must not
                // go on past its cap.
                phases.stop.cancel();
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = self.opts.interrupt.cancelled() => {}
            }
        }
    }

    async fn rollback_phase(&mut self, actions: &ActionRunner) {
        if self.exp.rollback.is_empty() {
            return;
        }
        self.progress.line("rollbacks:");
        // Rollbacks run even after Ctrl-C: with their own token.
        let never = CancellationToken::new();
        let mut failed = Vec::new();
        for (i, action) in self.exp.rollback.iter().enumerate() {
            let text = action.describe();
            let start_time = now_rfc3339();
            let outcome = actions.run(action, &never).await;
            self.progress.line(&format!(
                "  {} {text}",
                if outcome.ok { "ok  " } else { "FAIL" }
            ));
            self.rollbacks.push(activity_run(
                "action",
                &format!("rollback-{}", i + 1),
                &text,
                &outcome.output,
                outcome.ok,
                start_time,
                outcome.duration,
                self.started.elapsed().as_secs_f64(),
            ));
            if !outcome.ok {
                failed.push(text);
            }
        }
        // What the experiment did may still be in place: not a result to
        // pass or fail on (an interrupted run stays interrupted).
        if !failed.is_empty() && !self.interrupted() {
            self.abort(format!(
                "rollback failed ({}): the lab may still hold what the method did",
                failed.join("; ")
            ));
        }
    }

    /// Checks every steady-state probe (each may take up to `within` to hold).
    async fn check_steady(
        &mut self,
        observer: &Observer,
        within: Duration,
        when: &str,
    ) -> SteadyState {
        let mut probes = Vec::new();
        let mut met = true;
        for check in &self.exp.steady_state {
            let start_time = now_rfc3339();
            let started = Instant::now();
            let (ok, measured) = hold_within(check, observer, within, &self.opts.interrupt).await;
            met &= ok;
            self.progress.line(&format!(
                "steady state {when}: {} {}: {measured}",
                if ok { "ok  " } else { "FAIL" },
                check.name
            ));
            let mut entry = activity_run(
                "probe",
                &check.name,
                &check.probe.expected(),
                &measured,
                ok,
                start_time,
                started.elapsed(),
                observer.now(),
            );
            entry.tolerance_met = Some(ok);
            probes.push(entry);
        }
        SteadyState {
            steady_state_met: met,
            probes,
        }
    }

    fn judge_counter(&mut self) {
        let m = &self.measurements;
        for (i, e) in self.exp.expect.iter().enumerate() {
            if e.probe != Probe::Counter {
                continue;
            }
            let Some(r) = self.results.get_mut(i) else {
                continue;
            };
            r.passed = m.counter_ok == Some(true);
            r.measured = match m.counter_increase {
                Some(inc) => format!(
                    "counter +{inc}; 200s to / {}; sent to / {}",
                    m.ok_root_responses, m.root_requests_sent
                ),
                None => "the counter could not be read".into(),
            };
        }
    }

    fn into_journal(mut self) -> Journal {
        let deviated = self.results.iter().any(|r| !r.passed)
            || [&self.steady.before, &self.steady.after]
                .iter()
                .any(|s| s.as_ref().is_some_and(|s| !s.steady_state_met));
        let status = self.status.unwrap_or(if deviated {
            Status::Deviated
        } else {
            Status::Completed
        });
        if status == Status::Deviated && self.reason.is_empty() {
            let failed: Vec<&str> = self
                .results
                .iter()
                .filter(|r| !r.passed)
                .map(|r| r.name.as_str())
                .collect();
            self.reason = if failed.is_empty() {
                "the steady state did not hold after the rollbacks".into()
            } else {
                format!("did not hold: {}", failed.join("; "))
            };
        }
        Journal {
            chaoslib_version: None,
            chaoslab_version: env!("CARGO_PKG_VERSION").to_string(),
            experiment: ExperimentInfo {
                name: self.exp.name.clone(),
                title: self.exp.title.clone(),
                description: self.exp.description.clone(),
                tags: self.exp.tags.clone(),
                lab: self.lab_desc,
            },
            start: self.start_time,
            end: now_rfc3339(),
            duration: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            status,
            deviated: deviated || status == Status::Deviated,
            reason: self.reason,
            steady_states: self.steady,
            run: self.run,
            rollbacks: self.rollbacks,
            expectations: self.results,
            measurements: self.measurements,
            timeline: self.timeline,
        }
    }
}

/// A watcher task and the index of its expectation.
type Watcher = (usize, JoinHandle<ExpectationResult>);

/// Verdicts so far, for the status line.
#[derive(Debug, Default)]
struct Tally {
    held: AtomicUsize,
    failed: AtomicUsize,
}

impl Tally {
    fn record(&self, passed: bool) {
        let counter = if passed { &self.held } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// `+12s  load 198/s ok 100.0% p99 8ms  ready 2/2  expectations 1 held, 0 failed, 2 watching`.
fn status_text(o: &Observer, has_load: bool, tally: &Tally, total: usize) -> String {
    use crate::observe::metric_value;
    use crate::probe::Metric;
    let now = o.now();
    let tl = o.lock();
    let since = tl.method_start.unwrap_or(0.0);
    let mut text = format!("+{:>5.1}s ", now - since);
    if has_load {
        let from = now - 2.0;
        let v = |m| metric_value(&tl, m, from, now);
        text.push_str(&format!(
            " load {}/s ok {} p99 {}",
            v(Metric::Rps).map_or("-".into(), |r| format!("{r:.0}")),
            v(Metric::Availability).map_or("-".into(), |a| format!("{a:.1}%")),
            v(Metric::P99Ms).map_or("-".into(), |p| format!("{p:.0}ms")),
        ));
    }
    if let Some(g) = tl.gauges.back() {
        text.push_str(&format!("  ready {}/{}", g.ready, g.replicas));
    }
    let (held, failed) = (
        tally.held.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    text.push_str(&format!(
        "  expectations {held} held, {failed} failed, {} watching",
        total.saturating_sub(held + failed)
    ));
    text
}

/// Polls a steady-state probe until it holds or `within` passes.
async fn hold_within(
    check: &Check,
    observer: &Observer,
    within: Duration,
    interrupt: &CancellationToken,
) -> (bool, String) {
    let deadline = Instant::now() + within;
    loop {
        let seen = observer.observe(&check.probe, 0.0).await;
        if seen.holds || Instant::now() >= deadline || interrupt.is_cancelled() {
            return (seen.holds, seen.measured);
        }
        tokio::select! {
            _ = tokio::time::sleep(judge::POLL) => {}
            _ = interrupt.cancelled() => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn activity_run(
    kind: &str,
    name: &str,
    provider: &str,
    output: &str,
    ok: bool,
    start: String,
    duration: Duration,
    offset_s: f64,
) -> ActivityRun {
    ActivityRun {
        activity: Activity {
            kind: kind.into(),
            name: name.into(),
            provider: provider.into(),
        },
        status: if ok { "succeeded" } else { "failed" }.into(),
        output: output.into(),
        start,
        end: now_rfc3339(),
        duration: (duration.as_secs_f64() * 1000.0).round() / 1000.0,
        offset_s: (offset_s * 10.0).round() / 10.0,
        tolerance_met: None,
    }
}

#[cfg(test)]
mod tests {
    use super::claim_lab_dir;

    #[test]
    fn every_claim_gets_a_directory_of_its_own() {
        let parent = tempfile::tempdir().unwrap();
        let labs = parent.path().canonicalize().unwrap().join("labs");
        assert_eq!(claim_lab_dir(&labs, "cut").unwrap(), labs.join("cut-lab"));
        assert_eq!(claim_lab_dir(&labs, "cut").unwrap(), labs.join("cut-lab-2"));
        assert_eq!(
            claim_lab_dir(&labs, "other").unwrap(),
            labs.join("other-lab")
        );
        // Jobs claiming the same name at once: each gets its own.
        let claims: Vec<_> = (0..8)
            .map(|_| {
                let labs = labs.clone();
                std::thread::spawn(move || claim_lab_dir(&labs, "same").unwrap())
            })
            .collect();
        let mut dirs: Vec<_> = claims.into_iter().map(|c| c.join().unwrap()).collect();
        dirs.sort();
        dirs.dedup();
        assert_eq!(dirs.len(), 8, "{dirs:?}");
        assert!(dirs.iter().all(|d| d.is_dir()));
    }

    #[test]
    fn a_parent_that_cannot_hold_directories_is_a_clear_error() {
        let parent = tempfile::tempdir().unwrap();
        let file = parent.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        assert!(claim_lab_dir(&file, "cut").is_err());
    }
}
