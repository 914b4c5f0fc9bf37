//! Load shapes as data (goose's test plans): a plan is a list of steps,
//! each moving the load linearly from the previous target to its own
//! target over its duration. The same plan drives users (closed model) or
//! an arrival rate (open model); only the unit of the target differs.
//!
//! `--plan "10,30s;50,1m;0,10s"`: start 10 users over 30 s, grow to 50 over
//! one minute, stop them all over 10 s. `--plan "50/s,10s;200/s,1m"`: ramp
//! the arrival rate to 50 requests per second in 10 s, then to 200/s.

use std::time::Duration;

use crate::parse;

/// Most users (or `--rate max` connections) one generator runs: each
/// holds a task and a connection, and a typo's extra digits would exhaust
/// memory or file descriptors before saying anything.
pub const MAX_USERS: u32 = 100_000;

/// The error for `users` over [`MAX_USERS`].
pub fn too_many_users(users: u32) -> String {
    format!(
        "{users} users is more than one generator runs ({MAX_USERS}, each with a connection); run several and add up their reports with `chaoslab load merge`"
    )
}

/// What the targets of a plan count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Concurrent users, each looping task → think time (closed model).
    Users,
    /// Requests started per second, whatever the responses do (open model).
    Rate,
}

/// One step: move to `target` over `over` (0 = at once).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Step {
    /// Users, or requests per second, at the end of the step.
    pub target: f64,
    /// How long the linear move to `target` takes.
    #[serde(serialize_with = "ser_duration")]
    pub over: Duration,
}

/// A load shape: steps from zero, then an optional end.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Plan {
    /// Users or requests per second.
    pub unit: Unit,
    /// The steps, in order, starting from a load of zero.
    pub steps: Vec<Step>,
    /// When the run stops. After the last step the last target holds until
    /// then; `None` = until interrupted (Locust without `--run-time`).
    #[serde(serialize_with = "ser_opt_duration")]
    pub end: Option<Duration>,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

impl Plan {
    /// Parses `TARGET,DURATION;…`. Targets ending in `/s` (or `/m`) are
    /// rates; plain numbers are users. Mixing both is an error. The run
    /// ends with the last step.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut unit = None;
        let mut steps = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (target, over) = part
                .split_once(',')
                .ok_or_else(|| format!("step `{part}` is not TARGET,DURATION (e.g. 10,30s)"))?;
            let target = target.trim();
            let (this_unit, value) = if target.contains('/') {
                (Unit::Rate, parse::rate(target)?)
            } else {
                let users: u32 = target
                    .parse()
                    .map_err(|_| format!("`{target}` is not a number of users or a rate (50/s)"))?;
                if users > MAX_USERS {
                    return Err(too_many_users(users));
                }
                (Unit::Users, f64::from(users))
            };
            if unit.is_some_and(|u| u != this_unit) {
                return Err("a plan counts either users or a rate (…/s), not both".into());
            }
            unit = Some(this_unit);
            steps.push(Step {
                target: value,
                over: parse::duration(over)?,
            });
        }
        let unit = unit.ok_or("empty plan")?;
        let mut plan = Self {
            unit,
            steps,
            end: None,
        };
        plan.end = Some(plan.steps_length());
        Ok(plan)
    }

    /// `target` reached in `ramp` (Locust's users/spawn rate, or a rate),
    /// then held until `end`.
    pub fn ramp_and_hold(unit: Unit, target: f64, ramp: Duration, end: Option<Duration>) -> Self {
        Self {
            unit,
            steps: vec![Step { target, over: ramp }],
            end,
        }
    }

    /// The same plan with its end moved: `--run-time` cuts a plan short or
    /// holds its last target longer.
    pub fn with_end(mut self, end: Option<Duration>) -> Self {
        if end.is_some() {
            self.end = end;
        }
        self
    }

    /// Total length of the steps (the end may be later or earlier).
    pub fn steps_length(&self) -> Duration {
        self.steps.iter().map(|s| s.over).sum()
    }

    /// The highest target any step reaches.
    pub fn peak(&self) -> f64 {
        self.steps.iter().map(|s| s.target).fold(0.0, f64::max)
    }

    /// The load wanted `elapsed` after the start, or `None` once the plan
    /// has ended.
    pub fn target_at(&self, elapsed: Duration) -> Option<f64> {
        if self.end.is_some_and(|end| elapsed >= end) {
            return None;
        }
        let mut from = 0.0;
        let mut start = Duration::ZERO;
        for step in &self.steps {
            let stop = start + step.over;
            if elapsed < stop {
                let frac = (elapsed - start).as_secs_f64() / step.over.as_secs_f64();
                return Some(from + (step.target - from) * frac);
            }
            from = step.target;
            start = stop;
        }
        Some(from)
    }

    /// Human form, e.g. `10 users over 30s; 50 users over 1m; until 2m`.
    pub fn describe(&self) -> String {
        let unit = match self.unit {
            Unit::Users => " users",
            Unit::Rate => "/s",
        };
        let mut parts: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                let t = if self.unit == Unit::Users {
                    format!("{}", s.target.round())
                } else {
                    format!("{}", (s.target * 100.0).round() / 100.0)
                };
                if s.over.is_zero() {
                    format!("{t}{unit}")
                } else {
                    format!("{t}{unit} over {}", parse::format_duration(s.over))
                }
            })
            .collect();
        match self.end {
            Some(end) => parts.push(format!("end at {}", parse::format_duration(end))),
            None => parts.push("until Ctrl-C".into()),
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn users_plan_interpolates() {
        let plan = Plan::parse("10,30s;50,1m;0,10s").expect("plan");
        assert_eq!(plan.unit, Unit::Users);
        assert_eq!(plan.end, Some(secs(100)));
        assert_eq!(plan.target_at(secs(0)), Some(0.0));
        assert_eq!(plan.target_at(secs(15)), Some(5.0));
        assert_eq!(plan.target_at(secs(30)), Some(10.0));
        assert_eq!(plan.target_at(secs(60)), Some(30.0));
        assert_eq!(plan.target_at(secs(95)), Some(25.0));
        assert_eq!(plan.target_at(secs(100)), None);
    }

    #[test]
    fn rate_plan_and_mixing() {
        let plan = Plan::parse("50/s,0s;200/s,10s").expect("plan");
        assert_eq!(plan.unit, Unit::Rate);
        assert_eq!(plan.target_at(secs(0)), Some(50.0));
        assert_eq!(plan.target_at(secs(5)), Some(125.0));
        assert!(Plan::parse("10,1s;5/s,1s").is_err());
        assert!(Plan::parse("10").is_err());
        assert!(Plan::parse("").is_err());
    }

    #[test]
    fn end_extends_or_cuts() {
        let plan = Plan::parse("10,10s").expect("plan");
        let longer = plan.clone().with_end(Some(secs(60)));
        assert_eq!(longer.target_at(secs(59)), Some(10.0));
        let shorter = plan.with_end(Some(secs(5)));
        assert_eq!(shorter.target_at(secs(5)), None);
        let forever = Plan::ramp_and_hold(Unit::Users, 3.0, secs(3), None);
        assert_eq!(forever.target_at(secs(100_000)), Some(3.0));
        assert!(forever.describe().contains("until Ctrl-C"));
    }
}
