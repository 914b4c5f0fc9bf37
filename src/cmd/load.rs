//! `chaoslab load`: hands the parsed flags to `chaoslab-load` and maps the
//! threshold verdict to the exit status (0 all hold, 1 any fails, 2 a
//! configuration mistake, reported before anything is sent, or a report
//! `chaoslab load merge` cannot use).

use std::process::ExitCode;

pub use chaoslab_load::LoadArgs;

/// Runs the load test; configuration and report errors become `Err`.
pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let passed = match chaoslab_load::main(args).await {
        Ok(passed) => passed,
        Err(e @ chaoslab_load::LoadError::Config { .. }) => {
            eprintln!("chaoslab: configuration error: {e} (see --help)");
            return Ok(ExitCode::from(2));
        }
        Err(e @ chaoslab_load::LoadError::Input { .. }) => {
            eprintln!("chaoslab: load merge: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
