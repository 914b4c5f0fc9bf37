//! `chaoslab experiment …`: run declarative experiments and judge them
//! (crate `chaoslab-experiment`), list and show the built-ins, validate
//! files. This module only parses arguments, loads files, runs them with
//! bounded concurrency, writes the reports and maps outcomes to exit
//! statuses (0 held, 1 deviated, 2 could not run, 130 interrupted).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chaoslab_experiment::progress::Progress;
use chaoslab_experiment::{Experiment, Journal, RunOptions, Status, builtin, chaostoolkit, format};
use chaoslab_output::Printer;
use chaoslab_output::views::experiment as view;
use tokio_util::sync::CancellationToken;

const AFTER_HELP: &str = "\
Exit status of `run`: 0 every expectation held, 1 a deviation, 2 the
experiment could not run (invalid file, lab failed, action failed), 130
interrupted (rollbacks ran, the lab was stopped).

Examples:
  chaoslab experiment list
  chaoslab experiment run network-cut
  chaoslab experiment show network-cut > my-cut.toml   # a starting point
  chaoslab experiment validate my-cut.toml
  chaoslab experiment run my-cut.toml --set lab.replicas=3 --html cut.html
  chaoslab experiment run --all --jobs 2 --report-dir reports --junit reports/junit.xml
  chaoslab experiment run team-experiment.json      # Chaos Toolkit (http, process, pauses)

File format and tutorial: docs/experiments.md.";

/// `chaoslab experiment …`.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    command: ExperimentCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ExperimentCommand {
    /// Run experiments (files or built-in names) and judge them.
    Run(Box<RunArgs>),
    /// List the built-in experiments.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a built-in experiment's file (a starting point for your own).
    Show {
        /// A built-in's name (`chaoslab experiment list`).
        name: String,
    },
    /// Check files without starting anything: every error with its line
    /// and key.
    Validate {
        /// Experiment files (TOML, or Chaos Toolkit JSON/YAML) or built-in names.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
struct RunArgs {
    /// Experiment files (TOML, or Chaos Toolkit JSON/YAML) or built-in names.
    #[arg(required_unless_present = "all")]
    experiments: Vec<String>,
    /// Run every built-in experiment.
    #[arg(long, conflicts_with = "experiments")]
    all: bool,
    /// Experiments run at once, each with its own lab.
    #[arg(long, short, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    jobs: u16,
    /// Run against the lab running in DIR (where `chaoslab up` runs, or its
    /// state directory) instead of starting one per experiment.
    #[arg(long, value_name = "DIR")]
    attach: Option<PathBuf>,
    /// Override a key of the file (dotted: lab.replicas=3, load.rate=50/s).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Write NAME.journal.json and NAME.html per experiment and junit.xml
    /// here (default with --all: ./chaoslab-reports).
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Write JUnit XML of every experiment (one suite each).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write the HTML report (one experiment only; use --report-dir for several).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the journal JSON (an array with several experiments).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Keep each experiment's lab directory (logs, events) under this
    /// directory instead of a temporary one: DIR/NAME-lab, or NAME-lab-2,
    /// -3… when that exists (nothing kept is overwritten).
    #[arg(long, value_name = "DIR")]
    keep_lab: Option<PathBuf>,
    /// Only the verdicts, no live view.
    #[arg(long, short)]
    quiet: bool,
}

/// Checks an action's `chaoslab` words with the real command line.
pub type ActionCheck = fn(&[String]) -> Result<(), String>;

pub async fn run(args: ExperimentArgs, check: ActionCheck) -> anyhow::Result<ExitCode> {
    match args.command {
        ExperimentCommand::List { json } => list(json),
        ExperimentCommand::Show { name } => match builtin::find(&name) {
            Some(b) => {
                print!("{}", b.text);
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!(
                    "chaoslab: no built-in experiment `{name}`; built-ins: {}",
                    builtin::names().join(", ")
                );
                Ok(ExitCode::from(2))
            }
        },
        ExperimentCommand::Validate { files } => Ok(validate(&files, check)),
        ExperimentCommand::Run(args) => run_experiments(*args, check).await,
    }
}

/// `experiment list`: the built-ins as a table, or JSON.
fn list(json: bool) -> anyhow::Result<ExitCode> {
    let items: Vec<view::Builtin> = builtin::BUILTINS
        .iter()
        .map(|b| view::Builtin {
            name: b.name.to_string(),
            flow: b.flow.to_string(),
            title: builtin::title(b),
        })
        .collect();
    Printer::new(json).value(&items, |items, style| view::builtins(items, style))?;
    Ok(ExitCode::SUCCESS)
}

/// `experiment validate`: every file checked, every error printed; exit 2
/// when any is invalid.
fn validate(files: &[String], check: ActionCheck) -> ExitCode {
    let mut ok = true;
    for file in files {
        match load(file, &[], check) {
            Ok(e) => println!(
                "{}",
                view::valid(file, &e.title, e.method.len(), e.expect.len())
            ),
            Err(err) => {
                ok = false;
                eprintln!("{err}");
            }
        }
    }
    ExitCode::from(if ok { 0 } else { 2 })
}

/// Loads a file or a built-in, validated.
fn load(target: &str, sets: &[String], check: ActionCheck) -> Result<Experiment, String> {
    let check_ref = |words: &[String]| check(words);
    let path = Path::new(target);
    let (name, file, text) = if !path.exists()
        && let Some(b) = builtin::find(target)
    {
        (
            b.name.to_string(),
            format!("builtin:{}", b.name),
            b.text.to_string(),
        )
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    " (not a file, and not a built-in: {})",
                    builtin::names().join(", ")
                )
            } else {
                String::new()
            };
            format!("{target}: cannot read: {e}{hint}")
        })?;
        let name = path
            .file_stem()
            .map_or_else(|| "experiment".into(), |s| s.to_string_lossy().into_owned());
        (name, target.to_string(), text)
    };
    if chaostoolkit::is_chaostoolkit(&file, &text) {
        if !sets.is_empty() {
            return Err(format!(
                "{file}: --set applies to chaoslab's TOML files only"
            ));
        }
        return chaostoolkit::parse(&name, &file, &text).map_err(|e| e.to_string());
    }
    format::parse(&name, &file, &text, sets, Some(&check_ref)).map_err(|e| e.to_string())
}

async fn run_experiments(args: RunArgs, check: ActionCheck) -> anyhow::Result<ExitCode> {
    let targets: Vec<String> = if args.all {
        builtin::names().into_iter().map(String::from).collect()
    } else {
        args.experiments.clone()
    };
    // Everything is validated before any lab starts.
    let Some(experiments) = load_all(&targets, &args.sets, check) else {
        return Ok(ExitCode::from(2));
    };
    if args.html.is_some() && experiments.len() > 1 {
        eprintln!("chaoslab: --html writes one experiment's report; use --report-dir for several");
        return Ok(ExitCode::from(2));
    }
    let report_dir = args
        .report_dir
        .clone()
        .or_else(|| args.all.then(|| PathBuf::from("chaoslab-reports")));
    let exe = std::env::current_exe().context("cannot find the chaoslab executable")?;
    let interrupt = CancellationToken::new();
    let signal = cancel_on_signal(interrupt.clone());
    let options = RunOptions {
        exe,
        attach: args.attach.clone(),
        lab_parent: args.keep_lab.clone(),
        interrupt: interrupt.clone(),
    };
    let (journals, crashed) = run_all(experiments, &options, args.jobs, args.quiet).await;
    signal.abort();
    write_outputs(&args, report_dir.as_deref(), &journals)?;
    if journals.len() > 1 {
        println!();
        for j in &journals {
            println!("{}", j.summary_line());
        }
    }
    if crashed > 0 && !interrupt.is_cancelled() {
        // No journal says what became of them: not a pass.
        eprintln!("{crashed} experiment run(s) ended unexpectedly (see the error above): aborted");
        return Ok(ExitCode::from(Status::Aborted.exit_code()));
    }
    Ok(exit_status(&journals, interrupt.is_cancelled()))
}

/// Every target loaded and validated, or `None` after printing each error.
fn load_all(targets: &[String], sets: &[String], check: ActionCheck) -> Option<Vec<Experiment>> {
    let mut experiments = Vec::new();
    let mut bad = false;
    for t in targets {
        match load(t, sets, check) {
            Ok(e) => experiments.push(e),
            Err(e) => {
                bad = true;
                eprintln!("{e}");
            }
        }
    }
    (!bad).then_some(experiments)
}

/// Cancels `interrupt` on Ctrl-C or SIGTERM (rollbacks run, labs stop).
fn cancel_on_signal(interrupt: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        super::shutdown_signal().await;
        eprintln!("\ninterrupted: rolling back and stopping the lab…");
        interrupt.cancel();
    })
}

/// 130 when interrupted, else the worst outcome's status.
fn exit_status(journals: &[Journal], interrupted: bool) -> ExitCode {
    if interrupted {
        return ExitCode::from(130);
    }
    let worst = journals
        .iter()
        .map(|j| j.status)
        .max_by_key(|s| match s {
            Status::Completed => 0,
            Status::Deviated => 1,
            Status::Aborted => 2,
            Status::Interrupted => 3,
        })
        .unwrap_or(Status::Completed);
    ExitCode::from(worst.exit_code())
}

/// Runs experiments, at most `jobs` at once, in their given order: their
/// journals, and how many runs ended without one (a panic).
async fn run_all(
    experiments: Vec<Experiment>,
    options: &RunOptions,
    jobs: u16,
    quiet: bool,
) -> (Vec<Journal>, usize) {
    let tty = std::io::stdout().is_terminal();
    let several = jobs > 1 && experiments.len() > 1;
    let limit = Arc::new(tokio::sync::Semaphore::new(usize::from(jobs)));
    let mut handles = Vec::new();
    for experiment in experiments {
        let (options, limit) = (options.clone(), limit.clone());
        handles.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.ok()?;
            if options.interrupt.is_cancelled() {
                return None;
            }
            let progress = Arc::new(Progress::new(&experiment.name, tty, several, quiet));
            progress.line(&view::heading(&experiment.name, &experiment.title));
            let journal = chaoslab_experiment::run(&experiment, &options, progress.clone()).await;
            for line in journal.end_of_run().lines() {
                progress.line(line);
            }
            if quiet {
                println!("{}", journal.summary_line());
            }
            Some(journal)
        }));
    }
    let (mut journals, mut crashed) = (Vec::new(), 0);
    for h in handles {
        match h.await {
            Ok(Some(j)) => journals.push(j),
            Ok(None) => {}
            Err(e) => {
                crashed += 1;
                eprintln!("an experiment's run ended unexpectedly: {e}");
            }
        }
    }
    (journals, crashed)
}

fn write_outputs(
    args: &RunArgs,
    report_dir: Option<&Path>,
    journals: &[Journal],
) -> anyhow::Result<()> {
    let write = |path: &Path, text: &str| -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
        Ok(())
    };
    if let Some(dir) = report_dir {
        let stems = unique_stems(journals.iter().map(|j| j.experiment.name.as_str()));
        for (j, name) in journals.iter().zip(stems) {
            write(
                &dir.join(format!("{name}.journal.json")),
                &serde_json::to_string_pretty(j)?,
            )?;
            write(
                &dir.join(format!("{name}.html")),
                &chaoslab_experiment::html::render(j),
            )?;
        }
        write(
            &dir.join("junit.xml"),
            &chaoslab_experiment::junit::render(journals),
        )?;
    }
    if let Some(path) = &args.journal {
        let text = match journals {
            [one] => serde_json::to_string_pretty(one)?,
            many => serde_json::to_string_pretty(many)?,
        };
        write(path, &text)?;
    }
    if let Some(path) = &args.junit {
        write(path, &chaoslab_experiment::junit::render(journals))?;
    }
    if let (Some(path), [one]) = (&args.html, journals) {
        write(path, &chaoslab_experiment::html::render(one))?;
    }
    Ok(())
}

/// The file stem of each experiment's reports: its name, with `-2`, `-3`…
/// for a name already used (two files `cut.toml` from different places),
/// so that no report overwrites another.
fn unique_stems<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut used = std::collections::HashSet::new();
    names
        .map(|name| {
            let mut stem = name.to_string();
            let mut n = 2;
            while !used.insert(stem.clone()) {
                stem = format!("{name}-{n}");
                n += 1;
            }
            stem
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::unique_stems;

    #[test]
    fn same_named_experiments_get_reports_of_their_own() {
        let names = ["cut", "cut", "latency", "cut-2", "cut"];
        assert_eq!(
            unique_stems(names.into_iter()),
            ["cut", "cut-2", "latency", "cut-2-2", "cut-3"]
        );
    }
}
