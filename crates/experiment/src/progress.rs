//! The live view of a run. Lasting lines for what happened (lab up, steady
//! state, each step, each verdict) and, on a terminal, one status line
//! redrawn in place (time, load, ready replicas, expectations); when the
//! output is not a terminal (CI logs) or several experiments run at once,
//! the status comes as a plain line every few seconds, prefixed with the
//! experiment's name.

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
    /// Prefix lines with the experiment's name.
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
