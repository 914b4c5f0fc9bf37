//! `--json` or the human view, decided once per command: a [`Printer`]
//! prints a whole answer as pretty JSON (an array or object, as the control
//! API returned it) or as text rendered by a view, and a stream of records
//! (events, log lines) as one compact JSON object per line or one text line
//! each. Every command that has a human table takes `--json`.

use std::io::Write;

use serde::Serialize;

use crate::style::Style;

/// How a command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printer {
    json: bool,
    style: Style,
}

impl Printer {
    /// JSON when `json` (the `--json` flag), else text in standard output's
    /// style.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            style: Style::stdout(),
        }
    }

    /// Whether this prints JSON.
    pub fn json(&self) -> bool {
        self.json
    }

    /// The style views render with.
    pub fn style(&self) -> Style {
        self.style
    }

    /// A whole answer: pretty JSON, or `human(value, style)` as it is (the
    /// view ends its lines).
    pub fn value<T: Serialize + ?Sized>(
        &self,
        value: &T,
        human: impl FnOnce(&T, Style) -> String,
    ) -> std::io::Result<()> {
        let text = if self.json {
            let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
            text.push('\n');
            text
        } else {
            human(value, self.style)
        };
        write_stdout(&text)
    }

    /// One record of a stream: a compact JSON line, or `human(value, style)`
    /// as one line.
    pub fn record<T: Serialize + ?Sized>(
        &self,
        value: &T,
        human: impl FnOnce(&T, Style) -> String,
    ) -> std::io::Result<()> {
        let mut text = if self.json {
            serde_json::to_string(value).map_err(std::io::Error::other)?
        } else {
            human(value, self.style)
        };
        text.push('\n');
        write_stdout(&text)
    }
}

/// Writes and flushes (streams are read live, e.g. `events --follow`).
fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}
