//! The accept loop every chaoslab HTTP server runs: [`HttpServer`].
//!
//! It takes a connection only when one of [`ServerLimits::max_connections`]
//! permits is free (beyond the cap, clients wait in the listen backlog; as
//! every connection not busy with a request ends within its header or idle
//! timeout, the queue moves), wraps the socket in a [`LimitedIo`], lets the
//! listener wrap that further and pick the connection's service, and serves
//! it with hyper. Each request's body becomes a [`TimedBody`]; its
//! [`BodyDeadline`] and the client's [`PeerAddr`] ride in its extensions.
//! On shutdown it stops accepting, asks every connection to finish (idle
//! ones close at once), waits for them — for at most the drain timeout, if
//! one is set — and ends what is left; dropping the future ends them all.
//!
//! A listener that reads some requests itself (the ingress's plain path)
//! takes each connection with its [`Accepted`] handle instead
//! ([`HttpServer::serve_connections`]): the same cap, clocks and drain,
//! and [`Accepted::serve_hyper`] to hand the connection to hyper when it
//! meets a request it leaves to hyper.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Request, Response, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

use super::ServerLimits;
use super::body::{BodyDeadline, BoxError, TimedBody};
use super::io::{ConnectionClock, InFlight, LimitedIo};

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// An HTTP server (HTTP/1.1, and HTTP/2 by prior knowledge unless
/// [`http1_only`](Self::http1_only)) under [`ServerLimits`].
#[derive(Debug, Clone)]
pub struct HttpServer {
    limits: ServerLimits,
    builder: auto::Builder<TokioExecutor>,
    drain_timeout: Option<Duration>,
}

impl HttpServer {
    /// A server under `limits`, draining without a deadline of its own.
    pub fn new(limits: ServerLimits) -> Self {
        HttpServer {
            limits,
            builder: auto::Builder::new(TokioExecutor::new()),
            drain_timeout: None,
        }
    }

    /// The limits this server keeps.
    pub fn limits(&self) -> &ServerLimits {
        &self.limits
    }

    /// Serves HTTP/1 only.
    pub fn http1_only(mut self) -> Self {
        self.builder = self.builder.http1_only();
        self
    }

    /// Adjusts hyper's connection settings (e.g. its header count bound).
    pub fn configure(mut self, adjust: impl FnOnce(&mut auto::Builder<TokioExecutor>)) -> Self {
        adjust(&mut self.builder);
        self
    }

    /// After shutdown, ends connections still open after `timeout`.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = Some(timeout);
        self
    }

    /// Serves `listener` until `shutdown` resolves, then drains. For each
    /// connection, `accept` gets the limited socket and the client's
    /// address and returns the I/O hyper reads (the socket, or a wrapper
    /// around it) and the service that answers its requests. Fails only
    /// when the listener's address cannot be read; accept errors are
    /// logged and waited out.
    pub async fn serve<A, I, S, B, F>(
        self,
        listener: TcpListener,
        mut accept: A,
        shutdown: F,
    ) -> io::Result<()>
    where
        A: FnMut(LimitedIo, SocketAddr) -> (I, S),
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body + Unpin + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
        F: Future<Output = ()>,
    {
        let connection = move |io, accepted: Accepted| {
            let (io, service) = accept(io, accepted.peer);
            accepted.serve_hyper(io, service)
        };
        self.serve_connections(listener, connection, shutdown).await
    }

    /// [`serve`](Self::serve) for a listener that reads requests itself:
    /// `connection` gets each limited socket with its [`Accepted`] handle
    /// and returns the future serving it, which may hand the connection to
    /// hyper at any point ([`Accepted::serve_hyper`]). The future must end
    /// soon after [`Accepted::stopping`] resolves unless a request is in
    /// flight; past the drain timeout it is dropped.
    pub async fn serve_connections<C, Fut, F>(
        self,
        listener: TcpListener,
        mut connection: C,
        shutdown: F,
    ) -> io::Result<()>
    where
        C: FnMut(LimitedIo, Accepted) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
        F: Future<Output = ()>,
    {
        let local = listener.local_addr()?;
        let limits = self.limits;
        let builder = Arc::new(self.builder);
        let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let stop = CancellationToken::new();
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let Some(permit) = next_permit(
                &permits,
                &limits,
                local,
                shutdown.as_mut(),
                &mut connections,
            )
            .await
            else {
                break;
            };
            let Some((stream, peer)) =
                next_connection(&listener, local, shutdown.as_mut(), &mut connections).await
            else {
                break;
            };
            let _ = stream.set_nodelay(true);
            let clock = ConnectionClock::new(&limits);
            let accepted = Accepted {
                peer,
                clock: clock.clone(),
                body_timeout: limits.body_timeout,
                builder: builder.clone(),
                stop: stop.clone(),
            };
            let served = connection(LimitedIo::new(stream, clock), accepted);
            connections.spawn(async move {
                let _permit = permit;
                served.await;
            });
        }
        drop(listener);
        stop.cancel();
        drain(connections, self.drain_timeout, local).await;
        Ok(())
    }
}

/// One accepted connection's place in its [`HttpServer`]: the client's
/// address, the server's shutdown signal, and the way to serve the
/// connection with hyper under the server's limits.
#[derive(Debug)]
pub struct Accepted {
    peer: SocketAddr,
    clock: Arc<ConnectionClock>,
    body_timeout: Duration,
    builder: Arc<auto::Builder<TokioExecutor>>,
    stop: CancellationToken,
}

impl Accepted {
    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Resolves once the server is shutting down: a connection with no
    /// request in flight should close then.
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.stop.cancelled()
    }

    /// Whether the server is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Serves the connection (`io`: its [`LimitedIo`], or a wrapper around
    /// it) with hyper and `service` until it ends, as [`HttpServer::serve`]
    /// does: each request's body on the body clock, graceful on shutdown.
    pub fn serve_hyper<I, S, B>(
        self,
        io: I,
        service: S,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body + Unpin + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let peer = self.peer;
        let service = LimitedService {
            inner: service,
            clock: self.clock,
            body_timeout: self.body_timeout,
            peer,
        };
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let stop = self.stop;
        async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    }
}

/// A connection slot; while every slot is taken, waits for one (saying so
/// once per full spell), reaping ended connections meanwhile. None once
/// `shutdown` resolves.
async fn next_permit<F: Future<Output = ()>>(
    permits: &Arc<Semaphore>,
    limits: &ServerLimits,
    local: SocketAddr,
    mut shutdown: Pin<&mut F>,
    connections: &mut JoinSet<()>,
) -> Option<OwnedSemaphorePermit> {
    let mut said_full = false;
    loop {
        if let Ok(permit) = permits.clone().try_acquire_owned() {
            return Some(permit);
        }
        if !said_full {
            tracing::warn!(
                %local,
                max_connections = limits.max_connections,
                "connection cap reached: new connections wait until one ends"
            );
            said_full = true;
        }
        tokio::select! {
            () = shutdown.as_mut() => return None,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            permit = permits.clone().acquire_owned() => return permit.ok(),
        }
    }
}

/// The next accepted connection, reaping ended ones meanwhile and waiting
/// out accept errors. None once `shutdown` resolves.
async fn next_connection<F: Future<Output = ()>>(
    listener: &TcpListener,
    local: SocketAddr,
    mut shutdown: Pin<&mut F>,
    connections: &mut JoinSet<()>,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            () = shutdown.as_mut() => return None,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok(pair) => return Some(pair),
                Err(e) => accept_error(local, e).await,
            },
        }
    }
}

/// Waits for the connections told to stop, at most `timeout`, then closes
/// what is left.
async fn drain(mut connections: JoinSet<()>, timeout: Option<Duration>, local: SocketAddr) {
    let drained = async { while connections.join_next().await.is_some() {} };
    match timeout {
        None => drained.await,
        Some(timeout) => {
            if tokio::time::timeout(timeout, drained).await.is_err() {
                tracing::warn!(%local, "drain timed out; closing the connections left");
                connections.shutdown().await;
            }
        }
    }
}

/// An accept error: a connection that failed before we took it is the
/// client's business; anything else (out of file descriptors) is waited
/// out.
async fn accept_error(local: SocketAddr, e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        tracing::debug!(%local, error = %e, "accept error");
    } else {
        tracing::error!(%local, error = %e, "cannot accept connections; retrying in 100 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection's service under the limits: counts requests on the
/// connection's clock, puts each body on the body clock.
struct LimitedService<S> {
    inner: S,
    clock: Arc<ConnectionClock>,
    body_timeout: Duration,
    peer: SocketAddr,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for LimitedService<S>
where
    S: Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Unpin,
{
    type Response = Response<TrackedBody<B>>;
    type Error = BoxError;
    type Future = LimitedFuture<S>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.clock.request_started();
        let http2 = request.version() == http::Version::HTTP_2;
        let deadline = BodyDeadline::with_clock(self.body_timeout, Some(self.clock.clone()));
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(deadline.clone());
        parts.extensions.insert(PeerAddr(self.peer));
        let request = Request::from_parts(parts, TimedBody::new(body, deadline.clone()));
        LimitedFuture {
            call: self.inner.clone().oneshot(request),
            deadline,
            in_flight: Some(in_flight),
            http2,
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`LimitedService`]: the inner service's, marked
    /// `Connection: close` when the body clock ran out, its body keeping
    /// the request in flight. A future of its own rather than a boxed
    /// `async` block: no allocation and no move of the whole inner future
    /// per request.
    pub(crate) struct LimitedFuture<S: Service<Request<TimedBody>>> {
        #[pin]
        call: tower::util::Oneshot<S, Request<TimedBody>>,
        deadline: BodyDeadline,
        in_flight: Option<InFlight>,
        http2: bool,
    }
}

impl<S, B> Future for LimitedFuture<S>
where
    S: Service<Request<TimedBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<TrackedBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.call.poll(cx)).map_err(Into::into)?;
        if this.deadline.expired() {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let in_flight = this
            .in_flight
            .take()
            .expect("LimitedFuture polled after it answered");
        let stall = (*this.http2).then_some(false);
        Poll::Ready(Ok(response.map(|body| TrackedBody {
            inner: body,
            in_flight,
            stall,
        })))
    }
}

/// A response body that keeps its request in flight until it is written.
/// Over HTTP/2 it also tells the connection's clock when it waits for the
/// client to take what it gave: a client may keep its flow-control window
/// shut, and its connection is closed once no body was asked for a piece
/// for the idle timeout (over HTTP/1 a full socket shows the same, in
/// `LimitedIo`'s writes).
pub(crate) struct TrackedBody<B> {
    inner: B,
    in_flight: InFlight,
    /// HTTP/2 only: whether the body gave a piece and was not asked for
    /// the next yet.
    stall: Option<bool>,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let Some(waiting) = this.stall.as_mut() else {
            return Pin::new(&mut this.inner).poll_frame(cx);
        };
        this.in_flight.0.body_polled(*waiting);
        *waiting = false;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(Some(Ok(_)))) && !this.inner.is_end_stream() {
            *waiting = true;
            this.in_flight.0.body_waits();
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

impl<B> Drop for TrackedBody<B> {
    fn drop(&mut self) {
        if self.stall == Some(true) {
            self.in_flight.0.body_gone();
        }
    }
}
