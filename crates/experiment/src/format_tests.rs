//! Tests of the experiment format: every mistake named with its line and
//! key, before any lab starts; parsers never panic on any input.

use super::*;

const GOOD: &str = r#"
title = "Redis cut off"
duration = "20s"

[lab]
replicas = 2
probes = "quick"

[load]
rate = "50/s"

[[steady_state]]
name = "root answers"
probe = { http = "/", status = 200 }

[[method]]
id = "cut"
at = "2s"
action = "fault network block --mode deny-new"

[[method]]
id = "clear"
at = "8s"
action = "clear"

[[expect]]
name = "503 soon"
after = "cut"
within = "5s"
probe = { http = "/", status = 503 }

[[expect]]
name = "no lost write"
probe = { invariant = "counter" }

[[rollback]]
action = "fault clear --all"
"#;

fn parse_text(text: &str) -> Result<Experiment, FormatError> {
    parse("t", "t.toml", text, &[], None)
}

fn only(text: &str) -> Diagnostic {
    let err = parse_text(text).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    err.0[0].clone()
}

#[test]
fn a_good_file_parses_into_the_model() {
    let e = parse_text(GOOD).unwrap();
    assert_eq!(e.title, "Redis cut off");
    assert_eq!(e.duration, Some(Duration::from_secs(20)));
    assert_eq!(e.lab.file.app.replicas, 2);
    assert_eq!(e.lab.file.ingress.port, 0, "free ports by default");
    assert_eq!(e.lab.file.control.port, 0);
    assert_eq!(e.lab.file.faults.toxiproxy_port, 0);
    assert_eq!(e.load.unwrap().args, ["--rate", "50/s"]);
    assert_eq!(e.method.len(), 2);
    assert_eq!(
        e.method[1].action,
        Action::Cli(vec!["fault".into(), "clear".into(), "--all".into()])
    );
    assert_eq!(e.expect[1].window, Window::WholeRun);
    assert!(
        matches!(&e.expect[0].window, Window::After { step, within: Some(w), .. } if step == "cut" && *w == Duration::from_secs(5))
    );
}

#[test]
fn a_step_after_the_run_s_duration_is_refused_with_its_line() {
    // A typo (`30m` for `30s`) would keep the fault in place for half an hour.
    let d = only(&GOOD.replace("at = \"2s\"", "at = \"30m\""));
    assert_eq!(d.key, "method[0].at");
    assert!(d.line.is_some());
    assert!(d.message.contains("after the run's 20s"), "{d}");
}

#[test]
fn unknown_keys_name_the_line_and_the_closest_key() {
    let d = only(&GOOD.replace("title =", "tittle = \"x\"\ntitle ="));
    assert_eq!(d.key, "tittle");
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("did you mean `title`"), "{d}");
    let d = only(&GOOD.replace("at = \"2s\"", "att = \"2s\""));
    assert_eq!(d.key, "att");
    assert!(d.message.contains("did you mean `at`"), "{d}");
    let d = only(&GOOD.replace("rate = \"50/s\"", "rat = \"50/s\""));
    assert_eq!(d.key, "load.rat");
    assert!(d.message.contains("did you mean `rate`"), "{d}");
    let d = only(&format!("{GOOD}\n[lab.app]\nreplcas = 3\n"));
    assert!(d.key.starts_with("lab."), "{d}");
    assert!(d.message.contains("did you mean `replicas`"), "{d}");
}

#[test]
fn bad_values_are_all_reported_with_lines() {
    let text = GOOD
        .replace("at = \"2s\"", "at = \"2 parsecs\"")
        .replace("within = \"5s\"", "within = \"soon\"")
        .replace("after = \"cut\"", "after = \"cutt\"");
    let err = parse_text(&text).unwrap_err();
    let keys: Vec<&str> = err.0.iter().map(|d| d.key.as_str()).collect();
    assert!(keys.contains(&"method[0].at"), "{err}");
    assert!(keys.contains(&"expect[0].after"), "{err}");
    let after = err.0.iter().find(|d| d.key == "expect[0].after").unwrap();
    assert!(after.message.contains("did you mean `cut`"), "{after}");
    assert_eq!(
        after.line,
        Some(text.lines().position(|l| l.contains("cutt")).unwrap() + 1)
    );
    let at = err.0.iter().find(|d| d.key == "method[0].at").unwrap();
    assert!(at.to_string().starts_with("t.toml:"), "{at}");
}

#[test]
fn unknown_actions_and_probes_are_refused() {
    let d = only(&GOOD.replace("fault network block --mode deny-new", "fualt network block"));
    assert_eq!(d.key, "method[0].action");
    assert!(d.message.contains("did you mean `fault`"), "{d}");
    let d = only(&GOOD.replace("{ http = \"/\", status = 503 }", "{ htp = \"/\" }"));
    assert!(d.key.starts_with("expect[0].probe"), "{d}");
    let d = only(&GOOD.replace("action = \"clear\"", "action = \"wait forever\""));
    assert_eq!(d.key, "method[1].action");
}

#[test]
fn invalid_toml_names_the_line() {
    let d = only("title = \"x\"\n[[method]\n");
    assert_eq!(d.line, Some(2), "{d}");
}

#[test]
fn the_cli_check_sees_chaoslab_words() {
    let check = |words: &[String]| -> Result<(), String> {
        if words.iter().any(|w| w == "--bogus") {
            Err("unexpected argument '--bogus'".into())
        } else {
            Ok(())
        }
    };
    let text = GOOD.replace("--mode deny-new", "--bogus");
    let err = parse("t", "t.toml", &text, &[], Some(&check)).unwrap_err();
    assert!(err.0[0].message.contains("--bogus"));
}

#[test]
fn sets_override_dotted_keys() {
    let e = parse(
        "t",
        "t.toml",
        GOOD,
        &["lab.replicas=3".into(), "load.rate=20/s".into()],
        None,
    )
    .unwrap();
    assert_eq!(e.lab.file.app.replicas, 3);
    assert_eq!(e.load.unwrap().args, ["--rate", "20/s"]);
    let err = parse("t", "t.toml", GOOD, &["lba.replicas=3".into()], None).unwrap_err();
    assert!(err.to_string().contains("did you mean `lab`"), "{err}");
    assert!(parse("t", "t.toml", GOOD, &["noequals".into()], None).is_err());
}

#[test]
fn words_split_like_a_shell() {
    assert_eq!(
        split_words(r#"load --task "5 GET /" -u 2"#).unwrap(),
        ["load", "--task", "5 GET /", "-u", "2"]
    );
    assert!(split_words("a 'b").is_err());
    assert_eq!(closest("stauts", &["status", "field"]), Some("status"));
    assert_eq!(closest("zzzzzz", &["status"]), None);
}

proptest::proptest! {
    #[test]
    fn any_text_is_an_error_or_an_experiment_never_a_panic(text in "\\PC{0,200}") {
        let _ = parse_text(&text);
    }

    #[test]
    fn any_action_line_parses_or_errs(line in "\\PC{0,80}") {
        let _ = parse_action(&line, None);
        let _ = split_words(&line);
    }

    #[test]
    fn any_set_parses_or_errs(set in "\\PC{0,60}") {
        let mut table = toml::Table::new();
        let _ = apply_sets(&mut table, &[set]);
    }

    #[test]
    fn mutated_good_files_never_panic(cut in 0usize..900, insert in "\\PC{0,12}") {
        let mut text = GOOD.to_string();
        let at = cut.min(text.len());
        if text.is_char_boundary(at) {
            text.insert_str(at, &insert);
        }
        let _ = parse_text(&text);
    }
}
