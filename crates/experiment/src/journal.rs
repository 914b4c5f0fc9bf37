//! The journal: everything a run did and measured, in Chaos Toolkit's
//! journal shape where one exists (`status`, `deviated`,
//! `steady_states.before/after`, `run[]`, `rollbacks[]`) plus chaoslab's
//! own `expectations[]`, `measurements` and `timeline`. The JSON file, the
//! verdict table, the JUnit XML and the HTML report are all rendered from
//! it, so they never disagree.

use chaoslab_output::Style;
use chaoslab_output::units;
use chaoslab_output::views::experiment::{Verdict, verdicts};
use serde::{Deserialize, Serialize};

/// How a run ended (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every expectation held and the steady state held before and after.
    Completed,
    /// An expectation or the steady state did not hold.
    Deviated,
    /// The experiment could not run (lab failed, an action failed).
    Aborted,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl Status {
    /// The process exit status for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Completed => 0,
            Self::Deviated => 1,
            Self::Aborted => 2,
            Self::Interrupted => 130,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Deviated => "deviated",
            Self::Aborted => "aborted",
            Self::Interrupted => "interrupted",
        }
    }
}

/// One run's journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    #[serde(rename = "chaoslib-version")]
    pub chaoslib_version: Option<String>,
    pub chaoslab_version: String,
    pub experiment: ExperimentInfo,
    /// RFC 3339 UTC.
    pub start: String,
    pub end: String,
    /// Seconds.
    pub duration: f64,
    pub status: Status,
    pub deviated: bool,
    /// Why the run aborted or deviated, in one line (empty when it held).
    pub reason: String,
    pub steady_states: SteadyStates,
    pub run: Vec<ActivityRun>,
    pub rollbacks: Vec<ActivityRun>,
    pub expectations: Vec<ExpectationResult>,
    pub measurements: Measurements,
    pub timeline: Timeline,
}

/// The experiment as the journal records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExperimentInfo {
    pub name: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Where the lab ran (`own` or the attached directory).
    pub lab: String,
}

/// `steady_states.before` / `.after` (null when not checked).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SteadyStates {
    pub before: Option<SteadyState>,
    pub after: Option<SteadyState>,
}

/// One check of the hypothesis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SteadyState {
    pub steady_state_met: bool,
    pub probes: Vec<ActivityRun>,
}

/// A probe or action as Chaos Toolkit journals it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivityRun {
    pub activity: Activity,
    /// `succeeded` or `failed`.
    pub status: String,
    /// What it printed or measured.
    pub output: String,
    pub start: String,
    pub end: String,
    /// Seconds.
    pub duration: f64,
    /// Seconds from the start of the method (actions) or the run (probes).
    pub offset_s: f64,
    /// Probes: whether the tolerance (the expectation) was met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance_met: Option<bool>,
}

/// `activity` of a journal entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Activity {
    /// `action` or `probe`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// The command line or the probe, in words.
    pub provider: String,
}

/// An expectation's verdict, with its measured value beside its bound.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExpectationResult {
    pub name: String,
    /// The bound, in words (`GET / status 503 within 5s after cut`).
    pub expected: String,
    /// What was observed (`first held 1.2s after cut`, `last: 200`).
    pub measured: String,
    pub passed: bool,
    /// Seconds from its step to the first matching observation (or to the
    /// start of the sustained success).
    pub detected_after_s: Option<f64>,
    /// `detect` (after a fault), `recover` (after a clearing step),
    /// `span` (during) or `run` (whole run).
    pub kind: String,
}

/// The figures of a run, never only pass/fail.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measurements {
    /// First fault step → first matching observation, seconds.
    pub time_to_detect_s: Option<f64>,
    /// Clearing step → first sustained success, seconds.
    pub time_to_recover_s: Option<f64>,
    /// Successful background-load requests over all sent, 0..1 (null
    /// without background load).
    pub availability: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub requests_sent: u64,
    pub requests_answered: u64,
    pub requests_lost: u64,
    /// Availability and latency per span of the method.
    pub spans: Vec<SpanFigures>,
    /// The Redis counter's growth between the first and last reading.
    pub counter_increase: Option<i64>,
    /// 200 answers to `GET /` (background load and probes).
    pub ok_root_responses: u64,
    /// `GET /` requests sent (background load and probes).
    pub root_requests_sent: u64,
    /// Whether ok_root ≤ increase ≤ sent (null when not read).
    pub counter_ok: Option<bool>,
    /// Most and fewest ready replicas seen during the method.
    pub ready_replicas_min: Option<u32>,
    pub ready_replicas_max: Option<u32>,
    pub replicas_max: Option<u32>,
    /// Restarts during the run.
    pub restarts: u32,
    /// CPU the runner itself used during the method, % of one CPU (its
    /// sampling, probes and, when there is one, the background load).
    pub runner_cpu_percent: Option<f64>,
    /// Samples of the background load not kept for per-span figures
    /// (bounded memory); 0 normally.
    pub samples_dropped: u64,
}

/// Background-load figures between two steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpanFigures {
    /// `baseline`, `cut..clear`, `clear..end`.
    pub name: String,
    /// Seconds from the start of the method.
    pub from_s: f64,
    pub to_s: f64,
    pub sent: u64,
    pub answered: u64,
    pub ok: u64,
    pub availability: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// Time series for the report, one point per second from the start of
/// the method (negative before it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timeline {
    /// Seconds from the start of the method.
    pub t: Vec<f64>,
    pub requests_per_s: Vec<f64>,
    pub errors_per_s: Vec<f64>,
    pub p99_ms: Vec<Option<f64>>,
    pub ready_replicas: Vec<Option<f64>>,
    pub replicas: Vec<Option<f64>>,
    /// Step markers.
    pub marks: Vec<Mark>,
    /// Fault spans (from FaultInjected to FaultCleared/FaultExpired, or to
    /// the end).
    pub faults: Vec<FaultSpan>,
    /// Alerts firing.
    pub alerts: Vec<FaultSpan>,
}

/// A step marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mark {
    pub id: String,
    pub action: String,
    pub at_s: f64,
    pub ok: bool,
}

/// A span of time something was active.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultSpan {
    pub name: String,
    pub from_s: f64,
    /// None: still active at the end.
    pub to_s: Option<f64>,
}

impl Journal {
    /// The verdict table printed at the end of a run (the command line's
    /// one table, `chaoslab-output`), in standard output's style.
    pub fn verdict_table(&self) -> String {
        self.verdict_table_styled(Style::stdout())
    }

    /// The verdict table in a given style (plain for files and tests).
    pub fn verdict_table_styled(&self, style: Style) -> String {
        let mut rows = Vec::new();
        for (when, state) in [
            ("before", &self.steady_states.before),
            ("after", &self.steady_states.after),
        ] {
            for p in state.iter().flat_map(|s| &s.probes) {
                rows.push(Verdict {
                    name: format!("steady state {when}: {}", p.activity.name),
                    expected: p.activity.provider.clone(),
                    measured: p.output.clone(),
                    passed: p.status == "succeeded",
                });
            }
        }
        for e in &self.expectations {
            rows.push(Verdict {
                name: e.name.clone(),
                expected: e.expected.clone(),
                measured: e.measured.clone(),
                passed: e.passed,
            });
        }
        verdicts(&rows, style)
    }
}

impl Journal {
    /// The measurements in a few lines (after the verdict table).
    pub fn measurement_lines(&self) -> String {
        let m = &self.measurements;
        let mut out = format!(
            "time to detect {}, time to recover {}, restarts {}, ready replicas {}..{}, runner CPU {}\n",
            units::seconds_or_dash(m.time_to_detect_s),
            units::seconds_or_dash(m.time_to_recover_s),
            m.restarts,
            m.ready_replicas_min.map_or("-".into(), |v| v.to_string()),
            m.ready_replicas_max.map_or("-".into(), |v| v.to_string()),
            m.runner_cpu_percent
                .map_or("-".into(), |c| format!("{c:.1}%")),
        );
        if m.requests_sent > 0 {
            out.push_str(&format!(
                "background load: {} sent, {} answered, {} lost, availability {}, p50 {}, p99 {}\n",
                m.requests_sent,
                m.requests_answered,
                m.requests_lost,
                units::ratio_percent(m.availability),
                units::millis_or_dash(m.p50_ms),
                units::millis_or_dash(m.p99_ms),
            ));
            for s in &m.spans {
                out.push_str(&format!(
                    "  {:<18} {:>6.1}s..{:<6.1}s {:>6} sent  availability {:>8}  p50 {:>6}  p99 {:>6}\n",
                    s.name,
                    s.from_s,
                    s.to_s,
                    s.sent,
                    units::ratio_percent(s.availability),
                    units::millis_or_dash(s.p50_ms),
                    units::millis_or_dash(s.p99_ms),
                ));
            }
        }
        if let Some(inc) = m.counter_increase {
            out.push_str(&format!(
                "counter: +{inc}, {} acknowledged, {} sent: {}\n",
                m.ok_root_responses,
                m.root_requests_sent,
                if m.counter_ok == Some(true) {
                    "no acknowledged write lost"
                } else {
                    "MISMATCH"
                }
            ));
        }
        out
    }

    /// What a run prints when it ends: a blank line, the verdict table,
    /// the measurements and the summary line.
    pub fn end_of_run(&self) -> String {
        format!(
            "\n{}{}{}",
            self.verdict_table(),
            self.measurement_lines(),
            self.summary_line()
        )
    }

    /// One line: `network-cut: completed (6/6 held) in 21.3s`.
    pub fn summary_line(&self) -> String {
        let held = self.expectations.iter().filter(|e| e.passed).count();
        let mut line = format!(
            "{}: {} ({held}/{} expectations held) in {:.1}s",
            self.experiment.name,
            self.status.as_str(),
            self.expectations.len(),
            self.duration
        );
        if !self.reason.is_empty() {
            line.push_str(&format!(" — {}", self.reason));
        }
        line
    }
}
