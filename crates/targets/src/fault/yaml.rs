//! A small YAML writer for the manifests a target fault applies: block
//! style, keys and plain-safe strings bare, every other string in JSON's
//! double-quoted form (which YAML reads the same). Enough for manifests
//! built as `serde_json::Value`s; no parsing, no anchors, no flow style.

use serde_json::Value;

/// `value` as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => write_seq(items, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    for (key, value) in map {
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(key));
        out.push(':');
        write_value(value, indent, out);
    }
}

fn write_seq(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key on the dash's line, the rest under it.
                let mut nested = String::new();
                write_map(map, indent + 2, &mut nested);
                out.push(' ');
                out.push_str(&nested[indent + 2..]);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(inner, indent + 2, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn write_value(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(map, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(items, indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string bare when YAML would read it back as the same string, else
/// JSON-quoted.
fn string(s: &str) -> String {
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    );
    let bare = !s.is_empty()
        && !reserved
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if bare {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml_and_quotes_what_yaml_would_misread() {
        // Keys in sorted order, so serde_json's map order (sorted, or
        // insertion with preserve_order) does not matter.
        let doc = json!({
            "apiVersion": "v1",
            "metadata": {"annotations": {}, "labels": {"chaoslab.io/fault": "network-block"}},
            "spec": {
                "empty": [],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}],
                "values": ["redis", "no", "10000", "a b"],
            }
        });
        assert_eq!(
            to_yaml(&doc),
            "apiVersion: v1\nmetadata:\n  annotations: {}\n  labels:\n    chaoslab.io/fault: network-block\n\
spec:\n  empty: []\n  ports:\n  - port: 53\n    protocol: UDP\n  - port: 53\n  values:\n  - redis\n  - \"no\"\n  - \"10000\"\n  - \"a b\"\n"
        );
    }
}
