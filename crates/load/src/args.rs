//! The command line of `chaoslab load` (first stage: raw flags, parsed by
//! clap) and its validation into a `Config` (second stage), so that every
//! mistake is reported before a single request is sent.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Config, LiveMode, Model, Reports};
use crate::error::LoadError;
use crate::parse;
use crate::plan::{MAX_USERS, Plan, Unit, too_many_users};
use crate::scenario::{Scenario, Task, TaskMix};
use crate::threshold::Threshold;

/// Users started per second, at least (one every 17 minutes).
const MIN_SPAWN_RATE: f64 = 0.001;
/// … and at most.
const MAX_SPAWN_RATE: f64 = 100_000.0;

const MODELS: &str = "\
Load models and what they measure:
  closed (--users, --plan \"10,30s;…\", --scenario): Locust's model. Each user
      sends a request, waits for the answer, thinks (--wait), repeats. When the
      server slows down, users send less: the req/s you get is what the server
      sustains for that many users, and latency is the latency each user saw.
  open (--rate 100/s, --plan \"50/s,10s;200/s,1m\"): k6's arrival-rate model.
      Requests start on schedule whatever the answers do, and latency counts
      from the scheduled start, so a stalled server shows as high latency (and
      growing in-flight requests), not as fewer requests: no coordinated
      omission. Use it to measure latency at a given throughput.
  max (--rate max --connections N): N connections back to back, no think
      time: the most the server (and this machine) can do.

Default: the `baseline` scenario against the lab's ingress.
Exit status: 0 when every --threshold holds (or none is given), 1 otherwise.

Examples:
  chaoslab load --users 50 --spawn-rate 5 --run-time 2m --csv out/run
  chaoslab load --scenario chaos --html report.html
  chaoslab load --rate 200/s --run-time 1m --threshold \"p99<500ms\" --threshold \"errors<1%\"
  chaoslab load --plan \"10,30s;50,1m;0,10s\" --wait 1s..3s --json run.json";

/// Arguments of `chaoslab load`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_long_help = MODELS,
    after_help = MODELS,
    args_conflicts_with_subcommands = true
)]
pub struct LoadArgs {
    /// `merge`: add up reports instead of running a load.
    #[command(subcommand)]
    pub command: Option<LoadCommand>,

    /// Base URL of the target (plain HTTP).
    #[arg(
        short = 'H',
        long,
        env = "CHAOSLAB_LOAD_HOST",
        default_value = "http://127.0.0.1:8000"
    )]
    pub host: String,

    /// A ready-made scenario (its plan, task mix and think time); other
    /// flags override its parts.
    #[arg(short = 's', long, value_enum)]
    pub scenario: Option<Scenario>,

    /// Closed model: number of concurrent users.
    #[arg(short = 'u', long, conflicts_with_all = ["rate", "plan"])]
    pub users: Option<u32>,

    /// Users started per second (Locust's spawn rate).
    #[arg(short = 'r', long, default_value_t = 1.0, requires = "users")]
    pub spawn_rate: f64,

    /// Stop after this long (e.g. 30s, 5m, 1h30m). Cuts a plan short or
    /// holds its last step longer. Without it, plain --users/--rate runs
    /// until Ctrl-C.
    #[arg(short = 't', long, value_parser = parse::duration)]
    pub run_time: Option<Duration>,

    /// Think time between a user's tasks: MIN..MAX or a fixed time.
    #[arg(short = 'w', long, value_parser = parse::wait_range)]
    pub wait: Option<parse::WaitRange>,

    /// Staged load: TARGET,DURATION;… Plain targets are users (closed
    /// model), targets like 100/s are arrival rates (open model).
    #[arg(short = 'p', long, conflicts_with = "rate")]
    pub plan: Option<String>,

    /// Open model: constant arrival rate (100/s, 6000/m), or `max` for as
    /// fast as --connections allow.
    #[arg(long)]
    pub rate: Option<String>,

    /// With --rate max: number of connections sending back to back.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,

    /// Open model: most requests in flight at once; beyond it arrivals
    /// wait (their latency still counts from the schedule).
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: u32,

    /// A task: "[WEIGHT] METHOD PATH [JSON BODY]" (repeatable). Replaces the
    /// default mix (GET /health ×3, GET / ×5, GET /chaos/status ×1).
    // The text is `--help`'s: brackets there mean optional, not a link.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long = "task", value_name = "TASK")]
    pub tasks: Vec<String>,

    /// Threads generating load for users (closed model, --rate max), each
    /// with its own event loop, as wrk's -t. Default: half the CPUs, as the
    /// lab's target usually shares this machine.
    #[arg(long)]
    pub threads: Option<usize>,

    /// Per-request timeout (connect, send, whole body). A timeout is a
    /// failure with status 0.
    #[arg(long, value_parser = parse::duration, default_value = "10s")]
    pub timeout: Duration,

    /// At the end, how long requests in flight may finish before they are
    /// abandoned.
    #[arg(long, value_parser = parse::duration, default_value = "5s")]
    pub stop_timeout: Duration,

    /// Write Locust's PREFIX_stats.csv, PREFIX_stats_history.csv,
    /// PREFIX_failures.csv and PREFIX_exceptions.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,

    /// Write the summary as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Pass/fail criterion (repeatable): p95<500ms, p99<1s, avg<200ms,
    /// max<2s, errors<1%, rps>100.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,

    /// Seconds between live lines.
    #[arg(long, value_parser = parse::duration, default_value = "2s")]
    pub live_interval: Duration,

    /// No live lines, only the summary.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// What `chaoslab load` does instead of a run.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LoadCommand {
    /// Add up the `--json` reports of several generators (pods, machines)
    /// into one: latency histograms merged exactly, counts and status codes
    /// summed; prints the summary, writes Locust's CSVs, JSON and HTML of
    /// the whole, and judges --threshold on it.
    #[command(after_help = MERGE_EXAMPLES, after_long_help = MERGE_EXAMPLES)]
    Merge(MergeArgs),
}

const MERGE_EXAMPLES: &str = "\
Examples:
  chaoslab load --rate 100/s -t 1m --json a.json   # on generator A
  chaoslab load --rate 100/s -t 1m --json b.json   # on generator B
  chaoslab load merge a.json b.json --csv out/all --html all.html --threshold \"p99<500ms\"";

/// Arguments of `chaoslab load merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// Reports written by `chaoslab load --json`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Write Locust's PREFIX_stats.csv, PREFIX_stats_history.csv,
    /// PREFIX_failures.csv and PREFIX_exceptions.csv of the whole.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<PathBuf>,

    /// Write the merged report as JSON (mergeable again).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write a self-contained HTML report of the whole.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Pass/fail criterion on the whole (repeatable): p95<500ms, errors<1%…
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
}

impl MergeArgs {
    /// The thresholds, validated.
    pub fn thresholds(&self) -> Result<Vec<Threshold>, LoadError> {
        parse_thresholds(&self.thresholds)
    }

    /// Where to write the merged reports.
    pub fn reports(&self) -> Reports {
        Reports {
            csv: self.csv.clone(),
            json: self.json.clone(),
            html: self.html.clone(),
        }
    }
}

impl LoadArgs {
    /// Validates the flags into a `Config`.
    pub fn into_config(self) -> Result<Config, LoadError> {
        let scenario = self.scenario;
        let mix = self.mix()?;
        let wait = self
            .wait
            .unwrap_or_else(|| scenario.unwrap_or(Scenario::Baseline).wait());
        self.check_timing()?;
        let model = self.model()?;
        if let Model::Open(_) = model
            && self.max_in_flight == 0
        {
            return Err(LoadError::config("--max-in-flight", "must be at least 1"));
        }
        let thresholds = parse_thresholds(&self.thresholds)?;
        let named = self.users.is_none() && self.rate.is_none() && self.plan.is_none();
        Ok(Config {
            host: self.host,
            scenario: scenario.or(named.then_some(Scenario::Baseline)),
            model,
            mix,
            wait,
            timeout: self.timeout,
            stop_timeout: self.stop_timeout,
            max_in_flight: self.max_in_flight as usize,
            threads: self
                .threads
                .unwrap_or_else(crate::config::default_threads)
                .clamp(1, 256),
            live_interval: self.live_interval,
            history_interval: Duration::from_secs(1),
            live: if self.quiet {
                LiveMode::Off
            } else {
                LiveMode::Auto
            },
            reports: Reports {
                csv: self.csv,
                json: self.json,
                html: self.html,
            },
            thresholds,
        })
    }

    /// The requests to send: `--task`s, else the scenario's mix, else the
    /// seed's.
    fn mix(&self) -> Result<TaskMix, LoadError> {
        if self.tasks.is_empty() {
            return Ok(self.scenario.map_or_else(TaskMix::seed, Scenario::mix));
        }
        let tasks = self
            .tasks
            .iter()
            .map(|t| Task::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| LoadError::config("--task", e))?;
        TaskMix::new(tasks).map_err(|e| LoadError::config("--task", e))
    }

    /// `--timeout`, `--live-interval` and `--run-time` within their bounds.
    fn check_timing(&self) -> Result<(), LoadError> {
        if self.timeout.is_zero() {
            return Err(LoadError::config("--timeout", "must be more than 0"));
        }
        if self.live_interval < Duration::from_millis(100) {
            return Err(LoadError::config(
                "--live-interval",
                "must be at least 100ms",
            ));
        }
        if self.run_time.is_some_and(|d| d.is_zero()) {
            return Err(LoadError::config("--run-time", "must be more than 0"));
        }
        Ok(())
    }

    /// The load model from `--users`, `--rate`, `--plan` or the scenario
    /// (first given wins), ending at `--run-time` if given.
    fn model(&self) -> Result<Model, LoadError> {
        let end = self.run_time;
        if let Some(users) = self.users {
            return self.closed_model(users);
        }
        if let Some(rate) = &self.rate {
            return self.rate_model(rate);
        }
        if let Some(text) = &self.plan {
            let plan = Plan::parse(text)
                .map_err(|e| LoadError::config("--plan", e))?
                .with_end(end);
            return Ok(match plan.unit {
                Unit::Users => Model::Closed(plan),
                Unit::Rate => Model::Open(plan),
            });
        }
        Ok(Model::Closed(
            self.scenario
                .unwrap_or(Scenario::Baseline)
                .plan()
                .with_end(end),
        ))
    }

    /// `--users N`: ramp up at `--spawn-rate`, then hold.
    fn closed_model(&self, users: u32) -> Result<Model, LoadError> {
        if users == 0 {
            return Err(LoadError::config("--users", "must be at least 1"));
        }
        if users > MAX_USERS {
            return Err(LoadError::config("--users", too_many_users(users)));
        }
        if !(MIN_SPAWN_RATE..=MAX_SPAWN_RATE).contains(&self.spawn_rate) {
            return Err(LoadError::config(
                "--spawn-rate",
                format!(
                    "must be from {MIN_SPAWN_RATE} to {MAX_SPAWN_RATE} users per second, not {}",
                    self.spawn_rate
                ),
            ));
        }
        let ramp = Duration::from_secs_f64(f64::from(users) / self.spawn_rate);
        Ok(Model::Closed(Plan::ramp_and_hold(
            Unit::Users,
            f64::from(users),
            ramp,
            self.run_time,
        )))
    }

    /// `--rate max` (as fast as `--connections` allow) or `--rate R/s`
    /// (open model).
    fn rate_model(&self, rate: &str) -> Result<Model, LoadError> {
        let end = self.run_time;
        if rate.trim() == "max" {
            if self.connections == 0 {
                return Err(LoadError::config("--connections", "must be at least 1"));
            }
            if self.connections > MAX_USERS {
                return Err(LoadError::config(
                    "--connections",
                    too_many_users(self.connections),
                ));
            }
            let n = f64::from(self.connections);
            return Ok(Model::Max(Plan::ramp_and_hold(
                Unit::Users,
                n,
                Duration::ZERO,
                end,
            )));
        }
        let per_sec = parse::rate(rate).map_err(|e| LoadError::config("--rate", e))?;
        if per_sec <= 0.0 {
            return Err(LoadError::config("--rate", "must be more than 0"));
        }
        Ok(Model::Open(Plan::ramp_and_hold(
            Unit::Rate,
            per_sec,
            Duration::ZERO,
            end,
        )))
    }
}

/// `--threshold` expressions, validated.
fn parse_thresholds(exprs: &[String]) -> Result<Vec<Threshold>, LoadError> {
    exprs
        .iter()
        .map(|t| Threshold::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| LoadError::config("--threshold", e))
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
