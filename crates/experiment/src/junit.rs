//! `experiment run --junit FILE`: the runs as JUnit XML (SPEC section 9,
//! "Outputs") so that CI systems (GitLab, Jenkins, GitHub test reporters)
//! show every check of an experiment as a test: one `<testsuite>` per
//! experiment, one `<testcase>` per steady-state probe (before and after)
//! and per expectation, a `<failure>` with the expected and the measured
//! value when one did not hold, and an `<error>` test case when the run
//! aborted or was interrupted. Rendered from the [`Journal`] alone.

use std::fmt::Write as _;

use crate::html::{plain_text, probe_passed};
use crate::journal::{Journal, Status};

/// One test case as it will be written.
struct Case {
    name: String,
    time: f64,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    /// `message`, then the body text.
    Failure(String, String),
    /// `type`, `message`, body text.
    Error(&'static str, String, String),
}

/// The JUnit XML document for these runs (an empty `<testsuites>` for none).
pub fn render(journals: &[Journal]) -> String {
    let suites: Vec<(&Journal, Vec<Case>)> = journals.iter().map(|j| (j, cases(j))).collect();
    let count =
        |cases: &[Case], f: fn(&Outcome) -> bool| cases.iter().filter(|c| f(&c.outcome)).count();
    let is_failure: fn(&Outcome) -> bool = |o| matches!(o, Outcome::Failure(..));
    let is_error: fn(&Outcome) -> bool = |o| matches!(o, Outcome::Error(..));

    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"chaoslab experiments\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        suites.iter().map(|(_, c)| c.len()).sum::<usize>(),
        suites
            .iter()
            .map(|(_, c)| count(c, is_failure))
            .sum::<usize>(),
        suites
            .iter()
            .map(|(_, c)| count(c, is_error))
            .sum::<usize>(),
        seconds(journals.iter().map(|j| j.duration).sum()),
    );
    for (j, cases) in &suites {
        let name = &j.experiment.name;
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\" timestamp=\"{}\">",
            attr(name),
            cases.len(),
            count(cases, is_failure),
            count(cases, is_error),
            seconds(j.duration),
            attr(&j.start),
        );
        write_properties(&mut x, j);
        let classname = attr(&format!("chaoslab.experiment.{name}"));
        for case in cases {
            write_case(&mut x, &classname, case);
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// A suite's `<properties>`: what the run was and how it ended.
fn write_properties(x: &mut String, j: &Journal) {
    x.push_str("    <properties>\n");
    for (key, value) in [
        ("title", j.experiment.title.as_str()),
        ("status", j.status.as_str()),
        ("reason", j.reason.as_str()),
        ("lab", j.experiment.lab.as_str()),
        ("tags", &j.experiment.tags.join(",")),
        ("chaoslab_version", j.chaoslab_version.as_str()),
        ("end", j.end.as_str()),
    ] {
        let _ = writeln!(
            x,
            "      <property name=\"{key}\" value=\"{}\"/>",
            attr(value)
        );
    }
    x.push_str("    </properties>\n");
}

/// One `<testcase>`, with its failure or error when it has one.
fn write_case(x: &mut String, classname: &str, case: &Case) {
    let _ = write!(
        x,
        "    <testcase classname=\"{classname}\" name=\"{}\" time=\"{}\"",
        attr(&case.name),
        seconds(case.time)
    );
    match &case.outcome {
        Outcome::Passed => x.push_str("/>\n"),
        Outcome::Failure(message, body) => {
            let _ = write!(
                x,
                ">\n      <failure message=\"{}\" type=\"failure\">{}</failure>\n    </testcase>\n",
                attr(message),
                text(body)
            );
        }
        Outcome::Error(kind, message, body) => {
            let _ = write!(
                x,
                ">\n      <error message=\"{}\" type=\"{kind}\">{}</error>\n    </testcase>\n",
                attr(message),
                text(body)
            );
        }
    }
}

/// The test cases of one run, in the order the run made them.
fn cases(j: &Journal) -> Vec<Case> {
    let mut out = Vec::new();
    steady_cases(&mut out, "before", &j.steady_states.before);
    for e in &j.expectations {
        let outcome = if e.passed {
            Outcome::Passed
        } else {
            let mut body = format!("expected: {}\nmeasured: {}", e.expected, e.measured);
            if let Some(s) = e.detected_after_s {
                let _ = write!(body, "\nafter: {s:.1}s");
            }
            if !e.kind.is_empty() {
                let _ = write!(body, "\nkind: {}", e.kind);
            }
            Outcome::Failure(
                format!("expected {}, measured {}", e.expected, e.measured),
                body,
            )
        };
        out.push(Case {
            name: e.name.clone(),
            time: 0.0,
            outcome,
        });
    }
    steady_cases(&mut out, "after", &j.steady_states.after);

    out.extend(run_end_case(j, &out));
    out
}

/// The cases of one steady-state check (`before` or `after`), a probe each.
fn steady_cases(out: &mut Vec<Case>, when: &str, state: &Option<crate::journal::SteadyState>) {
    for p in state.iter().flat_map(|s| &s.probes) {
        let outcome = if probe_passed(p) {
            Outcome::Passed
        } else {
            Outcome::Failure(
                format!("expected {}, measured {}", p.activity.provider, p.output),
                format!(
                    "steady state {when}: {}\nexpected: {}\nmeasured: {}\nstatus: {}",
                    p.activity.name, p.activity.provider, p.output, p.status
                ),
            )
        };
        out.push(Case {
            name: format!("steady state {when}: {}", p.activity.name),
            time: p.duration,
            outcome,
        });
    }
}

/// The case that says how a run ended, when its other cases do not: a
/// deviation nothing above shows, an abort, an interruption.
fn run_end_case(j: &Journal, out: &[Case]) -> Option<Case> {
    let failed_steps = || {
        j.run
            .iter()
            .chain(&j.rollbacks)
            .filter(|r| r.status != "succeeded")
            .map(|r| {
                format!(
                    "\n{} `{}` {}: {}",
                    r.activity.name,
                    r.activity.provider,
                    r.status,
                    r.output.trim_end()
                )
            })
            .collect::<String>()
    };
    match j.status {
        Status::Completed => None,
        Status::Deviated => {
            // A deviation nothing above shows (e.g. no probe journalled)
            // must still turn CI red.
            if !out
                .iter()
                .any(|c| matches!(c.outcome, Outcome::Failure(..)))
            {
                let reason = or(&j.reason, "the run deviated");
                Some(Case {
                    name: "experiment deviated".into(),
                    time: j.duration,
                    outcome: Outcome::Failure(reason.clone(), reason),
                })
            } else {
                None
            }
        }
        Status::Aborted | Status::Interrupted => {
            let (kind, default) = if j.status == Status::Aborted {
                ("aborted", "the experiment could not run")
            } else {
                ("interrupted", "interrupted (Ctrl-C or SIGTERM)")
            };
            let reason = or(&j.reason, default);
            Some(Case {
                name: format!("experiment {kind}"),
                time: j.duration,
                outcome: Outcome::Error(
                    kind,
                    reason.clone(),
                    format!("{reason}{}", failed_steps()),
                ),
            })
        }
    }
}

fn or(text: &str, default: &str) -> String {
    if text.trim().is_empty() {
        default
    } else {
        text
    }
    .to_owned()
}

/// Seconds with millisecond precision, as JUnit readers expect.
fn seconds(s: f64) -> String {
    // Also turns -0.0 (the sum of nothing) into 0.
    format!("{:.3}", if s.is_finite() && s > 0.0 { s } else { 0.0 })
}

/// XML 1.0 character data: markup escaped, characters XML cannot hold
/// (most control characters) dropped with ANSI colours.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in plain_text(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An XML attribute value in double quotes: quotes escaped too, and
/// newlines and tabs as character references (a parser would otherwise
/// turn them into spaces).
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in text(s).chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::html::tests::sample;

    /// The value of `name="…"` in the first tag that starts with `tag`.
    fn attr_of<'a>(xml: &'a str, tag: &str, name: &str) -> &'a str {
        let start = xml.find(tag).unwrap_or_else(|| panic!("no {tag}"));
        let rest = &xml[start..];
        let rest = &rest[..rest.find('>').expect("tag end")];
        let key = format!(" {name}=\"");
        let v = &rest[rest
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in {rest}"))
            + key.len()..];
        &v[..v.find('"').expect("closing quote")]
    }

    #[test]
    fn one_suite_per_run_one_case_per_probe_and_expectation() {
        let deviated = sample();
        let mut completed = sample();
        completed.experiment.name = "root".into();
        completed.status = Status::Completed;
        completed.deviated = false;
        completed.reason.clear();
        completed.expectations.retain(|e| e.passed);
        completed.steady_states.after = completed.steady_states.before.clone();
        completed.duration = 10.25;
        let xml = render(&[deviated, completed]);

        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert_eq!(xml.matches("<testsuite ").count(), 2);
        // Deviated: 2 probes + 2 expectations, the after probe and one
        // expectation failed.
        assert_eq!(attr_of(&xml, "<testsuite ", "tests"), "4");
        assert_eq!(attr_of(&xml, "<testsuite ", "failures"), "2");
        assert_eq!(attr_of(&xml, "<testsuite ", "errors"), "0");
        assert_eq!(attr_of(&xml, "<testsuite ", "time"), "41.500");
        let second = &xml[xml.find("<testsuite name=\"root\"").expect("second suite")..];
        assert_eq!(attr_of(second, "<testsuite ", "tests"), "3");
        assert_eq!(attr_of(second, "<testsuite ", "failures"), "0");
        assert_eq!(attr_of(second, "<testsuite ", "time"), "10.250");
        assert_eq!(attr_of(&xml, "<testsuites", "tests"), "7");
        assert_eq!(attr_of(&xml, "<testsuites", "failures"), "2");
        assert_eq!(attr_of(&xml, "<testsuites", "time"), "51.750");
        assert_eq!(xml.matches("<testcase ").count(), 7);
        assert_eq!(xml.matches("<failure ").count(), 2);
        assert!(second.contains(
            "<testcase classname=\"chaoslab.experiment.root\" name=\"steady state before: root answers\" time=\"0.120\"/>"
        ));
        assert!(second.contains("name=\"steady state after: root answers\""));
    }

    #[test]
    fn names_and_messages_are_escaped() {
        let xml = render(&[sample()]);
        assert!(xml.contains("<testsuite name=\"cut&lt;&amp;&quot;net&quot;&gt;\""));
        assert!(xml.contains("classname=\"chaoslab.experiment.cut&lt;&amp;&quot;net&quot;&gt;\""));
        assert!(xml.contains("name=\"recovers &lt;fast&gt; &amp; &quot;sure&quot;\""));
        assert!(xml.contains(
            "<failure message=\"expected GET / status 200 within 1s after clear, measured first held 2.6s after clear\" type=\"failure\">"
        ));
        assert!(xml.contains(
            "message=\"expected GET / status 200, measured 503 &amp; &quot;Redis connection failed&quot;\""
        ));
        assert!(
            xml.contains(
                "measured: 503 &amp; \"Redis connection failed\"\nstatus: failed</failure>"
            )
        );
        assert!(xml.contains("name=\"steady state after: root &lt;answers&gt; after\""));
        // Nothing unescaped from the sample's names leaks into markup.
        for raw in ["<&\"net\">", "<fast>", "<answers>", "<off>"] {
            assert!(!xml.contains(raw), "{raw} unescaped");
        }
    }

    #[test]
    fn aborted_and_interrupted_runs_are_errors() {
        let mut aborted = sample();
        aborted.status = Status::Aborted;
        aborted.reason = "step \"cut\" failed: exit 2 <stderr>".into();
        aborted.expectations.clear();
        aborted.steady_states.after = None;
        let mut interrupted = sample();
        interrupted.experiment.name = "int".into();
        interrupted.status = Status::Interrupted;
        interrupted.reason.clear();
        interrupted.expectations.clear();
        interrupted.steady_states.after = None;
        let xml = render(&[aborted, interrupted]);
        assert_eq!(attr_of(&xml, "<testsuites", "errors"), "2");
        assert_eq!(attr_of(&xml, "<testsuite ", "errors"), "1");
        assert_eq!(attr_of(&xml, "<testsuite ", "tests"), "2");
        assert!(xml.contains(
            "name=\"experiment aborted\" time=\"41.500\">\n      <error message=\"step &quot;cut&quot; failed: exit 2 &lt;stderr&gt;\" type=\"aborted\">"
        ));
        // The failed step's output goes into the error's text.
        assert!(xml.contains("clear `fault clear --all` failed: line 0\nline 1"));
        assert!(
            xml.contains(
                "<error message=\"interrupted (Ctrl-C or SIGTERM)\" type=\"interrupted\">"
            )
        );
    }

    #[test]
    fn a_deviation_without_a_failed_check_still_fails() {
        let mut j = sample();
        j.expectations.retain(|e| e.passed);
        j.steady_states.after = None;
        j.reason = "counter < sent".into();
        let xml = render(&[j]);
        assert_eq!(attr_of(&xml, "<testsuite ", "failures"), "1");
        assert!(xml.contains("name=\"experiment deviated\""));
        assert!(xml.contains(
            "<failure message=\"counter &lt; sent\" type=\"failure\">counter &lt; sent</failure>"
        ));
    }

    #[test]
    fn xml_cannot_be_broken_by_output() {
        assert_eq!(text("a<b>&c\"d'"), "a&lt;b&gt;&amp;c\"d'");
        assert_eq!(attr("a\"b'c\nd\te<"), "a&quot;b&apos;c&#10;d&#9;e&lt;");
        assert_eq!(
            text("\u{1b}[31mred\u{1b}[0m\u{0}\u{8}\u{FFFF}"),
            "red\u{FFFD}"
        );
        assert_eq!(seconds(f64::NAN), "0.000");
        assert_eq!(seconds(1.23456), "1.235");
        let empty = render(&[]);
        assert!(empty.contains("<testsuites name=\"chaoslab experiments\" tests=\"0\" failures=\"0\" errors=\"0\" time=\"0.000\">"));
    }
}
