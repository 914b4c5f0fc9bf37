//! The validated experiment: what the runner executes. Everything here was
//! checked by [`crate::format`] (durations parsed, step ids resolved,
//! actions and probes understood), so the runner never meets bad input.

use std::time::Duration;

use chaoslab_lab::FileConfig;

use crate::probe::Probe;

/// One experiment, ready to run.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Short name: the built-in's name or the file's stem.
    pub name: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// How long the method phase lasts at least (background load included).
    pub duration: Option<Duration>,
    /// The lab the experiment starts (its `chaoslab.toml`).
    pub lab: LabPlan,
    /// Background load for the whole run.
    pub load: Option<LoadPlan>,
    /// Checked before the method and again after the rollbacks.
    pub steady_state: Vec<Check>,
    /// Steps at offsets from the start of the method.
    pub method: Vec<Step>,
    /// What must be observed while the method runs.
    pub expect: Vec<Expectation>,
    /// Run after the method whatever happened.
    pub rollback: Vec<Action>,
}

/// The lab an experiment starts.
#[derive(Debug, Clone)]
pub struct LabPlan {
    /// `chaoslab.toml` for the experiment's lab (free ports unless set).
    pub file: FileConfig,
}

/// Background load: the keys of `chaoslab load`, as its flags.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// `--key value` arguments of `chaoslab load` (without `--host`).
    pub args: Vec<String>,
}

/// A named probe that must hold (steady-state hypothesis).
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub probe: Probe,
}

/// A step of the method.
#[derive(Debug, Clone)]
pub struct Step {
    /// The id expectations refer to (`step-N` when the file gives none).
    pub id: String,
    /// Offset from the start of the method; a step starts at its offset or
    /// when the previous one finished, whichever is later.
    pub at: Duration,
    pub action: Action,
}

/// What a step or a rollback does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A `chaoslab` command line (fault, chaos, deploy, revisions, load), run
    /// against the experiment's lab; `load` runs in the background.
    Cli(Vec<String>),
    /// Do nothing for a while.
    Wait(Duration),
    /// An HTTP request to the lab's ingress (Chaos Toolkit `http` actions).
    Http {
        method: String,
        path: String,
        body: Option<String>,
        timeout: Duration,
    },
    /// Any program (Chaos Toolkit `process` actions).
    Process {
        path: String,
        args: Vec<String>,
        timeout: Duration,
    },
}

impl Action {
    /// The action as one line, for reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Cli(words) => words.join(" "),
            Self::Wait(d) => format!("wait {}", chaoslab_load::format_duration(*d)),
            Self::Http { method, path, .. } => format!("http {method} {path}"),
            Self::Process { path, args, .. } => {
                let mut line = path.clone();
                for a in args {
                    line.push(' ');
                    line.push_str(a);
                }
                line
            }
        }
    }

    /// Whether this action takes a fault away (its expectations measure
    /// recovery, not detection).
    pub fn is_clearing(&self) -> bool {
        let Self::Cli(words) = self else {
            return false;
        };
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        matches!(
            w.as_slice(),
            ["fault", "clear", ..]
                | ["fault", "network", "clear", ..]
                | ["fault", "auth", "restore", ..]
                | ["fault", "redis", "start", ..]
                | ["revisions", "activate", ..]
        )
    }
}

/// When an expectation is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Window {
    /// From the start of step `step`, the probe must hold within `within`
    /// (and stay held for `sustained` when given).
    After {
        step: String,
        within: Option<Duration>,
        sustained: Option<Duration>,
    },
    /// At every observation from the start of `from` to the start of `to`
    /// (`to` = None: to the end of the method).
    During { from: String, to: Option<String> },
    /// Over the whole run.
    WholeRun,
}

/// Something that must be observed.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub name: String,
    pub window: Window,
    pub probe: Probe,
}
