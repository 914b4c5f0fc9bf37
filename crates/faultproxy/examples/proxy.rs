//! A standalone fault proxy for benchmarks and manual play: one proxy named
//! `redis` from `--listen` to `--upstream`, and the Toxiproxy-compatible API
//! on `--api`. Runs until Ctrl-C or SIGTERM.
//!
//! ```text
//! cargo run --release -p chaoslab-faultproxy --example proxy -- \
//!     --listen 127.0.0.1:26379 --upstream 127.0.0.1:6379 --api 127.0.0.1:8474 \
//!     [--runtime dedicated|shared] [--threads N]
//! ```
//! The program runs on a multi-thread runtime of `--threads` workers (2, as
//! the lab). With `--runtime dedicated` (the default) the proxied
//! connections run on the fault proxy's own thread
//! ([`FaultProxy::dedicated`]); with `shared`, on the program's runtime
//! ([`FaultProxy::new`]).

use std::error::Error;

use chaoslab_faultproxy::{FaultProxy, api};
use tokio::net::TcpListener;

struct Args {
    listen: String,
    upstream: String,
    api: String,
    threads: usize,
    dedicated: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:26379".into(),
        upstream: "127.0.0.1:6379".into(),
        api: "127.0.0.1:8474".into(),
        threads: 2,
        dedicated: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value,
            "--upstream" => args.upstream = value,
            "--api" => args.api = value,
            "--threads" => args.threads = value.parse().map_err(|e| format!("--threads: {e}"))?,
            "--runtime" => {
                args.dedicated = match value.as_str() {
                    "dedicated" => true,
                    "shared" => false,
                    other => return Err(format!("--runtime dedicated|shared, not {other}")),
                }
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let faults = if args.dedicated {
        FaultProxy::dedicated()?
    } else {
        FaultProxy::new()
    };
    let listener = TcpListener::bind(&args.listen).await?;
    let info = faults.add_proxy("redis", listener, &args.upstream).await?;
    let api_listener = TcpListener::bind(&args.api).await?;
    println!("proxy redis: {} -> {}", info.listen, info.upstream);
    println!("api: http://{}", api_listener.local_addr()?);
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    api::serve(api_listener, faults.clone(), stop).await?;
    faults.shutdown().await;
    Ok(())
}
