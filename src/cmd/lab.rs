//! The lab's subcommands: `up` runs the platform (crate `chaoslab-lab`) in
//! the foreground; `down`, `status`, `events`, `logs`, `revisions` and
//! `deploy` are thin clients of its control API, usable from any terminal in
//! the project directory.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chaoslab_lab::client::LabClient;
use chaoslab_lab::{LabConfig, Overrides, Preset, render};

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
    },
    /// List revisions, or activate one (rollback).
    Revisions {
        #[command(flatten)]
        dir: StateDirArg,
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
    /// Isolation: `auto` (kernel mechanisms — cgroups, a network namespace
    /// for Redis, nftables — when root and the machine has them, else
    /// process), `kernel` (or fail) or `process` ([lab] isolation).
    #[arg(long, value_name = "auto|kernel|process")]
    isolation: Option<String>,
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
        LabCommand::Status { dir, json } => {
            let client = client(&dir)?;
            let status: serde_json::Value = client.get("/api/status").await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render::status(&status));
                let faults: serde_json::Value = client
                    .get("/api/faults")
                    .await
                    .unwrap_or(serde_json::Value::Null);
                print!("{}", render::faults(&faults));
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Events { dir, follow, tail } => {
            let path = format!("/api/events?limit={tail}&follow={follow}");
            print_lines(&client(&dir)?, &path, render::event).await
        }
        LabCommand::Logs {
            dir,
            replica,
            follow,
            tail,
        } => {
            let mut path = format!("/api/logs?tail={tail}&follow={follow}");
            if let Some(id) = replica {
                path.push_str(&format!(
                    "&replica={}",
                    chaoslab_lab::client::query_value(&id)
                ));
            }
            print_lines(&client(&dir)?, &path, render::log_line).await
        }
        LabCommand::Revisions { dir, action: None } => {
            let revisions: serde_json::Value = client(&dir)?.get("/api/revisions").await?;
            print!("{}", render::revisions(&revisions));
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Revisions {
            dir,
            action: Some(RevisionsAction::Activate { name }),
        } => {
            let client = client(&dir)?;
            client
                .post(
                    &format!(
                        "/api/revisions/{}/activate",
                        chaoslab_lab::client::path_segment(&name)?
                    ),
                    &serde_json::Value::Null,
                )
                .await?;
            println!("activating {name}…");
            report_revision(&client, &name).await
        }
        LabCommand::Deploy(args) => deploy(*args).await,
    }
}

fn client(dir: &StateDirArg) -> anyhow::Result<LabClient> {
    Ok(LabClient::discover(&dir.state_dir)?)
}

async fn print_lines(
    client: &LabClient,
    path: &str,
    render: fn(&serde_json::Value) -> String,
) -> anyhow::Result<ExitCode> {
    let stop = tokio::spawn(super::shutdown_signal());
    let stream = client.lines(path, |line| {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
            println!("{}", render(&value));
        }
        ControlFlow::Continue(())
    });
    tokio::select! {
        result = stream => result?,
        _ = stop => {}
    }
    Ok(ExitCode::SUCCESS)
}

async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let preset = args
        .probes
        .as_deref()
        .map(str::parse::<Preset>)
        .transpose()?;
    let isolation = args
        .isolation
        .as_deref()
        .map(str::parse::<chaoslab_lab::isolation::IsolationMode>)
        .transpose()?;
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
    let config = LabConfig::load(&args.config, required, &overrides, exe)?;
    let lab = match chaoslab_lab::start_with(config, Some(Box::new(chaoslab_faults::plug))).await {
        Ok(lab) => lab,
        Err(err) => {
            eprintln!("chaoslab: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut events = lab.platform.events.subscribe();
    let ready = lab.wait_ready(Duration::from_secs(30)).await;
    let info = &lab.info;
    if ready {
        println!(
            "chaoslab lab is up (ready in {:.2}s)",
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("chaoslab lab started, but no replica is ready yet (see `chaoslab events`)");
    }
    println!("  ingress      {}/", info.ingress_url);
    println!(
        "  control API  {}  (token in {}/lab.json)",
        info.control_url, info.state_dir
    );
    if let Ok(state) = chaoslab_lab::state::StateFile::read(std::path::Path::new(&info.state_dir)) {
        // The token rides in the URL fragment, which browsers never send.
        println!(
            "  console      {}/#token={}  (open in a browser)",
            info.control_url, state.token
        );
    }
    println!("  redis        {}", info.redis);
    if let Some(url) = &info.toxiproxy_url {
        println!("  toxiproxy    {url}  (Toxiproxy-compatible API of the fault proxy)");
    }
    println!(
        "  revision     {}",
        lab.platform.active().unwrap_or_default()
    );
    println!();
    println!("Next:");
    println!("  curl -s {}/", info.ingress_url);
    println!("  chaoslab status          # replicas, probes, restarts, CPU and memory");
    println!("  chaoslab deploy --image /no/such/image   # a bad deployment: traffic stays put");
    println!("  chaoslab fault network block             # cut Redis off (the NSG rule), 60 s");
    println!();
    println!("Ctrl-C (or `chaoslab down` from another terminal) stops everything. Events:");
    // What happened during start-up, then live (the subscription was taken
    // before, so nothing falls in between).
    let past = lab.platform.events.history(0, 200);
    let mut last_seq = past.last().map_or(0, |e| e.seq);
    for event in past {
        if let Ok(value) = serde_json::to_value(&event) {
            println!("{}", render::event(&value));
        }
    }
    let printer = tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(event) if event.seq <= last_seq => {}
                Ok(event) => {
                    last_seq = event.seq;
                    if let Ok(value) = serde_json::to_value(&event) {
                        println!("{}", render::event(&value));
                    }
                    if event.reason == "LabStopped" {
                        break;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    println!("... {n} events not shown (see `chaoslab events`)")
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    lab.run(super::shutdown_signal()).await;
    // The printer ends at LabStopped, the last event: everything the stop
    // announced (e.g. faults cleared) is printed.
    let abort = printer.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), printer)
        .await
        .is_err()
    {
        abort.abort();
    }
    println!("lab stopped");
    Ok(ExitCode::SUCCESS)
}

async fn down(dir: StateDirArg) -> anyhow::Result<ExitCode> {
    match LabClient::discover(&dir.state_dir) {
        Ok(client) => {
            let pid = client.state.pid;
            client.shutdown(Duration::from_secs(60)).await?;
            println!("lab (pid {pid}) stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(chaoslab_lab::client::ClientError::NoLab(_)) => {
            println!("no lab running in {}", dir.state_dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(chaoslab_lab::client::ClientError::Stale { pid, .. }) => {
            let _ = std::fs::remove_file(chaoslab_lab::state::StateFile::path(&dir.state_dir));
            println!("the lab (pid {pid}) was already gone; removed its stale state file");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => Err(err.into()),
    }
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
    println!("revision {name} created; provisioning…");
    if args.no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    report_revision(&client, &name).await
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

async fn report_revision(client: &LabClient, name: &str) -> anyhow::Result<ExitCode> {
    let revision = client
        .wait_revision(name, Duration::from_secs(3600))
        .await?;
    match revision["state"].as_str() {
        Some("Running") => {
            println!("revision {name} is ready and receives 100% of traffic");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            let active: serde_json::Value = client.get("/api/status").await?;
            println!(
                "revision {name} Failed: {}; {} keeps serving",
                revision["reason"].as_str().unwrap_or("unknown"),
                active["active_revision"].as_str().unwrap_or("nothing")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
