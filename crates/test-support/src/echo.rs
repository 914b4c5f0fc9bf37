//! Echo servers — the upstream the fault proxy's tests put behind it: on
//! loopback TCP or on a Unix socket, each writing back what it reads and
//! half-closing when its client does, optionally counting the connections
//! open (to prove a proxy closed its upstream side). Written once here:
//! the proxy's unit tests and its integration tests each had copies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

/// Echoes one connection until its client half-closes, then half-closes.
async fn echo<S: AsyncRead + AsyncWrite>(stream: S) {
    let (mut r, mut w) = tokio::io::split(stream);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}

/// An echo server on `127.0.0.1:<any port>`; its address.
pub async fn tcp() -> SocketAddr {
    tcp_counting().await.0
}

/// [`tcp`], and how many of its connections are open.
pub async fn tcp_counting() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind an echo server on loopback");
    let addr = listener.local_addr().expect("echo server address");
    let open = Arc::new(AtomicUsize::new(0));
    let counter = open.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let counter = counter.clone();
            tokio::spawn(async move {
                echo(stream).await;
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

/// An echo server on a Unix socket in a fresh short directory under /tmp
/// (`sun_path` holds 108 bytes); removed with the value.
pub struct UnixEcho {
    /// `unix:<path>`: the fault proxy's way to name it as an upstream.
    pub upstream: String,
    pub dir: tempfile::TempDir,
}

/// Starts a [`UnixEcho`] (inside a tokio runtime).
pub fn unix() -> UnixEcho {
    let dir = tempfile::Builder::new()
        .prefix("echo-sock-")
        .tempdir_in("/tmp")
        .expect("temp dir for an echo socket");
    let path = dir.path().join("echo.sock");
    let listener = UnixListener::bind(&path).expect("bind an echo server's Unix socket");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(echo(stream));
        }
    });
    UnixEcho {
        upstream: format!("unix:{}", path.display()),
        dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> Vec<u8> {
        s.write_all(b"ping").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        back
    }

    #[tokio::test]
    async fn both_kinds_echo_and_close_after_their_client() {
        let (addr, open) = tcp_counting().await;
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert_eq!(round_trip(stream).await, b"ping");
        crate::wait::eventually_async(crate::GENEROUS, "the echo connection closed", || {
            let n = open.load(Ordering::SeqCst);
            async move { (n == 0).then_some(()) }
        })
        .await;
        let server = unix();
        let path = server.upstream.strip_prefix("unix:").unwrap();
        let stream = tokio::net::UnixStream::connect(path).await.unwrap();
        assert_eq!(round_trip(stream).await, b"ping");
    }
}
