//! The sockets a proxied connection joins: the client's is always TCP, the
//! upstream's TCP or — for an upstream written `unix:/path` — a Unix stream
//! socket (the lab's own Redis in process isolation: the upstream leg then
//! costs the proxy and Redis less kernel work per request than TCP
//! loopback, issue 13 item 5). [`Socket`] and its borrowed halves
//! ([`ReadSide`], [`WriteSide`]) let the fast path and the links treat both
//! kinds alike; what differs is said where it does: a Unix socket has no
//! reset (an abort is a plain close, which its peer reads as EOF) and no
//! Nagle to switch off.

use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf, Ready};
use tokio::net::{TcpStream, UnixStream, tcp, unix};

use crate::address::Upstream;

/// A connected stream socket of either kind.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Calls the same method on whichever stream `$socket` holds.
macro_rules! either {
    ($socket:expr, $s:ident => $body:expr) => {
        match $socket {
            Socket::Tcp($s) => $body,
            Socket::Unix($s) => $body,
        }
    };
}

impl Socket {
    /// Dials `upstream`; a TCP connection gets `TCP_NODELAY` (requests and
    /// replies are small and must not wait for Nagle).
    pub(crate) async fn connect(upstream: &Upstream) -> io::Result<Self> {
        match upstream {
            Upstream::Tcp(addr) => {
                let stream = TcpStream::connect(addr.as_str()).await?;
                let _ = stream.set_nodelay(true);
                Ok(Socket::Tcp(stream))
            }
            Upstream::Unix(path) => Ok(Socket::Unix(UnixStream::connect(path).await?)),
        }
    }

    /// Makes the close send an RST instead of a FIN (`SO_LINGER` 0). A Unix
    /// socket has no reset: its close is all its peer sees.
    pub(crate) fn abort(&self) {
        if let Socket::Tcp(stream) = self
            && let Err(e) = stream.set_zero_linger()
        {
            tracing::debug!(error = %e, "could not set SO_LINGER 0");
        }
    }

    /// Borrowed read and write halves (no lock: both are `&self` views).
    pub(crate) fn split(&mut self) -> (ReadSide<'_>, WriteSide<'_>) {
        match self {
            Socket::Tcp(s) => {
                let (r, w) = s.split();
                (ReadSide::Tcp(r), WriteSide::Tcp(w))
            }
            Socket::Unix(s) => {
                let (r, w) = s.split();
                (ReadSide::Unix(r), WriteSide::Unix(w))
            }
        }
    }

    /// Reads past tokio's readiness (see [`read_direct_into`]).
    pub(crate) fn read_direct_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        either!(self, s => read_direct_into(s, buf))
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        either!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        either!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

/// A socket's borrowed read half.
#[derive(Debug)]
pub(crate) enum ReadSide<'a> {
    Tcp(tcp::ReadHalf<'a>),
    Unix(unix::ReadHalf<'a>),
}

impl ReadSide<'_> {
    /// Waits until the peer closes its side (FIN or RST), without reading:
    /// `true` then. `false` when bytes arrived instead: their read
    /// readiness is consumed (so the next wait sleeps until something new
    /// happens), and the next read must use [`Self::read_direct_into`].
    pub(crate) async fn peer_left(&self) -> bool {
        match self {
            ReadSide::Tcp(r) => peer_left(r.as_ref()).await,
            ReadSide::Unix(r) => peer_left(r.as_ref()).await,
        }
    }

    /// Reads past tokio's readiness (see [`read_direct_into`]).
    pub(crate) fn read_direct_into(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ReadSide::Tcp(r) => read_direct_into(r.as_ref(), buf),
            ReadSide::Unix(r) => read_direct_into(r.as_ref(), buf),
        }
    }
}

impl AsyncRead for ReadSide<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadSide::Tcp(r) => Pin::new(r).poll_read(cx, buf),
            ReadSide::Unix(r) => Pin::new(r).poll_read(cx, buf),
        }
    }
}

/// A socket's borrowed write half.
#[derive(Debug)]
pub(crate) enum WriteSide<'a> {
    Tcp(tcp::WriteHalf<'a>),
    Unix(unix::WriteHalf<'a>),
}

impl WriteSide<'_> {
    /// Writes what the socket takes now (`WouldBlock` when nothing).
    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            WriteSide::Tcp(w) => w.try_write(buf),
            WriteSide::Unix(w) => w.try_write(buf),
        }
    }

    /// Waits until the socket takes bytes again.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            WriteSide::Tcp(w) => w.writable().await,
            WriteSide::Unix(w) => w.writable().await,
        }
    }
}

impl AsyncWrite for WriteSide<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteSide::Tcp(w) => Pin::new(w).poll_write(cx, buf),
            WriteSide::Unix(w) => Pin::new(w).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteSide::Tcp(w) => Pin::new(w).poll_flush(cx),
            WriteSide::Unix(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteSide::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            WriteSide::Unix(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

/// What both tokio stream kinds offer that [`peer_left`] and
/// [`read_direct_into`] need.
trait Readiness: AsFd {
    async fn ready_now(&self, interest: Interest) -> io::Result<Ready>;
    fn clear_read_ready(&self);
    fn std_read(&self, buf: &mut [u8]) -> io::Result<usize>;
}

macro_rules! readiness {
    ($stream:ty, $std:ty) => {
        impl Readiness for $stream {
            async fn ready_now(&self, interest: Interest) -> io::Result<Ready> {
                self.ready(interest).await
            }

            fn clear_read_ready(&self) {
                // A closure that "would block" makes tokio clear the read
                // readiness it reported (closed states stay set).
                let _ = self.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
            }

            fn std_read(&self, buf: &mut [u8]) -> io::Result<usize> {
                use std::io::Read;
                let mut dup = <$std>::from(self.as_fd().try_clone_to_owned()?);
                dup.read(buf)
            }
        }
    };
}

readiness!(TcpStream, std::net::TcpStream);
readiness!(UnixStream, std::os::unix::net::UnixStream);

/// Waits until the peer of `stream` closes its side (FIN or RST), without
/// reading: `true` then. `false` when bytes arrived instead: their read
/// readiness is consumed, and the next read must use [`read_direct_into`].
async fn peer_left(stream: &impl Readiness) -> bool {
    match stream.ready_now(Interest::READABLE).await {
        Err(_) => true,
        Ok(ready) if ready.is_read_closed() => true,
        Ok(_) => {
            stream.clear_read_ready();
            false
        }
    }
}

/// Reads what is waiting in `stream` past tokio's readiness (which
/// [`peer_left`] consumed), through a duplicate of its descriptor (the same
/// non-blocking socket: `WouldBlock` when nothing is there).
fn read_direct_into(stream: &impl Readiness, buf: &mut [u8]) -> io::Result<usize> {
    stream.std_read(buf)
}
