//! Property tests of the `[alerts]` configuration as a user writes it in
//! chaoslab.toml: any values parse and validate without a panic, what
//! validates is in range (windows and the evaluation period 1..=900 s),
//! and the engine's window arithmetic never overflows on it, whatever the
//! clock and the samples say. The webhook URL's redaction never panics and
//! never lets its userinfo, path, query or fragment through.

use chaoslab_console::alerts::{AlertEngine, AlertsConfig, Sample, redact_url};
use proptest::prelude::*;

/// A TOML literal for `s` (quoted and escaped).
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML literal for `f` (`nan`, `inf` included).
fn toml_float(f: f64) -> String {
    toml::Value::Float(f).to_string()
}

fn samples(at: &[(i64, u64, u64, f64)]) -> Vec<Sample> {
    at.iter()
        .map(|&(unix_ms, requests, errors_5xx, latency_sum_ms)| Sample {
            unix_ms,
            requests,
            errors_5xx,
            latency_sum_ms,
        })
        .collect()
}

/// Integers as a user might type them: small, at the edges, anything.
fn number() -> impl Strategy<Value = i64> {
    prop_oneof![
        -2i64..1000,
        Just(900),
        Just(901),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(i64::MAX / 1000 + 1),
        any::<i64>(),
    ]
}

fn sample() -> impl Strategy<Value = (i64, u64, u64, f64)> {
    (
        prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN)],
        prop_oneof![any::<u64>(), Just(u64::MAX), 0u64..10],
        prop_oneof![any::<u64>(), Just(u64::MAX), 0u64..10],
        any::<f64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_alerts_toml_parses_and_validates_without_panic(
        every in number(),
        window in number(),
        more_than in number(),
        above_ms in any::<f64>(),
        name in "\\PC{0,80}",
        url in prop_oneof!["\\PC{0,40}", "https?://[a-z0-9.]{1,12}(:[0-9]{1,6})?/[ -~]{0,20}"],
        now_ms in prop_oneof![any::<i64>(), Just(i64::MAX), Just(i64::MIN), Just(0i64)],
        at in proptest::collection::vec(sample(), 0..4),
    ) {
        let text = format!(
            "evaluate_every_seconds = {every}\nwebhook_url = {url}\nrules = [\n  \
             {{ name = {name}, kind = \"error_count\", more_than = {more_than}, window_seconds = {window} }},\n  \
             {{ name = \"latency\", kind = \"avg_latency\", above_ms = {above}, window_seconds = {window} }},\n]\n",
            url = toml_string(&url),
            name = toml_string(&name),
            above = toml_float(above_ms),
        );
        let Ok(config) = toml::from_str::<AlertsConfig>(&text) else {
            // Negative numbers (and the like) are TOML errors: fine.
            return Ok(());
        };
        match config.validate() {
            Ok(()) => {
                prop_assert!((1..=900).contains(&config.evaluate_every_seconds));
                for rule in &config.rules {
                    prop_assert!((1..=900).contains(&rule.window_seconds), "{rule:?}");
                }
                let mut engine = AlertEngine::new(config.rules.clone());
                for t in engine.evaluate(now_ms, &samples(&at)) {
                    prop_assert!(t.state == "firing" || t.state == "resolved");
                }
                prop_assert!(engine.evaluate(now_ms, &[]).iter().all(|t| t.state == "resolved"));
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.starts_with("alerts: ") && message.len() > 10, "{message}");
            }
        }
    }

    #[test]
    fn windows_and_the_evaluation_period_are_range_checked(
        every in prop_oneof![any::<u64>(), 0u64..1000, Just(u64::MAX)],
        window in prop_oneof![any::<u64>(), 0u64..1000, Just(u64::MAX)],
    ) {
        // JSON reaches the whole u64 range (TOML stops at i64::MAX).
        let config: AlertsConfig = serde_json::from_value(serde_json::json!({
            "evaluate_every_seconds": every,
            "rules": [{"name": "r", "kind": "error_count", "more_than": 1, "window_seconds": window}],
        }))
        .expect("well-formed");
        let in_range = (1..=900).contains(&every) && (1..=900).contains(&window);
        match config.validate() {
            Ok(()) => prop_assert!(in_range, "accepted every={every} window={window}"),
            Err(e) => {
                prop_assert!(!in_range, "refused in-range values: {e}");
                let message = e.to_string();
                prop_assert!(
                    message.contains("1..=900")
                        && (message.contains("window_seconds")
                            || message.contains("evaluate_every_seconds")),
                    "{message}"
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn redaction_never_panics_and_hides_everything_past_the_port(
        anything in "\\PC{0,60}",
        scheme in prop_oneof![Just("http"), Just("https")],
        host in "[a-z][a-z0-9]{0,10}(\\.[a-z]{2,5})?",
        port in proptest::option::of(1u16..),
        user in proptest::option::of("[a-zA-Z0-9]{1,8}"),
        path in "(/[a-zA-Z0-9._~-]{0,8}){0,3}",
        query in proptest::option::of("[a-zA-Z0-9=&]{0,12}"),
        fragment in proptest::option::of("[a-zA-Z0-9]{0,8}"),
    ) {
        let _ = redact_url(&anything);
        const SECRET: &str = "Zq9SECRETxW";
        let url = format!(
            "{scheme}://{}{host}{}{path}/{SECRET}{}{}",
            user.map(|u| format!("{u}:{SECRET}@")).unwrap_or_default(),
            port.map(|p| format!(":{p}")).unwrap_or_default(),
            query.map(|q| format!("?{q}{SECRET}")).unwrap_or_default(),
            fragment.map(|f| format!("#{f}{SECRET}")).unwrap_or_default(),
        );
        let shown = redact_url(&url);
        prop_assert!(!shown.contains(SECRET), "{url} -> {shown}");
        prop_assert!(shown.starts_with(&format!("{scheme}://{host}:")), "{url} -> {shown}");
        prop_assert!(shown.ends_with("/…"), "{url} -> {shown}");
    }
}

#[test]
fn the_engine_never_overflows_on_extreme_clocks_and_samples() {
    let config: AlertsConfig = toml::from_str(
        "rules = [\n  { name = \"e\", kind = \"error_count\", more_than = 5, window_seconds = 900 },\n  \
         { name = \"l\", kind = \"avg_latency\", above_ms = 1, window_seconds = 900 },\n]\n",
    )
    .expect("toml");
    config.validate().expect("valid");
    let mut engine = AlertEngine::new(config.rules);
    let huge = samples(&[
        (i64::MIN + 1, u64::MAX, u64::MAX, f64::MAX),
        (i64::MIN + 2, u64::MAX, u64::MAX, f64::MAX),
    ]);
    // Ten minutes after the epoch's far side: the window reaches below i64::MIN.
    let fired = engine.evaluate(i64::MIN + 600_000, &huge);
    assert!(
        fired.iter().any(|t| t.rule == "e" && t.state == "firing"),
        "{fired:?}"
    );
    assert!(engine.evaluate(i64::MAX, &huge).len() == 1, "e resolves");
    assert!(engine.evaluate(i64::MIN, &[]).is_empty());
}
