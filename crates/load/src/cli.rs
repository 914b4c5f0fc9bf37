//! The whole `chaoslab load` command as the binary runs it: validate the
//! flags, run with live lines until the plan ends or Ctrl-C, print the
//! summary, write the reports, judge the thresholds. `chaoslab load merge`
//! does the same with the sum of several runs' JSON reports.

use std::io::{IsTerminal, Write};

use crate::args::{LoadArgs, LoadCommand, MergeArgs};
use crate::config::LiveMode;
use crate::error::LoadError;
use crate::runner::{LiveLine, run};
use crate::{judge, print, write_reports};

/// Runs `chaoslab load`; `Ok(true)` when every threshold holds.
pub async fn main(mut args: LoadArgs) -> Result<bool, LoadError> {
    if let Some(LoadCommand::Merge(merge)) = args.command.take() {
        return merge_main(&merge);
    }
    let config = args.into_config()?;
    let plan = config.model.plan();
    eprintln!(
        "chaoslab load: {} model against {} — {}{}",
        config.model.name(),
        config.host,
        plan.describe(),
        config
            .scenario
            .and_then(|s| clap::ValueEnum::to_possible_value(&s))
            .map(|v| format!(" (scenario {})", v.get_name()))
            .unwrap_or_default()
    );
    let tty = std::io::stderr().is_terminal();
    let live = config.live;
    let mut printed_live = false;
    let on_live = |line: &LiveLine| {
        if live == LiveMode::Off {
            return;
        }
        let text = print::live_line(line);
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r\x1b[2K{text}");
            printed_live = true;
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    };
    let mut report = run(&config, shutdown(), on_live).await?;
    if tty && printed_live {
        eprintln!();
    }
    if report.interrupted {
        eprintln!("chaoslab load: interrupted, summary so far:");
    }
    finish(&mut report, &config.thresholds, &config.reports)
}

/// `chaoslab load merge`: reads every report, adds them up, then reports
/// and judges as a run does.
fn merge_main(args: &MergeArgs) -> Result<bool, LoadError> {
    let thresholds = args.thresholds()?;
    let inputs = args
        .files
        .iter()
        .map(|path| Ok((path.display().to_string(), crate::merge::read(path)?)))
        .collect::<Result<Vec<_>, LoadError>>()?;
    let mut report = crate::merge::merge(&inputs)?;
    eprintln!(
        "chaoslab load: merged {} reports ({} generators)",
        inputs.len(),
        report.generators
    );
    finish(&mut report, &thresholds, &args.reports())
}

/// Judges, prints the summary and the verdicts, writes the reports.
fn finish(
    report: &mut crate::Report,
    thresholds: &[crate::Threshold],
    reports: &crate::Reports,
) -> Result<bool, LoadError> {
    let passed = judge(report, thresholds);
    let mut out = std::io::stdout().lock();
    let _ = write!(
        out,
        "{}{}",
        print::summary(report),
        print::thresholds(report)
    );
    let _ = out.flush();
    for path in write_reports(report, reports)? {
        eprintln!("chaoslab load: wrote {}", path.display());
    }
    Ok(passed)
}

/// Resolves on Ctrl-C (or SIGTERM): the run stops and reports so far.
async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling here: run until the plan ends.
        std::future::pending::<()>().await;
    }
}
