//! Helpers shared by the load generator's component tests: build configs
//! against a `TestServer` and run them without a terminal.

#![allow(dead_code)]

use std::time::Duration;

use chaoslab_load::{Config, Model, Plan, Report, Task, TaskMix, Unit, WaitRange};

/// A closed-model config: `users` users with no think time for `secs`.
pub fn closed(url: &str, users: u32, run: Duration, tasks: &[&str]) -> Config {
    let plan = Plan::ramp_and_hold(Unit::Users, f64::from(users), Duration::ZERO, Some(run));
    let mut config = Config::new(url, Model::Closed(plan));
    config.mix = mix(tasks);
    config.wait = WaitRange::ZERO;
    config
}

/// An open-model config at `rate` per second for `run`.
pub fn open(url: &str, rate: f64, run: Duration, tasks: &[&str]) -> Config {
    let plan = Plan::ramp_and_hold(Unit::Rate, rate, Duration::ZERO, Some(run));
    let mut config = Config::new(url, Model::Open(plan));
    config.mix = mix(tasks);
    config
}

/// A task mix from `--task` texts.
pub fn mix(tasks: &[&str]) -> TaskMix {
    TaskMix::new(
        tasks
            .iter()
            .map(|t| Task::parse(t).expect("task"))
            .collect(),
    )
    .expect("mix")
}

/// Runs `config` to its end with no live output, within `limit`.
pub async fn run(config: &Config, limit: Duration) -> Report {
    tokio::time::timeout(
        limit,
        chaoslab_load::run(config, std::future::pending(), |_| {}),
    )
    .await
    .expect("the run ends within its limit")
    .expect("the run succeeds")
}

/// The row of `path` in `report`.
pub fn row<'a>(report: &'a Report, path: &str) -> &'a chaoslab_load::EndpointReport {
    report
        .endpoints
        .iter()
        .find(|e| e.name == path)
        .unwrap_or_else(|| panic!("no row for {path}"))
}
