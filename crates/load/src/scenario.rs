//! What users do: tasks (one HTTP request each, with a weight and the
//! failure rules of the seed's locustfile) and the named scenarios that
//! bundle a task mix, a think time and a load plan.

use std::time::Duration;

use bytes::Bytes;
use http::Method;

use crate::parse::WaitRange;
use crate::plan::{Plan, Step, Unit};

/// Extra verdict on a response beyond "2xx is success".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The status code alone decides.
    Status,
    /// A health endpoint: a JSON body whose `status` is `"unhealthy"` is a
    /// failure even with a 2xx code (the seed's locustfile rule).
    Health,
}

/// One kind of request a user may pick.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Task {
    /// HTTP method.
    #[serde(serialize_with = "ser_method")]
    pub method: Method,
    /// Path and query, e.g. `/chaos/status`.
    pub path: String,
    /// JSON body sent with the request, if any.
    #[serde(skip)]
    pub body: Option<Bytes>,
    /// Relative frequency (Locust's `@task(weight)`).
    pub weight: u32,
    /// Non-2xx status codes that still count as success (e.g. 409 for
    /// "a chaos load is already running").
    pub accept: Vec<u16>,
    /// Extra body check.
    pub check: Check,
}

fn ser_method<S: serde::Serializer>(m: &Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

impl Task {
    /// A `GET` of `path` with `weight`; health paths get the health check.
    pub fn get(path: &str, weight: u32) -> Self {
        let check = if matches!(path, "/health" | "/readyz") {
            Check::Health
        } else {
            Check::Status
        };
        Self {
            method: Method::GET,
            path: path.to_owned(),
            body: None,
            weight,
            accept: Vec::new(),
            check,
        }
    }

    /// Parses `--task "[WEIGHT] METHOD PATH [JSON BODY]"`, e.g.
    /// `"5 GET /"` or `"1 POST /chaos/load {\"level\":\"low\"}"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut words = text.trim().splitn(2, char::is_whitespace);
        let first = words.next().unwrap_or_default();
        let (weight, rest) = match first.parse::<u32>() {
            Ok(w) => (w, words.next().unwrap_or_default().trim_start()),
            Err(_) => (1, text.trim()),
        };
        let mut words = rest.splitn(3, char::is_whitespace);
        let method = words.next().unwrap_or_default();
        let path = words.next().unwrap_or_default();
        let body = words.next().map(str::trim).filter(|b| !b.is_empty());
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`{text}`: `{method}` is not an HTTP method"))?;
        if !path.starts_with('/') {
            return Err(format!("`{text}`: expected [WEIGHT] METHOD /PATH [BODY]"));
        }
        if weight == 0 {
            return Err(format!("`{text}`: a weight must be at least 1"));
        }
        let mut task = Self::get(path, weight);
        task.method = method;
        task.body = body.map(|b| Bytes::copy_from_slice(b.as_bytes()));
        Ok(task)
    }

    /// The name of its row in the stats: `GET /health`.
    pub fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// The tasks and their weights; picks one at random by weight.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TaskMix {
    /// The tasks, in the order their stats rows appear.
    pub tasks: Vec<Task>,
    #[serde(skip)]
    cumulative: Vec<u32>,
}

impl TaskMix {
    /// A mix of `tasks` (at least one, weights ≥ 1).
    pub fn new(tasks: Vec<Task>) -> Result<Self, String> {
        if tasks.is_empty() {
            return Err("no task to run".into());
        }
        let mut sum = 0u32;
        let mut cumulative = Vec::with_capacity(tasks.len());
        for t in &tasks {
            sum = sum
                .checked_add(t.weight.max(1))
                .ok_or("task weights are too large")?;
            cumulative.push(sum);
        }
        Ok(Self { tasks, cumulative })
    }

    /// The seed's locustfile: `GET /health` ×3, `GET /` ×5,
    /// `GET /chaos/status` ×1.
    pub fn seed() -> Self {
        Self::from_known(vec![
            Task::get("/health", 3),
            Task::get("/", 5),
            Task::get("/chaos/status", 1),
        ])
    }

    fn from_known(tasks: Vec<Task>) -> Self {
        let mut cumulative = Vec::with_capacity(tasks.len());
        let mut sum = 0;
        for t in &tasks {
            sum += t.weight;
            cumulative.push(sum);
        }
        Self { tasks, cumulative }
    }

    /// Index of a task drawn by weight from `roll` in `0..total_weight()`.
    pub fn pick(&self, roll: u32) -> usize {
        self.cumulative
            .partition_point(|&c| c <= roll)
            .min(self.tasks.len() - 1)
    }

    /// Sum of the weights.
    pub fn total_weight(&self) -> u32 {
        self.cumulative.last().copied().unwrap_or(1)
    }
}

/// Named, ready-made load tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// 10 users for 5 minutes with the seed's task mix and 1–3 s think time.
    Baseline,
    /// Ramp to 300 users over 5 minutes, hold 2 minutes, ramp down.
    Stress,
    /// 10 users, a sudden jump to 200 for a minute, back to 10.
    Spike,
    /// 50 users for an hour: leaks, slow drifts, connection churn.
    Soak,
    /// Baseline traffic at 20 users that also posts `/chaos/load` now and
    /// then (a 409 "already running" counts as success).
    Chaos,
}

impl Scenario {
    /// The plan of users over time.
    pub fn plan(self) -> Plan {
        let s = |target: f64, secs: u64| Step {
            target,
            over: Duration::from_secs(secs),
        };
        let steps = match self {
            Self::Baseline => vec![s(10.0, 5), s(10.0, 295)],
            Self::Stress => vec![s(300.0, 300), s(300.0, 120), s(0.0, 30)],
            Self::Spike => vec![
                s(10.0, 5),
                s(10.0, 55),
                s(200.0, 10),
                s(200.0, 60),
                s(10.0, 10),
                s(10.0, 60),
            ],
            Self::Soak => vec![s(50.0, 60), s(50.0, 3540)],
            Self::Chaos => vec![s(20.0, 10), s(20.0, 590)],
        };
        let end = steps.iter().map(|s| s.over).sum();
        Plan {
            unit: Unit::Users,
            steps,
            end: Some(end),
        }
    }

    /// The task mix.
    pub fn mix(self) -> TaskMix {
        match self {
            Self::Chaos => {
                let mut tasks = vec![
                    Task::get("/health", 30),
                    Task::get("/", 50),
                    Task::get("/chaos/status", 10),
                ];
                tasks.push(Task {
                    method: Method::POST,
                    path: "/chaos/load".into(),
                    body: Some(Bytes::from_static(
                        br#"{"level":"low","duration_seconds":20}"#,
                    )),
                    weight: 1,
                    accept: vec![409],
                    check: Check::Status,
                });
                TaskMix::from_known(tasks)
            }
            _ => TaskMix::seed(),
        }
    }

    /// Think time between tasks: the seed's `between(1, 3)`.
    pub fn wait(self) -> WaitRange {
        WaitRange {
            min: Duration::from_secs(1),
            max: Duration::from_secs(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_weight() {
        let mix = TaskMix::seed();
        assert_eq!(mix.total_weight(), 9);
        let picks: Vec<usize> = (0..9).map(|r| mix.pick(r)).collect();
        assert_eq!(picks, vec![0, 0, 0, 1, 1, 1, 1, 1, 2]);
    }

    #[test]
    fn parses_tasks() {
        let t = Task::parse("5 GET /").expect("task");
        assert_eq!(
            (t.weight, t.method.as_str(), t.path.as_str()),
            (5, "GET", "/")
        );
        let t = Task::parse(r#"post /chaos/load {"level": "low"}"#).expect("task");
        assert_eq!(t.method, Method::POST);
        assert_eq!(t.body.as_deref(), Some(&br#"{"level": "low"}"#[..]));
        assert_eq!(
            Task::parse("GET /health").expect("task").check,
            Check::Health
        );
        assert!(Task::parse("GET health").is_err());
        assert!(Task::parse("0 GET /").is_err());
    }

    #[test]
    fn scenarios_are_sane() {
        for s in [
            Scenario::Baseline,
            Scenario::Stress,
            Scenario::Spike,
            Scenario::Soak,
            Scenario::Chaos,
        ] {
            let plan = s.plan();
            assert!(plan.peak() >= 10.0);
            assert!(plan.end.is_some());
            assert!(s.mix().total_weight() > 0);
        }
        assert_eq!(
            Scenario::Baseline.plan().end,
            Some(Duration::from_secs(300))
        );
        assert_eq!(Scenario::Stress.plan().peak(), 300.0);
    }
}
