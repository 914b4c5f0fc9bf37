//! Unit tests of the two-stage command line: flags → validated config.

use clap::Parser;
use proptest::strategy::Strategy;

use super::*;
use crate::config::Model;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadArgs,
}

fn config(args: &[&str]) -> Result<Config, LoadError> {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all)
        .map_err(|e| LoadError::config("cli", e.to_string()))?
        .args
        .into_config()
}

#[test]
fn default_is_baseline() {
    let c = config(&[]).expect("config");
    assert_eq!(c.scenario, Some(Scenario::Baseline));
    assert_eq!(c.model.name(), "closed");
    assert_eq!(c.model.plan().end, Some(Duration::from_secs(300)));
    assert_eq!(c.mix.tasks.len(), 3);
    assert_eq!(c.wait.max, Duration::from_secs(3));
}

#[test]
fn users_spawn_rate_run_time() {
    let c = config(&["-u", "20", "-r", "4", "-t", "1m"]).expect("config");
    let plan = c.model.plan();
    assert_eq!(plan.target_at(Duration::from_secs(5)), Some(20.0));
    assert_eq!(plan.target_at(Duration::from_millis(2500)), Some(10.0));
    assert_eq!(plan.end, Some(Duration::from_secs(60)));
}

#[test]
fn rates_and_plans_pick_the_model() {
    assert!(matches!(
        config(&["--rate", "100/s"]).expect("c").model,
        Model::Open(_)
    ));
    assert!(matches!(
        config(&["--rate", "max"]).expect("c").model,
        Model::Max(_)
    ));
    assert!(matches!(
        config(&["--plan", "5/s,1s;10/s,1s"]).expect("c").model,
        Model::Open(_)
    ));
    let c = config(&["--plan", "10,30s;50,1m;0,10s", "-t", "20s"]).expect("c");
    assert!(matches!(c.model, Model::Closed(_)));
    assert_eq!(c.model.plan().end, Some(Duration::from_secs(20)));
    let c = config(&["--scenario", "stress", "--run-time", "10s"]).expect("c");
    assert_eq!(c.model.plan().peak(), 300.0);
}

#[test]
fn mistakes_name_the_flag() {
    let cases: [(&[&str], &str); 10] = [
        (&["--rate", "fast"], "--rate"),
        (&["--plan", "10"], "--plan"),
        // A typo's extra digits: refused before a task or socket is made.
        (&["-u", "100001"], "--users"),
        (
            &["--rate", "max", "--connections", "4000000000"],
            "--connections",
        ),
        (&["--plan", "10,1s;1000000,1s"], "--plan"),
        (&["--task", "GET nope"], "--task"),
        (&["--threshold", "p95"], "--threshold"),
        (&["-u", "0"], "--users"),
        (&["-u", "1", "-r", "0"], "--spawn-rate"),
        (&["--timeout", "0s"], "--timeout"),
    ];
    for (args, flag) in cases {
        let err = config(args).expect_err("invalid");
        assert!(err.to_string().starts_with(flag), "{args:?}: {err}");
    }
    assert!(config(&["-u", "5", "--rate", "5/s"]).is_err());
}

#[test]
fn tasks_replace_the_mix() {
    let c = config(&["--task", "GET /fast", "--task", "3 GET /slow", "-u", "1"]).expect("c");
    assert_eq!(c.mix.tasks.len(), 2);
    assert_eq!(c.mix.total_weight(), 4);
}

#[test]
fn tiny_rates_and_spawn_rates_are_refused_not_panics() {
    let err = config(&["--users", "5", "--spawn-rate", "1e-19"]).unwrap_err();
    assert!(err.to_string().contains("--spawn-rate"), "{err}");
    let err = config(&["--rate", "1e-20/s"]).unwrap_err();
    assert!(err.to_string().contains("lowest rate"), "{err}");
    assert!(config(&["--users", "5", "--spawn-rate", "inf"]).is_err());
    assert!(config(&["--users", "5", "--spawn-rate", "NaN"]).is_err());
    assert!(config(&["--plan", "1e-20/s,10s"]).is_err());
}

proptest::proptest! {
    /// Whatever a user types as a number, validation answers (Ok or one
    /// error naming the flag); it never panics.
    #[test]
    fn any_value_of_any_numeric_flag_is_validated_without_panic(
        flag in proptest::sample::select(vec![
            "--users", "--spawn-rate", "--run-time", "--wait", "--plan", "--rate",
            "--connections", "--max-in-flight", "--threads", "--timeout",
            "--stop-timeout", "--live-interval", "--threshold", "--task",
        ]),
        value in proptest::prop_oneof![
            "\\PC{0,24}",
            proptest::num::f64::ANY.prop_map(|v| v.to_string()),
            proptest::num::i64::ANY.prop_map(|v| v.to_string()),
            proptest::num::f64::ANY.prop_map(|v| format!("{v}/s")),
        ],
    ) {
        let mut args = vec![flag, value.as_str()];
        if flag == "--spawn-rate" {
            args.extend(["--users", "3"]);
        }
        if let Err(e) = config(&args) {
            proptest::prop_assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn merge_takes_files_and_report_flags_and_refuses_run_flags() {
    let cli = Cli::try_parse_from(["load", "merge", "a.json", "b c.json", "--csv", "out/all"])
        .expect("parses");
    match cli.args.command {
        Some(LoadCommand::Merge(m)) => {
            assert_eq!(
                m.files,
                [PathBuf::from("a.json"), PathBuf::from("b c.json")]
            );
            assert_eq!(m.reports().csv, Some(PathBuf::from("out/all")));
        }
        None => panic!("merge expected"),
    }
    assert!(Cli::try_parse_from(["load", "merge"]).is_err(), "no file");
    assert!(
        Cli::try_parse_from(["load", "-u", "5", "merge", "a.json"]).is_err(),
        "run flags with merge"
    );
    let bad =
        Cli::try_parse_from(["load", "merge", "a.json", "--threshold", "p95<<1"]).expect("parses");
    let Some(LoadCommand::Merge(m)) = bad.args.command else {
        panic!("merge expected")
    };
    assert!(
        m.thresholds()
            .unwrap_err()
            .to_string()
            .starts_with("--threshold")
    );
}
