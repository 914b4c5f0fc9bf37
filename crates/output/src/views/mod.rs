//! The views: what each command prints for the control API's JSON (or for
//! the figures a command hands over), built from the shared [`crate::Table`],
//! [`crate::Style`] and [`crate::units`]. Pure functions from data to text,
//! tested here beside the formats; the JSON itself is what `--json` prints.

pub mod chaos;
pub mod experiment;
pub mod fault;
pub mod lab;

use serde_json::Value;

/// A JSON value as a cell: strings bare, null a dash, anything else as JSON.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => crate::units::MISSING.into(),
        other => other.to_string(),
    }
}

/// `label` padded to the width of the key-value lines (`status`, `up`).
pub(crate) fn field(label: &str, value: &str) -> String {
    format!("{label:<10} {value}\n")
}

/// `text` padded to `width` characters, then painted (streamed lines,
/// where a table cannot measure the rows to come).
pub(crate) fn padded(
    style: crate::Style,
    tone: Option<crate::Tone>,
    text: &str,
    width: usize,
) -> String {
    let pad = " ".repeat(width.saturating_sub(text.chars().count()));
    match tone {
        Some(tone) => format!("{}{pad}", style.paint(tone, text)),
        None => format!("{text}{pad}"),
    }
}

/// The string ids of a JSON array, comma-separated.
pub(crate) fn ids(v: &Value) -> String {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
