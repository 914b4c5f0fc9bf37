//! The fast path of a connection while no toxic acts on it: both directions
//! copied in one poll loop, each through one buffer reused for the life of
//! the connection (no allocation per chunk), with no channel polled and no
//! lock taken per chunk — what the proxy costs when no fault is active
//! (issue 13 item 5).
//!
//! The loop reads with `AsyncRead::poll_read` (tokio drops the socket's
//! read readiness after a short read, so no extra `EAGAIN` read per chunk)
//! and writes at once. Between chunks it checks two atomics: whether the
//! proxy stopped (not the kill switch's `CancellationToken`, whose
//! `is_cancelled` locks a mutex) and the chain's version. Neither wakes it by itself: its task's waker is
//! registered once in the proxy's connection table ([`WakeSlot`]), and the
//! proxy wakes every registered task when the chain changes or the proxy
//! stops ([`crate::connections::Connections::wake_all`]).
//!
//! When a toxic starts acting on the connection, or a side closes (a FIN
//! goes through [`crate::link::Link`], which may hold it back), the loop
//! hands over at a chunk boundary: bytes read and not yet written are
//! carried to the link as already passed (as the links' own fast path
//! treats a chunk it started writing), so nothing is lost, repeated or
//! reordered.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::chain::Chain;
use crate::connections::WakeSlot;
use crate::link::Carry;
use crate::socket::Socket;
use crate::toxic::End;

/// Bytes read at once per direction; also the most a direction holds.
const BUF_SIZE: usize = 64 * 1024;

/// How the fast path ended.
#[derive(Debug)]
pub(crate) enum Exit {
    /// Continue on the links (a toxic acts on the connection, or a side
    /// closed), with what each direction carries and whether the client's
    /// read readiness is still stale (see `link::peer_left`).
    Handover {
        up: Carry,
        down: Carry,
        stale_read: bool,
    },
    /// The proxy was disabled, removed or shut down.
    Killed,
    /// An I/O error ends the connection.
    End(End),
}

/// Whether a toxic acts on the bytes of the connection with `seed`
/// (toxics acting at the door do not).
pub(crate) fn toxic_acts(chain: &Chain, seed: u64) -> bool {
    chain.iter().any(|t| !t.at_accept() && t.acts_on(seed))
}

/// One direction's buffer: `buf[start..end]` is read and not yet written.
struct Pipe {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl Pipe {
    fn new() -> Self {
        Pipe {
            buf: vec![0; BUF_SIZE],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    fn carry(&self) -> Carry {
        Carry {
            pending: (self.start < self.end)
                .then(|| Bytes::copy_from_slice(&self.buf[self.start..self.end])),
            eof: self.eof,
        }
    }
}

/// Why a direction stopped pumping.
enum Pumped {
    /// Waiting for its source or destination (wakers registered).
    Idle,
    /// A chunk boundary with the proxy stopped or the chain changed: look.
    Look,
    /// The source closed.
    Eof,
    /// An I/O error ends the connection.
    End(End),
}

/// Copies both ways until a toxic acts, a side closes, the proxy stops
/// or an I/O error; see the module doc.
pub(crate) async fn run(
    client: &mut Socket,
    upstream: &mut Socket,
    chain: &mut watch::Receiver<Chain>,
    seed: u64,
    wake: &WakeSlot,
    mut stale_read: bool,
) -> Exit {
    let mut up = Pipe::new();
    let mut down = Pipe::new();
    let mut registered: Option<Waker> = None;
    let exit = poll_fn(|cx| {
        if !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            wake.register(cx.waker());
            registered = Some(cx.waker().clone());
        }
        loop {
            if wake.stopped() {
                return Poll::Ready(Exit::Killed);
            }
            match chain.has_changed() {
                Err(_) => return Poll::Ready(Exit::Killed),
                Ok(true) => {
                    if toxic_acts(&chain.borrow_and_update(), seed) {
                        return Poll::Ready(handover(&up, &down, stale_read));
                    }
                }
                Ok(false) => {}
            }
            let mut look = false;
            let mut no_stale = false;
            for upward in [true, false] {
                let pumped = if upward {
                    pump(cx, client, upstream, &mut up, &mut stale_read, wake, chain)
                } else {
                    pump(cx, upstream, client, &mut down, &mut no_stale, wake, chain)
                };
                match pumped {
                    Pumped::Idle => {}
                    Pumped::Look => look = true,
                    Pumped::Eof => return Poll::Ready(handover(&up, &down, stale_read)),
                    Pumped::End(end) => return Poll::Ready(Exit::End(end)),
                }
            }
            if !look {
                return Poll::Pending;
            }
        }
    })
    .await;
    wake.unregister();
    exit
}

fn handover(up: &Pipe, down: &Pipe, stale_read: bool) -> Exit {
    Exit::Handover {
        up: up.carry(),
        down: down.carry(),
        stale_read,
    }
}

/// Moves one direction's bytes until it would block or a chunk boundary
/// needs a look.
fn pump(
    cx: &mut Context<'_>,
    src: &mut Socket,
    dst: &mut Socket,
    pipe: &mut Pipe,
    stale: &mut bool,
    wake: &WakeSlot,
    chain: &watch::Receiver<Chain>,
) -> Pumped {
    loop {
        while pipe.start < pipe.end {
            match Pin::new(&mut *dst).poll_write(cx, &pipe.buf[pipe.start..pipe.end]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Pumped::End(End::Close),
                Poll::Ready(Ok(n)) => pipe.start += n,
                Poll::Pending => return Pumped::Idle,
            }
        }
        pipe.start = 0;
        pipe.end = 0;
        // A chunk boundary: a toxic added or the proxy stopping since the
        // last look takes over here.
        if wake.stopped() || chain.has_changed().unwrap_or(true) {
            return Pumped::Look;
        }
        let read = if *stale {
            // Bytes tokio no longer reports (the connection was held at
            // the door): read them directly until the socket is empty.
            match src.read_direct_into(&mut pipe.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    *stale = false;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                read => read,
            }
        } else {
            let mut rb = ReadBuf::new(&mut pipe.buf);
            match Pin::new(&mut *src).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Ok(rb.filled().len()),
                Poll::Ready(Err(e)) => Err(e),
                Poll::Pending => return Pumped::Idle,
            }
        };
        match read {
            Ok(0) => {
                pipe.eof = true;
                return Pumped::Eof;
            }
            Ok(n) => pipe.end = n,
            Err(_) => return Pumped::End(End::Reset),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::timeout;

    use super::*;
    use crate::chain::Installed;
    use crate::toxic::{DenyNew, Latency, Reset, Slicer, Stream, ToxicKind};
    use crate::{FaultProxy, ToxicSpec};

    fn installed(id: u64, toxicity: f32, kind: ToxicKind) -> Arc<Installed> {
        Arc::new(Installed {
            id,
            stream: Stream::Both,
            toxicity,
            kind,
        })
    }

    #[test]
    fn only_toxics_acting_on_bytes_leave_the_fast_path() {
        let none: Chain = Arc::new(vec![]);
        assert!(!toxic_acts(&none, 1));
        let door_only: Chain = Arc::new(vec![installed(1, 1.0, ToxicKind::DenyNew(DenyNew {}))]);
        assert!(!toxic_acts(&door_only, 1));
        let idle: Chain = Arc::new(vec![installed(
            2,
            0.0,
            ToxicKind::Latency(Latency::default()),
        )]);
        assert!(!toxic_acts(&idle, 1));
        let latency: Chain = Arc::new(vec![installed(
            3,
            1.0,
            ToxicKind::Latency(Latency::default()),
        )]);
        assert!(toxic_acts(&latency, 1));
    }

    /// A proxy `redis` in front of an echo server: over TCP, or over a
    /// Unix socket (`unix`); the Unix server lives as long as the second
    /// value.
    async fn proxied(
        faults: &FaultProxy,
        unix: bool,
    ) -> (SocketAddr, Option<chaoslab_test_support::echo::UnixEcho>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (upstream, server) = if unix {
            let server = chaoslab_test_support::echo::unix();
            (server.upstream.clone(), Some(server))
        } else {
            (chaoslab_test_support::echo::tcp().await.to_string(), None)
        };
        faults
            .add_proxy("redis", listener, &upstream)
            .await
            .unwrap();
        (addr, server)
    }

    /// Sends `total` bytes of a counting pattern in uneven writes while
    /// reading the echo; `midway` runs once a third has been echoed.
    async fn echo_pattern<F: std::future::Future<Output = ()>>(
        addr: SocketAddr,
        total: usize,
        midway: F,
    ) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut r, mut w) = stream.into_split();
        let writer = tokio::spawn(async move {
            let mut sent = 0usize;
            let mut size = 1usize;
            while sent < total {
                let n = size.min(total - sent);
                let chunk: Vec<u8> = (sent..sent + n).map(|i| (i % 251) as u8).collect();
                w.write_all(&chunk).await.unwrap();
                sent += n;
                size = size * 7 % 70_001 + 1;
            }
            w.shutdown().await.unwrap();
        });
        let mut midway = Some(midway);
        let mut got = 0usize;
        let mut buf = vec![0u8; 50_000];
        loop {
            let n = timeout(Duration::from_secs(20), r.read(&mut buf))
                .await
                .expect("echo stalled")
                .unwrap();
            if n == 0 {
                break;
            }
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + k) % 251) as u8, "byte {} out of order", got + k);
            }
            got += n;
            if got >= total / 3
                && let Some(f) = midway.take()
            {
                f.await;
            }
        }
        assert_eq!(got, total, "every byte echoed once");
        writer.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn toxics_arriving_mid_stream_lose_and_reorder_nothing() {
        toxics_arriving_mid_stream(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn toxics_arriving_mid_stream_over_a_unix_upstream_lose_nothing() {
        toxics_arriving_mid_stream(true).await;
    }

    async fn toxics_arriving_mid_stream(unix: bool) {
        let faults = FaultProxy::dedicated().unwrap();
        let (addr, _server) = proxied(&faults, unix).await;
        // A door-only fault keeps the fast path; a slicer and a latency take
        // over from it at a chunk boundary, with the bytes it read and could
        // not write yet; removing them lets the rest pass.
        let cases = [
            ("deny", ToxicKind::DenyNew(DenyNew {})),
            (
                "slicer",
                ToxicKind::Slicer(Slicer {
                    average_size: 700,
                    size_variation: 300,
                    delay: 0,
                }),
            ),
            (
                "latency",
                ToxicKind::Latency(Latency {
                    latency: 1,
                    jitter: 0,
                }),
            ),
        ];
        for (name, kind) in cases.iter().chain(&cases).cloned() {
            let faults2 = faults.clone();
            echo_pattern(addr, 24_000_000, async move {
                // The reader pauses: the sockets fill, the fast path holds
                // unwritten bytes both ways when the toxic lands.
                tokio::time::sleep(Duration::from_millis(50)).await;
                faults2
                    .add_toxic("redis", ToxicSpec::new(kind).named(name).on(Stream::Both))
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                faults2.remove_toxic("redis", name).unwrap();
            })
            .await;
        }
        faults.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_idle_fast_connection_sees_a_reset_and_a_stop_at_once() {
        let faults = FaultProxy::dedicated().unwrap();
        let (addr, _server) = proxied(&faults, false).await;
        let mut buf = [0u8; 4];

        // A reset reaches a connection idle on the fast path: nothing is
        // sent, the proxy wakes it.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"ping").await.unwrap();
        idle.read_exact(&mut buf).await.unwrap();
        faults
            .add_toxic(
                "redis",
                ToxicSpec::new(ToxicKind::Reset(Reset {})).named("r"),
            )
            .unwrap();
        let read = timeout(Duration::from_secs(2), idle.read(&mut buf))
            .await
            .expect("the reset did not reach the idle connection");
        assert!(
            matches!(&read, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{read:?}"
        );
        faults.remove_toxic("redis", "r").unwrap();

        // Disabling the proxy closes a connection idle on the fast path.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"ping").await.unwrap();
        idle.read_exact(&mut buf).await.unwrap();
        faults.set_enabled("redis", false).await.unwrap();
        let read = timeout(Duration::from_secs(2), idle.read(&mut buf))
            .await
            .expect("disabling did not reach the idle connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        faults.shutdown().await;
    }
}
