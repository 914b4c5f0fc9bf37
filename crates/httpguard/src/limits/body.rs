//! The body clock: every request body is a [`TimedBody`] that fails, once
//! the body timeout has passed since the request head, the next time the
//! client has nothing more to give. A body that arrives in time — however
//! late the application reads it — is never failed: only waiting for the
//! client is bounded. The request carries its [`BodyDeadline`] in its
//! extensions, so whoever answers can tell the client's slowness from a
//! bad body; [`BodyTimeoutLayer`] does that for axum routers, answering
//! 408 in the listener's own error body.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};
use tower::{Layer, Service};

use super::io::ConnectionClock;

/// Any error, boxed: what a [`TimedBody`] fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a [`TimedBody`] failed: the client did not send the whole body
/// within `timeout` of the head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the request body did not arrive within {timeout:?} of the request head; send the whole body at once"
)]
pub struct BodyTimeout {
    pub timeout: Duration,
}

/// The body clock of one request, in its extensions: whether it ran out.
#[derive(Debug, Clone)]
pub struct BodyDeadline {
    shared: Arc<DeadlineShared>,
}

#[derive(Debug)]
struct DeadlineShared {
    timeout: Duration,
    expired: AtomicBool,
    /// The body has been read to its end.
    complete: AtomicBool,
    /// The connection to linger on after a timeout.
    clock: Option<Arc<ConnectionClock>>,
}

impl BodyDeadline {
    /// A body clock of `timeout`, for a body not read off a
    /// [`HttpServer`](super::HttpServer) connection (tests, other servers).
    pub fn new(timeout: Duration) -> Self {
        Self::with_clock(timeout, None)
    }

    pub(crate) fn with_clock(timeout: Duration, clock: Option<Arc<ConnectionClock>>) -> Self {
        BodyDeadline {
            shared: Arc::new(DeadlineShared {
                timeout,
                expired: AtomicBool::new(false),
                complete: AtomicBool::new(false),
                clock,
            }),
        }
    }

    /// Whether the body timed out (the client was still sending it).
    pub fn expired(&self) -> bool {
        self.shared.expired.load(Ordering::Relaxed)
    }

    /// Whether the body has been read to its end (never, for a body
    /// nobody reads).
    pub fn is_complete(&self) -> bool {
        self.shared.complete.load(Ordering::Relaxed)
    }

    fn complete(&self) {
        self.shared.complete.store(true, Ordering::Relaxed);
    }

    /// The body timeout.
    pub fn timeout(&self) -> Duration {
        self.shared.timeout
    }

    /// The error a timed-out body fails with.
    pub fn error(&self) -> BodyTimeout {
        BodyTimeout {
            timeout: self.shared.timeout,
        }
    }

    fn expire(&self) {
        self.shared.expired.store(true, Ordering::Relaxed);
        if let Some(clock) = &self.shared.clock {
            clock.mark_body_timed_out();
        }
    }
}

/// A request body on the body clock, started when it is made (at the
/// request head).
#[derive(Debug)]
pub struct TimedBody<B = Incoming> {
    inner: B,
    deadline: BodyDeadline,
    at: Instant,
    /// Armed only once the client makes the reader wait.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    /// `inner` with `deadline`'s timeout from now.
    pub fn new(inner: B, deadline: BodyDeadline) -> Self {
        let at = Instant::now() + deadline.timeout();
        TimedBody {
            inner,
            deadline,
            at,
            sleep: None,
        }
    }

    /// This body's clock.
    pub fn deadline(&self) -> &BodyDeadline {
        &self.deadline
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.deadline.expired() {
            return Poll::Ready(Some(Err(Box::new(this.deadline.error()))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.deadline.complete();
                return Poll::Ready(None);
            }
            Poll::Ready(Some(frame)) => {
                if this.inner.is_end_stream() {
                    this.deadline.complete();
                }
                return Poll::Ready(Some(frame.map_err(Into::into)));
            }
            Poll::Pending => {}
        }
        let at = this.at;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        this.deadline.expire();
        tracing::debug!(timeout = ?this.deadline.timeout(), "request body timed out");
        Poll::Ready(Some(Err(Box::new(this.deadline.error()))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Answers a request whose body timed out with `respond`'s response (a 408
/// in the listener's error body) and `Connection: close`, whatever the
/// inner service made of the failed body. A 408 the inner service made
/// itself is kept.
#[derive(Debug, Clone)]
pub struct BodyTimeoutLayer<F> {
    respond: F,
}

impl<F> BodyTimeoutLayer<F> {
    pub fn new(respond: F) -> Self {
        BodyTimeoutLayer { respond }
    }
}

impl<S, F: Clone> Layer<S> for BodyTimeoutLayer<F> {
    type Service = BodyTimeoutService<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        BodyTimeoutService {
            inner,
            respond: self.respond.clone(),
        }
    }
}

/// The service [`BodyTimeoutLayer`] makes.
#[derive(Debug, Clone)]
pub struct BodyTimeoutService<S, F> {
    inner: S,
    respond: F,
}

impl<S, F, ReqBody, ResBody> Service<Request<ReqBody>> for BodyTimeoutService<S, F>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    F: Fn(&BodyTimeout) -> Response<ResBody> + Clone + Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let deadline = request.extensions().get::<BodyDeadline>().cloned();
        let call = self.inner.call(request);
        let respond = self.respond.clone();
        Box::pin(async move {
            let response = call.await?;
            Ok(match deadline {
                Some(deadline) if deadline.expired() => {
                    answer_timeout(response, &deadline, respond)
                }
                _ => response,
            })
        })
    }
}

fn answer_timeout<B>(
    response: Response<B>,
    deadline: &BodyDeadline,
    respond: impl Fn(&BodyTimeout) -> Response<B>,
) -> Response<B> {
    let mut response = if response.status() == StatusCode::REQUEST_TIMEOUT {
        response
    } else {
        let timeout = deadline.error();
        tracing::warn!(detail = %timeout, "request body timed out: answered 408");
        respond(&timeout)
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
