//! The whole `chaoslab load` command as the binary runs it: validate the
//! flags, run with live lines until the plan ends or Ctrl-C, print the
//! summary, write the reports, judge the thresholds.

use std::io::{IsTerminal, Write};

use crate::args::LoadArgs;
use crate::config::LiveMode;
use crate::error::LoadError;
use crate::runner::{LiveLine, run};
use crate::{judge, print, write_reports};

/// Runs `chaoslab load`; `Ok(true)` when every threshold holds.
pub async fn main(args: LoadArgs) -> Result<bool, LoadError> {
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
    let passed = judge(&mut report, &config.thresholds);
    let mut out = std::io::stdout().lock();
    let _ = write!(
        out,
        "{}{}",
        print::summary(&report),
        print::thresholds(&report)
    );
    let _ = out.flush();
    for path in write_reports(&report, &config.reports)? {
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
