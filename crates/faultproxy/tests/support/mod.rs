//! Fixtures of the fault proxy's tests: an echo server, a fault proxy in
//! front of it or of a Redis, a tiny RESP client with per-call timeouts
//! (to see stalls and resets byte by byte), and a bound on each test body.
//! The private redis-server and the deadline waits come from
//! `chaoslab-test-support`. Each upstream comes in both kinds the proxy
//! dials ([`Kind`]): TCP on loopback, or a Unix socket (`unix:/path`), and
//! [`over_both_upstreams!`] runs a test body over each.

#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chaoslab_faultproxy::FaultProxy;
use chaoslab_test_support::{RedisServer, net, process, redis, wait};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// Which kind of socket the proxy dials upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `host:port` on loopback.
    Tcp,
    /// `unix:/path`.
    Unix,
}

/// Generates, for each `async fn name(kind: Kind)` named, a module `name`
/// with the tests `tcp` and `unix` running it over each upstream kind
/// (`#[macro_use] mod support;`).
#[allow(unused_macros)]
macro_rules! over_both_upstreams {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tcp() {
                super::$name(super::support::Kind::Tcp).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unix() {
                super::$name(super::support::Kind::Unix).await
            }
        }
    )*};
}

/// A server the proxy forwards to, written as the proxy's `upstream`; a
/// Unix socket's directory lives as long as this.
pub struct Upstream {
    pub upstream: String,
    _dir: Option<tempfile::TempDir>,
    /// A dead TCP upstream's port, held until this is dropped.
    _holder: Option<std::net::TcpListener>,
}

/// A fresh directory for a Unix socket (short path: `sun_path` is 108
/// bytes).
fn socket_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("fp-sock-")
        .tempdir_in("/tmp")
        .expect("temp dir")
}

/// An echo server (see [`echo_server`]) of either kind.
pub async fn echo_upstream(kind: Kind) -> Upstream {
    match kind {
        Kind::Tcp => Upstream {
            upstream: echo_server().await.to_string(),
            _dir: None,
            _holder: None,
        },
        Kind::Unix => {
            let server = chaoslab_test_support::echo::unix();
            Upstream {
                upstream: server.upstream,
                _dir: Some(server.dir),
                _holder: None,
            }
        }
    }
}

/// A Unix socket path nothing listens on, or a closed loopback port.
pub async fn dead_upstream(kind: Kind) -> Upstream {
    match kind {
        Kind::Tcp => {
            // Hold the port while the proxy binds, so it cannot get the
            // same one; the caller's proxy is bound before this returns.
            let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            Upstream {
                upstream: holder.local_addr().unwrap().to_string(),
                _dir: None,
                _holder: Some(holder),
            }
        }
        Kind::Unix => {
            let dir = socket_dir();
            let path = dir.path().join("nobody.sock");
            Upstream {
                upstream: format!("unix:{}", path.display()),
                _dir: Some(dir),
                _holder: None,
            }
        }
    }
}

/// A real redis-server for a test, the proxy's upstream of either kind;
/// the tests' own direct connections (INFO, admin) always use its TCP
/// port.
pub enum Redis {
    /// The shared fixture (TCP only).
    Tcp(RedisServer),
    /// A redis-server listening on loopback and a Unix socket.
    Unix(UnixRedis),
}

impl Redis {
    pub fn start(kind: Kind) -> Redis {
        match kind {
            Kind::Tcp => Redis::Tcp(RedisServer::start()),
            Kind::Unix => Redis::Unix(UnixRedis::start()),
        }
    }

    /// Its TCP address (direct, past any proxy).
    pub fn addr(&self) -> SocketAddr {
        match self {
            Redis::Tcp(r) => r.addr(),
            Redis::Unix(r) => r.addr,
        }
    }

    /// What a proxy in front of it forwards to.
    pub fn upstream(&self) -> String {
        match self {
            Redis::Tcp(r) => r.addr().to_string(),
            Redis::Unix(r) => format!("unix:{}", r.socket.display()),
        }
    }
}

/// A redis-server on a free loopback port and a Unix socket in its own
/// directory, no persistence; killed and reaped on drop.
pub struct UnixRedis {
    pub addr: SocketAddr,
    pub socket: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl UnixRedis {
    pub fn start() -> UnixRedis {
        let dir = socket_dir();
        let socket = dir.path().join("redis.sock");
        // A free port can be taken before redis-server binds it: retry.
        for _ in 0..5 {
            let addr = net::free_addr();
            let mut child = Command::new(redis::binary())
                .args(["--port", &addr.port().to_string()])
                .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--unixsocket")
                .arg(&socket)
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs");
            let up = wait::poll(wait::GENEROUS, || {
                if let Ok(Some(_)) = child.try_wait() {
                    return Some(false);
                }
                (socket.exists() && std::net::TcpStream::connect(addr).is_ok()).then_some(true)
            });
            if up == Some(true) {
                return UnixRedis {
                    addr,
                    socket,
                    child,
                    _dir: dir,
                };
            }
            process::kill_and_reap(&mut child);
        }
        panic!("could not start redis-server with a Unix socket");
    }
}

impl Drop for UnixRedis {
    fn drop(&mut self) {
        process::kill_and_reap(&mut self.child);
    }
}

/// Every test body runs under this bound (a hang fails the test).
pub const TEST_BOUND: Duration = Duration::from_secs(180);

/// Runs a test body with a hard time bound.
pub async fn bounded<F: Future<Output = ()>>(body: F) {
    wait::bounded(TEST_BOUND, "the test body", body).await
}

/// An echo server on loopback: writes back what it reads, half-closes when
/// its client does.
pub use chaoslab_test_support::echo::tcp as echo_server;

/// A fault proxy with one proxy named `redis` in front of `upstream`.
pub struct Proxied {
    pub faults: FaultProxy,
    pub addr: SocketAddr,
}

impl Proxied {
    pub async fn new(upstream: SocketAddr) -> Proxied {
        Proxied::to(&upstream.to_string()).await
    }

    /// A proxy forwarding to `upstream` as written (`host:port` or
    /// `unix:/path`).
    pub async fn to(upstream: &str) -> Proxied {
        let faults = FaultProxy::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        faults.add_proxy("redis", listener, upstream).await.unwrap();
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
