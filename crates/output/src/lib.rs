//! Everything the `chaoslab` command line prints to a person, in one place.
//!
//! Why a crate of its own: every command (`status`, `revisions`, `events`,
//! `fault list`, `chaos`, `experiment …`) shows tables, verdicts, durations
//! and sizes, and each used to format them by hand in `src/cmd/*`, the lab
//! and the experiment crate, so the same table was written three times and
//! the styles drifted apart. Here there is one [`Table`] (columns, alignment,
//! widths measured in characters, long cells cut), one palette ([`Style`]:
//! ok / warn / fail / dim, colour only on a terminal without `NO_COLOR`),
//! one set of [`units`] (seconds, milliseconds, bytes, rates, percentages),
//! one way to choose between `--json` and the human view ([`Printer`]), the
//! live [`progress`] line, and the [`views`] of the control API's JSON that
//! the commands print. `src/cmd/*` only parses arguments, calls the crate
//! that does the work and hands the answer to this one.

pub mod printer;
pub mod progress;
pub mod style;
pub mod table;
pub mod units;
pub mod views;

pub use printer::Printer;
pub use progress::Progress;
pub use style::{Style, Tone};
pub use table::{Align, Cell, Column, Table};
