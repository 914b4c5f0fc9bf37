//! `--html FILE`: one self-contained page (inline CSS and SVG, no script,
//! no external resource) with the run's facts, charts of requests/s,
//! latency percentiles, failures and load over time, the per-endpoint
//! table, the failures and the threshold verdicts.

use std::fmt::Write as _;

use crate::chart::{Series, esc, line_chart};
use crate::print::fmt_ms;
use crate::report::{PERCENTILES, Report};

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.meta{color:#556;font-size:14px;margin-bottom:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #dde;border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:22px} .card span{color:#667;font-size:12px}
.bad b{color:#c0392b} .good b{color:#1e8449}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%}
th,td{border:1px solid #dde;padding:4px 8px;text-align:right} th{background:#eef0f4}
td.l,th.l{text-align:left} tr.total td{font-weight:bold;background:#f3f5f8}
.chart{background:#fff;border:1px solid #dde;border-radius:8px;width:100%;height:auto;margin:6px 0}
.chart .title{font-size:14px;font-weight:bold;fill:#1d2330}
.chart .tick{font-size:11px;fill:#556} .chart .grid{stroke:#e4e6eb;stroke-width:1}
.pass{color:#1e8449;font-weight:bold} .fail{color:#c0392b;font-weight:bold}
"#;

/// The report page.
pub fn render(report: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>chaoslab load report – {}</title><style>{STYLE}</style></head><body>",
        esc(&report.target)
    );
    let _ = write!(
        h,
        "<h1>chaoslab load report</h1><div class=\"meta\">{} · {} model{} · started {} · {:.1}s{} · {}</div>",
        esc(&report.target),
        esc(&report.model),
        report
            .scenario
            .as_ref()
            .map(|s| format!(" · scenario {}", esc(s)))
            .unwrap_or_default(),
        esc(&report.started_at),
        report.duration_secs,
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        },
        esc(&report.plan)
    );
    cards(&mut h, report);
    let g = &report.generator;
    if g.late_starts > 0 || g.abandoned > 0 {
        let _ = write!(
            h,
            "<div class=\"meta\">generator: {} requests started more than 10 ms after their schedule (latency counted from the schedule); {} abandoned at the end; peak concurrency {}</div>",
            g.late_starts, g.abandoned, g.peak_concurrency
        );
    }
    charts(&mut h, report);
    endpoints(&mut h, report);
    failures(&mut h, report);
    thresholds(&mut h, report);
    h.push_str("</body></html>\n");
    h
}

fn cards(h: &mut String, r: &Report) {
    let a = &r.aggregated;
    let fail_class = if a.failures > 0 { "bad" } else { "good" };
    let _ = write!(
        h,
        "<div class=\"cards\"><div class=\"card\"><b>{}</b><span>requests</span></div>\
         <div class=\"card {fail_class}\"><b>{:.2}%</b><span>failures ({})</span></div>\
         <div class=\"card\"><b>{:.1}</b><span>req/s</span></div>\
         <div class=\"card\"><b>{}</b><span>median ms</span></div>\
         <div class=\"card\"><b>{}</b><span>p95 ms</span></div>\
         <div class=\"card\"><b>{}</b><span>p99 ms</span></div>\
         <div class=\"card\"><b>{}</b><span>max ms</span></div>",
        a.requests,
        a.failure_percent,
        a.failures,
        a.rps,
        fmt_ms(a.median_ms),
        fmt_ms(a.percentile(0.95)),
        fmt_ms(a.percentile(0.99)),
        fmt_ms(a.max_ms),
    );
    if !r.thresholds.is_empty() {
        let failed = r.thresholds.iter().filter(|t| !t.passed).count();
        let (class, text) = if failed == 0 {
            ("good", "all pass".to_owned())
        } else {
            ("bad", format!("{failed} failed"))
        };
        let _ = write!(
            h,
            "<div class=\"card {class}\"><b>{text}</b><span>thresholds</span></div>"
        );
    }
    h.push_str("</div>");
}

fn charts(h: &mut String, r: &Report) {
    let xs: Vec<f64> = r.history.iter().map(|p| p.elapsed_secs).collect();
    let pick = |q: f64| -> Vec<Option<f64>> {
        let i = PERCENTILES
            .iter()
            .position(|&p| (p - q).abs() < 1e-9)
            .unwrap_or(0);
        r.history
            .iter()
            .map(|p| p.percentiles.get(i).copied())
            .collect()
    };
    h.push_str("<h2>Over time</h2>");
    h.push_str(&line_chart(
        "Requests per second",
        "req/s",
        &xs,
        &[Series {
            name: "req/s",
            color: "#1f77b4",
            values: r.history.iter().map(|p| Some(p.rps)).collect(),
        }],
    ));
    h.push_str(&line_chart(
        "Latency percentiles",
        "ms",
        &xs,
        &[
            Series {
                name: "p50",
                color: "#2ca02c",
                values: pick(0.5),
            },
            Series {
                name: "p95",
                color: "#ff7f0e",
                values: pick(0.95),
            },
            Series {
                name: "p99",
                color: "#d62728",
                values: pick(0.99),
            },
        ],
    ));
    h.push_str(&line_chart(
        "Failures per second",
        "failures/s",
        &xs,
        &[Series {
            name: "failures/s",
            color: "#d62728",
            values: r.history.iter().map(|p| Some(p.failures_per_sec)).collect(),
        }],
    ));
    let load_name = if r.model == "open" {
        "target rate (req/s)"
    } else {
        "users"
    };
    h.push_str(&line_chart(
        "Load",
        load_name,
        &xs,
        &[Series {
            name: load_name,
            color: "#9467bd",
            values: r.history.iter().map(|p| Some(p.load)).collect(),
        }],
    ));
}

fn endpoints(h: &mut String, r: &Report) {
    h.push_str("<h2>Requests</h2><table><tr><th class=\"l\">Type</th><th class=\"l\">Name</th><th># reqs</th><th># fails</th>\
        <th>Median</th><th>95%</th><th>99%</th><th>Max</th><th>Avg</th><th>Avg size (B)</th><th>req/s</th><th>Status codes</th></tr>");
    for (i, row) in r.endpoints.iter().chain([&r.aggregated]).enumerate() {
        let class = if i == r.endpoints.len() {
            " class=\"total\""
        } else {
            ""
        };
        let codes: Vec<String> = row
            .status_codes
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let _ = write!(
            h,
            "<tr{class}><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{} ({:.2}%)</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td class=\"l\">{}</td></tr>",
            esc(&row.method),
            esc(&row.name),
            row.requests,
            row.failures,
            row.failure_percent,
            fmt_ms(row.median_ms),
            fmt_ms(row.percentile(0.95)),
            fmt_ms(row.percentile(0.99)),
            fmt_ms(row.max_ms),
            fmt_ms(row.avg_ms),
            row.avg_size,
            row.rps,
            esc(&codes.join(", ")),
        );
    }
    h.push_str("</table><div class=\"meta\">latencies in ms</div>");
}

fn failures(h: &mut String, r: &Report) {
    h.push_str("<h2>Failures</h2>");
    if r.failures.is_empty() {
        h.push_str("<p>None.</p>");
        return;
    }
    h.push_str("<table><tr><th>Occurrences</th><th class=\"l\">Method</th><th class=\"l\">Name</th><th class=\"l\">Kind</th><th class=\"l\">Error</th><th class=\"l\">First seen</th><th class=\"l\">Last seen</th></tr>");
    for f in &r.failures {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            f.occurrences,
            esc(&f.method),
            esc(&f.name),
            esc(&f.kind),
            esc(&f.error),
            esc(&f.first_seen),
            esc(&f.last_seen)
        );
    }
    h.push_str("</table>");
}

fn thresholds(h: &mut String, r: &Report) {
    if r.thresholds.is_empty() {
        return;
    }
    h.push_str("<h2>Thresholds</h2><table><tr><th class=\"l\">Threshold</th><th>Actual</th><th class=\"l\">Verdict</th></tr>");
    for t in &r.thresholds {
        let actual = t
            .actual
            .map_or("no data".into(), |v| format!("{v:.2} {}", t.unit));
        let verdict = if t.passed {
            "<span class=\"pass\">pass</span>"
        } else {
            "<span class=\"fail\">FAIL</span>"
        };
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{verdict}</td></tr>",
            esc(&t.expression),
            esc(&actual)
        );
    }
    h.push_str("</table>");
}
