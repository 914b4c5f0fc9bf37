//! The figures of a run, computed once it is over from what was recorded:
//! time to detect and to recover (from the expectations' verdicts),
//! availability and p50/p99 of the background load overall and per span
//! between steps, requests sent/answered/lost, the counter invariant, the
//! replicas seen, and one-second time series for the report.

use crate::journal::{ExpectationResult, FaultSpan, Mark, Measurements, SpanFigures, Timeline};
use crate::observe::{LoadPoint, Timeline as Recorded};

/// The Redis counter read before and after the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct CounterReadings {
    pub before: Option<i64>,
    pub after: Option<i64>,
}

/// Computes the measurements.
pub fn measurements(
    tl: &Recorded,
    results: &[ExpectationResult],
    counter: CounterReadings,
    load_sent_root: u64,
) -> Measurements {
    let method_start = tl.method_start.unwrap_or(0.0);
    let method_end = tl.method_end.unwrap_or_else(|| {
        tl.samples
            .iter()
            .map(|p| p.done())
            .fold(method_start, f64::max)
    });
    let first = |kind: &str| {
        results
            .iter()
            .filter(|r| r.kind == kind && r.passed)
            .filter_map(|r| r.detected_after_s)
            .reduce(f64::min)
    };
    let all: Vec<&LoadPoint> = tl.samples.iter().collect();
    let overall = figures("run", &all, method_start, method_end, method_start);
    let (sent, answered) = (tl.sent, tl.answered);
    let ok_root = tl.root_ok + tl.probe_root_ok;
    let root_sent = load_sent_root + tl.probe_root_sent;
    let increase = match (counter.before, counter.after) {
        // The reading after is itself one increment.
        (Some(b), Some(a)) => Some(a - b - 1),
        _ => None,
    };
    let during: Vec<_> = tl
        .gauges
        .iter()
        .filter(|g| g.t >= method_start && g.t <= method_end)
        .collect();
    Measurements {
        time_to_detect_s: first("detect"),
        time_to_recover_s: first("recover"),
        availability: overall.availability,
        p50_ms: overall.p50_ms,
        p99_ms: overall.p99_ms,
        requests_sent: sent,
        requests_answered: answered,
        requests_lost: sent - answered,
        spans: spans(tl, method_start, method_end),
        counter_increase: increase,
        ok_root_responses: ok_root,
        root_requests_sent: root_sent,
        counter_ok: increase.map(|i| i >= ok_root as i64 && i <= root_sent as i64),
        ready_replicas_min: during.iter().map(|g| g.ready).min(),
        ready_replicas_max: during.iter().map(|g| g.ready).max(),
        replicas_max: during.iter().map(|g| g.replicas).max(),
        restarts: match (tl.first_gauge.as_ref(), tl.gauges.back()) {
            (Some(a), Some(b)) => b.restarts.saturating_sub(a.restarts),
            _ => 0,
        },
        samples_dropped: tl.samples_dropped,
        runner_cpu_percent: None,
    }
}

/// Figures of the points whose intended start is in `[from, to)`.
fn figures(name: &str, points: &[&LoadPoint], from: f64, to: f64, origin: f64) -> SpanFigures {
    let mut latencies: Vec<f32> = Vec::new();
    let (mut sent, mut answered, mut ok) = (0u64, 0u64, 0u64);
    for p in points {
        let t = f64::from(p.t);
        if t < from || t >= to {
            continue;
        }
        sent += 1;
        if p.status != 0 {
            answered += 1;
        }
        if p.ok {
            ok += 1;
        }
        latencies.push(p.latency_ms);
    }
    latencies.sort_by(f32::total_cmp);
    let pct = |q: f64| -> Option<f64> {
        if latencies.is_empty() {
            return None;
        }
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        Some((f64::from(latencies[i]) * 10.0).round() / 10.0)
    };
    SpanFigures {
        name: name.to_string(),
        from_s: round1(from - origin),
        to_s: round1(to - origin),
        sent,
        answered,
        ok,
        availability: (sent > 0).then(|| ok as f64 / sent as f64),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `baseline` (load start → first step), then one span from each step to
/// the next, the last to the end of the method.
fn spans(tl: &Recorded, method_start: f64, method_end: f64) -> Vec<SpanFigures> {
    let points: Vec<&LoadPoint> = tl.samples.iter().collect();
    let load_start = points
        .iter()
        .map(|p| f64::from(p.t))
        .fold(method_start, f64::min);
    let mut out = Vec::new();
    let first_mark = tl.marks.first().map_or(method_end, |m| m.t);
    out.push(figures(
        "baseline",
        &points,
        load_start,
        first_mark,
        method_start,
    ));
    for (i, m) in tl.marks.iter().enumerate() {
        let (to, next) = match tl.marks.get(i + 1) {
            Some(n) => (n.t, n.id.as_str()),
            None => (method_end, "end"),
        };
        out.push(figures(
            &format!("{}..{next}", m.id),
            &points,
            m.t,
            to,
            method_start,
        ));
    }
    out
}

/// One-second series from the start of the method, marks, fault and alert
/// spans, for the report.
pub fn timeline(tl: &Recorded) -> Timeline {
    let origin = tl.method_start.unwrap_or(0.0);
    let end = tl
        .samples
        .iter()
        .map(|p| p.done())
        .chain(tl.gauges.iter().map(|g| g.t))
        .chain(tl.method_end)
        .fold(origin, f64::max);
    let start = tl
        .samples
        .iter()
        .map(|p| f64::from(p.t))
        .chain(tl.gauges.front().map(|g| g.t))
        .fold(origin, f64::min);
    let first = (start - origin).floor() as i64;
    let last = (end - origin).ceil() as i64;
    let n = (last - first).clamp(0, 7200) as usize;
    let mut rps = vec![0.0; n];
    let mut errors = vec![0.0; n];
    let mut lat: Vec<Vec<f32>> = vec![Vec::new(); n];
    let index = |t: f64| -> Option<usize> {
        let i = ((t - origin).floor() as i64 - first).max(0) as usize;
        (i < n).then_some(i)
    };
    for p in &tl.samples {
        if let Some(i) = index(p.done()) {
            rps[i] += 1.0;
            if !p.ok {
                errors[i] += 1.0;
            }
            lat[i].push(p.latency_ms);
        }
    }
    let mut ready = vec![None; n];
    let mut replicas = vec![None; n];
    for g in &tl.gauges {
        if let Some(i) = index(g.t) {
            ready[i] = Some(f64::from(g.ready));
            replicas[i] = Some(f64::from(g.replicas));
        }
    }
    let p99 = lat
        .into_iter()
        .map(|mut l| {
            if l.is_empty() {
                return None;
            }
            l.sort_by(f32::total_cmp);
            let i = ((l.len() as f64 * 0.99).ceil() as usize).clamp(1, l.len()) - 1;
            Some(f64::from(l[i]))
        })
        .collect();
    Timeline {
        t: (0..n).map(|i| (first + i as i64) as f64).collect(),
        requests_per_s: rps,
        errors_per_s: errors,
        p99_ms: p99,
        ready_replicas: ready,
        replicas,
        marks: tl
            .marks
            .iter()
            .map(|m| Mark {
                id: m.id.clone(),
                action: m.action.clone(),
                at_s: round1(m.t - origin),
                ok: m.ok.unwrap_or(false),
            })
            .collect(),
        faults: spans_of(
            tl,
            origin,
            &["FaultInjected"],
            &["FaultCleared", "FaultExpired"],
        ),
        alerts: spans_of(tl, origin, &["AlertFiring"], &["AlertResolved"]),
    }
}

/// Spans between an opening and a closing event of the same subject.
fn spans_of(tl: &Recorded, origin: f64, open: &[&str], close: &[&str]) -> Vec<FaultSpan> {
    let mut out: Vec<(String, FaultSpan)> = Vec::new();
    for e in &tl.events {
        if open.contains(&e.reason.as_str()) {
            let name = e.data["kind"]
                .as_str()
                .or_else(|| e.data["rule"].as_str())
                .map_or_else(|| e.subject.clone(), |k| format!("{k} {}", e.subject));
            out.push((
                e.subject.clone(),
                FaultSpan {
                    name,
                    from_s: round1(e.t - origin),
                    to_s: None,
                },
            ));
        } else if close.contains(&e.reason.as_str())
            && let Some((_, span)) = out
                .iter_mut()
                .rev()
                .find(|(s, span)| *s == e.subject && span.to_s.is_none())
        {
            span.to_s = Some(round1(e.t - origin));
        }
    }
    out.into_iter().map(|(_, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{SeenEvent, StepMark};

    fn point(t: f32, ok: bool) -> LoadPoint {
        LoadPoint {
            t,
            latency_ms: 5.0,
            status: if ok { 200 } else { 503 },
            ok,
            root: true,
        }
    }

    #[test]
    fn spans_split_the_load_at_the_steps() {
        let mut tl = Recorded {
            method_start: Some(1.0),
            method_end: Some(7.0),
            ..Default::default()
        };
        for i in 0..70 {
            let t = i as f32 / 10.0;
            tl.record_sample(point(t, !(3.0..5.0).contains(&t)));
        }
        for (id, t) in [("cut", 3.0), ("clear", 5.0)] {
            tl.marks.push(StepMark {
                id: id.into(),
                action: id.into(),
                t,
                ok: Some(true),
            });
        }
        let m = measurements(&tl, &[], CounterReadings::default(), 70);
        let names: Vec<&str> = m.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["baseline", "cut..clear", "clear..end"]);
        assert_eq!(m.spans[0].availability, Some(1.0));
        assert_eq!(m.spans[1].availability, Some(0.0));
        assert_eq!(m.spans[1].sent, 20);
        assert_eq!(m.spans[2].availability, Some(1.0));
        assert_eq!(m.requests_sent, 70);
        assert_eq!(m.requests_lost, 0);
    }

    #[test]
    fn the_counter_invariant_brackets_the_increase() {
        let mut tl = Recorded::default();
        for _ in 0..10 {
            tl.record_sample(point(0.0, true));
        }
        tl.record_sample(point(0.0, false));
        let reading = |before, after| CounterReadings {
            before: Some(before),
            after: Some(after),
        };
        // 10 acknowledged, 11 sent; the after-reading adds one.
        assert_eq!(
            measurements(&tl, &[], reading(5, 16), 11).counter_ok,
            Some(true)
        );
        assert_eq!(
            measurements(&tl, &[], reading(5, 17), 11).counter_ok,
            Some(true)
        );
        assert_eq!(
            measurements(&tl, &[], reading(5, 15), 11).counter_ok,
            Some(false),
            "a lost write"
        );
        assert_eq!(
            measurements(&tl, &[], reading(5, 18), 11).counter_ok,
            Some(false)
        );
    }

    #[test]
    fn fault_spans_come_from_events() {
        let mut tl = Recorded {
            method_start: Some(0.0),
            ..Default::default()
        };
        for (t, reason) in [(1.0, "FaultInjected"), (4.0, "FaultCleared")] {
            tl.events.push_back(SeenEvent {
                t,
                reason: reason.into(),
                subject: "f-1".into(),
                message: String::new(),
                data: serde_json::json!({"kind": "network"}),
            });
        }
        let t = timeline(&tl);
        assert_eq!(t.faults.len(), 1);
        assert_eq!(t.faults[0].to_s, Some(4.0));
        assert!(t.faults[0].name.contains("network"));
    }
}
