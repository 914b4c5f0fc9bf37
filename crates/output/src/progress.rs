//! The live view of a long-running command (an experiment run): lasting
//! lines for what happened and, on a terminal, one status line redrawn in
//! place; when the output is not a terminal (CI logs) or several runs share
//! it, the status comes as a plain line every few seconds, prefixed with the
//! run's name. Moved here from the experiment crate so every command draws
//! progress the same way.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a plain status line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(3);

/// Where progress goes.
#[derive(Debug)]
pub struct Progress {
    name: String,
    /// Redraw a status line in place.
    tty: bool,
    /// Prefix lines with the run's name.
    prefixed: bool,
    quiet: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    status_shown: bool,
    last_plain: Option<Instant>,
}

impl Progress {
    /// `tty`: stdout is a terminal and only this run writes to it.
    pub fn new(name: &str, tty: bool, prefixed: bool, quiet: bool) -> Self {
        Self {
            name: name.to_string(),
            tty: tty && !prefixed,
            prefixed,
            quiet,
            state: Mutex::new(State {
                status_shown: false,
                last_plain: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn prefix(&self) -> String {
        if self.prefixed {
            format!("[{}] ", self.name)
        } else {
            String::new()
        }
    }

    /// A lasting line.
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let mut state = self.lock();
        let mut out = std::io::stdout().lock();
        if self.tty && state.status_shown {
            let _ = write!(out, "\r\x1b[2K");
            state.status_shown = false;
        }
        let _ = writeln!(out, "{}{text}", self.prefix());
        let _ = out.flush();
    }

    /// The status line: redrawn on a terminal, else printed now and then.
    pub fn status(&self, text: &str) {
        if self.quiet {
            return;
        }
        let mut state = self.lock();
        let mut out = std::io::stdout().lock();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K{text}");
            state.status_shown = true;
        } else {
            if state.last_plain.is_some_and(|t| t.elapsed() < PLAIN_EVERY) {
                return;
            }
            state.last_plain = Some(Instant::now());
            let _ = writeln!(out, "{}{text}", self.prefix());
        }
        let _ = out.flush();
    }

    /// Ends the status line (before the verdict table).
    pub fn finish(&self) {
        let mut state = self.lock();
        if self.tty && state.status_shown {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
            state.status_shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_prints_nothing_and_a_terminal_is_not_redrawn_when_prefixed() {
        let p = Progress::new("x", true, true, true);
        assert!(!p.tty);
        p.line("never shown");
        p.status("never shown");
        p.finish();
        assert_eq!(p.prefix(), "[x] ");
        assert_eq!(Progress::new("x", false, false, false).prefix(), "");
    }
}
