//! Chaos Toolkit experiments (JSON or YAML) read into the same model, so a
//! team's existing files run against the lab with `chaoslab experiment
//! run`. Supported: `http` probes (steady state, tolerance = a status, or
//! a list of one) and actions, `process` actions and probes, `pauses`;
//! `configuration` values (plain or `{"type": "env"}`) are substituted in
//! `${name}` references. A configuration entry read from the environment
//! variable `CHAOSLAB_INGRESS_URL` means "the lab's ingress": URLs built on
//! it become paths on the experiment's own lab, so one file runs unchanged
//! under `chaos run` and here. Any other provider (e.g. `python`, which
//! chaostoolkit-toxiproxy uses) is refused, naming it: run those files with
//! `chaos run` against the lab.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::format::{Diagnostic, FormatError};
use crate::model::{Action, Check, Experiment, LabPlan, Step};
use crate::probe::{HttpProbe, Probe};

/// Whether a file is a Chaos Toolkit file (by extension or content).
pub fn is_chaostoolkit(path: &str, text: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".json")
        || lower.ends_with(".yaml")
        || lower.ends_with(".yml")
        || text.trim_start().starts_with('{')
}

/// Environment variable that stands for the lab's ingress.
pub const INGRESS_ENV: &str = "CHAOSLAB_INGRESS_URL";
/// Marker for the lab's ingress while substituting.
const INGRESS: &str = "\u{1}ingress\u{1}";

/// Reads a Chaos Toolkit experiment.
pub fn parse(name: &str, file: &str, text: &str) -> Result<Experiment, FormatError> {
    let err = |key: &str, message: String| error_at(file, key, message);
    let doc = read_document(file, text)?;
    let config = configuration(&doc["configuration"]).map_err(|m| err("configuration", m))?;
    let title = doc["title"]
        .as_str()
        .ok_or_else(|| err("title", "a Chaos Toolkit experiment needs a title".into()))?;
    let mut steady_state = Vec::new();
    for (i, p) in list(&doc["steady-state-hypothesis"]["probes"])
        .iter()
        .enumerate()
    {
        let key = format!("steady-state-hypothesis.probes[{i}]");
        let check = steady_probe(p, &config).map_err(|m| err(&key, m))?;
        steady_state.push(check);
    }
    let method = method_steps(&doc, &config, file)?;
    let mut rollback = Vec::new();
    for (i, a) in list(&doc["rollbacks"]).iter().enumerate() {
        let key = format!("rollbacks[{i}]");
        rollback.extend(activity(a, &config).map_err(|m| err(&key, m))?);
    }
    Ok(Experiment {
        name: name.to_string(),
        title: title.to_string(),
        description: doc["description"].as_str().unwrap_or_default().to_string(),
        tags: list(&doc["tags"])
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        duration: None,
        lab: own_lab_plan(),
        load: None,
        steady_state,
        method,
        expect: Vec::new(),
        rollback,
    })
}

/// One diagnostic without a line number, at `key` of `file`.
fn error_at(file: &str, key: &str, message: String) -> FormatError {
    FormatError(vec![Diagnostic {
        file: file.to_string(),
        line: None,
        key: key.to_string(),
        message,
    }])
}

/// The file as a JSON value: JSON when it starts with `{`, YAML otherwise;
/// a syntax error names its line.
fn read_document(file: &str, text: &str) -> Result<Value, FormatError> {
    let syntax_error = |line: Option<usize>, key: &str, message: String| {
        FormatError(vec![Diagnostic {
            file: file.to_string(),
            line,
            key: key.into(),
            message,
        }])
    };
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| syntax_error(Some(e.line()), "json", e.to_string()))
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| syntax_error(e.location().map(|l| l.line()), "yaml", e.to_string()))
    }
}

/// The method's activities as steps, all at time zero (a Chaos Toolkit
/// method runs in order); ids are the slugged names, numbered from the
/// second use of a name on.
fn method_steps(doc: &Value, config: &Config, file: &str) -> Result<Vec<Step>, FormatError> {
    let mut method = Vec::new();
    let mut used = BTreeMap::new();
    for (i, a) in list(&doc["method"]).iter().enumerate() {
        let key = format!("method[{i}]");
        for action in activity(a, config).map_err(|m| error_at(file, &key, m))? {
            let base = a["name"].as_str().unwrap_or("activity");
            let n = used.entry(base.to_string()).or_insert(0);
            *n += 1;
            let id = if *n == 1 {
                slug(base)
            } else {
                format!("{}-{n}", slug(base))
            };
            method.push(Step {
                id,
                at: Duration::ZERO,
                action,
            });
        }
    }
    Ok(method)
}

/// The lab a Chaos Toolkit file runs against: the defaults, with every
/// listener on a free port so runs never collide.
fn own_lab_plan() -> LabPlan {
    let mut lab = chaoslab_lab::FileConfig::default();
    lab.ingress.port = 0;
    lab.control.port = 0;
    lab.faults.toxiproxy_port = 0;
    LabPlan { file: lab }
}

fn list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').replace("--", "-");
    if s.is_empty() { "activity".into() } else { s }
}

/// A configuration value, or why it has none (reported only if used).
type Config = BTreeMap<String, Result<String, String>>;

/// `configuration`: name → value (the ingress marker for CHAOSLAB_INGRESS_URL).
fn configuration(v: &Value) -> Result<Config, String> {
    let mut out = BTreeMap::new();
    let Some(map) = v.as_object() else {
        return Ok(out);
    };
    for (k, v) in map {
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("env") => {
                let key = o.get("key").and_then(Value::as_str).unwrap_or_default();
                if key == INGRESS_ENV {
                    INGRESS.to_string()
                } else {
                    match std::env::var(key) {
                        Ok(v) => v,
                        Err(_) => match o.get("default") {
                            Some(Value::String(d)) => d.clone(),
                            Some(d) if !d.is_null() => d.to_string(),
                            _ => {
                                out.insert(
                                    k.clone(),
                                    Err(format!(
                                        "`{k}` comes from the environment variable {key}, which is not set"
                                    )),
                                );
                                continue;
                            }
                        },
                    }
                }
            }
            other => return Err(format!("`{k}`: unsupported configuration value {other}")),
        };
        out.insert(k.clone(), Ok(value));
    }
    Ok(out)
}

/// Replaces `${name}` by configuration values.
fn substitute(text: &str, config: &Config) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated ${{…}} in `{text}`"))?;
        let key = &after[..end];
        let value = config
            .get(key)
            .ok_or_else(|| format!("`${{{key}}}` is not in the configuration"))?
            .as_ref()
            .map_err(Clone::clone)?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An http provider's URL as a path on the lab's ingress.
fn ingress_path(url: &str) -> Result<String, String> {
    match url.strip_prefix(INGRESS) {
        Some("") => Ok("/".into()),
        Some(path) if path.starts_with('/') => Ok(path.to_string()),
        _ => Err(format!(
            "the URL `{}` is not on the lab's ingress: build it on a configuration entry read from {INGRESS_ENV}",
            url.replace(INGRESS, &format!("${{{INGRESS_ENV}}}"))
        )),
    }
}

fn provider_type(a: &Value) -> &str {
    a["provider"]["type"].as_str().unwrap_or("missing")
}

fn unsupported(a: &Value) -> String {
    let p = &a["provider"];
    let what = match provider_type(a) {
        "python" => format!(
            "python provider ({}.{})",
            p["module"].as_str().unwrap_or("?"),
            p["func"].as_str().unwrap_or("?")
        ),
        other => format!("{other} provider"),
    };
    format!(
        "activity `{}` uses the {what}, which `chaoslab experiment run` does not run (it runs http and process providers and pauses); run this file with `chaos run`",
        a["name"].as_str().unwrap_or("?")
    )
}

fn timeout(p: &Value, default: u64) -> Duration {
    let secs = p["timeout"].as_f64().unwrap_or(default as f64);
    Duration::from_secs_f64(secs.clamp(0.1, 600.0))
}

fn steady_probe(p: &Value, config: &Config) -> Result<Check, String> {
    if provider_type(p) != "http" {
        return Err(unsupported(p));
    }
    let provider = &p["provider"];
    let url = substitute(provider["url"].as_str().unwrap_or_default(), config)?;
    let status = match &p["tolerance"] {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::Array(a) if a.len() <= 1 => a
            .first()
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok()),
        // Chaos Toolkit accepts any of them; one status is what this
        // runner checks, and taking the first would fail good answers.
        Value::Array(a) => {
            return Err(format!(
                "tolerance {}: a list of several statuses is not supported here (any of them would do); give one, or run this file with `chaos run`",
                Value::Array(a.clone())
            ));
        }
        Value::Null => None,
        other => {
            return Err(format!(
                "tolerance {other}: only an HTTP status (or a list of them) is supported here"
            ));
        }
    };
    Ok(Check {
        name: p["name"].as_str().unwrap_or("probe").to_string(),
        probe: Probe::Http(HttpProbe {
            method: provider["method"]
                .as_str()
                .unwrap_or("GET")
                .to_ascii_uppercase(),
            path: ingress_path(&url)?,
            body: None,
            status,
            field: None,
            equals: None,
            contains: None,
            latency_below: None,
            timeout: timeout(provider, 3),
        }),
    })
}

/// An activity as actions, with its pauses as waits.
fn activity(a: &Value, config: &Config) -> Result<Vec<Action>, String> {
    let pause = |key: &str| -> Option<Action> {
        a["pauses"][key]
            .as_f64()
            .filter(|s| *s > 0.0)
            .map(|s| Action::Wait(Duration::from_secs_f64(s.min(3600.0))))
    };
    let mut out: Vec<Action> = pause("before").into_iter().collect();
    let provider = &a["provider"];
    let action = match provider_type(a) {
        "http" => {
            let url = substitute(provider["url"].as_str().unwrap_or_default(), config)?;
            Action::Http {
                method: provider["method"]
                    .as_str()
                    .unwrap_or("GET")
                    .to_ascii_uppercase(),
                path: ingress_path(&url)?,
                body: match &provider["arguments"] {
                    Value::Null => None,
                    v => Some(v.to_string()),
                },
                timeout: timeout(provider, 30),
            }
        }
        "process" => {
            let path = substitute(provider["path"].as_str().unwrap_or_default(), config)?;
            if path.is_empty() {
                return Err("a process provider needs a path".into());
            }
            let args = match &provider["arguments"] {
                Value::String(s) => crate::format::split_words(&substitute(s, config)?)?,
                Value::Array(items) => items
                    .iter()
                    .map(|i| substitute(i.as_str().unwrap_or_default(), config))
                    .collect::<Result<_, _>>()?,
                Value::Null => Vec::new(),
                other => return Err(format!("process arguments {other}: a string or a list")),
            };
            Action::Process {
                path,
                args,
                timeout: timeout(provider, 120),
            }
        }
        _ => return Err(unsupported(a)),
    };
    out.push(action);
    out.extend(pause("after"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTK: &str = r#"{
      "title": "Redis cut",
      "configuration": {"ingress": {"type": "env", "key": "CHAOSLAB_INGRESS_URL"}},
      "steady-state-hypothesis": {"title": "ok", "probes": [
        {"type": "probe", "name": "root", "tolerance": 200,
         "provider": {"type": "http", "url": "${ingress}/", "timeout": 2}}]},
      "method": [
        {"type": "action", "name": "cut", "pauses": {"after": 2},
         "provider": {"type": "process", "path": "chaoslab", "arguments": "fault network block --duration 0"}},
        {"type": "probe", "name": "root", "provider": {"type": "http", "url": "${ingress}/"}}],
      "rollbacks": [{"type": "action", "name": "clear",
         "provider": {"type": "process", "path": "chaoslab", "arguments": ["fault", "clear", "--all"]}}]
    }"#;

    #[test]
    fn reads_http_process_and_pauses() {
        let e = parse("ctk", "ctk.json", CTK).unwrap();
        assert_eq!(e.steady_state.len(), 1);
        let Probe::Http(h) = &e.steady_state[0].probe else {
            panic!()
        };
        assert_eq!((h.path.as_str(), h.status), ("/", Some(200)));
        let ids: Vec<&str> = e.method.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["cut", "cut-2", "root"]);
        assert!(matches!(&e.method[0].action, Action::Process { args, .. } if args.len() == 5));
        assert_eq!(e.method[1].action, Action::Wait(Duration::from_secs(2)));
        assert_eq!(e.rollback.len(), 1);
    }

    #[test]
    fn yaml_works_too() {
        let yaml = "title: t\nmethod:\n  - type: action\n    name: pause\n    provider: {type: process, path: /bin/true}\n";
        let e = parse("y", "y.yaml", yaml).unwrap();
        assert_eq!(e.method.len(), 1);
    }

    #[test]
    fn other_providers_are_refused_by_name() {
        let text = CTK.replace(
            r#""type": "process", "path": "chaoslab", "arguments": "fault network block --duration 0""#,
            r#""type": "python", "module": "chaostoolkit_toxiproxy.proxy.actions", "func": "disable_proxy""#,
        );
        let err = parse("ctk", "ctk.json", &text).unwrap_err().to_string();
        assert!(
            err.contains("python provider (chaostoolkit_toxiproxy.proxy.actions.disable_proxy)"),
            "{err}"
        );
    }

    #[test]
    fn a_tolerance_of_several_statuses_is_refused_not_cut_to_its_first() {
        let one = CTK.replace(r#""tolerance": 200"#, r#""tolerance": [200]"#);
        assert!(parse("ctk", "ctk.json", &one).is_ok());
        let several = CTK.replace(r#""tolerance": 200"#, r#""tolerance": [200, 201]"#);
        let err = parse("ctk", "ctk.json", &several).unwrap_err().to_string();
        assert!(err.contains("tolerance [200,201]"), "{err}");
    }

    #[test]
    fn urls_off_the_ingress_are_refused() {
        let text = CTK.replace("${ingress}/", "http://example.test/");
        assert!(parse("ctk", "ctk.json", &text).is_err());
    }
}
