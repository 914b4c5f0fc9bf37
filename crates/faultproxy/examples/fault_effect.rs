//! Measures how soon a fault takes effect after the API call that sets it
//! returns, and how soon clearing it restores flow — against a running fault
//! proxy (the `proxy` example) in front of Redis.
//!
//! ```text
//! cargo run --release -p chaoslab-faultproxy --example fault_effect -- \
//!     --api http://127.0.0.1:8474 --addr 127.0.0.1:26379 [--proxy redis] [--trials 20]
//! ```
//! - reset: time from the call's return until the client's read fails (RST);
//! - blackhole: time from the call's return until the last reply gets
//!   through to a client PINGing back to back (0 if none after the return),
//!   and from the clearing call's return until the held reply arrives;
//! - deny_new: whether a connection opened after the call returns is left
//!   unanswered.

use std::error::Error;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

type Res<T> = Result<T, Box<dyn Error>>;

struct Args {
    api: String,
    addr: String,
    proxy: String,
    trials: usize,
}

fn parse() -> Res<Args> {
    let mut args = Args {
        api: "http://127.0.0.1:8474".into(),
        addr: "127.0.0.1:26379".into(),
        proxy: "redis".into(),
        trials: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--api" => args.api = value,
            "--addr" => args.addr = value,
            "--proxy" => args.proxy = value,
            "--trials" => args.trials = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(args)
}

struct Api {
    http: reqwest::Client,
    toxics: String,
}

impl Api {
    async fn add(&self, kind: &str) -> Res<Instant> {
        let body = json!({"name": "effect", "type": kind});
        let response = self.http.post(&self.toxics).json(&body).send().await?;
        let returned = Instant::now();
        if !response.status().is_success() {
            return Err(format!("add {kind}: {}", response.status()).into());
        }
        Ok(returned)
    }

    async fn clear(&self) -> Res<Instant> {
        let url = format!("{}/effect", self.toxics);
        let response = self.http.delete(url).send().await?;
        let returned = Instant::now();
        if response.status() != 204 {
            return Err(format!("clear: {}", response.status()).into());
        }
        Ok(returned)
    }
}

async fn ping(stream: &mut TcpStream, within: Duration) -> Res<Option<Instant>> {
    stream.write_all(b"PING\r\n").await?;
    let mut reply = [0u8; 7];
    match timeout(within, stream.read_exact(&mut reply)).await {
        Err(_) => Ok(None),
        Ok(read) => {
            read?;
            Ok(Some(Instant::now()))
        }
    }
}

async fn reset_trial(api: &Api, addr: &str) -> Res<Duration> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    ping(&mut stream, Duration::from_secs(5))
        .await?
        .ok_or("no PONG")?;
    let waiter = tokio::spawn(async move {
        let mut buf = [0u8; 16];
        let _ = stream.read(&mut buf).await;
        Instant::now()
    });
    let returned = api.add("reset").await?;
    let seen = timeout(Duration::from_secs(5), waiter).await??;
    api.clear().await?;
    Ok(seen.saturating_duration_since(returned))
}

async fn blackhole_trial(api: &Api, addr: &str) -> Res<(Duration, Duration)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (tx, rx) = tokio::sync::oneshot::channel::<Instant>();
    let pinger = tokio::spawn(async move {
        let mut last = Instant::now();
        // PING back to back until one goes unanswered.
        while let Ok(Some(at)) = ping(&mut stream, Duration::from_millis(300)).await {
            last = at;
        }
        let _ = tx.send(last);
        let mut reply = [0u8; 7];
        let held = timeout(Duration::from_secs(5), stream.read_exact(&mut reply)).await;
        held.ok().and_then(Result::ok).map(|_| Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let returned = api.add("blackhole").await?;
    let last = rx.await?;
    let cleared = api.clear().await?;
    let arrived = pinger.await?.ok_or("held reply never arrived")?;
    Ok((
        last.saturating_duration_since(returned),
        arrived.saturating_duration_since(cleared),
    ))
}

async fn deny_new_trial(api: &Api, addr: &str) -> Res<bool> {
    api.add("deny_new").await?;
    let mut stream = TcpStream::connect(addr).await?;
    let unanswered = ping(&mut stream, Duration::from_millis(300))
        .await?
        .is_none();
    api.clear().await?;
    let answered_after = ping(&mut stream, Duration::from_secs(5)).await?.is_some();
    Ok(unanswered && answered_after)
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    println!(
        "{name:<34} p50 {:>8.3} ms   max {:>8.3} ms   ({} trials)",
        ms(p50),
        ms(max),
        samples.len()
    );
}

#[tokio::main]
async fn main() -> Res<()> {
    let args = parse()?;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        toxics: format!("{}/proxies/{}/toxics", args.api, args.proxy),
    };
    let mut resets = Vec::new();
    let mut holes = Vec::new();
    let mut clears = Vec::new();
    let mut denied = 0;
    for _ in 0..args.trials {
        resets.push(reset_trial(&api, &args.addr).await?);
        let (hole, clear) = blackhole_trial(&api, &args.addr).await?;
        holes.push(hole);
        clears.push(clear);
        denied += usize::from(deny_new_trial(&api, &args.addr).await?);
    }
    summary("reset: call return -> client RST", resets);
    summary("blackhole: call return -> last reply", holes);
    summary("blackhole cleared -> held reply", clears);
    println!(
        "deny_new: new connection unanswered, then served after clear: {denied}/{}",
        args.trials
    );
    Ok(())
}
