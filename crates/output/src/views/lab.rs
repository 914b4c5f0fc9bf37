//! The lab's commands: `status` (the JSON of `/api/status`), `revisions`
//! (`/api/revisions`), one line per event or log line, what `up` prints once
//! the lab runs, and the outcomes of `down`, `deploy` and `revisions
//! activate`. With `--json` the commands print the control API's JSON
//! instead (documented in docs/lab.md).

use std::time::Duration;

use serde_json::Value;

use super::{field, padded, text};
use crate::{Cell, Column, Style, Table, Tone, units};

/// `chaoslab status`: the lab's endpoints and settings, then the revisions
/// and replicas tables.
pub fn status(v: &Value, style: Style) -> String {
    let mut out = endpoints(&v["lab"]);
    out.push_str(&isolation(&v["isolation"]));
    out.push_str(&field("active", &text(&v["active_revision"])));
    out.push_str(&autoscaler(&v["autoscaler"]));
    for kind in ["liveness", "readiness"] {
        let p = &v["probes"][kind];
        if p.is_object() {
            out.push_str(&field(kind, &probe(p)));
        }
    }
    let ing = &v["ingress"];
    out.push_str(&field(
        "requests",
        &format!(
            "{} total, {} 5xx, {} made by the ingress, {} in flight",
            text(&ing["requests_total"]),
            text(&ing["by_class"][4]),
            text(&ing["proxy_errors"]),
            text(&ing["in_flight"])
        ),
    ));
    out.push('\n');
    out.push_str(&revisions(&v["revisions"], style));
    out.push('\n');
    out.push_str(&replicas(&v["replicas"], style));
    out
}

/// Where the lab's parts listen.
fn endpoints(lab: &Value) -> String {
    let mut out = field(
        "lab",
        &format!(
            "pid {} since {}",
            text(&lab["pid"]),
            text(&lab["started_at"])
        ),
    );
    out.push_str(&field("ingress", &text(&lab["ingress_url"])));
    out.push_str(&field("control", &text(&lab["control_url"])));
    out.push_str(&field("redis", &text(&lab["redis"])));
    if let Some(url) = lab["toxiproxy_url"].as_str() {
        out.push_str(&field(
            "toxiproxy",
            &format!("{url}  (Toxiproxy-compatible API of the fault proxy)"),
        ));
    }
    out
}

/// One line per isolation mechanism (memory, cpu, network).
fn isolation(iso: &Value) -> String {
    if !iso.is_object() {
        return String::new();
    }
    ["memory", "cpu", "network"]
        .iter()
        .map(|kind| {
            let m = &iso[*kind];
            field(
                kind,
                &format!("{} isolation: {}", text(&m["mode"]), text(&m["detail"])),
            )
        })
        .collect()
}

fn autoscaler(a: &Value) -> String {
    if a["enabled"] == true {
        field(
            "autoscaler",
            &format!(
                "{}..{} replicas, target {}% CPU of the request, scale-down window {}s",
                text(&a["min_replicas"]),
                text(&a["max_replicas"]),
                text(&a["target_cpu_utilization"]),
                text(&a["scale_down_stabilization_seconds"])
            ),
        )
    } else if a.is_object() {
        field("autoscaler", "off")
    } else {
        String::new()
    }
}

/// One probe: action, then the timings as the kubelet spells them.
fn probe(p: &Value) -> String {
    let action = match p["action"]["type"].as_str() {
        Some("http") => format!("http GET {}", text(&p["action"]["path"])),
        Some(other) => other.to_string(),
        None => units::MISSING.into(),
    };
    format!(
        "{action}, initial {}s, period {}s, timeout {}s, failures {}, successes {}",
        text(&p["initial_delay_seconds"]),
        text(&p["period_seconds"]),
        text(&p["timeout_seconds"]),
        text(&p["failure_threshold"]),
        text(&p["success_threshold"])
    )
}

/// The colour of a revision's or replica's state.
fn state_tone(state: &str) -> Tone {
    match state {
        "Running" => Tone::Ok,
        "Failed" | "CrashLoopBackOff" | "OOMKilled" | "Error" => Tone::Fail,
        _ => Tone::Warn,
    }
}

/// The replicas table of `status`.
fn replicas(v: &Value, style: Style) -> String {
    let mut table = Table::new(vec![
        Column::left("REPLICA"),
        Column::left("PHASE"),
        Column::right("PID"),
        Column::right("PORT"),
        Column::left("READY"),
        Column::right("RESTARTS"),
        Column::right("CPU%"),
        Column::right("CPU/REQ"),
        Column::right("MEM MiB"),
        Column::right("THROTTLED"),
        Column::right("OOM"),
        Column::left("LAST EXIT"),
    ]);
    for r in v.as_array().into_iter().flatten() {
        let phase = text(&r["phase"]);
        // Kernel mode: time throttled by the CFS quota, OOM kills counted
        // by the cgroup; a dash in process mode.
        let in_cgroup = r["cgroup"].is_string();
        table.row([
            Cell::from(text(&r["id"])),
            Cell::toned(phase.clone(), state_tone(&phase)),
            text(&r["pid"]).into(),
            text(&r["target_port"]).into(),
            Cell::yes_no(r["ready"] == true, Tone::Warn),
            text(&r["restarts"]).into(),
            units::percent(r["cpu_percent"].as_f64().unwrap_or(0.0)).into(),
            format!("{:.0}%", r["cpu_utilization"].as_f64().unwrap_or(0.0)).into(),
            units::mib(r["rss_mb"].as_f64().unwrap_or(0.0)).into(),
            if in_cgroup {
                units::seconds(r["cpu_throttled_seconds"].as_f64().unwrap_or(0.0)).into()
            } else {
                units::MISSING.into()
            },
            if in_cgroup {
                text(&r["oom_kills"]).into()
            } else {
                units::MISSING.into()
            },
            last_exit(&r["last_exit"]),
        ]);
    }
    table.render(style)
}

fn last_exit(e: &Value) -> Cell {
    match e {
        Value::Null => units::MISSING.into(),
        e => Cell::toned(
            format!("{} ({})", text(&e["reason"]), text(&e["message"])),
            Tone::Warn,
        ),
    }
}

/// `chaoslab revisions` (and the revisions of `status`).
pub fn revisions(v: &Value, style: Style) -> String {
    let mut table = Table::new(vec![
        Column::left("REVISION"),
        Column::left("CREATED"),
        Column::left("STATE"),
        Column::left("ACTIVE"),
        Column::right("REPLICAS"),
        Column::right("TRAFFIC"),
        Column::left("REASON"),
    ]);
    for r in v.as_array().into_iter().flatten() {
        let state = text(&r["state"]);
        table.row([
            Cell::from(text(&r["name"])),
            text(&r["created"]).into(),
            Cell::toned(state.clone(), state_tone(&state)),
            if r["active"] == true {
                Cell::toned("yes", Tone::Ok)
            } else {
                "no".into()
            },
            format!("{}/{}", text(&r["ready_replicas"]), text(&r["replicas"])).into(),
            format!("{}%", text(&r["traffic"])).into(),
            text(&r["reason"]).into(),
        ]);
    }
    table.render(style)
}

/// One event per line (`events`, `up`); `{"lagged": n}` says events were
/// skipped.
pub fn event(v: &Value, style: Style) -> String {
    if let Some(n) = v.get("lagged") {
        return format!("... {n} events skipped (reader too slow)");
    }
    let level = text(&v["level"]);
    let tone = match level.as_str() {
        "Warning" => Some(Tone::Warn),
        "Error" => Some(Tone::Fail),
        _ => None,
    };
    format!(
        "{}  {} {} {} {}",
        style.paint(Tone::Dim, &text(&v["time"])),
        padded(style, tone, &level, 7),
        padded(style, None, &text(&v["reason"]), 20),
        padded(style, None, &text(&v["subject"]), 26),
        text(&v["message"])
    )
}

/// `up` when it cannot keep up with the events.
pub fn events_lagged(n: u64) -> String {
    format!("... {n} events not shown (see `chaoslab events`)")
}

/// One log line, prefixed by its replica.
pub fn log_line(v: &Value, _style: Style) -> String {
    format!("[{}] {}", text(&v["replica"]), text(&v["line"]))
}

/// What `chaoslab up` prints once the lab runs.
#[derive(Debug, Clone)]
pub struct UpBanner {
    /// How long until a replica was ready; none: not ready yet.
    pub ready_in: Option<Duration>,
    pub ingress_url: String,
    pub control_url: String,
    pub state_dir: String,
    /// The control API's token (the console's link carries it).
    pub token: Option<String>,
    pub redis: String,
    pub toxiproxy_url: Option<String>,
    pub revision: String,
}

impl UpBanner {
    /// The endpoints, then what to try next.
    pub fn render(&self, style: Style) -> String {
        let mut out = match self.ready_in {
            Some(d) => format!(
                "{} (ready in {})\n",
                style.paint(Tone::Ok, "chaoslab lab is up"),
                units::elapsed(d)
            ),
            None => format!(
                "{}, but no replica is ready yet (see `chaoslab events`)\n",
                style.paint(Tone::Warn, "chaoslab lab started")
            ),
        };
        let line = |label: &str, value: &str| format!("  {label:<12} {value}\n");
        out.push_str(&line("ingress", &format!("{}/", self.ingress_url)));
        out.push_str(&line(
            "control API",
            &format!(
                "{}  (token in {}/lab.json)",
                self.control_url, self.state_dir
            ),
        ));
        if let Some(token) = &self.token {
            // The token rides in the URL fragment, which browsers never send.
            out.push_str(&line(
                "console",
                &format!("{}/#token={token}  (open in a browser)", self.control_url),
            ));
        }
        out.push_str(&line("redis", &self.redis));
        if let Some(url) = &self.toxiproxy_url {
            out.push_str(&line(
                "toxiproxy",
                &format!("{url}  (Toxiproxy-compatible API of the fault proxy)"),
            ));
        }
        out.push_str(&line("revision", &self.revision));
        out.push_str(&self.next_steps(style));
        out
    }

    fn next_steps(&self, style: Style) -> String {
        let hint = |command: &str, why: &str| {
            format!(
                "  {command:<40} {}\n",
                style.paint(Tone::Dim, &format!("# {why}"))
            )
        };
        let mut out = String::from("\nNext:\n");
        out.push_str(&format!("  curl -s {}/\n", self.ingress_url));
        out.push_str(&hint(
            "chaoslab status",
            "replicas, probes, restarts, CPU and memory",
        ));
        out.push_str(&hint(
            "chaoslab deploy --image /no/such/image",
            "a bad deployment: traffic stays put",
        ));
        out.push_str(&hint(
            "chaoslab fault network block",
            "cut Redis off (the NSG rule), 60 s",
        ));
        out.push_str(
            "\nCtrl-C (or `chaoslab down` from another terminal) stops everything. Events:\n",
        );
        out
    }
}

/// `chaoslab down` when it stopped the lab.
pub fn stopped(pid: u32) -> String {
    format!("lab (pid {pid}) stopped")
}

/// `chaoslab down` when there was nothing to stop.
pub fn no_lab(state_dir: &str) -> String {
    format!("no lab running in {state_dir}")
}

/// `chaoslab down` when the lab had died without cleaning up.
pub fn stale_removed(pid: u32) -> String {
    format!("the lab (pid {pid}) was already gone; removed its stale state file")
}

/// `deploy`: the revision exists and is starting.
pub fn revision_created(name: &str) -> String {
    format!("revision {name} created; provisioning…")
}

/// `revisions activate`: traffic moves once it is ready.
pub fn activating(name: &str) -> String {
    format!("activating {name}…")
}

/// The outcome of a rollout: `revision` is `/api/revisions/NAME` once
/// settled, `active` the revision that serves.
pub fn revision_outcome(name: &str, revision: &Value, active: &str, style: Style) -> String {
    if revision["state"] == "Running" {
        format!(
            "revision {name} is {} and receives 100% of traffic",
            style.paint(Tone::Ok, "ready")
        )
    } else {
        format!(
            "revision {name} {}: {}; {active} keeps serving",
            style.paint(Tone::Fail, "Failed"),
            revision["reason"].as_str().unwrap_or("unknown"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status_json() -> Value {
        json!({
            "lab": {"pid": 1, "ingress_url": "http://127.0.0.1:8000"},
            "active_revision": "app--a",
            "revisions": [{"name": "app--a", "created": "2025-01-02T10:00:00Z", "state": "Running",
                           "active": true, "replicas": 1, "ready_replicas": 1, "traffic": 100}],
            "replicas": [{"id": "app--a-1", "phase": "Running", "ready": true, "restarts": 1,
                          "last_exit": {"reason": "OOMKilled", "message": "over"}}],
            "ingress": {"requests_total": 3, "by_class": [0, 3, 0, 0, 0]}
        })
    }

    #[test]
    fn renders_status_with_its_tables() {
        let text = status(&status_json(), Style::plain());
        assert!(text.starts_with("lab        pid 1 since -\n"), "{text}");
        assert!(text.contains("active     app--a\n"), "{text}");
        assert!(text.contains("OOMKilled (over)"), "{text}");
        assert!(text.contains("1/1"), "{text}");
        let header = text.lines().find(|l| l.starts_with("REPLICA")).unwrap();
        assert!(header.ends_with("OOM  LAST EXIT"), "{header}");
    }

    #[test]
    fn revisions_keep_the_state_third() {
        let text = revisions(&status_json()["revisions"], Style::plain());
        let row = text.lines().nth(1).unwrap();
        assert_eq!(row.split_whitespace().nth(2), Some("Running"), "{text}");
        assert!(row.contains("100%"), "{row}");
        // Colour changes no width.
        let coloured = revisions(&status_json()["revisions"], Style::coloured());
        assert!(coloured.contains("\x1b[32mRunning\x1b[0m"));
        assert_eq!(text.lines().count(), coloured.lines().count());
    }

    #[test]
    fn renders_probes_events_and_log_lines() {
        let p = json!({"action": {"type": "http", "path": "/health"},
            "initial_delay_seconds": 1.0, "period_seconds": 0.5, "timeout_seconds": 0.3,
            "failure_threshold": 2, "success_threshold": 2});
        assert_eq!(
            probe(&p),
            "http GET /health, initial 1.0s, period 0.5s, timeout 0.3s, failures 2, successes 2"
        );
        let e = event(
            &json!({"time": "t", "level": "Normal", "reason": "ScaledUp", "subject": "x", "message": "m"}),
            Style::plain(),
        );
        assert_eq!(
            e,
            format!(
                "t  Normal  ScaledUp{} x{} m",
                " ".repeat(12),
                " ".repeat(25)
            )
        );
        assert!(event(&json!({"lagged": 3}), Style::plain()).contains("3 events skipped"));
        assert_eq!(
            log_line(&json!({"replica": "r", "line": "l"}), Style::plain()),
            "[r] l"
        );
    }

    #[test]
    fn banner_and_outcomes() {
        let banner = UpBanner {
            ready_in: Some(Duration::from_millis(1500)),
            ingress_url: "http://127.0.0.1:8000".into(),
            control_url: "http://127.0.0.1:9000".into(),
            state_dir: ".chaoslab".into(),
            token: Some("t".into()),
            redis: "redis://127.0.0.1:6379".into(),
            toxiproxy_url: None,
            revision: "app--a".into(),
        }
        .render(Style::plain());
        assert!(
            banner.starts_with("chaoslab lab is up (ready in 1.50s)\n"),
            "{banner}"
        );
        assert!(
            banner.contains("  ingress      http://127.0.0.1:8000/\n"),
            "{banner}"
        );
        assert!(
            banner.contains("curl -s http://127.0.0.1:8000/"),
            "{banner}"
        );
        let ok = revision_outcome("a", &json!({"state": "Running"}), "b", Style::plain());
        assert_eq!(ok, "revision a is ready and receives 100% of traffic");
        let failed = revision_outcome(
            "a",
            &json!({"state": "Failed", "reason": "NotReady"}),
            "b",
            Style::plain(),
        );
        assert_eq!(failed, "revision a Failed: NotReady; b keeps serving");
    }
}
