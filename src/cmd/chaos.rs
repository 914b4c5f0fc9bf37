//! `chaoslab chaos …`: the service's own chaos API (load, hang,
//! redis-reset, status) on one replica through the ingress, or on every
//! replica with `--all-replicas`. A thin client of the control API's
//! `/api/chaos`, which calls the replicas from inside the lab.

use std::path::PathBuf;
use std::process::ExitCode;

use chaoslab_lab::{CALL_TIMEOUT, LabClient, Method};
use chaoslab_output::Printer;
use chaoslab_output::views::chaos as view;
use serde_json::json;

/// `chaoslab chaos …`.
#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// The lab's state directory.
    #[arg(
        long,
        env = "CHAOSLAB_STATE_DIR",
        default_value = ".chaoslab",
        global = true
    )]
    state_dir: PathBuf,
    /// On every ready replica instead of one through the ingress.
    #[arg(long, global = true)]
    all_replicas: bool,
    /// Print the control API's answer as JSON (`{"answers": [...]}`, one
    /// per replica called; see docs/faults.md).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: ChaosCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ChaosCommand {
    /// Real CPU and memory load inside the service.
    Load {
        /// low, medium or high.
        level: String,
        /// Seconds (1..3600).
        #[arg(long, default_value_t = 60)]
        duration: u64,
    },
    /// Make the service hang.
    Hang {
        /// Seconds (0 = until restarted / the request is dropped).
        #[arg(long, default_value_t = 0)]
        duration: u64,
        /// request (only the chaos request hangs) or process (the whole
        /// HTTP service stops answering).
        #[arg(long, default_value = "request")]
        scope: String,
    },
    /// Close every Redis connection the service holds.
    RedisReset,
    /// The service's chaos state.
    Status,
}

pub async fn run(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    let (method, op, body) = match &args.command {
        ChaosCommand::Load { level, duration } => (
            Method::POST,
            "load",
            Some(json!({"level": level, "duration_seconds": duration})),
        ),
        ChaosCommand::Hang { duration, scope } => (
            Method::POST,
            "hang",
            Some(json!({"duration_seconds": duration, "scope": scope})),
        ),
        ChaosCommand::RedisReset => (Method::POST, "redis-reset", Some(json!({"force": true}))),
        ChaosCommand::Status => (Method::GET, "status", None),
    };
    let client = LabClient::discover(&args.state_dir)?;
    let path = format!("/api/chaos/{op}?all_replicas={}", args.all_replicas);
    let answer = client
        .call(method, &path, body.as_ref(), CALL_TIMEOUT)
        .await?;
    Printer::new(args.json).value(&answer, view::answers)?;
    Ok(if view::all_ok(&answer) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
