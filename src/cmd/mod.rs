//! One module per group of subcommands; each turns parsed arguments into a
//! call on the crate that does the work.

use std::process::ExitCode;

pub mod chaos;
pub mod experiment;
pub mod export;
pub mod fault;
pub mod lab;
pub mod load;
pub mod serve;

/// Command-line and environment errors: `--help` and `--version` print and
/// exit 0; anything else is one line naming the flag (and so the variable)
/// and exit status 2 (bad input, as clap's own convention), so a
/// misconfigured container fails fast and clearly.
pub fn exit_on_parse_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = err.render().to_string();
            let line = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            eprintln!("chaoslab: configuration error: {line} (see --help)");
            ExitCode::from(2)
        }
    }
}

/// Resolves when the process receives Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    ShutdownSignal::listen().recv().await;
}

/// Ctrl-C (SIGINT) and SIGTERM, caught from the moment it is made: from
/// then on neither signal ends the process by its default action, so work
/// that must be undone (a lab's kernel objects, its children) is undone
/// even when the signal arrives before the work is finished.
pub struct ShutdownSignal {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignal {
    /// Catches both signals now (inside the runtime).
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Self { signals }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Waits for the next Ctrl-C or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = self.signals.as_mut() {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
