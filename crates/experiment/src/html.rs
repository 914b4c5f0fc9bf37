//! `experiment run --html FILE`: one self-contained page per run (SPEC
//! section 9, "Outputs") that someone can open from a CI artifact or an
//! e-mail and read without the lab: inline CSS, inline SVG charts, no
//! script and no external URL of any kind. It shows the verdict first
//! (status, reason, times), then the figures, the time series with the
//! fault and alert spans and the step markers, the verdict table and what
//! every step and rollback did. Rendered from the [`Journal`] alone, so it
//! never disagrees with the JSON, the verdict table or the JUnit XML.

use std::borrow::Cow;
use std::fmt::Write as _;

use chaoslab_load::chart::{self, Band, Marker, Overlay, Series};

use crate::journal::{ActivityRun, Journal, Mark, Status, SteadyState, Timeline};

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9;max-width:1240px}
h1{font-size:23px;margin:0 0 4px} h2{font-size:17px;margin:26px 0 8px}
.meta{color:#556;font-size:13px;margin:2px 0}
.desc{margin:8px 0 12px;font-size:14px;max-width:900px}
.verdict{display:flex;align-items:center;gap:16px;flex-wrap:wrap;background:#fff;border:1px solid #dde;border-left:8px solid var(--c);border-radius:8px;padding:12px 16px;margin:12px 0}
.badge{background:var(--c);color:#fff;font-weight:bold;font-size:20px;letter-spacing:.06em;padding:6px 14px;border-radius:6px;text-transform:uppercase}
.verdict .reason{font-size:15px;font-weight:600;color:var(--c)} .verdict .times{color:#556;font-size:13px;width:100%}
.completed{--c:#1e8449} .deviated{--c:#c0392b} .aborted{--c:#8e1b10} .interrupted{--c:#b7770b}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%}
th,td{border:1px solid #dde;padding:4px 8px;text-align:left;vertical-align:top} th{background:#eef0f4;font-weight:600}
td.n,th.n{text-align:right;white-space:nowrap}
table.kv{width:auto;min-width:60%} table.kv th{background:#f3f5f8;font-weight:normal;color:#445;white-space:nowrap}
table.kv td{font-weight:600;min-width:110px}
tr.group td{background:#f3f5f8;font-weight:600;color:#334}
.pass{color:#1e8449;font-weight:bold} .fail{color:#c0392b;font-weight:bold} .muted{color:#778}
tr.failed td{background:#fdf1f0}
.chart{background:#fff;border:1px solid #dde;border-radius:8px;width:100%;height:auto;margin:4px 0}
.chart .title{font-size:14px;font-weight:bold;fill:#1d2330}
.chart .tick{font-size:11px;fill:#556} .chart .grid{stroke:#e4e6eb;stroke-width:1}
.key{font-size:12px;color:#556;margin:0 0 4px} .key i{display:inline-block;width:18px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:12px;max-height:16em;overflow:auto}
code{font-size:12px} details summary{cursor:pointer;color:#334}
footer{margin-top:28px;color:#889;font-size:12px}
"#;

/// Shaded fault spans.
const FAULT_COLOR: &str = "#e67e22";
/// Shaded alert spans.
const ALERT_COLOR: &str = "#8e44ad";
/// Step markers: succeeded, failed.
const STEP_COLOR: &str = "#34495e";
const STEP_FAILED_COLOR: &str = "#c0392b";

/// The SVG namespace declaration [`chart`] writes for standalone use;
/// inline SVG in HTML does not need it, and without it the page holds no
/// URL at all (easy to check, nothing for a scanner to flag).
const SVG_XMLNS: &str = r#" xmlns="http://www.w3.org/2000/svg""#;

/// The report page for one run.
pub fn render(journal: &Journal) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let x = &journal.experiment;
    let title = if x.title.is_empty() {
        &x.name
    } else {
        &x.title
    };
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} – chaoslab experiment {}</title><style>{STYLE}</style></head><body>",
        esc(title),
        journal.status.as_str()
    );
    header(&mut h, journal, title);
    measurements(&mut h, journal);
    charts(&mut h, &journal.timeline);
    spans(&mut h, journal);
    verdicts(&mut h, journal);
    activities(&mut h, "Method", "steps run", &journal.run);
    activities(&mut h, "Rollbacks", "rollbacks run", &journal.rollbacks);
    let _ = writeln!(
        h,
        "<footer>chaoslab {}{} · lab: {}</footer></body></html>",
        esc(&journal.chaoslab_version),
        journal
            .chaoslib_version
            .as_deref()
            .map(|v| format!(" · chaoslib {}", esc(v)))
            .unwrap_or_default(),
        esc(&x.lab)
    );
    h
}

/// Text made safe for HTML: ANSI colour sequences and other control
/// characters (what a command may print) removed, then escaped.
fn esc(text: &str) -> String {
    chart::esc(&plain_text(text))
}

/// `text` without ANSI escape sequences and without control characters
/// other than tab and newline (invalid in XML, noise in HTML).
pub(crate) fn plain_text(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte in @..~; other escapes
            // are two characters.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\r' {
            if chars.peek() != Some(&'\n') {
                out.push('\n');
            }
        } else if !c.is_control() || c == '\n' || c == '\t' {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn status_class(status: Status) -> &'static str {
    status.as_str()
}

/// Seconds, as a person reads them.
fn secs(s: f64) -> String {
    if !s.is_finite() {
        return "—".into();
    }
    if s.abs() < 60.0 {
        return format!("{s:.1} s");
    }
    let whole = s.round() as i64;
    let (m, sec) = (whole / 60, whole % 60);
    if m < 60 {
        format!("{m} min {sec:02} s")
    } else {
        format!("{} h {:02} min {sec:02} s", m / 60, m % 60)
    }
}

/// How long a step took: milliseconds below a second.
fn took(s: f64) -> String {
    if s.is_finite() && s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        secs(s)
    }
}

fn opt_secs(s: Option<f64>) -> String {
    s.map_or_else(|| "—".into(), secs)
}

fn opt_ms(ms: Option<f64>) -> String {
    match ms {
        None => "—".into(),
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
    }
}

fn percent(ratio: Option<f64>) -> String {
    match ratio {
        None => "—".into(),
        Some(r) if r >= 1.0 => "100 %".into(),
        Some(r) => format!("{:.2} %", r * 100.0),
    }
}

fn opt_num<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "—".into(), |v| v.to_string())
}

/// An RFC 3339 time as `2026-11-28 12:00:00.123 UTC` (as given when it
/// does not parse).
fn when(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M:%S%.3f UTC")
            .to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

/// Whether a journalled probe held: it ran and its tolerance was met.
pub(crate) fn probe_passed(p: &ActivityRun) -> bool {
    p.status == "succeeded" && p.tolerance_met != Some(false)
}

fn header(h: &mut String, j: &Journal, title: &str) {
    let x = &j.experiment;
    let _ = write!(h, "<h1>{}</h1>", esc(title));
    let mut meta = format!("experiment <b>{}</b>", esc(&x.name));
    if !x.tags.is_empty() {
        let tags: Vec<String> = x.tags.iter().map(|t| esc(t)).collect();
        let _ = write!(meta, " · tags: {}", tags.join(", "));
    }
    let _ = write!(meta, " · lab: {}", esc(&x.lab));
    let _ = write!(h, "<div class=\"meta\">{meta}</div>");
    if !x.description.is_empty() {
        let _ = write!(h, "<p class=\"desc\">{}</p>", esc(&x.description));
    }

    let held = j.expectations.iter().filter(|e| e.passed).count();
    let reason = if !j.reason.is_empty() {
        esc(&j.reason)
    } else {
        match j.status {
            Status::Completed => "every expectation held".into(),
            Status::Deviated => "an expectation or the steady state did not hold".into(),
            Status::Aborted => "the experiment could not run".into(),
            Status::Interrupted => "interrupted".into(),
        }
    };
    let steady = |s: &Option<SteadyState>| match s {
        None => "<span class=\"muted\">not checked</span>",
        Some(s) if s.steady_state_met => "<span class=\"pass\">met</span>",
        Some(_) => "<span class=\"fail\">not met</span>",
    };
    let _ = write!(
        h,
        "<div class=\"verdict {cls}\" id=\"verdict\"><span class=\"badge\">{status}</span>\
         <span class=\"reason\">{reason}</span>\
         <span class=\"meta\">{held} of {total} expectations held · steady state before: {before} · after: {after} · exit status {code}</span>\
         <div class=\"times\">started {start} · ended {end} · duration {dur}</div></div>",
        cls = status_class(j.status),
        status = j.status.as_str(),
        total = j.expectations.len(),
        before = steady(&j.steady_states.before),
        after = steady(&j.steady_states.after),
        code = j.status.exit_code(),
        start = esc(&when(&j.start)),
        end = esc(&when(&j.end)),
        dur = secs(j.duration),
    );
}

fn measurements(h: &mut String, j: &Journal) {
    let m = &j.measurements;
    let counter = match (m.counter_ok, m.counter_increase) {
        (None, _) | (_, None) => "not read".to_owned(),
        (Some(ok), Some(inc)) => format!(
            "{}: grew {inc}, {} × 200 to /, {} sent",
            if ok { "held" } else { "VIOLATED" },
            m.ok_root_responses,
            m.root_requests_sent
        ),
    };
    let counter_class = match m.counter_ok {
        Some(true) => " class=\"pass\"",
        Some(false) => " class=\"fail\"",
        None => "",
    };
    let lost_class = if m.requests_lost > 0 {
        " class=\"fail\""
    } else {
        ""
    };
    let rows: Vec<(&str, String, &str)> = vec![
        ("time to detect", opt_secs(m.time_to_detect_s), ""),
        ("time to recover", opt_secs(m.time_to_recover_s), ""),
        ("availability", percent(m.availability), ""),
        (
            "p50 / p99",
            format!("{} / {}", opt_ms(m.p50_ms), opt_ms(m.p99_ms)),
            "",
        ),
        (
            "requests sent / answered",
            format!("{} / {}", m.requests_sent, m.requests_answered),
            "",
        ),
        ("requests lost", m.requests_lost.to_string(), lost_class),
        ("counter check", counter, counter_class),
        (
            "ready replicas min / max",
            format!(
                "{} / {}",
                opt_num(m.ready_replicas_min),
                opt_num(m.ready_replicas_max)
            ),
            "",
        ),
        ("replicas max", opt_num(m.replicas_max), ""),
        ("restarts", m.restarts.to_string(), ""),
        (
            "runner CPU",
            m.runner_cpu_percent
                .map_or_else(|| "–".to_string(), |c| format!("{c:.1} % of one CPU")),
            "",
        ),
    ];
    h.push_str("<h2>Measurements</h2><table class=\"kv\" id=\"measurements\">");
    for pair in rows.chunks(2) {
        h.push_str("<tr>");
        for (key, value, class) in pair {
            // Values are built from numbers and fixed words only.
            let _ = write!(h, "<th>{key}</th><td{class}>{value}</td>");
        }
        if pair.len() == 1 {
            h.push_str("<th></th><td></td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    if m.samples_dropped > 0 {
        let _ = write!(
            h,
            "<p class=\"meta\">The {} oldest background-load samples were not kept for the per-span figures (memory bound); the totals count them.</p>",
            m.samples_dropped
        );
    }
}

fn spans(h: &mut String, j: &Journal) {
    let spans = &j.measurements.spans;
    if spans.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Per span</h2><p class=\"key\">background load between the steps; seconds from the start of the method</p><table id=\"spans\"><tr><th>span</th><th class=\"n\">from</th><th class=\"n\">to</th>\
         <th class=\"n\">sent</th><th class=\"n\">answered</th><th class=\"n\">ok</th>\
         <th class=\"n\">availability</th><th class=\"n\">p50</th><th class=\"n\">p99</th></tr>",
    );
    for s in spans {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&s.name),
            secs(s.from_s),
            secs(s.to_s),
            s.sent,
            s.answered,
            s.ok,
            percent(s.availability),
            opt_ms(s.p50_ms),
            opt_ms(s.p99_ms),
        );
    }
    h.push_str("</table>");
}

fn charts(h: &mut String, t: &Timeline) {
    h.push_str("<h2>Over time</h2>");
    if t.t.is_empty() {
        h.push_str(
            "<p class=\"meta\">No time series: the run ended before the method started.</p>",
        );
        return;
    }
    let alert_labels: Vec<String> = t
        .alerts
        .iter()
        .map(|a| format!("alert: {}", a.name))
        .collect();
    let mark_labels: Vec<String> = t.marks.iter().map(mark_label).collect();
    chart_key(h);
    // `t` starts each one-second bucket; a point is drawn at the bucket's
    // end, when its rate and its last gauge reading are known, so a
    // reaction never seems to start before the step that caused it.
    let xs: Vec<f64> = t.t.iter().map(|x| x + 1.0).collect();
    for (title, unit, series) in chart_series(t) {
        let overlay = overlay(t, &alert_labels, &mark_labels);
        let svg = chart::line_chart_with(title, unit, &xs, &series, &overlay);
        h.push_str(&svg.replacen(SVG_XMLNS, "", 1));
    }
}

/// A step's label on the charts: its id, marked when the step failed.
fn mark_label(m: &Mark) -> String {
    if m.ok {
        m.id.clone()
    } else {
        format!("{} (failed)", m.id)
    }
}

/// What every chart draws behind and over its lines: fault and alert
/// bands, one dashed marker per step (labels made by the caller, so they
/// outlive the overlay).
fn overlay<'a>(
    t: &'a Timeline,
    alert_labels: &'a [String],
    mark_labels: &'a [String],
) -> Overlay<'a> {
    let faults = t.faults.iter().map(|f| Band {
        from: f.from_s,
        to: f.to_s,
        label: &f.name,
        color: FAULT_COLOR,
    });
    let alerts = t.alerts.iter().zip(alert_labels).map(|(a, label)| Band {
        from: a.from_s,
        to: a.to_s,
        label,
        color: ALERT_COLOR,
    });
    Overlay {
        bands: faults.chain(alerts).collect(),
        marks: t
            .marks
            .iter()
            .zip(mark_labels)
            .map(|(m, label)| Marker {
                at: m.at_s,
                label,
                color: if m.ok { STEP_COLOR } else { STEP_FAILED_COLOR },
            })
            .collect(),
    }
}

/// The legend line above the charts: the x unit and what bands and
/// markers mean.
fn chart_key(h: &mut String) {
    let _ = write!(
        h,
        "<p class=\"key\">seconds from the start of the method;\
         <i style=\"background:{FAULT_COLOR};opacity:.35\"></i>fault active\
         <i style=\"background:{ALERT_COLOR};opacity:.35\"></i>alert firing\
         <i style=\"border-left:2px dashed {STEP_COLOR};height:12px;width:2px\"></i>step\
         <i style=\"border-left:2px dashed {STEP_FAILED_COLOR};height:12px;width:2px\"></i>failed step</p>"
    );
}

/// The three charts of the page, each as (title, unit, series): load,
/// latency, replicas.
fn chart_series(t: &Timeline) -> [(&'static str, &'static str, Vec<Series<'static>>); 3] {
    let all = |v: &[f64]| v.iter().map(|x| Some(*x)).collect::<Vec<_>>();
    [
        (
            "Requests and errors per second (background load)",
            "per second",
            vec![
                Series {
                    name: "requests/s",
                    color: "#1f77b4",
                    values: all(&t.requests_per_s),
                },
                Series {
                    name: "errors/s",
                    color: "#c0392b",
                    values: all(&t.errors_per_s),
                },
            ],
        ),
        (
            "Latency p99 (background load)",
            "ms",
            vec![Series {
                name: "p99 ms",
                color: "#16a085",
                values: t.p99_ms.clone(),
            }],
        ),
        (
            "Replicas",
            "replicas",
            vec![
                Series {
                    name: "replicas",
                    color: "#95a5a6",
                    values: t.replicas.clone(),
                },
                Series {
                    name: "ready",
                    color: "#1e8449",
                    values: t.ready_replicas.clone(),
                },
            ],
        ),
    ]
}

fn pass_cell(ok: bool) -> &'static str {
    if ok {
        "<td class=\"pass\">pass</td>"
    } else {
        "<td class=\"fail\">FAIL</td>"
    }
}

fn verdicts(h: &mut String, j: &Journal) {
    h.push_str(
        "<h2>Verdict</h2><table id=\"verdicts\"><tr><th>check</th><th>expected</th><th>measured</th><th>result</th></tr>",
    );
    let steady = |h: &mut String, when: &str, state: &Option<SteadyState>| match state {
        None => {
            let _ = write!(
                h,
                "<tr class=\"group\"><td colspan=\"4\">steady state {when}: <span class=\"muted\">not checked</span></td></tr>"
            );
        }
        Some(s) => {
            let _ = write!(
                h,
                "<tr class=\"group\"><td colspan=\"4\">steady state {when}: {}</td></tr>",
                if s.steady_state_met {
                    "<span class=\"pass\">met</span>"
                } else {
                    "<span class=\"fail\">not met</span>"
                }
            );
            for p in &s.probes {
                let ok = probe_passed(p);
                let _ = write!(
                    h,
                    "<tr{}><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
                    if ok { "" } else { " class=\"failed\"" },
                    esc(&p.activity.name),
                    esc(&p.activity.provider),
                    esc(&p.output),
                    pass_cell(ok)
                );
            }
        }
    };
    steady(h, "before", &j.steady_states.before);
    if !j.expectations.is_empty() {
        h.push_str("<tr class=\"group\"><td colspan=\"4\">expectations</td></tr>");
    }
    for e in &j.expectations {
        let kind = if e.kind.is_empty() {
            String::new()
        } else {
            format!(" <span class=\"muted\">({})</span>", esc(&e.kind))
        };
        let _ = write!(
            h,
            "<tr{}><td>{}{kind}</td><td>{}</td><td>{}</td>{}</tr>",
            if e.passed { "" } else { " class=\"failed\"" },
            esc(&e.name),
            esc(&e.expected),
            esc(&e.measured),
            pass_cell(e.passed)
        );
    }
    steady(h, "after", &j.steady_states.after);
    h.push_str("</table>");
}

/// An output cell: short ones as they are, long ones folded (no script:
/// `<details>` opens by itself).
fn output_cell(output: &str) -> String {
    let text = plain_text(output);
    let text = text.trim_end();
    if text.is_empty() {
        return "<td class=\"muted\">—</td>".into();
    }
    let lines = text.lines().count();
    if lines <= 3 && text.chars().count() <= 240 {
        return format!("<td><pre>{}</pre></td>", chart::esc(text));
    }
    let first: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(100)
        .collect();
    format!(
        "<td><details><summary><code>{}</code> … ({lines} lines)</summary><pre>{}</pre></details></td>",
        chart::esc(&first),
        chart::esc(text)
    )
}

fn activities(h: &mut String, heading: &str, what: &str, runs: &[ActivityRun]) {
    let id = heading.to_lowercase();
    let _ = write!(h, "<h2>{heading}</h2>");
    if runs.is_empty() {
        let _ = write!(h, "<p class=\"meta\" id=\"{id}\">No {what}.</p>");
        return;
    }
    let _ = write!(
        h,
        "<table id=\"{id}\"><tr><th class=\"n\">at</th><th>name</th><th>action</th><th>status</th>\
         <th class=\"n\">took</th><th>output</th></tr>"
    );
    for r in runs {
        let ok = r.status == "succeeded";
        let _ = write!(
            h,
            "<tr{}><td class=\"n\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"{}\">{}</td><td class=\"n\">{}</td>{}</tr>",
            if ok { "" } else { " class=\"failed\"" },
            secs(r.offset_s),
            esc(&r.activity.name),
            esc(&r.activity.provider),
            if ok { "pass" } else { "fail" },
            esc(&r.status),
            took(r.duration),
            output_cell(&r.output)
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::journal::{
        Activity, ExpectationResult, ExperimentInfo, FaultSpan, Mark, Measurements, SpanFigures,
        SteadyStates,
    };

    fn activity(
        kind: &str,
        name: &str,
        provider: &str,
        ok: bool,
        output: &str,
        at: f64,
    ) -> ActivityRun {
        ActivityRun {
            activity: Activity {
                kind: kind.into(),
                name: name.into(),
                provider: provider.into(),
            },
            status: if ok { "succeeded" } else { "failed" }.into(),
            output: output.into(),
            start: "2026-11-28T12:00:05.000Z".into(),
            end: "2026-11-28T12:00:05.120Z".into(),
            duration: 0.12,
            offset_s: at,
            tolerance_met: (kind == "probe").then_some(ok),
        }
    }

    /// A deviated network-cut run whose names need escaping; shared with
    /// the JUnit tests.
    pub(crate) fn sample() -> Journal {
        Journal {
            chaoslib_version: None,
            chaoslab_version: "0.1.0".into(),
            experiment: ExperimentInfo {
                name: "cut<&\"net\">".into(),
                title: "Redis cut <off> & \"back\"".into(),
                description: "Seed flow 4: <script>alert(1)</script>".into(),
                tags: vec!["seed".into(), "net<work>".into()],
                lab: "own".into(),
            },
            start: "2026-11-28T12:00:00.000Z".into(),
            end: "2026-11-28T12:00:41.500Z".into(),
            duration: 41.5,
            status: Status::Deviated,
            deviated: true,
            reason: "expectation \"recovers <fast>\" did not hold".into(),
            steady_states: sample_steady_states(),
            run: sample_run(),
            rollbacks: vec![activity(
                "action",
                "rollback-1",
                "fault clear --all",
                true,
                "",
                25.0,
            )],
            expectations: sample_expectations(),
            measurements: sample_measurements(),
            timeline: sample_timeline(),
        }
    }

    /// Before: met; after: not met, with output that needs escaping.
    fn sample_steady_states() -> SteadyStates {
        SteadyStates {
            before: Some(SteadyState {
                steady_state_met: true,
                probes: vec![activity(
                    "probe",
                    "root answers",
                    "GET / status 200",
                    true,
                    "200",
                    -2.0,
                )],
            }),
            after: Some(SteadyState {
                steady_state_met: false,
                probes: vec![activity(
                    "probe",
                    "root <answers> after",
                    "GET / status 200",
                    false,
                    "503 & \"Redis connection failed\"",
                    30.0,
                )],
            }),
        }
    }

    /// The cut, then a clear that failed with a long output.
    fn sample_run() -> Vec<ActivityRun> {
        vec![
            activity(
                "action",
                "cut",
                "fault network block --mode deny-new",
                true,
                "\u{1b}[32mblocked\u{1b}[0m redis <10.0.0.1>",
                5.0,
            ),
            activity(
                "action",
                "clear",
                "fault clear --all",
                false,
                &(0..20).map(|i| format!("line {i}\n")).collect::<String>(),
                20.0,
            ),
        ]
    }

    /// One expectation held, one (with a name to escape) did not.
    fn sample_expectations() -> Vec<ExpectationResult> {
        vec![
            ExpectationResult {
                name: "503 soon after the cut".into(),
                expected: "GET / status 503 within 5s after cut".into(),
                measured: "first held 0.4s after cut".into(),
                passed: true,
                detected_after_s: Some(0.4),
                kind: "detect".into(),
            },
            ExpectationResult {
                name: "recovers <fast> & \"sure\"".into(),
                expected: "GET / status 200 within 1s after clear".into(),
                measured: "first held 2.6s after clear".into(),
                passed: false,
                detected_after_s: Some(2.6),
                kind: "recover".into(),
            },
        ]
    }

    /// The figures of a deviated cut: low availability inside the span.
    fn sample_measurements() -> Measurements {
        Measurements {
            time_to_detect_s: Some(0.4),
            time_to_recover_s: Some(2.6),
            availability: Some(0.48),
            p50_ms: Some(1.9),
            p99_ms: Some(12.5),
            requests_sent: 6000,
            requests_answered: 5998,
            requests_lost: 2,
            spans: vec![SpanFigures {
                name: "cut..clear".into(),
                from_s: 5.0,
                to_s: 20.0,
                sent: 3000,
                answered: 3000,
                ok: 10,
                availability: Some(10.0 / 3000.0),
                p50_ms: Some(0.8),
                p99_ms: Some(3.0),
            }],
            counter_increase: Some(3000),
            ok_root_responses: 2990,
            root_requests_sent: 6010,
            counter_ok: Some(true),
            ready_replicas_min: Some(0),
            ready_replicas_max: Some(2),
            replicas_max: Some(2),
            runner_cpu_percent: Some(1.2),
            restarts: 0,
            samples_dropped: 0,
        }
    }

    /// 30 one-second buckets from -3 s; errors and no ready replica
    /// while the cut (5 s..20 s) holds; an alert still firing at the end.
    fn sample_timeline() -> Timeline {
        let n = 30;
        let t: Vec<f64> = (-3..n - 3).map(f64::from).collect();
        let cut = |x: f64| (5.0..20.0).contains(&x);
        Timeline {
            requests_per_s: t.iter().map(|_| 200.0).collect(),
            errors_per_s: t
                .iter()
                .map(|x| if cut(*x) { 199.0 } else { 0.0 })
                .collect(),
            p99_ms: t.iter().map(|x| (*x != 0.0).then_some(4.0)).collect(),
            ready_replicas: t
                .iter()
                .map(|x| Some(if cut(*x) { 0.0 } else { 2.0 }))
                .collect(),
            replicas: t.iter().map(|_| Some(2.0)).collect(),
            t,
            marks: vec![
                Mark {
                    id: "cut".into(),
                    action: "fault network block".into(),
                    at_s: 5.0,
                    ok: true,
                },
                Mark {
                    id: "clear<now>".into(),
                    action: "fault clear --all".into(),
                    at_s: 20.0,
                    ok: false,
                },
            ],
            faults: vec![FaultSpan {
                name: "network block redis".into(),
                from_s: 5.0,
                to_s: Some(20.0),
            }],
            alerts: vec![FaultSpan {
                name: "5xx burst".into(),
                from_s: 6.5,
                to_s: None,
            }],
        }
    }

    /// Every way a page could reach outside itself.
    pub(crate) fn external_references(html: &str) -> Vec<String> {
        let lower = html.to_ascii_lowercase();
        let mut found = Vec::new();
        for needle in [
            "http:", "https:", "//", "src=", "href=", "srcset=", "url(", "@import", "<link",
            "<script", "<img", "<iframe", "<object", "<embed", "<base", "action=", "poster=",
            "data:",
        ] {
            if let Some(i) = lower.find(needle) {
                let from = i.saturating_sub(40);
                found.push(format!(
                    "{needle} in …{}…",
                    &html[from..(i + 40).min(html.len())]
                ));
            }
        }
        found
    }

    #[test]
    fn page_is_self_contained() {
        let html = render(&sample());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert_eq!(external_references(&html), Vec::<String>::new());
        assert!(!html.contains("xmlns"));
    }

    #[test]
    fn text_is_escaped() {
        let html = render(&sample());
        assert!(html.contains("Redis cut &lt;off&gt; &amp; &quot;back&quot;"));
        assert!(html.contains("cut&lt;&amp;&quot;net&quot;&gt;"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("recovers &lt;fast&gt; &amp; &quot;sure&quot;"));
        assert!(html.contains("503 &amp; &quot;Redis connection failed&quot;"));
        assert!(html.contains("net&lt;work&gt;"));
        assert!(!html.contains("<off>") && !html.contains("<fast>") && !html.contains("<work>"));
        assert!(!html.contains("<script"));
        // ANSI colours are removed, not escaped into the page.
        assert!(html.contains("blocked redis &lt;10.0.0.1&gt;"));
        assert!(!html.contains('\u{1b}'));
    }

    #[test]
    fn status_and_reason_lead_the_page() {
        let html = render(&sample());
        let verdict = html.find("id=\"verdict\"").expect("verdict block");
        assert!(html[..verdict].contains("<h1>"));
        assert!(html.contains("class=\"verdict deviated\""));
        assert!(html.contains("<span class=\"badge\">deviated</span>"));
        assert!(html.contains("expectation &quot;recovers &lt;fast&gt;&quot; did not hold"));
        assert!(html.contains("1 of 2 expectations held"));
        assert!(html.contains("duration 41.5 s"));
        assert!(html.contains("2026-11-28 12:00:41.500 UTC"));
        for status in [Status::Completed, Status::Aborted, Status::Interrupted] {
            let j = Journal { status, ..sample() };
            assert!(render(&j).contains(&format!("class=\"verdict {}\"", status.as_str())));
        }
    }

    #[test]
    fn charts_carry_fault_and_alert_bands_and_step_marks() {
        let html = render(&sample());
        assert_eq!(html.matches("<svg").count(), 3);
        // Every chart: the fault span and the alert span, both steps.
        assert_eq!(html.matches("<rect class=\"band\"").count(), 3 * 2);
        assert_eq!(html.matches("<line class=\"mark\"").count(), 3 * 2);
        assert!(html.contains(">network block redis</text>"));
        assert!(html.contains(">alert: 5xx burst</text>"));
        assert!(html.contains(">cut</text>"));
        // The failed step is red and says so.
        assert!(html.contains(&format!("stroke=\"{STEP_FAILED_COLOR}\"")));
        assert!(html.contains(">clear&lt;now&gt; (failed)</text>"));
        let empty = Journal {
            timeline: Timeline::default(),
            ..sample()
        };
        let html = render(&empty);
        assert!(!html.contains("<svg"));
        assert!(html.contains("No time series"));
    }

    #[test]
    fn tables_hold_every_figure_and_verdict() {
        let html = render(&sample());
        for figure in [
            "time to detect</th><td>0.4 s",
            "time to recover</th><td>2.6 s",
            "availability</th><td>48.00 %",
            "p50 / p99</th><td>1.9 ms / 12.5 ms",
            "requests sent / answered</th><td>6000 / 5998",
            "requests lost</th><td class=\"fail\">2",
            "counter check</th><td class=\"pass\">held: grew 3000, 2990 × 200 to /, 6010 sent",
            "ready replicas min / max</th><td>0 / 2",
            "replicas max</th><td>2",
            "restarts</th><td>0",
        ] {
            assert!(html.contains(figure), "missing {figure}");
        }
        let spans = &html[html.find("id=\"spans\"").expect("spans")..];
        assert!(spans.contains("<td>cut..clear</td><td class=\"n\">5.0 s</td><td class=\"n\">20.0 s</td><td class=\"n\">3000</td>"));
        let verdicts = &html[html.find("id=\"verdicts\"").expect("verdicts")..];
        assert_eq!(verdicts.matches("<td class=\"pass\">pass</td>").count(), 2);
        assert_eq!(verdicts.matches("<td class=\"fail\">FAIL</td>").count(), 2);
        assert!(verdicts.contains("steady state before: <span class=\"pass\">met</span>"));
        assert!(verdicts.contains("steady state after: <span class=\"fail\">not met</span>"));
        assert!(
            verdicts.contains("<td>first held 2.6s after clear</td><td class=\"fail\">FAIL</td>")
        );
        let method = &html[html.find("id=\"method\"").expect("method")..];
        assert!(method.contains("<code>fault network block --mode deny-new</code>"));
        assert!(method.contains("<details><summary><code>line 0</code> … (20 lines)</summary>"));
        let rollbacks = &html[html.find("id=\"rollbacks\"").expect("rollbacks")..];
        assert!(rollbacks.contains("rollback-1"));
    }

    #[test]
    fn plain_text_drops_ansi_and_controls() {
        assert_eq!(plain_text("ok"), "ok");
        assert!(matches!(plain_text("a\tb\nc"), Cow::Borrowed(_)));
        assert_eq!(plain_text("\u{1b}[1;31mred\u{1b}[0m\u{7}!"), "red!");
        assert_eq!(plain_text("a\r\nb\rc\u{0}"), "a\nb\nc");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(secs(0.44), "0.4 s");
        assert_eq!(secs(75.2), "1 min 15 s");
        assert_eq!(secs(3725.0), "1 h 02 min 05 s");
        assert_eq!(percent(Some(0.99991)), "99.99 %");
        assert_eq!(percent(Some(1.0)), "100 %");
        assert_eq!(opt_ms(Some(1234.4)), "1234 ms");
        assert_eq!(took(0.0123), "12 ms");
        assert_eq!(took(2.04), "2.0 s");
    }
}
