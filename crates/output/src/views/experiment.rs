//! `chaoslab experiment …`: the list of built-ins (`--json`: an array of
//! `{"name", "flow", "title"}`), the line for a valid file, and the verdict
//! table of a run (expectations with their bound and measured value).

use serde::Serialize;

use crate::{Cell, Column, Style, Table, Tone};

/// A built-in experiment as `experiment list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Builtin {
    pub name: String,
    /// The seed's flow it reproduces.
    pub flow: String,
    pub title: String,
}

/// `experiment list`: the table, then how to run one.
pub fn builtins(list: &[Builtin], style: Style) -> String {
    let mut table = Table::new(vec![
        Column::left("NAME"),
        Column::left("FLOW"),
        Column::left("TITLE"),
    ]);
    for b in list {
        table.row([b.name.as_str(), b.flow.as_str(), b.title.as_str()]);
    }
    format!(
        "{}\n{}\n",
        table.render(style),
        style.paint(
            Tone::Dim,
            "Run one: chaoslab experiment run NAME; see its file: chaoslab experiment show NAME"
        )
    )
}

/// The first line of a run's live view.
pub fn heading(name: &str, title: &str) -> String {
    format!("== {name}: {title}")
}

/// `experiment validate`: one line per valid file.
pub fn valid(file: &str, title: &str, steps: usize, expectations: usize) -> String {
    format!("{file}: valid: {title} ({steps} steps, {expectations} expectations)")
}

/// One row of the verdict table.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub name: String,
    /// The bound, in words.
    pub expected: String,
    /// What was observed.
    pub measured: String,
    pub passed: bool,
}

/// The verdict table printed at the end of a run: long cells cut at 60
/// characters, `yes` or `NO`.
pub fn verdicts(rows: &[Verdict], style: Style) -> String {
    const MAX: usize = 60;
    let mut table = Table::new(vec![
        Column::left("EXPECTATION").max(MAX),
        Column::left("EXPECTED").max(MAX),
        Column::left("MEASURED").max(MAX),
        Column::left("PASS"),
    ]);
    for r in rows {
        table.row([
            Cell::from(r.name.as_str()),
            r.expected.as_str().into(),
            r.measured.as_str().into(),
            if r.passed {
                Cell::toned("yes", Tone::Ok)
            } else {
                Cell::toned("NO", Tone::Fail)
            },
        ]);
    }
    table.render(style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_builtins_and_verdicts() {
        let list = [Builtin {
            name: "root".into(),
            flow: "1".into(),
            title: "GET / counts".into(),
        }];
        let text = builtins(&list, Style::plain());
        assert!(
            text.starts_with("NAME  FLOW  TITLE\nroot  1     GET / counts\n\nRun one:"),
            "{text}"
        );
        assert_eq!(
            valid("a.toml", "A", 2, 3),
            "a.toml: valid: A (2 steps, 3 expectations)"
        );
        assert_eq!(heading("cut", "Cut"), "== cut: Cut");
        let rows = [Verdict {
            name: "x".repeat(70),
            expected: "503".into(),
            measured: "200".into(),
            passed: false,
        }];
        let table = verdicts(&rows, Style::plain());
        let row = table.lines().nth(1).unwrap();
        assert!(
            row.starts_with(&format!("{}…  503", "x".repeat(59))),
            "{row}"
        );
        assert!(row.ends_with("NO"), "{row}");
    }
}
