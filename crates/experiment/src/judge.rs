//! Expectations, each watched by its own task while the method runs:
//! `after` a step (first held within a deadline, then held for `sustained`
//! when given), `during` a span of steps (held at every observation, or
//! over the span for background-load figures), or over the whole run.
//! Every verdict carries what was measured beside the bound.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::journal::ExpectationResult;
use crate::model::{Expectation, Step, Window};
use crate::observe::{Observation, Observer};
use crate::probe::Probe;

/// Time between two observations of a probe.
pub const POLL: Duration = Duration::from_millis(200);
/// `after` without `within`: this long.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(30);

fn secs(d: Duration) -> String {
    chaoslab_load::format_duration(d)
}

/// The bound of an expectation, in words.
pub fn expected(e: &Expectation) -> String {
    let probe = e.probe.expected();
    match &e.window {
        Window::After {
            step,
            within,
            sustained,
        } => {
            let mut text = format!(
                "{probe} within {} after {step}",
                secs(within.unwrap_or(DEFAULT_WITHIN))
            );
            if let Some(s) = sustained {
                text.push_str(&format!(", held {}", secs(*s)));
            }
            text
        }
        Window::During { from, to } => {
            format!("{probe} during {from}..{}", to.as_deref().unwrap_or("end"))
        }
        Window::WholeRun => format!("{probe} over the run"),
    }
}

/// `detect`, `recover`, `span` or `run`.
pub fn kind(e: &Expectation, steps: &[Step]) -> &'static str {
    match &e.window {
        Window::After { step, .. } => {
            if steps
                .iter()
                .find(|s| &s.id == step)
                .is_some_and(|s| s.action.is_clearing())
            {
                "recover"
            } else {
                "detect"
            }
        }
        Window::During { .. } => "span",
        Window::WholeRun => "run",
    }
}

/// Signals the watchers follow.
#[derive(Debug, Clone)]
pub struct Phases {
    /// Every step has run and the run's duration has passed: open-ended
    /// windows close.
    pub method_done: CancellationToken,
    /// Ctrl-C, SIGTERM or an aborted method: every watcher stops now.
    pub stop: CancellationToken,
}

/// Watches one expectation to its verdict.
pub async fn watch(
    e: &Expectation,
    steps: &[Step],
    observer: &Observer,
    phases: &Phases,
) -> ExpectationResult {
    let (passed, measured, detected) = match &e.window {
        Window::After {
            step,
            within,
            sustained,
        } => {
            after(
                &e.probe,
                step,
                within.unwrap_or(DEFAULT_WITHIN),
                *sustained,
                observer,
                phases,
            )
            .await
        }
        Window::During { from, to } => {
            during(&e.probe, from, to.as_deref(), observer, phases).await
        }
        Window::WholeRun => whole_run(&e.probe, observer, phases).await,
    };
    ExpectationResult {
        name: e.name.clone(),
        expected: expected(e),
        measured,
        passed,
        detected_after_s: detected,
        kind: kind(e, steps).to_string(),
    }
}

/// Waits for the mark of step `id`; None when the method ended without it.
async fn mark(id: &str, observer: &Observer, phases: &Phases) -> Option<f64> {
    loop {
        if let Some(t) = observer.lock().mark(id) {
            return Some(t);
        }
        if phases.method_done.is_cancelled() || phases.stop.is_cancelled() {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pause(phases: &Phases) {
    tokio::select! {
        _ = tokio::time::sleep(POLL) => {}
        _ = phases.stop.cancelled() => {}
    }
}

type Verdict = (bool, String, Option<f64>);

async fn after(
    probe: &Probe,
    step: &str,
    within: Duration,
    sustained: Option<Duration>,
    observer: &Observer,
    phases: &Phases,
) -> Verdict {
    let Some(t0) = mark(step, observer, phases).await else {
        return (false, format!("step {step} did not run"), None);
    };
    let deadline = t0 + within.as_secs_f64();
    let mut first: Option<f64> = None;
    let mut last = String::from("not observed");
    loop {
        if phases.stop.is_cancelled() {
            return (false, format!("stopped before it held; last: {last}"), None);
        }
        let seen = observer.observe(probe, t0).await;
        // An observation counts when its answer came.
        let now = observer.now();
        last = seen.measured.clone();
        if seen.holds {
            let start = *first.get_or_insert(now);
            let held = now - start;
            match sustained {
                None => {
                    return (
                        true,
                        format!("held {:.1}s after {step}: {}", start - t0, seen.measured),
                        Some(start - t0),
                    );
                }
                Some(s) if held >= s.as_secs_f64() => {
                    return (
                        true,
                        format!(
                            "held from {:.1}s after {step} for {}: {}",
                            start - t0,
                            secs(s),
                            seen.measured
                        ),
                        Some(start - t0),
                    );
                }
                Some(_) => {}
            }
        } else {
            first = None;
        }
        if first.is_none() && now > deadline {
            let what = if sustained.is_some() {
                "not held long enough"
            } else {
                "not"
            };
            return (
                false,
                format!("{what} within {} after {step}; last: {last}", secs(within)),
                None,
            );
        }
        pause(phases).await;
    }
}

async fn during(
    probe: &Probe,
    from: &str,
    to: Option<&str>,
    observer: &Observer,
    phases: &Phases,
) -> Verdict {
    let Some(t0) = mark(from, observer, phases).await else {
        return (false, format!("step {from} did not run"), None);
    };
    let span = format!("{from}..{}", to.unwrap_or("end"));
    let ended = || -> Option<f64> {
        match to {
            Some(id) => observer.lock().mark(id),
            None => None,
        }
        .or_else(|| phases.method_done.is_cancelled().then(|| observer.now()))
    };
    if let Probe::Metric(m) = probe
        && m.metric.from_load()
    {
        // Over the span as a whole, once it has ended.
        let t1 = loop {
            if let Some(t1) = ended() {
                break t1;
            }
            if phases.stop.is_cancelled() {
                break observer.now();
            }
            pause(phases).await;
        };
        // Requests still in flight at the end of the span count too.
        let seen = observer.metric_between(m, t0, t1 + m.window.map_or(0.0, |w| w.as_secs_f64()));
        return (seen.holds, format!("{} over {span}", seen.measured), None);
    }
    let (mut n, mut held) = (0u32, 0u32);
    let mut first_failure: Option<(f64, Observation)> = None;
    let mut last = String::new();
    loop {
        if ended().is_some() || phases.stop.is_cancelled() {
            break;
        }
        let at = observer.now();
        let seen = observer.observe(probe, t0).await;
        n += 1;
        if seen.holds {
            held += 1;
        } else if first_failure.is_none() {
            first_failure = Some((at - t0, seen.clone()));
        }
        last = seen.measured;
        pause(phases).await;
    }
    match first_failure {
        None if n > 0 => (
            true,
            format!("held at {held}/{n} observations over {span}; last: {last}"),
            None,
        ),
        None => (false, format!("no observation during {span}"), None),
        Some((at, seen)) => (
            false,
            format!(
                "held at {held}/{n} observations; first failed {at:.1}s into {span}: {}",
                seen.measured
            ),
            None,
        ),
    }
}

async fn whole_run(probe: &Probe, observer: &Observer, phases: &Phases) -> Verdict {
    match probe {
        // Judged by the runner once the load has stopped.
        Probe::Counter => (false, "not judged".into(), None),
        // An event or a log line over the run: seen at least once.
        Probe::Event(_) | Probe::Log(_) => {
            tokio::select! {
                _ = phases.method_done.cancelled() => {}
                _ = phases.stop.cancelled() => {}
            }
            let since = observer.lock().method_start.unwrap_or(0.0);
            let seen = observer.observe(probe, since).await;
            (
                seen.holds,
                format!("{} during the run", seen.measured),
                None,
            )
        }
        Probe::Metric(m) if m.metric.from_load() => {
            tokio::select! {
                _ = phases.method_done.cancelled() => {}
                _ = phases.stop.cancelled() => {}
            }
            let (from, to) = {
                let tl = observer.lock();
                (tl.method_start.unwrap_or(0.0), observer.now())
            };
            let seen = observer.metric_between(m, from, to);
            (seen.holds, format!("{} over the run", seen.measured), None)
        }
        _ => {
            let (mut n, mut held) = (0u32, 0u32);
            let mut failure: Option<String> = None;
            while !phases.method_done.is_cancelled() && !phases.stop.is_cancelled() {
                let seen = observer.observe(probe, 0.0).await;
                n += 1;
                if seen.holds {
                    held += 1;
                } else if failure.is_none() {
                    failure = Some(seen.measured);
                }
                pause(phases).await;
            }
            match failure {
                None if n > 0 => (true, format!("held at {held}/{n} observations"), None),
                None => (false, "no observation".into(), None),
                Some(f) => (
                    false,
                    format!("held at {held}/{n} observations; first failure: {f}"),
                    None,
                ),
            }
        }
    }
}
