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
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
