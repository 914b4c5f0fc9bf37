//! The one palette of the command line: `ok` (green), `warn` (yellow),
//! `fail` (red) and `dim` (grey), applied only when standard output is a
//! terminal and `NO_COLOR` is unset (<https://no-color.org>), so logs, pipes
//! and tests always see plain text.

use std::io::IsTerminal;

/// What a piece of text says, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Healthy, held, passed.
    Ok,
    /// Worth a look: a warning event, not ready yet.
    Warn,
    /// Failed, deviated, an error.
    Fail,
    /// Secondary detail: timestamps, hints.
    Dim,
}

impl Tone {
    /// The ANSI SGR code of the tone.
    fn code(self) -> &'static str {
        match self {
            Self::Ok => "32",
            Self::Warn => "33",
            Self::Fail => "31",
            Self::Dim => "2",
        }
    }
}

/// Whether to colour, decided once per output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// For standard output: colour on a terminal unless `NO_COLOR` is set
    /// (to anything but an empty string, as the convention says).
    pub fn stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            colour: std::io::stdout().is_terminal() && !no_color,
        }
    }

    /// Never colour (files, reports, tests).
    pub const fn plain() -> Self {
        Self { colour: false }
    }

    /// Always colour (tests of the colouring itself).
    pub const fn coloured() -> Self {
        Self { colour: true }
    }

    /// Whether this style colours.
    pub fn colours(self) -> bool {
        self.colour
    }

    /// `text` in the tone's colour, or unchanged.
    pub fn paint(self, tone: Tone, text: &str) -> String {
        if self.colour && !text.is_empty() {
            format!("\x1b[{}m{text}\x1b[0m", tone.code())
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_leaves_text_alone_and_colour_wraps_it() {
        assert_eq!(Style::plain().paint(Tone::Fail, "NO"), "NO");
        assert_eq!(
            Style::coloured().paint(Tone::Ok, "yes"),
            "\x1b[32myes\x1b[0m"
        );
        assert_eq!(Style::coloured().paint(Tone::Dim, ""), "");
    }
}
