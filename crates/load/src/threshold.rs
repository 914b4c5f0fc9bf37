//! Pass/fail criteria on the aggregated results, k6-style:
//! `p95<500ms`, `p99<1s`, `avg<=200ms`, `max<2s`, `errors<1%`, `rps>100`.
//! Any failing threshold makes `chaoslab load` exit with status 1.

use std::fmt;

use crate::parse;
use crate::report::{EndpointReport, ThresholdResult};

/// What a threshold measures (on the aggregated row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Latency at a quantile (0–1), ms. `median` is `p50`.
    Percentile(f64),
    /// Mean latency, ms.
    Avg,
    /// Slowest request, ms.
    Max,
    /// Failed requests, percent.
    Errors,
    /// Requests per second over the run.
    Rps,
}

/// `<`, `<=`, `>`, `>=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Strictly below.
    Lt,
    /// At most.
    Le,
    /// Strictly above.
    Gt,
    /// At least.
    Ge,
}

/// One parsed `--threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As the user wrote it.
    pub expression: String,
    /// What is measured.
    pub metric: Metric,
    /// How it compares.
    pub op: Op,
    /// The limit, in ms, percent or req/s.
    pub limit: f64,
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

impl Threshold {
    /// Parses `METRIC OP VALUE` (spaces optional).
    pub fn parse(text: &str) -> Result<Self, String> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let pos = compact.find(['<', '>']).ok_or_else(|| {
            format!("`{text}`: expected METRIC<VALUE or METRIC>VALUE, e.g. p95<500ms")
        })?;
        let (name, rest) = compact.split_at(pos);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else {
            (Op::Gt, &rest[1..])
        };
        let metric = match name.to_ascii_lowercase().as_str() {
            "median" => Metric::Percentile(0.5),
            "avg" | "mean" => Metric::Avg,
            "max" => Metric::Max,
            "errors" | "error_rate" | "failures" => Metric::Errors,
            "rps" => Metric::Rps,
            other => match other.strip_prefix('p').and_then(|q| q.parse::<f64>().ok()) {
                Some(q) if q > 0.0 && q <= 100.0 => Metric::Percentile(q / 100.0),
                _ => {
                    return Err(format!(
                        "`{text}`: unknown metric `{name}` (pNN, median, avg, max, errors, rps)"
                    ));
                }
            },
        };
        let limit = match metric {
            Metric::Percentile(_) | Metric::Avg | Metric::Max => {
                parse::duration(value)
                    .map_err(|e| format!("`{text}`: {e}"))?
                    .as_secs_f64()
                    * 1000.0
            }
            Metric::Errors => value
                .trim_end_matches('%')
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .ok_or_else(|| format!("`{text}`: `{value}` is not a percentage from 0 to 100"))?,
            Metric::Rps => parse::rate(value).map_err(|e| format!("`{text}`: {e}"))?,
        };
        Ok(Self {
            expression: text.trim().to_owned(),
            metric,
            op,
            limit,
        })
    }

    /// The measured value on `row`, in the threshold's unit; `None` when
    /// nothing was measured: no request finished (an error rate of 0
    /// failures in 0 requests is no rate at all), or the value is not a
    /// number.
    pub fn actual(&self, row: &EndpointReport) -> Option<f64> {
        match self.metric {
            Metric::Percentile(q) => interpolate(row, q),
            Metric::Avg => row.avg_ms,
            Metric::Max => row.max_ms,
            Metric::Errors => (row.requests > 0).then_some(row.failure_percent),
            Metric::Rps => Some(row.rps),
        }
        .filter(|v| v.is_finite())
    }

    /// Judges the threshold on `row`. No data fails every threshold,
    /// whatever its operator: a run without requests proves no latency
    /// and no error rate (`rps` is measured, as 0).
    pub fn evaluate(&self, row: &EndpointReport) -> ThresholdResult {
        let actual = self.actual(row);
        let passed = actual.is_some_and(|v| match self.op {
            Op::Lt => v < self.limit,
            Op::Le => v <= self.limit,
            Op::Gt => v > self.limit,
            Op::Ge => v >= self.limit,
        });
        ThresholdResult {
            expression: self.expression.clone(),
            actual,
            unit: self.unit().to_owned(),
            passed,
        }
    }

    /// Unit of `actual`, for printing.
    pub fn unit(&self) -> &'static str {
        match self.metric {
            Metric::Percentile(_) | Metric::Avg | Metric::Max => "ms",
            Metric::Errors => "%",
            Metric::Rps => "req/s",
        }
    }
}

/// A reported percentile, or the exact HDR one for other quantiles (the
/// report keeps Locust's list; p97 etc. use the next one up).
fn interpolate(row: &EndpointReport, q: f64) -> Option<f64> {
    row.percentile(q).or_else(|| {
        row.percentiles
            .iter()
            .find(|p| p.quantile >= q)
            .map(|p| p.ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Percentile;

    fn row() -> EndpointReport {
        EndpointReport {
            method: String::new(),
            name: "Aggregated".into(),
            requests: 1000,
            failures: 5,
            failure_percent: 0.5,
            median_ms: Some(10.0),
            avg_ms: Some(12.0),
            min_ms: Some(1.0),
            max_ms: Some(900.0),
            avg_size: 10.0,
            rps: 150.0,
            failures_per_sec: 0.75,
            percentiles: vec![
                Percentile {
                    quantile: 0.5,
                    ms: 10.0,
                },
                Percentile {
                    quantile: 0.95,
                    ms: 400.0,
                },
                Percentile {
                    quantile: 0.99,
                    ms: 800.0,
                },
                Percentile {
                    quantile: 1.0,
                    ms: 900.0,
                },
            ],
            status_codes: Default::default(),
            bytes: 0,
            latency_sum_us: 0,
            histogram: None,
        }
    }

    #[test]
    fn parses_and_judges() {
        let cases = [
            ("p95<500ms", true),
            ("p99<1s", true),
            ("p99 < 500ms", false),
            ("errors<1%", true),
            ("errors<0.1%", false),
            ("rps>100", true),
            ("rps>=200/s", false),
            ("median<=10ms", true),
            ("avg<10ms", false),
            ("max<1s", true),
            ("p97<850ms", true),
        ];
        for (text, want) in cases {
            let t = Threshold::parse(text).expect(text);
            assert_eq!(t.evaluate(&row()).passed, want, "{text}");
        }
    }

    #[test]
    fn rejects_nonsense() {
        for text in ["p95", "p95<fast", "speed<1s", "p0<1s", "errors<x%"] {
            assert!(Threshold::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn no_data_fails_latency() {
        let mut empty = row();
        empty.percentiles.clear();
        empty.failure_percent = 0.0;
        assert!(
            !Threshold::parse("p95<1s")
                .expect("t")
                .evaluate(&empty)
                .passed
        );
        assert!(
            Threshold::parse("errors<1%")
                .expect("t")
                .evaluate(&empty)
                .passed
        );
    }

    /// The aggregated row of a run that sent nothing.
    fn no_requests() -> EndpointReport {
        EndpointReport {
            requests: 0,
            failures: 0,
            failure_percent: 0.0,
            median_ms: None,
            avg_ms: None,
            min_ms: None,
            max_ms: None,
            rps: 0.0,
            failures_per_sec: 0.0,
            percentiles: Vec::new(),
            ..row()
        }
    }

    #[test]
    fn an_error_rate_without_requests_is_no_data_and_fails() {
        for text in ["errors<1%", "errors<=100%", "errors>0%", "errors>=0%"] {
            let verdict = Threshold::parse(text).expect(text).evaluate(&no_requests());
            assert_eq!(verdict.actual, None, "{text}: no requests, no rate");
            assert!(!verdict.passed, "{text}: nothing was measured");
        }
        // A rate computed as NaN elsewhere is no data either.
        let mut nan = row();
        nan.failure_percent = f64::NAN;
        let verdict = Threshold::parse("errors<1%").expect("t").evaluate(&nan);
        assert_eq!((verdict.actual, verdict.passed), (None, false));
        // rps is still measured: zero requests per second.
        let verdict = Threshold::parse("rps<1")
            .expect("t")
            .evaluate(&no_requests());
        assert_eq!((verdict.actual, verdict.passed), (Some(0.0), true));
    }

    #[test]
    fn error_rates_must_be_percentages() {
        for text in [
            "errors<NaN%",
            "errors<nan",
            "errors<inf%",
            "errors<-1%",
            "errors<101%",
            "errors<1e400%",
        ] {
            let err = Threshold::parse(text).expect_err(text);
            assert!(err.contains("0 to 100"), "{text}: {err}");
        }
        for text in ["errors<0%", "errors<=100%", "errors<0.5"] {
            Threshold::parse(text).expect(text);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_expression_parses_to_a_finite_limit_or_an_error(
            metric in proptest::prop_oneof![
                proptest::strategy::Just("errors".to_string()),
                proptest::strategy::Just("p95".to_string()),
                proptest::strategy::Just("rps".to_string()),
                "\\PC{0,6}",
            ],
            op in proptest::prop_oneof!["<", "<=", ">", ">=", "\\PC{0,2}"],
            value in proptest::prop_oneof![
                "-?[0-9]{0,4}(\\.[0-9]{0,3})?(e[+-]?[0-9]{1,3})?%?",
                "(?i)(nan|inf|infinity|-inf)%?",
                "\\PC{0,12}",
            ],
        ) {
            let text = format!("{metric}{op}{value}");
            if let Ok(t) = Threshold::parse(&text) {
                proptest::prop_assert!(t.limit.is_finite(), "{text}: {t:?}");
                if t.metric == Metric::Errors {
                    proptest::prop_assert!((0.0..=100.0).contains(&t.limit), "{text}: {t:?}");
                }
                let verdict = t.evaluate(&no_requests());
                proptest::prop_assert!(verdict.actual.is_none_or(f64::is_finite));
            }
        }
    }
}
