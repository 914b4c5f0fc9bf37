//! The lab's subcommands: `up` runs the platform (crate `chaoslab-lab`) in
//! the foreground; `down`, `status`, `events`, `logs`, `revisions` and
//! `deploy` are thin clients of its control API, usable from any terminal in
//! the project directory. What they print is rendered by `chaoslab-output`
//! (`--json`: the control API's JSON as it is).
// The arguments' doc comments are their `--help` text: `[section] key`
// names a chaoslab.toml setting and `<dir>` a placeholder, not a link or
// an HTML tag.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::ShutdownSignal;
use chaoslab_lab::{ClientError, LabClient};
use chaoslab_lab::{LabConfig, Overrides, Preset};
use chaoslab_output::views::lab as view;
use chaoslab_output::{Printer, Style};
use serde_json::Value;

/// Where the lab keeps its state (relative to the current directory).
#[derive(Debug, Clone, clap::Args)]
pub struct StateDirArg {
    /// The lab's state directory.
    #[arg(long, env = "CHAOSLAB_STATE_DIR", default_value = ".chaoslab")]
    state_dir: PathBuf,
}

/// Subcommands that run or inspect the local lab.
#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Start the whole lab on this machine: Redis, replicas, ingress,
    /// probes, autoscaler, fault proxy, control API and console. Ctrl-C stops
    /// all of it.
    Up(Box<UpArgs>),
    /// Stop the lab running in this directory (and everything it started).
    Down(StateDirArg),
    /// Show the lab: endpoints, revisions, replicas, restarts, CPU, memory.
    Status {
        #[command(flatten)]
        dir: StateDirArg,
        /// Print the control API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the lab's events (probe failures, restarts, scaling, rollouts).
    Events {
        #[command(flatten)]
        dir: StateDirArg,
        /// Keep streaming new events.
        #[arg(long, short)]
        follow: bool,
        /// At most this many past events.
        #[arg(long, default_value_t = 100)]
        tail: usize,
        /// One JSON object per event and line, as the control API sends them.
        #[arg(long)]
        json: bool,
    },
    /// Show replicas' logs.
    Logs {
        #[command(flatten)]
        dir: StateDirArg,
        /// One replica (default: all current replicas).
        #[arg(long)]
        replica: Option<String>,
        /// Keep streaming new lines.
        #[arg(long, short)]
        follow: bool,
        /// Past lines per replica.
        #[arg(long, default_value_t = 100)]
        tail: usize,
        /// One JSON object per log line (`{"replica", "line"}`).
        #[arg(long)]
        json: bool,
    },
    /// List revisions, or activate one (rollback).
    Revisions {
        #[command(flatten)]
        dir: StateDirArg,
        /// Print the control API's JSON (the list).
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<RevisionsAction>,
    },
    /// Roll out a new revision; traffic moves only if it becomes ready.
    Deploy(Box<DeployArgs>),
}

/// `chaoslab revisions …`.
#[derive(Debug, clap::Subcommand)]
pub enum RevisionsAction {
    /// Move traffic back to an existing revision once it is ready again.
    Activate { name: String },
}

/// Arguments of `chaoslab up` (each overrides chaoslab.toml).
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Configuration file.
    #[arg(long, short, default_value = "chaoslab.toml")]
    config: PathBuf,
    /// The lab's state directory.
    #[arg(long, env = "CHAOSLAB_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Ingress port (0 = any free port).
    #[arg(long)]
    port: Option<u16>,
    /// Control API port (0 = any free port).
    #[arg(long)]
    control_port: Option<u16>,
    /// Replicas at start.
    #[arg(long)]
    replicas: Option<u32>,
    /// Executable the replicas run (default: this chaoslab binary).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Use this external Redis instead of starting redis-server.
    #[arg(long)]
    redis_url: Option<String>,
    /// The redis-server executable.
    #[arg(long)]
    redis_server: Option<PathBuf>,
    /// Probe preset: `quick` (default) or `aca` (the seed deployment's values).
    #[arg(long)]
    probes: Option<String>,
    /// Protect the replicas' chaos API with a token the lab makes and keeps
    /// in <state dir>/chaos-token (0600); every chaos call of the lab (CLI,
    /// console, faults, experiments) sends it ([app] chaos_token = true).
    #[arg(long)]
    chaos_token: bool,
    /// Let proxies created through the Toxiproxy-compatible API forward off
    /// this machine (default: loopback upstreams only; [faults]
    /// allow_remote_upstream).
    #[arg(long)]
    allow_remote_upstream: bool,
    /// How replica memory/CPU limits and network faults are enforced:
    /// `auto` (the default: in the kernel — cgroups, a network namespace
    /// for Redis, nftables — when run as root on a machine that has them,
    /// else by the lab itself), `kernel` (or refuse to start) or `process`
    /// (the portable fallback). `chaoslab status` shows what is in force
    /// and why ([lab] isolation).
    #[arg(long, value_name = "auto|kernel|process")]
    isolation: Option<String>,
    /// How replicas authenticate to Redis: `password` (an ACL user, its
    /// password in a file) or `entra` (Entra ID tokens from a stand-in
    /// managed identity endpoint the lab runs; needs a binary built with
    /// `--features entra-id`) ([redis] auth).
    #[arg(long, value_name = "password|entra")]
    auth: Option<String>,
}

/// Arguments of `chaoslab deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    dir: StateDirArg,
    /// Executable of the new revision (a missing one fails like a bad image).
    #[arg(long)]
    image: Option<PathBuf>,
    /// Environment variable for the new revision (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Target port probes and ingress use (default: the replica's APP_PORT).
    #[arg(long)]
    port: Option<u16>,
    /// Revision suffix: the revision is `<app>--<suffix>`.
    #[arg(long)]
    suffix: Option<String>,
    /// Memory limit per replica of the new revision, MiB (default [limits] memory_mb).
    #[arg(long)]
    memory_mb: Option<u64>,
    /// CPU limit per replica of the new revision, cores — a CFS quota in
    /// kernel isolation (default [limits] cpu).
    #[arg(long)]
    cpu: Option<f64>,
    /// Return at once instead of waiting for the outcome.
    #[arg(long)]
    no_wait: bool,
}

pub async fn run(command: LabCommand) -> anyhow::Result<ExitCode> {
    match command {
        LabCommand::Up(args) => up(*args).await,
        LabCommand::Down(dir) => down(dir).await,
        LabCommand::Status { dir, json } => status(&client(&dir)?, Printer::new(json)).await,
        LabCommand::Events {
            dir,
            follow,
            tail,
            json,
        } => {
            let path = format!("/api/events?limit={tail}&follow={follow}");
            print_lines(&client(&dir)?, &path, Printer::new(json), view::event).await
        }
        LabCommand::Logs {
            dir,
            replica,
            follow,
            tail,
            json,
        } => {
            let mut path = format!("/api/logs?tail={tail}&follow={follow}");
            if let Some(id) = replica {
                path.push_str(&format!("&replica={}", chaoslab_lab::query_value(&id)));
            }
            print_lines(&client(&dir)?, &path, Printer::new(json), view::log_line).await
        }
        LabCommand::Revisions {
            dir,
            json,
            action: None,
        } => {
            let revisions: Value = client(&dir)?.get("/api/revisions").await?;
            Printer::new(json).value(&revisions, view::revisions)?;
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Revisions {
            dir,
            action: Some(RevisionsAction::Activate { name }),
            ..
        } => activate(&client(&dir)?, &name).await,
        LabCommand::Deploy(args) => deploy(*args).await,
    }
}

fn client(dir: &StateDirArg) -> anyhow::Result<LabClient> {
    Ok(LabClient::discover(&dir.state_dir)?)
}

/// `chaoslab status`: the lab, then its active faults (the human view only).
async fn status(client: &LabClient, printer: Printer) -> anyhow::Result<ExitCode> {
    let status: Value = client.get("/api/status").await?;
    let faults: Value = if printer.json() {
        Value::Null
    } else {
        client.get("/api/faults").await.unwrap_or(Value::Null)
    };
    printer.value(&status, |status, style| {
        view::status(status, style) + &chaoslab_output::views::fault::summary(&faults)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Streams JSON lines of the control API (events, logs) until they end or
/// Ctrl-C.
async fn print_lines(
    client: &LabClient,
    path: &str,
    printer: Printer,
    render: fn(&Value, Style) -> String,
) -> anyhow::Result<ExitCode> {
    let stop = tokio::spawn(super::shutdown_signal());
    let stream = client.lines(path, |line| {
        if let Ok(value) = serde_json::from_str::<Value>(line)
            && printer.record(&value, render).is_err()
        {
            // Standard output is gone (a closed pipe): stop reading.
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    tokio::select! {
        result = stream => result?,
        _ = stop => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `chaoslab up`: start the lab, print where everything is, then its
/// events until Ctrl-C or `chaoslab down`.
async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = up_config(args)?;
    if config.file.redis.auth == chaoslab_lab::RedisAuthMode::Entra && !cfg!(feature = "entra-id") {
        eprintln!(
            "chaoslab: --auth entra needs Entra ID support in the replicas' binary; build chaoslab with `cargo build --features entra-id`"
        );
        return Ok(ExitCode::from(2));
    }
    // Caught before the lab makes anything: a Ctrl-C or SIGTERM while it
    // starts lets the start finish (its steps are bounded) and then stops
    // the lab the usual way, so its kernel objects and children go too.
    let mut signal = ShutdownSignal::listen();
    let start = chaoslab_lab::start_with(config, Some(Box::new(chaoslab_faults::plug)));
    let (started_lab, mut stopping) = until_signal(start, &mut signal).await;
    let lab = match started_lab {
        Ok(lab) => lab,
        Err(err) => {
            eprintln!("chaoslab: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    // Subscribed before anything is printed, so no event falls in between
    // the history and the live stream.
    let events = lab.platform.events().subscribe();
    // The lab is whole: waiting for a ready replica ends at a signal or
    // when the control API asks the lab to stop (`chaoslab down`, an
    // experiment whose run was interrupted) — it may take half a minute, a
    // slow readiness probe or a bad image.
    let ready = if stopping {
        false
    } else {
        tokio::select! {
            ready = lab.wait_ready(Duration::from_secs(30)) => ready,
            _ = signal.recv() => {
                stopping = true;
                false
            }
            () = lab.platform.shutdown().cancelled() => false,
        }
    };
    let printer = Printer::new(false);
    print!(
        "{}",
        banner(&lab, ready.then(|| started.elapsed())).render(printer.style())
    );
    let past = lab.platform.events().history(0, 200);
    let last_seq = past.last().map_or(0, |e| e.seq);
    for event in past {
        print_event(printer, &event);
    }
    let follower = tokio::spawn(follow_events(events, last_seq, printer));
    lab.run(async move {
        if !stopping {
            signal.recv().await;
        }
    })
    .await;
    // The follower ends at LabStopped, the last event: everything the stop
    // announced (e.g. faults cleared) is printed.
    let abort = follower.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), follower)
        .await
        .is_err()
    {
        abort.abort();
    }
    println!("lab stopped");
    Ok(ExitCode::SUCCESS)
}

/// Runs `work` to its end even when Ctrl-C or SIGTERM comes meanwhile
/// (said on stderr); its result and whether a signal came.
async fn until_signal<T>(
    work: impl std::future::Future<Output = T>,
    signal: &mut ShutdownSignal,
) -> (T, bool) {
    tokio::pin!(work);
    let mut signalled = false;
    loop {
        tokio::select! {
            result = &mut work => return (result, signalled),
            _ = signal.recv(), if !signalled => {
                signalled = true;
                eprintln!("chaoslab: stopping as soon as the lab has started, so that it removes what it made");
            }
        }
    }
}

/// chaoslab.toml with the command line's overrides.
fn up_config(args: UpArgs) -> anyhow::Result<LabConfig> {
    let preset = args
        .probes
        .as_deref()
        .map(str::parse::<Preset>)
        .transpose()?;
    let isolation = args
        .isolation
        .as_deref()
        .map(str::parse::<chaoslab_lab::IsolationMode>)
        .transpose()?;
    let auth = args
        .auth
        .as_deref()
        .map(str::parse::<chaoslab_lab::RedisAuthMode>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let overrides = Overrides {
        state_dir: args.state_dir,
        ingress_port: args.port,
        control_port: args.control_port,
        replicas: args.replicas,
        image: args.image,
        redis_url: args.redis_url,
        redis_server: args.redis_server,
        preset,
        chaos_token: args.chaos_token,
        allow_remote_upstream: args.allow_remote_upstream,
        isolation,
    };
    // The default file may be absent; a file named on the command line may not.
    let required = args.config != Path::new("chaoslab.toml");
    let exe = std::env::current_exe()?;
    let mut config = LabConfig::load(&args.config, required, &overrides, exe.clone())?;
    if let Some(auth) = auth {
        // Applied to the file's settings and validated again.
        let mut file = config.file;
        file.redis.auth = auth;
        config = LabConfig::resolve(file, &overrides, exe)?;
    }
    Ok(config)
}

/// What `up` prints about the running lab.
fn banner(lab: &chaoslab_lab::RunningLab, ready_in: Option<Duration>) -> view::UpBanner {
    let info = &lab.info;
    view::UpBanner {
        ready_in,
        ingress_url: info.ingress_url.clone(),
        control_url: info.control_url.clone(),
        state_dir: info.state_dir.clone(),
        token: chaoslab_lab::StateFile::read(Path::new(&info.state_dir))
            .ok()
            .map(|state| state.token),
        redis: info.redis.clone(),
        toxiproxy_url: info.toxiproxy_url.clone(),
        revision: lab.platform.active().unwrap_or_default(),
    }
}

fn print_event(printer: Printer, event: &chaoslab_lab::Event) {
    if let Ok(value) = serde_json::to_value(event) {
        let _ = printer.record(&value, view::event);
    }
}

/// Prints the lab's live events after `last_seq` until `LabStopped`.
async fn follow_events(
    mut events: tokio::sync::broadcast::Receiver<chaoslab_lab::Event>,
    mut last_seq: u64,
    printer: Printer,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(event) if event.seq <= last_seq => {}
            Ok(event) => {
                last_seq = event.seq;
                print_event(printer, &event);
                if event.reason == "LabStopped" {
                    break;
                }
            }
            Err(RecvError::Lagged(n)) => println!("{}", view::events_lagged(n)),
            Err(RecvError::Closed) => break,
        }
    }
}

async fn down(dir: StateDirArg) -> anyhow::Result<ExitCode> {
    match LabClient::discover(&dir.state_dir) {
        Ok(client) => {
            let pid = client.state.pid;
            client.shutdown(Duration::from_secs(60)).await?;
            println!("{}", view::stopped(pid));
        }
        Err(ClientError::NoLab(_)) => {
            println!("{}", view::no_lab(&dir.state_dir.display().to_string()));
        }
        Err(ClientError::Stale { pid, .. }) => {
            let _ = std::fs::remove_file(chaoslab_lab::StateFile::path(&dir.state_dir));
            println!("{}", view::stale_removed(pid));
        }
        Err(err) => return Err(err.into()),
    }
    Ok(ExitCode::SUCCESS)
}

async fn deploy(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = client(&args.dir)?;
    let request = serde_json::json!({
        "image": args.image.map(absolute_if_path),
        "env": args.env,
        "port": args.port,
        "suffix": args.suffix,
        "memory_mb": args.memory_mb,
        "cpu": args.cpu,
    });
    let revision = client.post("/api/revisions", &request).await?;
    let name = revision["name"].as_str().unwrap_or_default().to_string();
    println!("{}", view::revision_created(&name));
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    report_revision(&client, &name).await
}

/// `revisions activate NAME`: a rollback, reported as a rollout.
async fn activate(client: &LabClient, name: &str) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/api/revisions/{}/activate",
        chaoslab_lab::path_segment(name)?
    );
    client.post(&path, &Value::Null).await?;
    println!("{}", view::activating(name));
    report_revision(client, name).await
}

/// `./bin/app` is resolved against this terminal's directory (the lab may run
/// elsewhere); a bare name is left for the lab to find on PATH.
fn absolute_if_path(image: PathBuf) -> PathBuf {
    if image.components().count() > 1 {
        std::path::absolute(&image).unwrap_or(image)
    } else {
        image
    }
}

/// Waits for the revision's verdict: exit 0 when it serves, 1 when it failed.
async fn report_revision(client: &LabClient, name: &str) -> anyhow::Result<ExitCode> {
    let revision = client
        .wait_revision(name, Duration::from_secs(3600))
        .await?;
    let running = revision["state"] == "Running";
    let active = if running {
        String::new()
    } else {
        let status: Value = client.get("/api/status").await?;
        status["active_revision"]
            .as_str()
            .unwrap_or("nothing")
            .to_string()
    };
    println!(
        "{}",
        view::revision_outcome(name, &revision, &active, Style::stdout())
    );
    Ok(if running {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
