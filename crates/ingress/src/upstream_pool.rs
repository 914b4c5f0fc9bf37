//! Keep-alive HTTP/1 connections to the upstreams, pooled per address: the
//! ingress's own client, in place of hyper-util's general-purpose one. It
//! does only what a reverse proxy in front of a few loopback replicas
//! needs, without its per-request costs (a task spawned per request to
//! bring the connection back, a checkout future and waiter channels, the
//! request's URI rebuilt and its host parsed for a pool key): take an idle
//! connection of the chosen upstream (or connect, with `TCP_NODELAY` and a
//! connect timeout), send the request, and put the connection back when the
//! response body has been read to its end ([`PooledBody`]). A request that
//! an idle connection could not even start (the replica closed it in the
//! meantime) is sent again on another one, as hyper-util's client does.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chaoslab_httpguard::TimedBody;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long connecting to an upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Idle connections older than this are closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no response head from its upstream.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made (refused, unreachable, timed out): the
    /// request, handed back unsent, may go to another upstream.
    Connect(std::io::Error, Box<Request<TimedBody>>),
    /// The connection failed while or after the request was sent.
    Http(hyper::Error),
}

/// The idle keep-alive connections of every upstream, at most
/// `max_idle_per_host` each.
#[derive(Debug)]
pub(crate) struct UpstreamPool {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    idle: Mutex<Vec<IdleList>>,
    max_idle_per_host: usize,
}

/// The idle connections of one upstream, the most recently used last.
#[derive(Debug)]
struct IdleList {
    addr: SocketAddr,
    connections: Vec<IdleConnection>,
}

#[derive(Debug)]
struct IdleConnection {
    sender: SendRequest<TimedBody>,
    since: Instant,
}

impl UpstreamPool {
    /// An empty pool keeping at most `max_idle_per_host` idle connections
    /// per upstream.
    pub(crate) fn new(max_idle_per_host: usize) -> Self {
        UpstreamPool {
            shared: Arc::new(Shared {
                idle: Mutex::new(Vec::new()),
                max_idle_per_host,
            }),
        }
    }

    /// Sends `req` (origin-form target, `Host` set) to `addr` over an idle
    /// connection or a new one; the response's body gives the connection
    /// back once read to its end.
    pub(crate) async fn send(
        &self,
        addr: SocketAddr,
        mut req: Request<TimedBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        while let Some(mut sender) = self.shared.take_idle(addr) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(self.pooled(addr, sender, response)),
                Err(mut err) => match err.take_message() {
                    // Not started: the connection was closing; try another.
                    Some(unsent) => req = unsent,
                    None => return Err(SendError::Http(err.into_error())),
                },
            }
        }
        // Boxed: a rare path, kept out of every request's future.
        let mut sender = match Box::pin(connect(addr)).await {
            Ok(sender) => sender,
            Err(ConnectError::Io(e)) => return Err(SendError::Connect(e, Box::new(req))),
            Err(ConnectError::Http(e)) => return Err(SendError::Http(e)),
        };
        let response = sender.send_request(req).await.map_err(SendError::Http)?;
        Ok(self.pooled(addr, sender, response))
    }

    fn pooled(
        &self,
        addr: SocketAddr,
        sender: SendRequest<TimedBody>,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        let slot = Slot {
            shared: self.shared.clone(),
            addr,
            sender,
        };
        response.map(|inner| {
            let mut body = PooledBody {
                inner,
                slot: Some(slot),
            };
            if body.inner.is_end_stream() {
                body.give_back();
            }
            body
        })
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<IdleList>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection to `addr` still open and
    /// younger than the idle timeout; older or closed ones are dropped.
    fn take_idle(&self, addr: SocketAddr) -> Option<SendRequest<TimedBody>> {
        let mut lists = self.lock();
        let list = lists.iter_mut().find(|l| l.addr == addr)?;
        while let Some(idle) = list.connections.pop() {
            if !idle.sender.is_closed() && idle.since.elapsed() < IDLE_TIMEOUT {
                return Some(idle.sender);
            }
        }
        None
    }

    /// Keeps `sender` for the next request to `addr`, unless the pool of
    /// `addr` is full (then it is dropped, which closes the connection).
    fn give_back(&self, addr: SocketAddr, sender: SendRequest<TimedBody>) {
        if sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut lists = self.lock();
        // Upstreams gone for good (replicas stopped, revisions replaced)
        // leave lists of closed or expired connections behind: dropped
        // whenever a new upstream comes, so the pool holds lists only for
        // upstreams with a live idle connection.
        let list = match lists.iter().position(|l| l.addr == addr) {
            Some(i) => &mut lists[i],
            None => {
                for list in lists.iter_mut() {
                    list.connections.retain(|c| {
                        !c.sender.is_closed() && now.duration_since(c.since) < IDLE_TIMEOUT
                    });
                }
                lists.retain(|l| !l.connections.is_empty());
                lists.push(IdleList {
                    addr,
                    connections: Vec::new(),
                });
                let last = lists.len() - 1;
                &mut lists[last]
            }
        };
        list.connections
            .retain(|c| !c.sender.is_closed() && now.duration_since(c.since) < IDLE_TIMEOUT);
        if list.connections.len() < self.max_idle_per_host {
            list.connections.push(IdleConnection { sender, since: now });
        }
    }
}

enum ConnectError {
    Io(std::io::Error),
    Http(hyper::Error),
}

/// A new HTTP/1 connection to `addr`, its connection task spawned.
async fn connect(addr: SocketAddr) -> Result<SendRequest<TimedBody>, ConnectError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(ConnectError::Io(e)),
        Err(_) => {
            return Err(ConnectError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {CONNECT_TIMEOUT:?}"),
            )));
        }
    };
    stream.set_nodelay(true).map_err(ConnectError::Io)?;
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(%addr, error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}

/// The connection a response came on, to give back when its body ends.
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
    addr: SocketAddr,
    sender: SendRequest<TimedBody>,
}

/// An upstream response's body: gives its connection back to the pool
/// once read to its end. Dropped before that (the client left), the
/// connection is closed with it.
#[derive(Debug)]
pub(crate) struct PooledBody {
    inner: Incoming,
    slot: Option<Slot>,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.shared.give_back(slot.addr, slot.sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.give_back(),
            Poll::Ready(Some(Err(_))) => this.slot = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
