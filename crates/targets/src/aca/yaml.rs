//! A small block-style YAML writer for the Container App YAML: the export
//! builds the document as a JSON value and writes it here, so what `az
//! containerapp create --yaml` reads is exactly that value. Strings are
//! always double-quoted (JSON string syntax is valid YAML), so no value is
//! ever read back as a number, a boolean or null by mistake.

use serde_json::Value;

/// The document for `value`, which should be an object, with `comment`
/// lines (each prefixed by `# `) on top.
pub fn to_yaml(value: &Value, comment: &[&str]) -> String {
    let mut out = String::new();
    for line in comment {
        if line.is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
    }
    match value {
        Value::Object(map) if !map.is_empty() => write_block(value, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

/// Writes a non-empty object or array in block style at `indent` spaces.
fn write_block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                out.push_str(&pad);
                out.push_str(&key_text(key));
                out.push(':');
                if is_block(child) {
                    out.push('\n');
                    write_block(child, indent + 2, out);
                } else {
                    out.push(' ');
                    out.push_str(&scalar(child));
                    out.push('\n');
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_block(item) {
                    // The item's first line goes after "- ", the rest stay
                    // aligned two columns in.
                    let mut inner = String::new();
                    write_block(item, indent + 2, &mut inner);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&inner[indent + 2..]);
                } else {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&scalar(item));
                    out.push('\n');
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

/// Flow-style text of a scalar or an empty collection.
fn scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".to_string(),
        Value::Array(_) => "[]".to_string(),
        // serde_json renders null, booleans, numbers and quoted strings in
        // forms YAML reads back as the same values.
        other => other.to_string(),
    }
}

/// A key as written: bare when it is a plain identifier, quoted otherwise
/// (resource IDs, which start with `/`, are keys of userAssignedIdentities).
fn key_text(key: &str) -> String {
    let plain = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_lists_and_scalars() {
        let doc = json!({
            "a": {"b": 1, "c": true, "d": null},
            "list": [{"name": "x", "value": "1"}, "plain", {"empty": {}}],
            "/subscriptions/s/id": {},
            "none": []
        });
        let text = to_yaml(&doc, &["top", ""]);
        assert_eq!(
            text,
            "# top\n#\n\"/subscriptions/s/id\": {}\na:\n  b: 1\n  c: true\n  d: null\nlist:\n  - name: \"x\"\n    value: \"1\"\n  - \"plain\"\n  - empty: {}\nnone: []\n"
        );
    }

    #[test]
    fn strings_that_look_like_other_types_stay_strings() {
        let doc = json!({"v": "true", "num": "70", "q": "a: b # c", "u": "東京\n"});
        let text = to_yaml(&doc, &[]);
        assert!(text.contains("v: \"true\"\n"));
        assert!(text.contains("num: \"70\"\n"));
        assert!(text.contains("q: \"a: b # c\"\n"));
        assert!(text.contains("u: \"東京\\n\"\n"));
    }

    #[test]
    fn keys_that_yaml_would_read_as_booleans_are_quoted() {
        assert_eq!(key_text("on"), "\"on\"");
        assert_eq!(key_text("targetPort"), "targetPort");
        assert_eq!(key_text("odata.type"), "odata.type");
    }

    #[test]
    fn lists_of_lists() {
        let doc = json!({"l": [[1, 2], []]});
        // A nested list item starts on the "- " line as well.
        assert_eq!(to_yaml(&doc, &[]), "l:\n  - - 1\n    - 2\n  - []\n");
    }
}
