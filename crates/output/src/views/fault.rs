//! `chaoslab fault …`: the line for an injected fault, the credential
//! restore, clearing, and the `fault list` table (the JSON of
//! `/api/faults`; `fault list --json` prints that array as it is).

use serde_json::Value;

use super::{ids, text};
use crate::{Column, Style, Table, units};

/// What an injecting command prints: the injected fault in one line, or,
/// for `auth restore`, which revocations it ended.
pub fn injected(answer: &Value) -> String {
    if let Some(restored) = answer["restored"].as_array() {
        return match restored.len() {
            0 => "no credential was revoked; nothing to restore".into(),
            _ => format!(
                "credential restored (cleared {}): the service reads the new password on its next authentication",
                ids(&answer["restored"])
            ),
        };
    }
    describe(answer)
}

/// One line for an injected fault.
fn describe(f: &Value) -> String {
    let id = f["id"].as_str().unwrap_or("?");
    let lasts = match (
        f["remaining_seconds"].as_u64(),
        f["duration_seconds"].as_u64(),
    ) {
        (Some(0), _) => "done".to_string(),
        (_, Some(d)) if d > 0 => format!("ends by itself in {d} s"),
        _ => "until cleared".to_string(),
    };
    let mut line = format!(
        "fault {id} injected: {} on {} ({lasts})",
        what(f, &["mode", "variant", "action", "signal"]),
        f["target"].as_str().unwrap_or("?")
    );
    if let Some(answers) = f["redis_reset"].as_array() {
        line.push_str(&format!("; redis-reset on {} replica(s)", answers.len()));
    }
    if f["remaining_seconds"].as_u64() != Some(0) {
        line.push_str(&format!("; clear it with `chaoslab fault clear {id}`"));
    }
    line
}

/// `network deny-new`: the kind, then the keys that say which variety.
pub(crate) fn what(f: &Value, keys: &[&str]) -> String {
    let mut what = text(&f["kind"]);
    for key in keys {
        if let Some(v) = f[*key].as_str() {
            what.push(' ');
            what.push_str(v);
        }
    }
    what
}

/// `fault clear --all`: the ids cleared, or that there were none.
pub fn cleared_all(answer: &Value) -> String {
    match answer["cleared"].as_array() {
        Some(list) if !list.is_empty() => format!("cleared {}", ids(&answer["cleared"])),
        _ => "no active faults".into(),
    }
}

/// `fault clear ID`: cleared, or already gone (clearing is idempotent).
pub fn cleared_one(id: &str, answer: &Value) -> String {
    if answer["cleared"] == true {
        format!("fault {id} cleared")
    } else {
        format!("fault {id} is not active (already cleared or expired)")
    }
}

/// `fault list`: one row per active fault, or `no active faults`.
pub fn list(faults: &Value, style: Style) -> String {
    let mut table = Table::new(vec![
        Column::left("ID"),
        Column::left("KIND"),
        Column::left("TARGET"),
        Column::left("STARTED"),
        Column::left("REMAINING"),
        Column::left("DETAIL"),
    ]);
    for f in faults.as_array().into_iter().flatten() {
        table.row([
            f["id"].as_str().unwrap_or("").to_string(),
            f["kind"].as_str().unwrap_or("").to_string(),
            f["target"].as_str().unwrap_or("").to_string(),
            // The time of day of an RFC 3339 timestamp.
            f["started"]
                .as_str()
                .unwrap_or("")
                .get(11..19)
                .unwrap_or("")
                .to_string(),
            match f["remaining_seconds"].as_u64() {
                Some(s) => units::whole_seconds(s),
                None => "until cleared".into(),
            },
            detail(f),
        ]);
    }
    if table.is_empty() {
        return "no active faults\n".into();
    }
    table.render(style)
}

/// `mode=deny-new origin=lab`: the keys that tell faults of a kind apart.
fn detail(f: &Value) -> String {
    let mut detail = Vec::new();
    for key in ["mode", "action", "latency_ms", "kbps", "origin"] {
        match &f[key] {
            Value::String(s) => detail.push(format!("{key}={s}")),
            Value::Number(n) => detail.push(format!("{key}={n}")),
            _ => {}
        }
    }
    detail.join(" ")
}

/// The active faults, one line each, under `chaoslab status`.
pub fn summary(v: &Value) -> String {
    let Some(faults) = v.as_array() else {
        return String::new();
    };
    if faults.is_empty() {
        return super::field("faults", "none");
    }
    let mut out = String::new();
    for (i, f) in faults.iter().enumerate() {
        let left = match f["remaining_seconds"].as_u64() {
            Some(secs) => format!("{} left", units::whole_seconds(secs)),
            None => "until cleared".into(),
        };
        let line = format!(
            "{} {} on {} ({left})",
            text(&f["id"]),
            what(f, &["mode", "variant", "action"]),
            text(&f["target"])
        );
        out.push_str(&super::field(if i == 0 { "faults" } else { "" }, &line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_faults_as_a_table() {
        assert_eq!(list(&json!([]), Style::plain()), "no active faults\n");
        let v = json!([{"id": "f-1", "kind": "network", "target": "redis",
            "started": "2025-01-02T10:31:07Z", "remaining_seconds": 52,
            "mode": "deny-new", "origin": "lab"}]);
        assert_eq!(
            list(&v, Style::plain()),
            "ID   KIND     TARGET  STARTED   REMAINING  DETAIL\n\
             f-1  network  redis   10:31:07  52s        mode=deny-new origin=lab\n"
        );
    }

    #[test]
    fn describes_injection_restore_and_clearing() {
        let f = json!({"id": "f-1", "kind": "network", "mode": "deny-new", "target": "redis",
            "duration_seconds": 60, "remaining_seconds": 60, "redis_reset": [1, 2]});
        assert_eq!(
            injected(&f),
            "fault f-1 injected: network deny-new on redis (ends by itself in 60 s); redis-reset on 2 replica(s); clear it with `chaoslab fault clear f-1`"
        );
        let kill = json!({"id": "f-2", "kind": "kill", "signal": "KILL", "target": "r-1", "remaining_seconds": 0});
        assert_eq!(
            injected(&kill),
            "fault f-2 injected: kill KILL on r-1 (done)"
        );
        assert_eq!(
            injected(&json!({"restored": []})),
            "no credential was revoked; nothing to restore"
        );
        assert!(
            injected(&json!({"restored": ["f-3"]}))
                .starts_with("credential restored (cleared f-3)")
        );
        assert_eq!(
            cleared_all(&json!({"cleared": ["f-1", "f-2"]})),
            "cleared f-1, f-2"
        );
        assert_eq!(cleared_all(&json!({"cleared": []})), "no active faults");
        assert_eq!(
            cleared_one("f-1", &json!({"cleared": true})),
            "fault f-1 cleared"
        );
        assert!(cleared_one("f-1", &json!({"cleared": false})).contains("not active"));
    }

    #[test]
    fn summarises_faults_for_status() {
        assert_eq!(summary(&json!([])), "faults     none\n");
        assert_eq!(summary(&Value::Null), "");
        let v = json!([
            {"id": "f-1", "kind": "network", "mode": "deny-new", "target": "redis", "remaining_seconds": 52},
            {"id": "f-2", "kind": "auth", "action": "revoke", "target": "redis user chaoslab", "remaining_seconds": null}
        ]);
        assert_eq!(
            summary(&v),
            "faults     f-1 network deny-new on redis (52s left)\n           f-2 auth revoke on redis user chaoslab (until cleared)\n"
        );
    }
}
