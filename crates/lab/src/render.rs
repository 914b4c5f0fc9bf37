//! Plain-text views of the control API's JSON for the CLI: status and
//! revision tables, one line per event or log line. Kept here so the CLI
//! stays a thin client and the formats are tested beside the data.

use std::fmt::Write;

use serde_json::Value;

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `chaoslab status`.
pub fn status(v: &Value) -> String {
    let mut out = String::new();
    let lab = &v["lab"];
    let _ = writeln!(
        out,
        "lab        pid {} since {}",
        s(&lab["pid"]),
        s(&lab["started_at"])
    );
    let _ = writeln!(out, "ingress    {}", s(&lab["ingress_url"]));
    let _ = writeln!(out, "control    {}", s(&lab["control_url"]));
    let _ = writeln!(out, "redis      {}", s(&lab["redis"]));
    if let Some(url) = lab["toxiproxy_url"].as_str() {
        let _ = writeln!(
            out,
            "toxiproxy  {url}  (Toxiproxy-compatible API of the fault proxy)"
        );
    }
    let iso = &v["isolation"];
    if iso.is_object() {
        for kind in ["memory", "cpu", "network"] {
            let m = &iso[kind];
            let _ = writeln!(
                out,
                "{:<10} {} isolation: {}",
                kind,
                s(&m["mode"]),
                s(&m["detail"])
            );
        }
    }
    let _ = writeln!(out, "active     {}", s(&v["active_revision"]));
    let a = &v["autoscaler"];
    if a["enabled"] == true {
        let _ = writeln!(
            out,
            "autoscaler {}..{} replicas, target {}% CPU of the request, scale-down window {}s",
            s(&a["min_replicas"]),
            s(&a["max_replicas"]),
            s(&a["target_cpu_utilization"]),
            s(&a["scale_down_stabilization_seconds"])
        );
    } else if a.is_object() {
        let _ = writeln!(out, "autoscaler off");
    }
    for kind in ["liveness", "readiness"] {
        let p = &v["probes"][kind];
        if p.is_object() {
            let _ = writeln!(out, "{kind:<10} {}", probe(p));
        }
    }
    let ing = &v["ingress"];
    let _ = writeln!(
        out,
        "requests   {} total, {} 5xx, {} made by the ingress, {} in flight",
        s(&ing["requests_total"]),
        s(&ing["by_class"][4]),
        s(&ing["proxy_errors"]),
        s(&ing["in_flight"])
    );
    out.push('\n');
    out.push_str(&revisions(&v["revisions"]));
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<28} {:<18} {:>7} {:>6} {:>5} {:>8} {:>7} {:>8} {:>8} {:>9} {:>4}  LAST EXIT",
        "REPLICA",
        "PHASE",
        "PID",
        "PORT",
        "READY",
        "RESTARTS",
        "CPU%",
        "CPU/REQ",
        "MEM MiB",
        "THROTTLED",
        "OOM"
    );
    for r in v["replicas"].as_array().into_iter().flatten() {
        let last = match &r["last_exit"] {
            Value::Null => "-".to_string(),
            e => format!("{} ({})", s(&e["reason"]), s(&e["message"])),
        };
        let _ = writeln!(
            out,
            "{:<28} {:<18} {:>7} {:>6} {:>5} {:>8} {:>7.1} {:>7.0}% {:>8.1} {:>9} {:>4}  {}",
            s(&r["id"]),
            s(&r["phase"]),
            s(&r["pid"]),
            s(&r["target_port"]),
            if r["ready"] == true { "yes" } else { "no" },
            s(&r["restarts"]),
            r["cpu_percent"].as_f64().unwrap_or(0.0),
            r["cpu_utilization"].as_f64().unwrap_or(0.0),
            r["rss_mb"].as_f64().unwrap_or(0.0),
            // Kernel mode: time throttled by the CFS quota, OOM kills
            // counted by the cgroup; "-" in process mode.
            if r["cgroup"].is_string() {
                format!("{:.1}s", r["cpu_throttled_seconds"].as_f64().unwrap_or(0.0))
            } else {
                "-".into()
            },
            if r["cgroup"].is_string() {
                s(&r["oom_kills"])
            } else {
                "-".into()
            },
            last
        );
    }
    out
}

/// One probe: action, then the timings as the kubelet spells them.
fn probe(p: &Value) -> String {
    let action = match p["action"]["type"].as_str() {
        Some("http") => format!("http GET {}", s(&p["action"]["path"])),
        Some(other) => other.to_string(),
        None => "-".into(),
    };
    format!(
        "{action}, initial {}s, period {}s, timeout {}s, failures {}, successes {}",
        s(&p["initial_delay_seconds"]),
        s(&p["period_seconds"]),
        s(&p["timeout_seconds"]),
        s(&p["failure_threshold"]),
        s(&p["success_threshold"])
    )
}

/// `chaoslab revisions`.
/// The active faults (`/api/faults`), one line each, for `chaoslab status`.
pub fn faults(v: &Value) -> String {
    let Some(faults) = v.as_array() else {
        return String::new();
    };
    if faults.is_empty() {
        return "faults     none\n".into();
    }
    let mut out = String::new();
    for (i, f) in faults.iter().enumerate() {
        let mut what = s(&f["kind"]);
        for key in ["mode", "variant", "action"] {
            if let Some(m) = f[key].as_str() {
                what.push(' ');
                what.push_str(m);
            }
        }
        let left = match f["remaining_seconds"].as_u64() {
            Some(secs) => format!("{secs}s left"),
            None => "until cleared".into(),
        };
        let label = if i == 0 { "faults" } else { "" };
        let _ = writeln!(
            out,
            "{label:<10} {} {what} on {} ({left})",
            s(&f["id"]),
            s(&f["target"])
        );
    }
    out
}

pub fn revisions(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:<25} {:<13} {:<6} {:>8} {:>7}  REASON",
        "REVISION", "CREATED", "STATE", "ACTIVE", "REPLICAS", "TRAFFIC"
    );
    for r in v.as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<26} {:<25} {:<13} {:<6} {:>8} {:>6}%  {}",
            s(&r["name"]),
            s(&r["created"]),
            s(&r["state"]),
            if r["active"] == true { "yes" } else { "no" },
            format!("{}/{}", s(&r["ready_replicas"]), s(&r["replicas"])),
            s(&r["traffic"]),
            s(&r["reason"])
        );
    }
    out
}

/// One event per line.
pub fn event(v: &Value) -> String {
    if let Some(n) = v.get("lagged") {
        return format!("... {n} events skipped (reader too slow)");
    }
    format!(
        "{}  {:<7} {:<20} {:<26} {}",
        s(&v["time"]),
        s(&v["level"]),
        s(&v["reason"]),
        s(&v["subject"]),
        s(&v["message"])
    )
}

/// One log line, prefixed by its replica.
pub fn log_line(v: &Value) -> String {
    format!("[{}] {}", s(&v["replica"]), s(&v["line"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tables_and_lines() {
        let v = serde_json::json!({
            "lab": {"pid": 1, "ingress_url": "http://127.0.0.1:8000"},
            "active_revision": "app--a",
            "revisions": [{"name": "app--a", "state": "Running", "active": true, "replicas": 1, "ready_replicas": 1, "traffic": 100}],
            "replicas": [{"id": "app--a-1", "phase": "Running", "ready": true, "restarts": 1,
                          "last_exit": {"reason": "OOMKilled", "message": "over"}}],
            "ingress": {"requests_total": 3, "by_class": [0, 3, 0, 0, 0]}
        });
        let text = status(&v);
        assert!(text.contains("app--a-1"));
        assert!(text.contains("OOMKilled (over)"));
        assert!(text.contains("1/1"));
        let p = serde_json::json!({"action": {"type": "http", "path": "/health"},
            "initial_delay_seconds": 1.0, "period_seconds": 0.5, "timeout_seconds": 0.3,
            "failure_threshold": 2, "success_threshold": 2});
        assert_eq!(
            probe(&p),
            "http GET /health, initial 1.0s, period 0.5s, timeout 0.3s, failures 2, successes 2"
        );
        let e = event(
            &serde_json::json!({"time": "t", "level": "Normal", "reason": "ScaledUp", "subject": "x", "message": "m"}),
        );
        assert!(e.contains("ScaledUp"));
        assert_eq!(
            log_line(&serde_json::json!({"replica": "r", "line": "l"})),
            "[r] l"
        );
    }

    #[test]
    fn renders_faults() {
        assert_eq!(faults(&serde_json::json!([])), "faults     none\n");
        let v = serde_json::json!([
            {"id": "f-1", "kind": "network", "mode": "deny-new", "target": "redis", "remaining_seconds": 52},
            {"id": "f-2", "kind": "auth", "action": "revoke", "target": "redis user chaoslab", "remaining_seconds": null}
        ]);
        assert_eq!(
            faults(&v),
            "faults     f-1 network deny-new on redis (52s left)\n           f-2 auth revoke on redis user chaoslab (until cleared)\n"
        );
    }
}
