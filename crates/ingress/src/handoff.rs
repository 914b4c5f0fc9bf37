//! Handing a connection to hyper after the plain path (`crate::plain_http1`)
//! read part of it: [`Prefixed`] gives hyper the bytes already read first,
//! then the socket's, and writes straight through, and [`hyper_service`]
//! answers its requests with the proxy. The bytes were read through the
//! connection's clocks, so its limits hold across the handoff.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use chaoslab_httpguard::TimedBody;
use http::Request;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Peer, Proxy};

/// A connection with bytes read from it ahead, handed out first.
#[derive(Debug)]
pub(crate) struct Prefixed<T> {
    prefix: BytesMut,
    inner: T,
}

impl<T> Prefixed<T> {
    /// `inner`, whose reads start with `prefix`.
    pub(crate) fn new(prefix: BytesMut, inner: T) -> Self {
        Prefixed { prefix, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix[..n]);
        this.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The service hyper answers a connection's requests with, once it is
/// hyper's (`crate::plain_http1`).
pub(crate) fn hyper_service(
    proxy: Arc<Proxy>,
    peer: Arc<Peer>,
) -> impl tower::Service<
    Request<TimedBody>,
    Response = http::Response<crate::error::ProxyBody>,
    Error = std::convert::Infallible,
    Future = impl Future<
        Output = Result<http::Response<crate::error::ProxyBody>, std::convert::Infallible>,
    > + Send
             + 'static,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: Request<TimedBody>| {
        let (proxy, peer) = (proxy.clone(), peer.clone());
        async move { Ok::<_, std::convert::Infallible>(proxy.handle(req, &peer).await) }
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_prefix_comes_first_then_the_stream_and_writes_go_through() {
        let (mut near, far) = tokio::io::duplex(64);
        let mut io = Prefixed::new(BytesMut::from(&b"GET / HT"[..]), far);
        near.write_all(b"TP/1.1\r\n").await.unwrap();
        let mut got = vec![0u8; 16];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n");
        io.write_all(b"answer").await.unwrap();
        let mut answer = [0u8; 6];
        near.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
    }
}
