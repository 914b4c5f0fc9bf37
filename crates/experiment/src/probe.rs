//! Probes: what an experiment looks at. Four kinds, each written as an
//! inline TOML table (`probe = { http = "/", status = 200 }`):
//!
//! - `http`: a request to the lab's ingress with its own short timeout (a
//!   hung replica cannot hide a detection), judged on status, a JSON body
//!   field (`field` + `equals`/`contains`), body text and latency;
//! - `event`: a lab event (`reason` as `chaoslab events --json` prints it)
//!   with optional `data` fields and subject;
//! - `metric`: a lab or background-load figure compared with a number,
//!   optionally averaged over a window;
//! - `log`: a replica's log line containing a text;
//! - `invariant = "counter"`: no acknowledged increment of the service's
//!   Redis counter lost.
//!
//! Parsing lives here; observing lives in [`crate::observe`].

use std::time::Duration;

use serde_json::Value;

/// A parsed probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Http(HttpProbe),
    Event(EventProbe),
    Metric(MetricProbe),
    /// A replica logged a line containing this text.
    Log(LogProbe),
    /// The Redis counter grew by at least the acknowledged `GET /` and at
    /// most the sent ones.
    Counter,
}

/// Whether a request increments the service's visit counter: a `GET` of
/// `/` with or without a query, or a `HEAD` (axum answers it with the `GET`
/// handler). The counter check brackets the counter's increase by these,
/// whether the load or a probe sent them.
pub(crate) fn visits_the_counter(method: &str, path: &str) -> bool {
    matches!(method, "GET" | "HEAD") && (path == "/" || path.starts_with("/?"))
}

/// `{ http = "/health", status = 200, field = "status", equals = "healthy" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub status: Option<u16>,
    /// Dotted path into the JSON body (`redis.connected`).
    pub field: Option<String>,
    /// The field (or the whole JSON body) equals this.
    pub equals: Option<Value>,
    /// The field's text (or the body's) contains this.
    pub contains: Option<String>,
    pub latency_below: Option<Duration>,
    pub timeout: Duration,
}

/// `{ event = "Restarted", data = { cause = "liveness" } }`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventProbe {
    pub reason: String,
    /// Each key must equal the event's `data` field.
    pub data: serde_json::Map<String, Value>,
    /// The event's subject contains this.
    pub subject: Option<String>,
    /// The event's message contains this.
    pub message: Option<String>,
}

/// `{ log = "after one credential refresh", replica = "chaoslab--" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogProbe {
    /// Text the line contains.
    pub text: String,
    /// The replica's id contains this.
    pub replica: Option<String>,
}

/// `{ metric = "ready_replicas", at_least = 1, window = "3s" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricProbe {
    pub metric: Metric,
    pub cmp: Cmp,
    pub value: f64,
    /// Averaged over this much of the recent past (default: latest value;
    /// for load figures, the last second).
    pub window: Option<Duration>,
}

/// Figures a metric probe can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Replicas of the active revision.
    Replicas,
    /// Ready replicas of the active revision.
    ReadyReplicas,
    /// Restarts of all replicas so far.
    Restarts,
    /// Highest CPU utilisation of a replica, % of its CPU request.
    ReplicaCpu,
    /// Highest RSS of a replica, MiB.
    ReplicaMemoryMb,
    /// Failed requests of the background load, %.
    ErrorRate,
    /// Successful requests of the background load, %.
    Availability,
    /// Background load latency percentiles, ms.
    P50Ms,
    P99Ms,
    /// Background load answers per second.
    Rps,
}

/// Names in files, with their metric.
pub const METRICS: &[(&str, Metric)] = &[
    ("replicas", Metric::Replicas),
    ("ready_replicas", Metric::ReadyReplicas),
    ("restarts", Metric::Restarts),
    ("replica_cpu", Metric::ReplicaCpu),
    ("replica_memory_mb", Metric::ReplicaMemoryMb),
    ("error_rate", Metric::ErrorRate),
    ("availability", Metric::Availability),
    ("p50_ms", Metric::P50Ms),
    ("p99_ms", Metric::P99Ms),
    ("rps", Metric::Rps),
];

impl Metric {
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// Whether it is measured on the background load (not the lab).
    pub fn from_load(self) -> bool {
        matches!(
            self,
            Self::ErrorRate | Self::Availability | Self::P50Ms | Self::P99Ms | Self::Rps
        )
    }
}

/// How a metric is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Above,
    Below,
    AtLeast,
    AtMost,
    Equals,
}

const CMPS: &[(&str, Cmp, &str)] = &[
    ("above", Cmp::Above, ">"),
    ("below", Cmp::Below, "<"),
    ("at_least", Cmp::AtLeast, "≥"),
    ("at_most", Cmp::AtMost, "≤"),
    ("equals", Cmp::Equals, "="),
];

impl Cmp {
    pub fn holds(self, measured: f64, bound: f64) -> bool {
        match self {
            Self::Above => measured > bound,
            Self::Below => measured < bound,
            Self::AtLeast => measured >= bound,
            Self::AtMost => measured <= bound,
            Self::Equals => (measured - bound).abs() < 1e-9,
        }
    }

    pub fn symbol(self) -> &'static str {
        CMPS.iter().find(|c| c.1 == self).map_or("?", |c| c.2)
    }
}

impl Probe {
    /// What the probe expects, in words (the verdict table's "expected").
    pub fn expected(&self) -> String {
        match self {
            Self::Http(h) => {
                let mut parts = vec![format!("{} {}", h.method, h.path)];
                if let Some(s) = h.status {
                    parts.push(format!("status {s}"));
                }
                let target = h.field.as_deref().unwrap_or("body");
                if let Some(v) = &h.equals {
                    parts.push(format!("{target} = {v}"));
                }
                if let Some(c) = &h.contains {
                    parts.push(format!("{target} contains {c:?}"));
                }
                if let Some(l) = h.latency_below {
                    parts.push(format!("latency < {}", fmt_ms(l)));
                }
                parts.join(", ")
            }
            Self::Event(e) => {
                let mut text = format!("event {}", e.reason);
                if !e.data.is_empty() {
                    text.push_str(&format!(" {}", Value::Object(e.data.clone())));
                }
                if let Some(s) = &e.subject {
                    text.push_str(&format!(" on {s}"));
                }
                if let Some(m) = &e.message {
                    text.push_str(&format!(" saying {m:?}"));
                }
                text
            }
            Self::Metric(m) => {
                let mut text = format!("{} {} {}", m.metric.name(), m.cmp.symbol(), m.value);
                if let Some(w) = m.window {
                    text.push_str(&format!(" over {}", chaoslab_load::format_duration(w)));
                }
                text
            }
            Self::Log(l) => match &l.replica {
                Some(r) => format!("log line on {r} containing {:?}", l.text),
                None => format!("log line containing {:?}", l.text),
            },
            Self::Counter => "counter: 200s to / ≤ increase ≤ sent to /".into(),
        }
    }
}

fn fmt_ms(d: Duration) -> String {
    chaoslab_load::format_duration(d)
}

/// Parses the inline table of a probe. Errors name the key at fault.
pub fn parse(table: &toml::Table) -> Result<Probe, (String, String)> {
    let kinds = ["http", "event", "metric", "log", "invariant"];
    let present: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| table.contains_key(*k))
        .collect();
    match present.as_slice() {
        ["http"] => parse_http(table).map(Probe::Http),
        ["event"] => parse_event(table).map(Probe::Event),
        ["metric"] => parse_metric(table).map(Probe::Metric),
        ["log"] => {
            check_keys(table, &["log", "replica"])?;
            let text = string(table, "log")?.unwrap_or_default();
            if text.is_empty() {
                return Err((
                    "log".into(),
                    "the text to look for must not be empty".into(),
                ));
            }
            Ok(Probe::Log(LogProbe {
                text,
                replica: string(table, "replica")?,
            }))
        }
        ["invariant"] => {
            check_keys(table, &["invariant"])?;
            match table["invariant"].as_str() {
                Some("counter") => Ok(Probe::Counter),
                _ => Err((
                    "invariant".into(),
                    "the only invariant is \"counter\"".into(),
                )),
            }
        }
        [] => Err((
            "probe".into(),
            "a probe needs one of http, event, metric, log or invariant".into(),
        )),
        _ => Err((
            "probe".into(),
            format!("one kind per probe, not {}", present.join(" and ")),
        )),
    }
}

fn check_keys(table: &toml::Table, allowed: &[&str]) -> Result<(), (String, String)> {
    for key in table.keys() {
        if !allowed.contains(&key.as_str()) {
            let hint = crate::spelling::closest(key, allowed)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            return Err((
                key.clone(),
                format!(
                    "unknown probe key `{key}`{hint}; valid: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn string(table: &toml::Table, key: &str) -> Result<Option<String>, (String, String)> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err((
            key.into(),
            format!("must be a string, not {}", other.type_str()),
        )),
    }
}

fn duration(table: &toml::Table, key: &str) -> Result<Option<Duration>, (String, String)> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => chaoslab_load::parse_duration(s)
            .map(Some)
            .map_err(|e| (key.into(), e)),
        Some(toml::Value::Integer(n)) if *n >= 0 => Ok(Some(Duration::from_secs(*n as u64))),
        Some(other) => Err((
            key.into(),
            format!(
                "must be a duration such as \"500ms\" or \"5s\", not {}",
                other.type_str()
            ),
        )),
    }
}

fn parse_http(t: &toml::Table) -> Result<HttpProbe, (String, String)> {
    check_keys(
        t,
        &[
            "http",
            "method",
            "body",
            "status",
            "field",
            "equals",
            "contains",
            "latency_below",
            "timeout",
        ],
    )?;
    let path = string(t, "http")?.unwrap_or_default();
    if !path.starts_with('/') {
        return Err((
            "http".into(),
            format!("`{path}` must be a path on the ingress, starting with /"),
        ));
    }
    let method = string(t, "method")?
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    if !["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"].contains(&method.as_str()) {
        return Err(("method".into(), format!("unknown HTTP method `{method}`")));
    }
    let status = match t.get("status") {
        None => None,
        Some(toml::Value::Integer(n)) if (100..=599).contains(n) => Some(*n as u16),
        Some(_) => {
            return Err((
                "status".into(),
                "must be an HTTP status between 100 and 599".into(),
            ));
        }
    };
    let equals = t.get("equals").map(toml_to_json);
    let contains = string(t, "contains")?;
    let field = string(t, "field")?;
    if field.is_some() && equals.is_none() && contains.is_none() {
        return Err((
            "field".into(),
            "a field needs `equals` or `contains` to compare with".into(),
        ));
    }
    let timeout = duration(t, "timeout")?.unwrap_or(Duration::from_secs(1));
    if timeout.is_zero() || timeout > Duration::from_secs(60) {
        return Err(("timeout".into(), "must be between 1ms and 60s".into()));
    }
    Ok(HttpProbe {
        method,
        path,
        body: string(t, "body")?,
        status,
        field,
        equals,
        contains,
        latency_below: duration(t, "latency_below")?,
        timeout,
    })
}

fn parse_event(t: &toml::Table) -> Result<EventProbe, (String, String)> {
    check_keys(t, &["event", "data", "subject", "message"])?;
    let reason = string(t, "event")?.unwrap_or_default();
    if reason.is_empty() || !reason.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err((
            "event".into(),
            format!("`{reason}` is not an event reason (CamelCase, e.g. Restarted)"),
        ));
    }
    let data = match t.get("data") {
        None => serde_json::Map::new(),
        Some(toml::Value::Table(d)) => match toml_to_json(&toml::Value::Table(d.clone())) {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
        Some(_) => {
            return Err((
                "data".into(),
                "must be a table, e.g. data = { cause = \"liveness\" }".into(),
            ));
        }
    };
    Ok(EventProbe {
        reason,
        data,
        subject: string(t, "subject")?,
        message: string(t, "message")?,
    })
}

fn parse_metric(t: &toml::Table) -> Result<MetricProbe, (String, String)> {
    let mut allowed = vec!["metric", "window"];
    allowed.extend(CMPS.iter().map(|c| c.0));
    check_keys(t, &allowed)?;
    let name = string(t, "metric")?.unwrap_or_default();
    let Some(metric) = METRICS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m) else {
        let names: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
        let hint = crate::spelling::closest(&name, &names)
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        return Err((
            "metric".into(),
            format!("unknown metric `{name}`{hint}; valid: {}", names.join(", ")),
        ));
    };
    let given: Vec<(Cmp, f64)> = CMPS
        .iter()
        .filter_map(|(key, cmp, _)| {
            t.get(*key).map(|v| match v {
                toml::Value::Integer(n) => Ok((*cmp, *n as f64)),
                toml::Value::Float(f) if f.is_finite() => Ok((*cmp, *f)),
                _ => Err(((*key).to_string(), "must be a number".to_string())),
            })
        })
        .collect::<Result<_, _>>()?;
    let [(cmp, value)] = given.as_slice() else {
        return Err((
            "metric".into(),
            "give exactly one of above, below, at_least, at_most, equals".into(),
        ));
    };
    Ok(MetricProbe {
        metric,
        cmp: *cmp,
        value: *value,
        window: duration(t, "window")?,
    })
}

/// TOML to JSON (dates become strings).
pub fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(n) => Value::from(*n),
        toml::Value::Float(f) => Value::from(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(text: &str) -> Result<Probe, (String, String)> {
        let table: toml::Table = toml::from_str(&format!("p = {text}")).unwrap();
        parse(table["p"].as_table().unwrap())
    }

    #[test]
    fn what_visits_the_counter() {
        for (method, path) in [
            ("GET", "/"),
            ("GET", "/?x=1"),
            ("HEAD", "/"),
            ("HEAD", "/?"),
        ] {
            assert!(visits_the_counter(method, path), "{method} {path}");
        }
        for (method, path) in [
            ("POST", "/"),
            ("GET", "/health"),
            ("GET", "/x?/"),
            ("GET", "//"),
            ("DELETE", "/?x"),
        ] {
            assert!(!visits_the_counter(method, path), "{method} {path}");
        }
    }

    #[test]
    fn parses_each_kind() {
        let Probe::Http(h) = probe(
            r#"{ http = "/", status = 503, field = "detail", equals = "Redis connection failed" }"#,
        )
        .unwrap() else {
            panic!("http")
        };
        assert_eq!((h.status, h.method.as_str()), (Some(503), "GET"));
        assert_eq!(h.timeout, Duration::from_secs(1));
        let Probe::Event(e) =
            probe(r#"{ event = "Restarted", data = { cause = "liveness" } }"#).unwrap()
        else {
            panic!("event")
        };
        assert_eq!(e.data["cause"], "liveness");
        let Probe::Metric(m) =
            probe(r#"{ metric = "ready_replicas", at_least = 2, window = "3s" }"#).unwrap()
        else {
            panic!("metric")
        };
        assert_eq!((m.cmp, m.value), (Cmp::AtLeast, 2.0));
        assert_eq!(
            probe(r#"{ invariant = "counter" }"#).unwrap(),
            Probe::Counter
        );
    }

    #[test]
    fn bad_probes_name_the_key() {
        let (key, msg) = probe(r#"{ http = "/", stauts = 200 }"#).unwrap_err();
        assert_eq!(key, "stauts");
        assert!(msg.contains("did you mean `status`"), "{msg}");
        let (key, _) = probe(r#"{ metric = "ready", above = 1 }"#).unwrap_err();
        assert_eq!(key, "metric");
        let (key, _) = probe(r#"{ http = "/", status = 900 }"#).unwrap_err();
        assert_eq!(key, "status");
        assert!(probe(r#"{ http = "/", event = "X" }"#).is_err());
        assert!(probe(r#"{ metric = "replicas", above = 1, below = 3 }"#).is_err());
        assert!(probe(r#"{ invariant = "sum" }"#).is_err());
        assert!(probe(r#"{ http = "no-slash" }"#).is_err());
    }

    #[test]
    fn comparisons() {
        assert!(Cmp::AtLeast.holds(2.0, 2.0));
        assert!(!Cmp::Above.holds(2.0, 2.0));
        assert!(Cmp::Below.holds(0.5, 1.0));
        assert!(Cmp::Equals.holds(3.0, 3.0));
    }
}
