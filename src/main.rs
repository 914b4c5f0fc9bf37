//! The `chaoslab` binary: parses the command line and hands each subcommand
//! to the crate that implements it. Nothing here knows how a component works;
//! it only loads configuration, wires components together and maps their
//! errors to exit codes (as linkerd2-proxy's `main.rs` does).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// mimalloc rather than glibc's malloc: the service's hot path allocates
/// on one worker thread and frees on another (tokio moves tasks between
/// them), and glibc then takes the other thread's arena lock — a futex
/// call on about one request in three under load; mimalloc frees across
/// threads without a lock and costs fewer instructions per call (issue 12
/// item 5: about 25 % less CPU per `GET /`). Built without transparent huge
/// pages (`no_thp`): each 2 MiB page would add its whole size to the idle
/// RSS of every replica.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A chaos-engineering lab: a Redis-backed web service, the platform that
/// runs it, faults to break it and load to stress it, all on one machine.
#[derive(Debug, Parser)]
#[command(name = "chaoslab", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the target service alone: the HTTP API with its chaos endpoints
    /// (what runs in a container). Every flag can also be set by the
    /// environment variable named in brackets.
    Serve(Box<chaoslab_service::ServeArgs>),
    /// Generate HTTP load and report like Locust (closed model: users with
    /// think time) or k6 (open model: a constant arrival rate).
    Load(Box<cmd::load::LoadArgs>),
    #[command(flatten)]
    Lab(cmd::lab::LabCommand),
    /// Inject, list and clear platform faults in the running lab.
    Fault(Box<cmd::fault::FaultArgs>),
    /// Call the service's chaos API (load, hang, redis-reset, status).
    Chaos(Box<cmd::chaos::ChaosArgs>),
    /// Run declarative chaos experiments and judge them: steady state,
    /// faults at offsets, expectations with deadlines, rollbacks, verdicts,
    /// measurements, journal, JUnit and HTML reports.
    Experiment(Box<cmd::experiment::ExperimentArgs>),
    /// Write what other platforms take: Kubernetes manifests or Azure
    /// Container Apps Bicep and YAML.
    #[command(subcommand)]
    Export(cmd::export::ExportTarget),
    /// Build the service's container image.
    #[command(subcommand)]
    Image(cmd::export::ImageCommand),
}

/// Whether `words` are a command an experiment step may run (`fault`,
/// `chaos`, `deploy`, `revisions`, `load` with valid flags), checked with
/// this binary's own command line so a file fails validation exactly as
/// the command would fail.
fn check_action(words: &[String]) -> Result<(), String> {
    let argv = std::iter::once("chaoslab".to_string()).chain(words.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command:
                Command::Fault(_)
                | Command::Chaos(_)
                | Command::Load(_)
                | Command::Lab(cmd::lab::LabCommand::Deploy(_))
                | Command::Lab(cmd::lab::LabCommand::Revisions { .. }),
        }) => Ok(()),
        Ok(_) => Err(format!(
            "`{}` is not an action (fault, chaos, deploy, revisions, load, wait, clear)",
            words.join(" ")
        )),
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {
            Err("`--help` is not an action".into())
        }
        Err(e) => Err(chaoslab_experiment::format::first_line(
            &e.render().to_string(),
        )),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return cmd::exit_on_parse_error(err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("chaoslab: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(*args).await,
            Command::Load(args) => cmd::load::run(*args).await,
            Command::Lab(command) => cmd::lab::run(command).await,
            Command::Fault(args) => cmd::fault::run(*args).await,
            Command::Chaos(args) => cmd::chaos::run(*args).await,
            Command::Experiment(args) => cmd::experiment::run(*args, check_action).await,
            Command::Export(target) => cmd::export::export(target).await,
            Command::Image(command) => cmd::export::image(command).await,
        }
    });
    // Do not wait for tasks that ignore shutdown (e.g. a request hung forever).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("chaoslab: {err:#}");
            ExitCode::FAILURE
        }
    }
}
