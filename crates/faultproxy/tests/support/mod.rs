//! Fixtures shared by the integration tests: a private `redis-server` per
//! test (killed on drop), an echo server, a fault proxy in front of either, a
//! tiny RESP client with per-call timeouts, and `eventually` — a poll with a
//! deadline instead of sleeps.

#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use chaoslab_faultproxy::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::time::{Instant, timeout};

/// Every test body runs under this bound.
pub const TEST_BOUND: Duration = Duration::from_secs(60);

/// Runs a test body with a hard time bound.
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    timeout(TEST_BOUND, body)
        .await
        .expect("test took longer than its bound");
}

/// Polls `check` every 20 ms until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A private Redis on a free loopback port, killed on drop.
pub struct Redis {
    pub addr: SocketAddr,
    child: Child,
}

impl Redis {
    /// Starts one and waits until it answers PING.
    pub async fn start() -> Redis {
        for _ in 0..5 {
            let port = free_port().await;
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "no",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("redis-server is installed");
            let mut redis = Redis {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child,
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = redis.child.try_wait() {
                    break; // port taken: try another
                }
                if let Ok(mut c) = Resp::connect(redis.addr).await
                    && c.cmd(&["PING"]).await.ok().as_deref() == Some("+PONG")
                {
                    return redis;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        panic!("could not start redis-server");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// An echo server on loopback: writes back what it reads, half-closes when
/// its client does.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A fault proxy with one proxy named `redis` in front of `upstream`.
pub struct Proxied {
    pub faults: FaultProxy,
    pub addr: SocketAddr,
}

impl Proxied {
    pub async fn new(upstream: SocketAddr) -> Proxied {
        let faults = FaultProxy::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        faults
            .add_proxy("redis", listener, &upstream.to_string())
            .await
            .unwrap();
        Proxied { faults, addr }
    }
}

/// A minimal RESP client: one command, one reply, as text (`+PONG`, `:1`,
/// `$3 foo`…).
pub struct Resp {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Resp {
    pub async fn connect(addr: SocketAddr) -> io::Result<Resp> {
        let stream = timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        Ok(Resp {
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends a command without waiting for its reply.
    pub async fn send(&mut self, args: &[&str]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).await
    }

    /// Reads one reply (simple string, error, integer or bulk string).
    pub async fn reply(&mut self) -> io::Result<String> {
        let line = self.line().await?;
        if let Some(len) = line.strip_prefix('$') {
            let len: i64 = len.parse().map_err(io::Error::other)?;
            if len < 0 {
                return Ok("$nil".into());
            }
            let body = self.exact(len as usize + 2).await?;
            return Ok(format!(
                "${}",
                String::from_utf8_lossy(&body[..len as usize])
            ));
        }
        Ok(line)
    }

    /// Reads one reply or fails with `TimedOut` after `within`.
    pub async fn reply_within(&mut self, within: Duration) -> io::Result<String> {
        timeout(within, self.reply())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no reply"))?
    }

    /// Sends a command and reads its reply (5 s bound).
    pub async fn cmd(&mut self, args: &[&str]) -> io::Result<String> {
        self.send(args).await?;
        self.reply_within(Duration::from_secs(5)).await
    }

    /// PING, timing the round trip.
    pub async fn ping_rtt(&mut self) -> io::Result<Duration> {
        let start = Instant::now();
        let reply = self.cmd(&["PING"]).await?;
        assert_eq!(reply, "+PONG");
        Ok(start.elapsed())
    }

    async fn fill(&mut self) -> io::Result<()> {
        self.buf.reserve(64 * 1024);
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        Ok(())
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }
}

/// How many clients Redis has, asked directly (not through the proxy).
pub async fn redis_clients(redis: SocketAddr) -> usize {
    let mut c = Resp::connect(redis).await.unwrap();
    let info = c.cmd(&["INFO", "clients"]).await.unwrap();
    let n = info
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .expect("connected_clients in INFO");
    n - 1 // not counting this one
}

/// The median of some durations.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
