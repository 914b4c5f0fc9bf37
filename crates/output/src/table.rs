//! The one table of the command line: a header row in capitals, columns two
//! spaces apart, left- or right-aligned, widths measured in characters (not
//! bytes, so `…` and non-ASCII names line up), cells longer than a column's
//! limit cut with `…`, no trailing spaces. Colour is applied after padding,
//! so coloured and plain tables have the same layout.

use crate::style::{Style, Tone};

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    /// Numbers.
    Right,
}

/// A column: its header, alignment and the most characters a cell keeps.
#[derive(Debug, Clone)]
pub struct Column {
    header: String,
    align: Align,
    max: Option<usize>,
}

impl Column {
    /// A left-aligned column.
    pub fn left(header: &str) -> Self {
        Self {
            header: header.to_string(),
            align: Align::Left,
            max: None,
        }
    }

    /// A right-aligned column (numbers).
    pub fn right(header: &str) -> Self {
        Self {
            align: Align::Right,
            ..Self::left(header)
        }
    }

    /// Cells longer than `chars` are cut to it, ending in `…`.
    pub fn max(mut self, chars: usize) -> Self {
        self.max = Some(chars.max(1));
        self
    }
}

/// One cell: its text and, optionally, its tone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    text: String,
    tone: Option<Tone>,
}

impl Cell {
    /// A cell coloured by `tone` (when the style colours).
    pub fn toned(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone: Some(tone),
        }
    }

    /// `yes` (ok) or `no` (fail/warn as given).
    pub fn yes_no(yes: bool, no_tone: Tone) -> Self {
        if yes {
            Self::toned("yes", Tone::Ok)
        } else {
            Self::toned("no", no_tone)
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self { text, tone: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        text.to_string().into()
    }
}

/// A table being filled row by row.
#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

/// Characters in `s`.
fn width(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to `max` characters, the last one `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are empty, extra ones dropped.
    pub fn row<I, C>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = C>,
        C: Into<Cell>,
    {
        let mut row: Vec<Cell> = cells
            .into_iter()
            .map(Into::into)
            .take(self.columns.len())
            .collect();
        row.resize(self.columns.len(), Cell::default());
        for (cell, column) in row.iter_mut().zip(&self.columns) {
            if let Some(max) = column.max {
                cell.text = truncate(&cell.text, max);
            }
        }
        self.rows.push(row);
        self
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines, each ending in `\n`.
    pub fn render(&self, style: Style) -> String {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows
                    .iter()
                    .map(|r| width(&r[i].text))
                    .chain([width(&c.header)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|c| Cell::from(c.header.as_str()))
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            out.push_str(&self.line(row, &widths, style));
            out.push('\n');
        }
        out
    }

    fn line(&self, row: &[Cell], widths: &[usize], style: Style) -> String {
        let last = row.len().saturating_sub(1);
        let mut line = String::new();
        for (i, (cell, column)) in row.iter().zip(&self.columns).enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(width(&cell.text)));
            let text = match cell.tone {
                Some(tone) => style.paint(tone, &cell.text),
                None => cell.text.clone(),
            };
            if i > 0 {
                line.push_str("  ");
            }
            match column.align {
                Align::Left if i == last => line.push_str(&text),
                Align::Left => {
                    line.push_str(&text);
                    line.push_str(&pad);
                }
                Align::Right => {
                    line.push_str(&pad);
                    line.push_str(&text);
                }
            }
        }
        line.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_by_characters_aligns_and_trims() {
        let mut t = Table::new(vec![
            Column::left("NAME"),
            Column::right("N"),
            Column::left("NOTE"),
        ]);
        t.row(["é…", "7", ""]).row(["abcdef", "12", "x"]);
        assert_eq!(
            t.render(Style::plain()),
            "NAME     N  NOTE\né…       7\nabcdef  12  x\n"
        );
    }

    #[test]
    fn cuts_long_cells_and_keeps_layout_when_coloured() {
        let mut t = Table::new(vec![Column::left("A").max(4), Column::left("B")]);
        t.row([Cell::from("abcdefgh"), Cell::toned("ok", Tone::Ok)]);
        assert_eq!(t.render(Style::plain()), "A     B\nabc…  ok\n");
        let coloured = t.render(Style::coloured());
        assert_eq!(coloured, "A     B\nabc…  \x1b[32mok\x1b[0m\n");
    }

    #[test]
    fn short_rows_are_filled() {
        let mut t = Table::new(vec![Column::left("A"), Column::left("B")]);
        t.row(["x"]);
        assert!(!t.is_empty());
        assert_eq!(t.render(Style::plain()), "A  B\nx\n");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
