//! `chaoslab load`: hands the parsed flags to `chaoslab-load` and maps the
//! threshold verdict to the exit status (0 all hold, 1 any fails).

use std::process::ExitCode;

pub use chaoslab_load::LoadArgs;

/// Runs the load test; configuration and report errors become `Err`.
pub async fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let passed = chaoslab_load::main(args).await?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
