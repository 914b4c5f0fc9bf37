//! The header and idle clocks of one connection, kept where the bytes
//! arrive: [`LimitedIo`] sits between the socket and hyper and fails the
//! read (hyper then closes the connection) when a request head, or an idle
//! spell between requests, outlasts its timeout. The clock knows whether a
//! request is in flight from the connection's service (`serve.rs`), which
//! counts requests from their head until their response has been written:
//! while one is, neither clock runs, so a long request is never cut.
//!
//! Working below hyper keeps it protocol-blind (HTTP/1 and HTTP/2 alike)
//! and lets the clock start at the first raw byte, whatever a layer above
//! (the service's head scanner, a [`ReadFilter`]) holds back. After a body
//! timeout, or once the filter refused a request, the connection lingers on
//! close, reading and dropping what the client still sends for a moment, so
//! that the answer (408, or the refusal) is not lost to a reset.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::ServerLimits;

/// After a body timeout or a refusal: at most this much of what the client still sends
/// is read and dropped, for at most this long after the answer.
const LINGER_BYTES: usize = 1 << 20;
const LINGER_TIME: Duration = Duration::from_secs(2);

/// What a connection is waiting for when its clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The rest of a request head (or the first one).
    Head,
    /// The first byte of the next request.
    Idle,
    /// The client to take more of a response a body has ready (HTTP/2,
    /// whose client may keep its flow-control window shut).
    Stall,
}

/// One connection's clock, shared by its [`LimitedIo`] and its service.
#[derive(Debug)]
pub(crate) struct ConnectionClock {
    state: Mutex<ClockState>,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// A request's body timed out: linger on close.
    body_timed_out: AtomicBool,
    /// HTTP/2 response bodies that gave a piece and have not been asked
    /// for the next since (outside the lock: every write looks at it).
    waiting_bodies: AtomicUsize,
}

#[derive(Debug)]
struct ClockState {
    /// Requests whose head arrived and whose response is not written yet.
    in_flight: usize,
    /// When the connection last became idle.
    idle_since: Instant,
    /// When the head being received started (a new connection owes its
    /// first head from the start).
    head_since: Option<Instant>,
    /// The reader that waited while a request was in flight, with no
    /// clock: woken when the last request ends, to start the idle clock.
    reader: Option<Waker>,
    /// When the client last took part of a response (a byte written, a
    /// body asked for a piece), while an HTTP/2 body waits.
    progress_at: Instant,
}

impl ConnectionClock {
    /// The clock of a connection accepted now.
    pub(crate) fn new(limits: &ServerLimits) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(ConnectionClock {
            state: Mutex::new(ClockState {
                in_flight: 0,
                idle_since: now,
                head_since: Some(now),
                reader: None,
                progress_at: now,
            }),
            waiting_bodies: AtomicUsize::new(0),
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            body_timed_out: AtomicBool::new(false),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the connection must be closed unless a request arrives, and
    /// why; while a request is in flight, `None` — unless a response body
    /// waits for the client to take it (HTTP/2).
    fn deadline(&self) -> Option<(Instant, Wait)> {
        let state = self.state();
        if state.in_flight > 0 {
            return self.stall_deadline(&state);
        }
        Some(Self::deadline_of(
            &state,
            self.header_timeout,
            self.idle_timeout,
        ))
    }

    /// The deadline now; while a request is in flight, the reader is kept
    /// to wake when it ends or when a body starts waiting.
    fn deadline_or_wake(&self, reader: &Waker) -> Option<(Instant, Wait)> {
        let mut state = self.state();
        if state.in_flight > 0 {
            if !state.reader.as_ref().is_some_and(|w| w.will_wake(reader)) {
                state.reader = Some(reader.clone());
            }
            return self.stall_deadline(&state);
        }
        Some(Self::deadline_of(
            &state,
            self.header_timeout,
            self.idle_timeout,
        ))
    }

    /// While a body waits for the client: the idle timeout after the
    /// client last took part of a response.
    fn stall_deadline(&self, state: &ClockState) -> Option<(Instant, Wait)> {
        (self.waiting_bodies.load(Ordering::Relaxed) > 0)
            .then(|| (state.progress_at + self.idle_timeout, Wait::Stall))
    }

    /// Bytes went to the client: progress, if a body waits.
    fn wrote(&self) {
        if self.waiting_bodies.load(Ordering::Relaxed) > 0 {
            self.state().progress_at = Instant::now();
        }
    }

    /// An HTTP/2 body was asked for a piece (`was_waiting`: after giving
    /// one): the client is taking its answer.
    pub(crate) fn body_polled(&self, was_waiting: bool) {
        if was_waiting {
            self.state().progress_at = Instant::now();
            self.waiting_bodies.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// An HTTP/2 body gave a piece and waits to be asked for the next:
    /// the reader arms the stall clock.
    pub(crate) fn body_waits(&self) {
        let mut state = self.state();
        if self.waiting_bodies.fetch_add(1, Ordering::Relaxed) == 0 {
            state.progress_at = Instant::now();
            if let Some(reader) = state.reader.take() {
                reader.wake();
            }
        }
    }

    /// A waiting HTTP/2 body was dropped.
    pub(crate) fn body_gone(&self) {
        self.waiting_bodies.fetch_sub(1, Ordering::Relaxed);
    }

    fn deadline_of(
        state: &ClockState,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> (Instant, Wait) {
        match state.head_since {
            Some(since) => (since + header_timeout, Wait::Head),
            None => (state.idle_since + idle_timeout, Wait::Idle),
        }
    }

    /// Bytes arrived: on an idle connection, a head has started.
    fn bytes_arrived(&self) {
        let mut state = self.state();
        if state.in_flight == 0 && state.head_since.is_none() {
            state.head_since = Some(Instant::now());
        }
    }

    /// A request head arrived; the request counts until the returned guard
    /// is dropped (with its response body, once written).
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.head_since = None;
        InFlight(self.clone())
    }

    pub(crate) fn mark_body_timed_out(&self) {
        self.body_timed_out.store(true, Ordering::Relaxed);
    }

    fn body_timed_out(&self) -> bool {
        self.body_timed_out.load(Ordering::Relaxed)
    }

    fn timed_out(&self, wait: Wait) -> io::Error {
        let message = match wait {
            Wait::Head => format!(
                "no complete request head within {:?}: connection closed",
                self.header_timeout
            ),
            Wait::Idle => format!(
                "idle for {:?} with no request: connection closed",
                self.idle_timeout
            ),
            Wait::Stall => format!(
                "the client took none of its response for {:?}: connection closed",
                self.idle_timeout
            ),
        };
        io::Error::new(io::ErrorKind::TimedOut, message)
    }
}

/// A request in flight on a connection: while one is, neither the header
/// nor the idle clock runs; dropping it (once the response is written)
/// starts the idle clock.
#[derive(Debug)]
pub struct InFlight(pub(crate) Arc<ConnectionClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight == 0 {
            state.idle_since = Instant::now();
            state.head_since = None;
            if let Some(reader) = state.reader.take() {
                reader.wake();
            }
        }
    }
}

/// What a listener may put between the clocked socket and hyper (the
/// service's head scanner): it reads the client's bytes through the clocks
/// and decides what hyper reads. Once it refuses the stream for good, the
/// connection reads and drops what the client still sends (never an end of
/// file to hyper, which would take it for the client hanging up and drop
/// the answer) and lingers on close.
pub trait ReadFilter: Unpin {
    /// Fills `buf` with what hyper may read, reading the client's bytes
    /// from `raw`. Once [`refused`](ReadFilter::refused), it hands out what
    /// it still holds, then answers `Pending`.
    fn poll_filtered<R: AsyncRead + Unpin>(
        &mut self,
        raw: &mut R,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>>;

    /// Whether nothing more the client sends will pass.
    fn refused(&self) -> bool;
}

/// No filter: hyper reads the client's bytes as they arrive.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unfiltered;

impl ReadFilter for Unfiltered {
    fn poll_filtered<R: AsyncRead + Unpin>(
        &mut self,
        raw: &mut R,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(raw).poll_read(cx, buf)
    }

    fn refused(&self) -> bool {
        false
    }
}

/// A client connection as hyper reads it: through the header and idle
/// clocks, and the listener's [`ReadFilter`] if it has one.
/// [`HttpServer`](super::HttpServer) makes one per connection and hands it
/// to the listener's `accept` function, which may add a filter
/// ([`LimitedIo::with_filter`]).
#[derive(Debug)]
pub struct LimitedIo<T = TcpStream, F = Unfiltered> {
    raw: ClockedRead<T>,
    filter: F,
    linger: Linger,
    /// Armed while a write waits for the client to take bytes.
    write_stall: Option<Pin<Box<Sleep>>>,
}

/// The socket's read side under the header and idle clocks.
#[derive(Debug)]
struct ClockedRead<T> {
    inner: T,
    clock: Arc<ConnectionClock>,
    /// Armed at (or before) the clock's deadline while a read waits.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Closing after a refusal or a body timeout: FIN, then what the client
/// still sends is read and dropped for a moment, so that closing does not
/// reset the connection under the answer.
#[derive(Debug, Default)]
struct Linger {
    /// Whether our side is shut down (FIN sent).
    shut_down: bool,
    /// The end of the linger.
    until: Option<Pin<Box<Sleep>>>,
    /// Bytes read and dropped.
    dropped: usize,
}

impl<T> LimitedIo<T> {
    pub(crate) fn new(inner: T, clock: Arc<ConnectionClock>) -> Self {
        LimitedIo {
            raw: ClockedRead {
                inner,
                clock,
                timer: None,
            },
            filter: Unfiltered,
            linger: Linger::default(),
            write_stall: None,
        }
    }

    /// This connection with `filter` between the clocks and hyper.
    pub fn with_filter<G: ReadFilter>(self, filter: G) -> LimitedIo<T, G> {
        LimitedIo {
            raw: self.raw,
            filter,
            linger: self.linger,
            write_stall: self.write_stall,
        }
    }
}

impl<T, F> LimitedIo<T, F> {
    /// Starts a request on this connection's clock, for a listener that
    /// reads its requests itself rather than through hyper (the ingress's
    /// plain requests): its head has arrived; keep the guard until its
    /// response is written.
    pub fn request_started(&self) -> InFlight {
        self.raw.clock.request_started()
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &T {
        &self.raw.inner
    }

    /// A write, bounded: a client whose socket stays full for the idle
    /// timeout (it stopped reading, or pipelines requests and never reads
    /// the answers; the kernel reports room again only once a good part of
    /// the buffer drained) fails the write, and hyper closes the
    /// connection — else it would hold its slot for as long as it likes.
    fn write_bounded<R>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if polled.is_ready() {
            self.write_stall = None;
            return polled;
        }
        let timeout = self.raw.clock.idle_timeout;
        let stall = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stall.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took none of its response for {timeout:?}: connection closed"),
            )));
        }
        Poll::Pending
    }

    /// Whether closing lingers: after a refusal or a body timeout.
    fn lingers(&self) -> bool
    where
        F: ReadFilter,
    {
        self.filter.refused() || self.raw.clock.body_timed_out()
    }
}

impl Linger {
    /// Reads and drops what the client sends, until it stops sending
    /// (`Pending`), closes, errs, or the bound is reached (`Ready`).
    fn poll_drop_input<T: AsyncRead + Unpin>(
        &mut self,
        io: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let mut scratch = [0u8; 8192];
        while self.dropped < LINGER_BYTES {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *io).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    self.dropped += buf.filled().len();
                }
                Poll::Ready(_) => return Poll::Ready(()),
            }
        }
        Poll::Ready(())
    }

    /// Sends FIN; when `lingering`, then drops input until the client is
    /// done or the linger time is over.
    fn poll_shutdown<T: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut T,
        cx: &mut Context<'_>,
        lingering: bool,
    ) -> Poll<io::Result<()>> {
        if !self.shut_down {
            ready!(Pin::new(&mut *io).poll_shutdown(cx))?;
            self.shut_down = true;
        }
        if !lingering {
            return Poll::Ready(Ok(()));
        }
        let until = self
            .until
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER_TIME)));
        if until.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        self.poll_drop_input(io, cx).map(Ok)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClockedRead<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let deadline = this.clock.deadline();
        if let Some((at, wait)) = deadline
            && Instant::now() >= at
        {
            return Poll::Ready(Err(this.clock.timed_out(wait)));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_arrived();
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        // Read again now that the read waits: a request may have ended
        // since, and the clock must start.
        let Some((at, wait)) = this.clock.deadline_or_wake(cx.waker()) else {
            return Poll::Pending;
        };
        this.poll_timer(cx, at, wait)
    }
}

impl<T> ClockedRead<T> {
    /// Waits for the deadline `at`. The timer is moved only when the
    /// deadline comes earlier than it is set for: on a keep-alive
    /// connection the idle deadline moves later with every request, and
    /// resetting a timer costs more than letting it fire early once and
    /// setting it again then.
    fn poll_timer(
        &mut self,
        cx: &mut Context<'_>,
        at: Instant,
        wait: Wait,
    ) -> Poll<io::Result<()>> {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if at < timer.deadline() {
            timer.as_mut().reset(at);
        }
        while timer.as_mut().poll(cx).is_ready() {
            if Instant::now() >= at {
                return Poll::Ready(Err(self.clock.timed_out(wait)));
            }
            timer.as_mut().reset(at);
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin, F: ReadFilter> AsyncRead for LimitedIo<T, F> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = this.filter.poll_filtered(&mut this.raw, cx, buf);
        if polled.is_pending() && this.filter.refused() {
            let _ = this.linger.poll_drop_input(&mut this.raw.inner, cx);
        }
        polled
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin, F: ReadFilter> AsyncWrite for LimitedIo<T, F> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.raw.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(1..)) = polled {
            this.raw.clock.wrote();
        }
        this.write_bounded(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.raw.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(1..)) = polled {
            this.raw.clock.wrote();
        }
        this.write_bounded(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.raw.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.raw.inner).poll_flush(cx);
        this.write_bounded(cx, polled)
    }

    /// Sends FIN; after a refusal or a body timeout, then reads and drops
    /// what the client still sends for a moment, so that closing does not
    /// reset the connection under the answer.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let lingering = this.lingers();
        this.linger
            .poll_shutdown(&mut this.raw.inner, cx, lingering)
    }
}
