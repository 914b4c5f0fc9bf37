//! `chaoslab fault …`: inject, list and clear platform faults in the running
//! lab. A thin client of the control API's `/api/faults` (the console's
//! buttons make the same calls); the faults themselves live in the lab
//! (crate `chaoslab-faults`) and outlast this command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use chaoslab_lab::{CALL_TIMEOUT, LabClient, Method};
use chaoslab_output::Printer;
use chaoslab_output::views::fault as view;
use serde_json::{Value, json};

/// Where the lab keeps its state (relative to the current directory).
#[derive(Debug, Clone, clap::Args)]
pub struct Dir {
    /// The lab's state directory.
    #[arg(
        long,
        env = "CHAOSLAB_STATE_DIR",
        default_value = ".chaoslab",
        global = true
    )]
    state_dir: PathBuf,
}

/// `chaoslab fault …`.
#[derive(Debug, clap::Args)]
pub struct FaultArgs {
    #[command(flatten)]
    dir: Dir,
    /// `--target k8s|aca`, `--engine`, `--dry-run` and what names the
    /// target (crate chaoslab-targets, module fault).
    #[command(flatten)]
    target: chaoslab_targets::fault::TargetArgs,
    #[command(subcommand)]
    command: FaultCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FaultCommand {
    /// Network faults between the replicas and Redis (the NSG rule).
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Roll out a failing revision: wrong-image, bad-env or bad-port.
    Deploy {
        /// wrong-image (executable missing), bad-env (REDIS_PORT=invalid),
        /// bad-port (listens where the probes don't look).
        variant: String,
    },
    /// Kill a replica's process (a container crash); the platform restarts it.
    Kill {
        /// The replica (default: a random one of the active revision).
        #[arg(long, conflicts_with = "all")]
        replica: Option<String>,
        /// Every replica of the active revision.
        #[arg(long)]
        all: bool,
        /// KILL or TERM.
        #[arg(long, default_value = "KILL")]
        signal: String,
    },
    /// Stop or restart the lab's Redis server.
    Redis {
        /// stop (until cleared or --duration) or restart.
        action: String,
        /// Seconds down (stop: 0 = until cleared; restart: 0 = at once).
        #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
        duration: i64,
    },
    /// Revoke the service's Redis credential, or restore it.
    Auth {
        /// revoke or restore.
        action: String,
        /// Seconds before it is restored by itself (0 = until restored).
        #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
        duration: i64,
    },
    /// List active faults.
    List {
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Clear a fault by id, or all of them (idempotent).
    Clear {
        /// The fault id (`fault list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Clear every fault.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
enum NetworkCommand {
    /// Cut Redis off: deny-new (default), blackhole or reset.
    Block {
        /// deny-new (new connections hang), blackhole (nothing passes),
        /// reset (connections reset at once).
        #[arg(long, default_value = "deny-new")]
        mode: String,
        /// Seconds (0 = until cleared).
        #[arg(long, allow_negative_numbers = true, default_value_t = 60)]
        duration: i64,
        /// Do not reset the replicas' Redis connections after the block.
        #[arg(long)]
        no_reset: bool,
    },
    /// Add latency to every Redis round trip.
    Latency {
        /// Milliseconds added per round trip.
        #[arg(long, allow_negative_numbers = true)]
        ms: i64,
        /// ± milliseconds.
        #[arg(long, allow_negative_numbers = true, default_value_t = 0)]
        jitter: i64,
        /// Seconds (0 = until cleared).
        #[arg(long, allow_negative_numbers = true, default_value_t = 60)]
        duration: i64,
    },
    /// Limit the bandwidth to Redis (each direction).
    Bandwidth {
        /// KB/s (1 KB = 1000 bytes).
        #[arg(long, allow_negative_numbers = true)]
        kbps: i64,
        /// Seconds (0 = until cleared).
        #[arg(long, allow_negative_numbers = true, default_value_t = 60)]
        duration: i64,
    },
}

fn duration(seconds: i64) -> anyhow::Result<i64> {
    if seconds < 0 {
        bail!("--duration must be 0 (until cleared) or more seconds, not {seconds}");
    }
    Ok(seconds)
}

fn non_negative(flag: &str, value: i64) -> anyhow::Result<i64> {
    if value < 0 {
        bail!("{flag} must be 0 or more, not {value}");
    }
    Ok(value)
}

/// The request body of an injecting command; none for list and clear.
fn body(command: &FaultCommand) -> anyhow::Result<Option<Value>> {
    Ok(Some(match command {
        FaultCommand::Network(NetworkCommand::Block {
            mode,
            duration: d,
            no_reset,
        }) => {
            json!({"kind": "network", "mode": mode, "duration_seconds": duration(*d)?, "no_reset": no_reset})
        }
        FaultCommand::Network(NetworkCommand::Latency {
            ms,
            jitter,
            duration: d,
        }) => {
            json!({"kind": "network", "mode": "latency", "latency_ms": non_negative("--ms", *ms)?,
            "jitter_ms": non_negative("--jitter", *jitter)?, "duration_seconds": duration(*d)?})
        }
        FaultCommand::Network(NetworkCommand::Bandwidth { kbps, duration: d }) => {
            json!({"kind": "network", "mode": "bandwidth", "kbps": non_negative("--kbps", *kbps)?,
                "duration_seconds": duration(*d)?})
        }
        FaultCommand::Deploy { variant } => json!({"kind": "deploy", "variant": variant}),
        FaultCommand::Kill {
            replica,
            all,
            signal,
        } => json!({"kind": "kill", "replica": replica, "all": all, "signal": signal}),
        FaultCommand::Redis {
            action,
            duration: d,
        } => json!({"kind": "redis", "action": action, "duration_seconds": duration(*d)?}),
        FaultCommand::Auth {
            action,
            duration: d,
        } => {
            if action != "revoke" && action != "restore" {
                bail!("unknown auth action `{action}`: use revoke or restore");
            }
            json!({"kind": "auth", "action": action, "duration_seconds": duration(*d)?})
        }
        FaultCommand::List { .. } | FaultCommand::Clear { .. } => return Ok(None),
    }))
}

pub async fn run(args: FaultArgs) -> anyhow::Result<ExitCode> {
    // A target other than the local lab: kubectl / az (SPEC §12).
    if args.target.target != chaoslab_targets::fault::Target::Local
        || args.target.dry_run
        || args.target.engine.is_some()
    {
        return Ok(on_target(&args));
    }
    // Bad input is refused before the lab is even looked for.
    let body = body(&args.command)?;
    let client = LabClient::discover(&args.dir.state_dir)?;
    if let Some(body) = body {
        let answer = client
            .call(Method::POST, "/api/faults", Some(&body), CALL_TIMEOUT)
            .await?;
        println!("{}", view::injected(&answer));
        return Ok(ExitCode::SUCCESS);
    }
    match args.command {
        FaultCommand::List { json } => {
            let faults = client
                .call(Method::GET, "/api/faults", None, CALL_TIMEOUT)
                .await?;
            Printer::new(json).value(&faults, view::list)?;
        }
        FaultCommand::Clear { all: true, .. } => {
            let answer = client
                .call(Method::DELETE, "/api/faults", None, CALL_TIMEOUT)
                .await?;
            println!("{}", view::cleared_all(&answer));
        }
        FaultCommand::Clear { id: Some(id), .. } => {
            let path = format!("/api/faults/{}", chaoslab_lab::path_segment(&id)?);
            let answer = client
                .call(Method::DELETE, &path, None, CALL_TIMEOUT)
                .await?;
            println!("{}", view::cleared_one(&id, &answer));
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The fault on Kubernetes or Azure Container Apps (crate chaoslab-targets).
fn on_target(args: &FaultArgs) -> ExitCode {
    let fault = target_fault(&args.command);
    let mut stdout = std::io::stdout();
    match chaoslab_targets::fault::run(&args.target, &fault, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chaoslab: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// The command as the targets crate takes it (it checks the numbers).
fn target_fault(command: &FaultCommand) -> chaoslab_targets::fault::Fault {
    use chaoslab_targets::fault::Fault;
    match command {
        FaultCommand::Network(NetworkCommand::Block {
            mode,
            duration,
            no_reset,
        }) => Fault::NetworkBlock {
            mode: mode.clone(),
            duration: *duration,
            no_reset: *no_reset,
        },
        FaultCommand::Network(NetworkCommand::Latency {
            ms,
            jitter,
            duration,
        }) => Fault::NetworkLatency {
            ms: *ms,
            jitter: *jitter,
            duration: *duration,
        },
        FaultCommand::Network(NetworkCommand::Bandwidth { kbps, duration }) => {
            Fault::NetworkBandwidth {
                kbps: *kbps,
                duration: *duration,
            }
        }
        FaultCommand::Deploy { variant } => Fault::Deploy {
            variant: variant.clone(),
        },
        FaultCommand::Kill {
            replica,
            all,
            signal,
        } => Fault::Kill {
            replica: replica.clone(),
            all: *all,
            signal: signal.clone(),
        },
        FaultCommand::Redis { .. } => Fault::LocalOnly("redis"),
        FaultCommand::Auth { .. } => Fault::LocalOnly("auth"),
        FaultCommand::List { json } => Fault::List { json: *json },
        FaultCommand::Clear { id, all } => Fault::Clear {
            id: id.clone(),
            all: *all,
        },
    }
}
