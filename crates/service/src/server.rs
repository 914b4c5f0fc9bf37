//! The HTTP server under the router: the accept loop every chaoslab
//! listener shares (`chaoslab_httpguard::HttpServer`: HTTP/1.1 and HTTP/2
//! by prior knowledge, header, body and idle timeouts, a connection cap,
//! drain on shutdown), with two things of the service's own. It puts
//! [`crate::head::HeadScanner`] between the socket and hyper, so that a
//! request head hyper would refuse with an empty 400/414/431 (or not refuse
//! at all, under its looser bounds) is answered in the SPEC §3 error body;
//! and a request whose body the client did not send within the body
//! timeout is answered 408 in that body, with `Connection: close`.
//!
//! A refused head never reaches hyper. In its place hyper reads a fixed
//! request for a per-process secret path, with `Connection: close`; the
//! connection's service answers that request with the refusal. hyper thus
//! answers every request before the refused one first, in order (pipelining
//! included), then the refusal, then closes. Whatever the client sends after
//! the refused head is read and dropped (up to a bound, by
//! `chaoslab_httpguard::LimitedIo`, which the scanner plugs into as a
//! `ReadFilter`) so that closing the socket does not reset the connection
//! before the client reads the answer.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use chaoslab_httpguard::{
    BodyDeadline, HttpServer, LimitedIo, ReadFilter, ServerLimits, TimedBody,
};
use http::{HeaderValue, StatusCode};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpListener;
use tower::Service;

use crate::error::ApiError;
use crate::head::{HeadScanner, MAX_HEAD_BYTES, MAX_HEADERS, Refusal};
use crate::request_id;
use crate::state::AppState;

/// The path of the stand-in request for a refused head: secret, so that no
/// client can ask for a refusal's answer itself.
static REFUSAL_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/.chaoslab-refused/{}", uuid::Uuid::new_v4().simple()));

/// The stand-in request hyper reads instead of a refused head.
static REFUSAL_REQUEST: LazyLock<Vec<u8>> = LazyLock::new(|| {
    format!(
        "GET {} HTTP/1.1\r\nhost: refused.invalid\r\nconnection: close\r\n\r\n",
        *REFUSAL_PATH
    )
    .into_bytes()
});

/// Resolves when the service may answer: a refusal, answered outside the
/// router, waits like every other answer while the whole service is hung
/// (a process-scope hang).
pub type Hold = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The [`Hold`] of `state`: for as long as a process-scope hang lasts.
pub fn hold_while_hung(state: &AppState) -> Hold {
    let state = state.clone();
    Arc::new(move || {
        let state = state.clone();
        Box::pin(async move { state.hang().wait_while_process_hung().await })
    })
}

/// What [`serve`] answers requests with: [`crate::App`] (or, in tests, a
/// bare router). Called without `poll_ready`: it must always be ready, as
/// routers are.
pub trait AppService:
    Service<axum::extract::Request, Response = Response, Error = Infallible, Future: Send>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<A> AppService for A where
    A: Service<axum::extract::Request, Response = Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Serves `app` on `listener` under `limits` (the shared accept loop of
/// `chaoslab_httpguard`: header, body and idle timeouts, a connection cap)
/// until `shutdown` resolves, then stops accepting, asks every connection
/// to finish (idle ones close at once) and waits for them all. The caller
/// bounds that wait (the grace period); dropping this future ends the
/// connections left.
pub async fn serve<A, F>(
    listener: TcpListener,
    app: A,
    hold: Hold,
    limits: ServerLimits,
    shutdown: F,
) -> io::Result<()>
where
    A: AppService,
    F: Future<Output = ()> + Send,
{
    // hyper's own cap on header fields is 100, MAX_HEADERS: not set again,
    // since a set cap makes hyper initialise two 100-entry arrays on every
    // request (an unset one uses uninitialised inline arrays).
    const _: () = assert!(MAX_HEADERS == 100);
    let server = HttpServer::new(limits).configure(|builder| {
        builder
            .http2()
            .max_header_list_size(u32::try_from(MAX_HEAD_BYTES).unwrap_or(u32::MAX));
    });
    let accept = move |io: LimitedIo, _peer| {
        let refusal = Arc::new(Mutex::new(None));
        let guarded = io.with_filter(HeadFilter::new(refusal.clone()));
        let service = tower::service_fn({
            let app = app.clone();
            let hold = hold.clone();
            move |req: http::Request<TimedBody>| {
                handle(app.clone(), hold.clone(), refusal.clone(), req)
            }
        });
        (guarded, service)
    };
    server.serve(listener, accept, shutdown).await
}

/// One request of a connection: the refusal's answer for the stand-in
/// request, else the application's — unless the client was too slow to
/// send the body, which is a 408 whatever the application made of it.
async fn handle<A: AppService>(
    app: A,
    hold: Hold,
    refusal: Arc<Mutex<Option<Refusal>>>,
    req: http::Request<TimedBody>,
) -> Result<Response, Infallible> {
    if req.uri().path() == REFUSAL_PATH.as_str() {
        let taken = refusal.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(refusal) = taken {
            hold().await;
            return Ok(refusal_response(refusal).await);
        }
    }
    let deadline = req.extensions().get::<BodyDeadline>().cloned();
    // The application is always ready (a router under layers that are):
    // called directly rather than through `oneshot`, whose state would be
    // one more move of the whole future.
    let mut app = app;
    let response = app.call(req.map(Body::new)).await?;
    Ok(match deadline {
        Some(deadline) if deadline.expired() => {
            let id = response
                .headers()
                .get(request_id::HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            drop(response);
            body_timeout_response(&deadline, id).await
        }
        _ => response,
    })
}

/// The 408 for a body that did not arrive in time, in the SPEC §3 error
/// body, with the request's id (the one the application answered with).
async fn body_timeout_response(deadline: &BodyDeadline, id: Option<String>) -> Response {
    let id = id.unwrap_or_else(request_id::new_id);
    let detail = deadline.error().to_string();
    tracing::warn!(status = 408, %detail, request_id = %id, "request body timed out");
    let mut response = request_id::scope(id.clone(), async move {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, detail).into_response()
    })
    .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A refusal in the SPEC §3 error body, with its own request id.
async fn refusal_response(refusal: Refusal) -> Response {
    let id = request_id::new_id();
    tracing::info!(
        status = refusal.status.as_u16(),
        detail = %refusal.detail,
        request_id = %id,
        "refused a request head"
    );
    let mut response = request_id::scope(id.clone(), async move {
        ApiError::new(refusal.status, refusal.detail).into_response()
    })
    .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What hyper reads of a client connection: the client's bytes through the
/// head scanner (under the limits' clocks, in `LimitedIo`, which also
/// lingers on close after a refusal).
struct HeadFilter {
    scanner: HeadScanner,
    /// Bytes the scanner passed that hyper has not read yet.
    ready: Vec<u8>,
    ready_at: usize,
    /// Where the connection's service finds the refusal.
    refusal: Arc<Mutex<Option<Refusal>>>,
}

impl HeadFilter {
    fn new(refusal: Arc<Mutex<Option<Refusal>>>) -> Self {
        HeadFilter {
            scanner: HeadScanner::new(),
            ready: Vec::new(),
            ready_at: 0,
            refusal,
        }
    }
}

impl ReadFilter for HeadFilter {
    fn poll_filtered<R: AsyncRead + Unpin>(
        &mut self,
        raw: &mut R,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.ready_at < self.ready.len() {
                let n = (self.ready.len() - self.ready_at).min(buf.remaining());
                buf.put_slice(&self.ready[self.ready_at..self.ready_at + n]);
                self.ready_at += n;
                if self.ready_at == self.ready.len() {
                    self.ready.clear();
                    self.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if self.scanner.is_refused() {
                // Never an end of file to hyper (`LimitedIo` drops what
                // the client still sends).
                return Poll::Pending;
            }
            // Read straight into hyper's buffer, then let the scanner judge
            // the new bytes: in the common case (whole requests) it passes
            // them unchanged and they stay where they are.
            let before = buf.filled().len();
            ready!(Pin::new(&mut *raw).poll_read(cx, buf))?;
            let read = &buf.filled()[before..];
            if read.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if let Some(refusal) = self.scanner.feed(read, &mut self.ready) {
                *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(refusal);
                self.ready.extend_from_slice(&REFUSAL_REQUEST);
            }
            if self.ready == read {
                self.ready.clear();
                return Poll::Ready(Ok(()));
            }
            // Held back or changed: hyper reads what the scanner passed.
            buf.set_filled(before);
        }
    }

    fn refused(&self) -> bool {
        self.scanner.is_refused()
    }
}

#[cfg(test)]
mod tests;
