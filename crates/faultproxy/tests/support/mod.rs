//! Fixtures of the fault proxy's tests: an echo server, a fault proxy in
//! front of it or of a Redis, a tiny RESP client with per-call timeouts
//! (to see stalls and resets byte by byte), and a bound on each test body.
//! The private redis-server and the deadline waits come from
//! `chaoslab-test-support`.

#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use chaoslab_faultproxy::FaultProxy;
use chaoslab_test_support::wait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// Every test body runs under this bound (a hang fails the test).
pub const TEST_BOUND: Duration = Duration::from_secs(180);

/// Runs a test body with a hard time bound.
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    wait::bounded(TEST_BOUND, "the test body", body).await
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
