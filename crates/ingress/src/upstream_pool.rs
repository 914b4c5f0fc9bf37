//! Keep-alive HTTP/1 connections to the upstreams, pooled per address: the
//! ingress's own client. It does only what a reverse proxy in front of a
//! few loopback replicas needs: take an idle connection of the chosen
//! upstream (or connect, with `TCP_NODELAY` and a connect timeout), send
//! the request on it (`crate::upstream_http1`), and put the connection back
//! when the response body has been read to its end ([`PooledBody`]). An
//! idempotent request without a body that an idle connection left
//! unanswered (the replica closed it in the meantime) is sent again, once,
//! on another one.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chaoslab_httpguard::TimedBody;
use http::{Method, Request, Response};
use hyper::body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;

use crate::upstream_http1::{
    Connection, Framing, HeadBuilder, PartsBuilder, RequestFraming, ResponseHead, UpstreamError,
    encode_head,
};

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
    Http(UpstreamError),
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
    connection: Connection,
    since: Instant,
}

impl IdleConnection {
    /// Still worth keeping at `now`: young enough, not closed by the upstream.
    fn usable(&mut self, now: Instant) -> bool {
        now.duration_since(self.since) < IDLE_TIMEOUT && self.connection.idle_and_open()
    }
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
        req: Request<TimedBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let (parts, body) = req.into_parts();
        let framing = RequestFraming::of(&parts.headers, body.is_end_stream());
        let head = encode_head(&parts, framing);
        let request = Outgoing {
            head: &head,
            method: &parts.method,
            framing,
        };
        match self.exchange(addr, request, body, &mut PartsBuilder).await {
            Ok((answer, body)) => Ok(Response::from_parts(answer, body)),
            Err(Failed::Connect(e, body)) => Err(SendError::Connect(
                e,
                Box::new(Request::from_parts(parts, body)),
            )),
            Err(Failed::Http(e)) => Err(SendError::Http(e)),
        }
    }

    /// Sends a request without a body, its `head` encoded by the caller,
    /// to `addr`; `builder` makes the client's answer from the response
    /// head. The plain path's [`send`](Self::send).
    pub(crate) async fn send_head<H: HeadBuilder>(
        &self,
        addr: SocketAddr,
        head: &[u8],
        method: &Method,
        builder: &mut H,
    ) -> Result<(H::Head, PooledBody), Failed<()>> {
        let request = Outgoing {
            head,
            method,
            framing: RequestFraming::Empty,
        };
        let body = http_body_util::Empty::<Bytes>::new();
        self.exchange(addr, request, body, builder)
            .await
            .map_err(|failed| match failed {
                Failed::Connect(e, _) => Failed::Connect(e, ()),
                Failed::Http(e) => Failed::Http(e),
            })
    }

    /// The exchange both paths share: an idle connection (or, when none
    /// answers, a new one), the request written, the response head read.
    async fn exchange<B, H>(
        &self,
        addr: SocketAddr,
        request: Outgoing<'_>,
        body: B,
        builder: &mut H,
    ) -> Result<(H::Head, PooledBody), Failed<B>>
    where
        B: http_body::Body<Data = Bytes> + Unpin,
        B::Error: Into<crate::upstream_http1::BoxError>,
        H: HeadBuilder,
    {
        let Outgoing {
            head,
            method,
            framing,
        } = request;
        // A request without a body keeps it (empty) for the next attempt.
        let mut body = Some(body);
        // One more attempt, for an idempotent request without a body that
        // an idle connection left unanswered.
        let mut may_resend = framing == RequestFraming::Empty && method.is_idempotent();
        while let Some(mut connection) = self.shared.take_idle(addr) {
            let sent = if framing == RequestFraming::Empty {
                None
            } else {
                body.take()
            };
            match connection
                .exchange(head, sent, framing, method, builder)
                .await
            {
                Ok(answer) => return Ok(self.pooled(addr, connection, answer)),
                // Not answered on a kept-alive connection the upstream was
                // closing: sent again, once, on another.
                Err(e) if e.unanswered() && may_resend => may_resend = false,
                Err(e) => return Err(Failed::Http(e)),
            }
        }
        let Some(body) = body else {
            return Err(Failed::Http(UpstreamError::NoAnswer));
        };
        // Boxed: a rare path, kept out of every request's future.
        let mut connection = match Box::pin(connect(addr)).await {
            Ok(connection) => connection,
            Err(e) => return Err(Failed::Connect(e, body)),
        };
        let sent = (framing != RequestFraming::Empty).then_some(body);
        match connection
            .exchange(head, sent, framing, method, builder)
            .await
        {
            Ok(answer) => Ok(self.pooled(addr, connection, answer)),
            Err(e) => Err(Failed::Http(e)),
        }
    }

    fn pooled<H>(
        &self,
        addr: SocketAddr,
        connection: Connection,
        answer: ResponseHead<H>,
    ) -> (H, PooledBody) {
        let mut body = PooledBody {
            connection: Some(connection),
            framing: answer.framing,
            reusable: answer.reusable,
            shared: self.shared.clone(),
            addr,
        };
        if body.framing.is_done() {
            body.give_back();
        }
        (answer.parts, body)
    }
}

/// A request as written upstream: its encoded head, its method, how its
/// body is framed.
struct Outgoing<'a> {
    head: &'a [u8],
    method: &'a Method,
    framing: RequestFraming,
}

/// Why an exchange got no response head.
#[derive(Debug)]
pub(crate) enum Failed<B> {
    /// No connection could be made; the body, unsent, is handed back.
    Connect(std::io::Error, B),
    /// The connection failed while or after the request was sent.
    Http(UpstreamError),
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<IdleList>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection to `addr` still open and
    /// younger than the idle timeout; older or closed ones are dropped.
    fn take_idle(&self, addr: SocketAddr) -> Option<Connection> {
        let now = Instant::now();
        let mut lists = self.lock();
        let list = lists.iter_mut().find(|l| l.addr == addr)?;
        while let Some(mut idle) = list.connections.pop() {
            if idle.usable(now) {
                return Some(idle.connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next request to `addr`, unless the pool
    /// of `addr` is full (then it is dropped, which closes it).
    fn give_back(&self, addr: SocketAddr, connection: Connection) {
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
                    list.connections.retain_mut(|c| c.usable(now));
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
        if list.connections.len() >= self.max_idle_per_host {
            list.connections.retain_mut(|c| c.usable(now));
        }
        if list.connections.len() < self.max_idle_per_host {
            list.connections.push(IdleConnection {
                connection,
                since: now,
            });
        }
    }
}

/// A new connection to `addr`.
async fn connect(addr: SocketAddr) -> std::io::Result<Connection> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(connected) => connected?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {CONNECT_TIMEOUT:?}"),
            ));
        }
    };
    stream.set_nodelay(true)?;
    Ok(Connection::new(stream))
}

/// An upstream response's body, read from its connection: gives the
/// connection back to the pool once read to its end (when the upstream
/// keeps it open). Dropped before that (the client left), the connection
/// is closed with it.
#[derive(Debug)]
pub(crate) struct PooledBody {
    connection: Option<Connection>,
    framing: Framing,
    reusable: bool,
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some(connection) = self.connection.take()
            && self.reusable
        {
            self.shared.give_back(self.addr, connection);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = UpstreamError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamError>>> {
        let this = self.get_mut();
        let Some(connection) = this.connection.as_mut() else {
            return Poll::Ready(None);
        };
        match connection.poll_body(&mut this.framing, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(data))) => {
                if this.framing.is_done() {
                    this.give_back();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Ok(None)) => {
                this.give_back();
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => {
                this.connection = None;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.connection.is_none() || self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.exact() {
            Some(left) => SizeHint::with_exact(left),
            None => SizeHint::default(),
        }
    }
}
