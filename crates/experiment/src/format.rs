//! The experiment file (TOML, SPEC section 9) and its validation. Every
//! mistake is found before a lab starts and reported with the file, the
//! line and the key (unknown keys with the closest valid one), so
//! `experiment validate` and `experiment run` fail fast and clearly.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{Action, Check, Expectation, Experiment, LabPlan, LoadPlan, Step, Window};
use crate::probe::{self, Probe};
pub use crate::spelling::closest;

/// One problem in an experiment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (or built-in) it is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key at fault (`method[2].at`, `load.rate`).
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}: {}", self.file, self.key, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

/// Every problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FormatError(pub Vec<Diagnostic>);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Checks a `chaoslab` command line of an action (the binary parses it
/// with its own CLI definition); `Err` holds clap's one-line complaint.
pub type CliCheck<'a> = &'a dyn Fn(&[String]) -> Result<(), String>;

/// Parses a duration (`500ms`, `5s`, `1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    chaoslab_load::parse_duration(text)
}

const TOP_KEYS: &[&str] = &[
    "title",
    "description",
    "tags",
    "duration",
    "lab",
    "load",
    "steady_state",
    "method",
    "expect",
    "rollback",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    title: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: Vec<String>,
    duration: Option<Spanned<String>>,
    lab: Option<Spanned<toml::Table>>,
    load: Option<Spanned<toml::Table>>,
    #[serde(default)]
    steady_state: Vec<RawCheck>,
    #[serde(default)]
    method: Vec<RawStep>,
    #[serde(default)]
    expect: Vec<RawExpect>,
    #[serde(default)]
    rollback: Vec<RawRollback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    name: String,
    probe: Spanned<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    id: Option<Spanned<String>>,
    at: Option<Spanned<String>>,
    action: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    name: String,
    after: Option<Spanned<String>>,
    within: Option<Spanned<String>>,
    sustained: Option<Spanned<String>>,
    during: Option<Spanned<String>>,
    probe: Spanned<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollback {
    action: Spanned<String>,
}

/// Collects diagnostics with line numbers from byte offsets.
struct Report<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<Diagnostic>,
}

impl Report<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn at(&mut self, span: Option<std::ops::Range<usize>>, key: &str, message: impl Into<String>) {
        let line = span.map(|s| self.line_of(s.start));
        self.found.push(Diagnostic {
            file: self.file.to_string(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn duration(&mut self, value: &Spanned<String>, key: &str) -> Option<Duration> {
        match parse_duration(value.get_ref()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.at(Some(value.span()), key, e);
                None
            }
        }
    }
}

/// Applies `--set key=value` overrides (dotted keys of the file; the value
/// is read as a TOML literal, else as a string).
pub fn apply_sets(table: &mut toml::Table, sets: &[String]) -> Result<(), String> {
    for set in sets {
        let (key, value) = set
            .split_once('=')
            .ok_or_else(|| format!("--set {set}: expected KEY=VALUE (e.g. lab.replicas=3)"))?;
        let path: Vec<&str> = key.trim().split('.').collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(format!("--set {set}: `{key}` is not a dotted key"));
        }
        if !TOP_KEYS.contains(&path[0]) {
            let hint = closest(path[0], TOP_KEYS)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            return Err(format!("--set {set}: unknown key `{}`{hint}", path[0]));
        }
        let value = value.trim();
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        let mut node = &mut *table;
        for part in &path[..path.len() - 1] {
            let entry = node
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry
                .as_table_mut()
                .ok_or_else(|| format!("--set {set}: `{part}` is not a table"))?;
        }
        node.insert(path[path.len() - 1].to_string(), parsed);
    }
    Ok(())
}

/// Parses and validates an experiment. `name` is its short name, `file`
/// where it came from (for messages), `cli` checks `chaoslab` command
/// lines of actions.
pub fn parse(
    name: &str,
    file: &str,
    text: &str,
    sets: &[String],
    cli: Option<CliCheck<'_>>,
) -> Result<Experiment, FormatError> {
    let one = |line: Option<usize>, key: &str, message: String| {
        FormatError(vec![Diagnostic {
            file: file.to_string(),
            line,
            key: key.to_string(),
            message,
        }])
    };
    let owned;
    let text = if sets.is_empty() {
        text
    } else {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        apply_sets(&mut table, sets).map_err(|e| one(None, "--set", e))?;
        owned = toml::to_string(&table).map_err(|e| one(None, "--set", e.to_string()))?;
        &owned
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
    let mut report = Report {
        file,
        text,
        found: Vec::new(),
    };
    let experiment = build(name, raw, &mut report, cli);
    if report.found.is_empty() {
        Ok(experiment)
    } else {
        Err(FormatError(report.found))
    }
}

/// A TOML or structure error, with its line and, for an unknown key, the
/// closest valid one.
fn toml_error(file: &str, text: &str, e: &toml::de::Error) -> FormatError {
    let line = e.span().map(|s| {
        text.as_bytes()[..s.start.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    });
    let message = e.message().trim().to_string();
    let (key, message) = unknown_field_hint(&message).unwrap_or_else(|| {
        let key = e
            .span()
            .and_then(|s| text.get(s))
            .map(|k| k.split(['=', '\n']).next().unwrap_or("").trim().to_string())
            .filter(|k| !k.is_empty() && k.len() < 40)
            .unwrap_or_else(|| "toml".into());
        (key, message.clone())
    });
    FormatError(vec![Diagnostic {
        file: file.to_string(),
        line,
        key,
        message,
    }])
}

/// serde's "unknown field `x`, expected one of `a`, `b`" → key and a
/// message naming the closest valid key.
fn unknown_field_hint(message: &str) -> Option<(String, String)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect();
    let hint = closest(key, &expected)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default();
    Some((
        key.to_string(),
        format!(
            "unknown key `{key}`{hint} (valid here: {})",
            expected.join(", ")
        ),
    ))
}

fn build(name: &str, raw: RawFile, r: &mut Report<'_>, cli: Option<CliCheck<'_>>) -> Experiment {
    if raw.title.get_ref().trim().is_empty() {
        r.at(Some(raw.title.span()), "title", "must not be empty");
    }
    let duration = raw
        .duration
        .as_ref()
        .and_then(|d| r.duration(d, "duration"));
    let lab = build_lab(raw.lab.as_ref(), r);
    let load = raw.load.as_ref().and_then(|l| build_load(l, r));
    let steady_state = build_steady_state(&raw.steady_state, r);
    let (method, ids) = build_method(&raw.method, duration, r, cli);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let expect = raw
        .expect
        .iter()
        .enumerate()
        .filter_map(|(i, e)| build_expect(e, &format!("expect[{i}]"), &ids, r))
        .collect();
    let rollback = raw
        .rollback
        .iter()
        .enumerate()
        .filter_map(|(i, s)| build_action(&s.action, &format!("rollback[{i}].action"), r, cli))
        .collect();
    Experiment {
        name: name.to_string(),
        title: raw.title.into_inner(),
        description: raw.description,
        tags: raw.tags,
        duration,
        lab: lab.unwrap_or_else(|| LabPlan {
            file: free_ports(chaoslab_lab::FileConfig::default(), &toml::Table::new()),
        }),
        load,
        steady_state,
        method,
        expect,
        rollback,
    }
}

/// The `[[steady_state]]` checks (the counter belongs in `[[expect]]`).
fn build_steady_state(checks: &[RawCheck], r: &mut Report<'_>) -> Vec<Check> {
    checks
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let probe = build_probe(&c.probe, &format!("steady_state[{i}].probe"), r)?;
            if probe == Probe::Counter {
                r.at(
                    Some(c.probe.span()),
                    &format!("steady_state[{i}].probe"),
                    "the counter invariant is judged over the whole run: put it in an [[expect]]",
                );
            }
            Some(Check {
                name: c.name.clone(),
                probe,
            })
        })
        .collect()
}

/// The `[[method]]` steps, sorted by `at`, and the set of their ids.
fn build_method(
    steps: &[RawStep],
    duration: Option<Duration>,
    r: &mut Report<'_>,
    cli: Option<CliCheck<'_>>,
) -> (Vec<Step>, BTreeSet<String>) {
    let mut ids = BTreeSet::new();
    let mut method = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let key = format!("method[{i}]");
        let id =
            s.id.as_ref()
                .map_or_else(|| format!("step-{}", i + 1), |id| id.get_ref().clone());
        if let Some(span) = s.id.as_ref().map(Spanned::span)
            && (id.is_empty() || id.contains(".."))
        {
            r.at(
                Some(span),
                &format!("{key}.id"),
                "an id is a non-empty word without `..`",
            );
        }
        if !ids.insert(id.clone()) {
            r.at(
                s.id.as_ref().map(Spanned::span),
                &format!("{key}.id"),
                format!("step id `{id}` is used twice"),
            );
        }
        let at = match &s.at {
            Some(at) => r.duration(at, &format!("{key}.at")).unwrap_or_default(),
            None => Duration::ZERO,
        };
        if let Some(duration) = duration
            && at > duration
        {
            r.at(
                s.at.as_ref().map(Spanned::span),
                &format!("{key}.at"),
                format!(
                    "the step would start after the run's {}s: shorten `at` or lengthen `duration`",
                    duration.as_secs_f64()
                ),
            );
        }
        if let Some(action) = build_action(&s.action, &format!("{key}.action"), r, cli) {
            method.push(Step { id, at, action });
        }
    }
    method.sort_by_key(|s| s.at);
    (method, ids)
}

/// An experiment's lab takes free ports unless its file sets them.
fn free_ports(mut file: chaoslab_lab::FileConfig, given: &toml::Table) -> chaoslab_lab::FileConfig {
    let set = |section: &str, key: &str| {
        given
            .get(section)
            .and_then(toml::Value::as_table)
            .is_some_and(|t| t.contains_key(key))
    };
    if !set("ingress", "port") {
        file.ingress.port = 0;
    }
    if !set("control", "port") {
        file.control.port = 0;
    }
    if !set("faults", "toxiproxy_port") {
        file.faults.toxiproxy_port = 0;
    }
    if !set("redis", "port") {
        file.redis.port = 0;
    }
    file
}

fn build_lab(lab: Option<&Spanned<toml::Table>>, r: &mut Report<'_>) -> Option<LabPlan> {
    let lab = lab?;
    let span = Some(lab.span());
    let mut table = lab.get_ref().clone();
    let replicas = table.remove("replicas");
    let probes = table.remove("probes");
    // `probes = "quick"` is the shorthand; `[lab.probes]` the full table.
    let probes = match probes {
        Some(toml::Value::Table(t)) => {
            table.insert("probes".into(), toml::Value::Table(t));
            None
        }
        other => other,
    };
    let mut file: chaoslab_lab::FileConfig = match toml::Value::Table(table.clone()).try_into() {
        Ok(file) => file,
        Err(e) => {
            let message = e.message().trim().to_string();
            let (key, message) = unknown_field_hint(&message).unwrap_or(("lab".into(), message));
            r.at(span.clone(), &format!("lab.{key}"), message);
            return None;
        }
    };
    match replicas {
        None => {}
        Some(toml::Value::Integer(n)) if (1..=50).contains(&n) => file.app.replicas = n as u32,
        Some(_) => r.at(
            span.clone(),
            "lab.replicas",
            "must be a whole number from 1 to 50",
        ),
    }
    match probes.as_ref().map(|p| p.as_str().map(str::parse)) {
        None => {}
        Some(Some(Ok(preset))) => file.probes.preset = preset,
        Some(_) => r.at(span.clone(), "lab.probes", "must be \"quick\" or \"aca\""),
    }
    if file.state_dir.is_some() {
        r.at(
            span.clone(),
            "lab.state_dir",
            "an experiment's lab has its own directory; use --attach DIR to use a running lab",
        );
    }
    let file = free_ports(file, &table);
    let check = chaoslab_lab::LabConfig::resolve(
        file.clone(),
        &chaoslab_lab::Overrides::default(),
        "chaoslab".into(),
    );
    if let Err(e) = check {
        r.at(span.clone(), "lab", e.to_string());
    }
    Some(LabPlan { file })
}

/// Keys of `[load]` that the experiment owns itself.
const LOAD_RESERVED: &[&str] = &["host", "csv", "json", "html", "quiet", "live_interval"];

fn build_load(load: &Spanned<toml::Table>, r: &mut Report<'_>) -> Option<LoadPlan> {
    use clap::CommandFactory;
    let span = Some(load.span());
    let command = LoadCli::command();
    let known: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| l.replace('-', "_")))
        .filter(|l| !LOAD_RESERVED.contains(&l.as_str()) && l != "help")
        .collect();
    let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
    let mut args = vec!["load".to_string()];
    for (key, value) in load.get_ref() {
        let flag_key = if key == "tasks" { "task" } else { key.as_str() };
        if !known_refs.contains(&flag_key) {
            let hint = closest(key, &known_refs)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            r.at(
                span.clone(),
                &format!("load.{key}"),
                format!(
                    "unknown key `{key}`{hint} (the keys of `chaoslab load`: {})",
                    known.join(", ")
                ),
            );
            continue;
        }
        let flag = format!("--{}", flag_key.replace('_', "-"));
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(items) => items.iter().collect(),
            v => vec![v],
        };
        for v in values {
            match v {
                toml::Value::Boolean(true) => args.push(flag.clone()),
                toml::Value::Boolean(false) => {}
                toml::Value::String(s) => args.extend([flag.clone(), s.clone()]),
                toml::Value::Integer(n) => args.extend([flag.clone(), n.to_string()]),
                toml::Value::Float(f) => args.extend([flag.clone(), f.to_string()]),
                other => r.at(
                    span.clone(),
                    &format!("load.{key}"),
                    format!("must be a string or a number, not {}", other.type_str()),
                ),
            }
        }
    }
    match <LoadCli as clap::Parser>::try_parse_from(&args) {
        Ok(cli) => {
            if let Err(e) = cli.args.into_config() {
                r.at(
                    span.clone(),
                    "load",
                    e.to_string().replace("--", "").replace('-', "_"),
                );
                return None;
            }
        }
        Err(e) => {
            r.at(span.clone(), "load", first_line(&e.render().to_string()));
            return None;
        }
    }
    Some(LoadPlan {
        args: args.split_off(1),
    })
}

/// `chaoslab load`'s flags, to parse and validate `[load]`.
#[derive(Debug, clap::Parser)]
#[command(name = "load")]
pub(crate) struct LoadCli {
    #[command(flatten)]
    pub args: chaoslab_load::LoadArgs,
}

/// The first meaningful line of a clap error.
pub fn first_line(rendered: &str) -> String {
    rendered
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string()
}

fn build_probe(table: &Spanned<toml::Table>, key: &str, r: &mut Report<'_>) -> Option<Probe> {
    match probe::parse(table.get_ref()) {
        Ok(p) => Some(p),
        Err((sub, message)) => {
            r.at(Some(table.span()), &format!("{key}.{sub}"), message);
            None
        }
    }
}

/// Words of an action line: whitespace-separated, with '…' and "…" quoting.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".into());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// First words an action may start with.
pub const ACTIONS: &[&str] = &[
    "fault",
    "chaos",
    "deploy",
    "revisions",
    "load",
    "wait",
    "clear",
];

/// Parses an action line (validated with `cli` when given).
pub fn parse_action(line: &str, cli: Option<CliCheck<'_>>) -> Result<Action, String> {
    let mut words = split_words(line)?;
    if words.first().is_some_and(|w| w == "chaoslab") {
        words.remove(0);
    }
    let Some(first) = words.first().cloned() else {
        return Err("empty action".into());
    };
    match first.as_str() {
        "wait" => match words.as_slice() {
            [_, d] => parse_duration(d).map(Action::Wait),
            _ => Err("`wait` takes one duration, e.g. `wait 5s`".into()),
        },
        "clear" if words.len() == 1 => Ok(Action::Cli(vec![
            "fault".into(),
            "clear".into(),
            "--all".into(),
        ])),
        "clear" => Err("`clear` takes no arguments (it is `fault clear --all`)".into()),
        w if ACTIONS.contains(&w) => {
            if words.iter().any(|w| w.starts_with("--state-dir")) {
                return Err("actions run against the experiment's lab: drop --state-dir".into());
            }
            if let Some(check) = cli {
                check(&words)?;
            }
            Ok(Action::Cli(words))
        }
        other => {
            let hint = closest(other, ACTIONS)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            Err(format!(
                "unknown action `{other}`{hint}; an action is one of: {}",
                ACTIONS.join(", ")
            ))
        }
    }
}

fn build_action(
    line: &Spanned<String>,
    key: &str,
    r: &mut Report<'_>,
    cli: Option<CliCheck<'_>>,
) -> Option<Action> {
    match parse_action(line.get_ref(), cli) {
        Ok(a) => Some(a),
        Err(e) => {
            r.at(Some(line.span()), key, e);
            None
        }
    }
}

/// The window of an `[[expect]]`: `after` a step (with `within` and
/// `sustained`), `during` a span of steps, or the whole run.
fn build_window(e: &RawExpect, key: &str, ids: &[&str], r: &mut Report<'_>) -> Option<Window> {
    match (&e.after, &e.during) {
        (Some(_), Some(d)) => {
            r.at(
                Some(d.span()),
                &format!("{key}.during"),
                "give `after` or `during`, not both",
            );
            None
        }
        (Some(after), None) => {
            if !known_step(after, &format!("{key}.after"), ids, r) {
                return None;
            }
            Some(Window::After {
                step: after.get_ref().clone(),
                within: e
                    .within
                    .as_ref()
                    .and_then(|w| r.duration(w, &format!("{key}.within"))),
                sustained: e
                    .sustained
                    .as_ref()
                    .and_then(|s| r.duration(s, &format!("{key}.sustained"))),
            })
        }
        (None, Some(during)) => during_window(e, during, key, ids, r),
        (None, None) => {
            refuse_after_only_fields(e, key, r);
            Some(Window::WholeRun)
        }
    }
}

/// A `during = "FROM..TO"` window (an empty TO: to the end of the run);
/// both ids must name steps.
fn during_window(
    e: &RawExpect,
    during: &Spanned<String>,
    key: &str,
    ids: &[&str],
    r: &mut Report<'_>,
) -> Option<Window> {
    let during_key = format!("{key}.during");
    let Some((from, to)) = during.get_ref().split_once("..") else {
        r.at(
            Some(during.span()),
            &during_key,
            "a span is `FROM..TO` of step ids, e.g. \"cut..clear\" (or \"cut..\" to the end)",
        );
        return None;
    };
    let from = Spanned::new(during.span(), from.trim().to_string());
    let to = Spanned::new(during.span(), to.trim().to_string());
    if !known_step(&from, &during_key, ids, r)
        || (!to.get_ref().is_empty() && !known_step(&to, &during_key, ids, r))
    {
        return None;
    }
    refuse_after_only_fields(e, key, r);
    Some(Window::During {
        from: from.into_inner(),
        to: Some(to.into_inner()).filter(|t| !t.is_empty()),
    })
}

/// `within` and `sustained` only mean something after a step: reported
/// when given with another window.
fn refuse_after_only_fields(e: &RawExpect, key: &str, r: &mut Report<'_>) {
    for (k, v) in [("within", &e.within), ("sustained", &e.sustained)] {
        if let Some(v) = v {
            r.at(Some(v.span()), &format!("{key}.{k}"), "only with `after`");
        }
    }
}

/// Whether `id` names a step; if not, reports it at `key` with the closest
/// id and the list of ids.
fn known_step(id: &Spanned<String>, key: &str, ids: &[&str], r: &mut Report<'_>) -> bool {
    if ids.contains(&id.get_ref().as_str()) {
        return true;
    }
    let hint = closest(id.get_ref(), ids)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    r.at(
        Some(id.span()),
        key,
        format!(
            "no step has the id `{}`{hint}; step ids: {}",
            id.get_ref(),
            if ids.is_empty() {
                "none".to_string()
            } else {
                ids.join(", ")
            }
        ),
    );
    false
}

fn build_expect(e: &RawExpect, key: &str, ids: &[&str], r: &mut Report<'_>) -> Option<Expectation> {
    let probe = build_probe(&e.probe, &format!("{key}.probe"), r);
    let window = build_window(e, key, ids, r)?;
    let probe = probe?;
    if probe == Probe::Counter && window != Window::WholeRun {
        r.at(
            Some(e.probe.span()),
            &format!("{key}.probe"),
            "the counter invariant is judged over the whole run: drop `after`/`during`",
        );
    }
    Some(Expectation {
        name: e.name.clone(),
        window,
        probe,
    })
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
