//! `chaoslab chaos …`: one line per replica's answer to the service's chaos
//! API, as the control API's `/api/chaos/…` relays them
//! (`{"answers": [{"replica", "status", "body"} | {"pending": true} |
//! {"error"}]}`; `--json` prints that object as it is).

use serde_json::Value;

use crate::{Style, Tone};

/// The answers, one line each (`replica: 200 {…}`); a request held open by
/// the lab (a hang) and a replica that did not answer say so.
pub fn answers(answer: &Value, style: Style) -> String {
    let list = answer["answers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if list.is_empty() {
        return format!("{}\n", style.paint(Tone::Warn, "no ready replica to call"));
    }
    let mut out = String::new();
    for a in list {
        let who = a["replica"].as_str().unwrap_or("(via ingress)");
        let line = match (a["status"].as_u64(), a["pending"].as_bool()) {
            (Some(status), _) => {
                let tone = if (200..300).contains(&status) {
                    Tone::Ok
                } else {
                    Tone::Fail
                };
                format!(
                    "{who}: {} {}",
                    style.paint(tone, &status.to_string()),
                    serde_json::to_string(&a["body"]).unwrap_or_default()
                )
            }
            (None, Some(true)) => format!("{who}: hang started (the lab holds the request open)"),
            _ => format!(
                "{who}: {}: {}",
                style.paint(Tone::Fail, "no answer"),
                a["error"].as_str().unwrap_or("unknown error")
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Whether every replica answered 2xx or holds a hang open (exit 0), and
/// at least one was called.
pub fn all_ok(answer: &Value) -> bool {
    let list = answer["answers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    !list.is_empty()
        && list.iter().all(|a| match a["status"].as_u64() {
            Some(status) => (200..300).contains(&status),
            None => a["pending"] == true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_line_per_answer_and_the_verdict() {
        let v = json!({"answers": [
            {"replica": "r-1", "status": 200, "body": {"active": true}},
            {"pending": true},
            {"replica": "r-2", "error": "refused"}
        ]});
        assert_eq!(
            answers(&v, Style::plain()),
            "r-1: 200 {\"active\":true}\n(via ingress): hang started (the lab holds the request open)\nr-2: no answer: refused\n"
        );
        assert!(!all_ok(&v));
        assert!(all_ok(
            &json!({"answers": [{"status": 204, "body": null}, {"pending": true}]})
        ));
        assert!(!all_ok(&json!({"answers": []})));
        assert_eq!(
            answers(&json!({}), Style::plain()),
            "no ready replica to call\n"
        );
    }
}
