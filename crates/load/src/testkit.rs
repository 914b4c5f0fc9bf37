//! A small HTTP target with known behaviour, for tests of the load
//! generator (here and in the `chaoslab` end-to-end tests) and for trying
//! it out: fixed latencies, a known error rate, an unhealthy health check
//! every Nth time, a switch that stalls every request, and hit counters.
//! It binds 127.0.0.1 port 0 and stops when dropped.
//!
//! Routes: `/fast` (200 `ok`), `/close` (the same, closing the connection), `/delay/MS` (200 after MS ms), `/flaky`
//! (500 every `flaky_every`-th request), `/health` (`unhealthy` every
//! `unhealthy_every`-th), `/` and `/chaos/status` (service-like JSON),
//! `POST /chaos/load` (200 the first time, 409 after), anything else 404.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Longest a request waits while the server is stalled.
const MAX_STALL: Duration = Duration::from_secs(60);

/// How the test server misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// `/flaky` answers 500 on every Nth request (0 = never).
    pub flaky_every: u64,
    /// `/health` answers `"unhealthy"` (with 200) every Nth time (0 = never).
    pub unhealthy_every: u64,
}

#[derive(Default)]
struct State {
    behaviour: Behaviour,
    hits: Mutex<HashMap<(String, u16), u64>>,
    flaky: AtomicU64,
    health: AtomicU64,
    counter: AtomicU64,
    chaos_loads: AtomicU64,
}

/// A running test server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    stall: watch::Sender<bool>,
    shutdown: CancellationToken,
}

impl TestServer {
    /// Starts a server on 127.0.0.1 with `behaviour`.
    pub async fn start(behaviour: Behaviour) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            behaviour,
            ..State::default()
        });
        let (stall, stall_rx) = watch::channel(false);
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, state.clone(), stall_rx, shutdown.clone()));
        Ok(Self {
            addr,
            state,
            stall,
            shutdown,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// While `true`, every request waits (up to a minute) before answering.
    pub fn set_stalled(&self, stalled: bool) {
        self.stall.send_replace(stalled);
    }

    /// Requests answered for `path` with `status`.
    pub fn hits(&self, path: &str, status: u16) -> u64 {
        self.state
            .hits
            .lock()
            .map(|h| h.get(&(path.to_owned(), status)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Requests answered for `path`, any status.
    pub fn hits_any(&self, path: &str) -> u64 {
        self.state
            .hits
            .lock()
            .map(|h| {
                h.iter()
                    .filter(|((p, _), _)| p == path)
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    stall: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = shutdown.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let (state, stall, shutdown) = (state.clone(), stall.clone(), shutdown.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, state.clone(), stall.clone()));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                () = shutdown.cancelled() => {}
            }
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    state: Arc<State>,
    mut stall: watch::Receiver<bool>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if *stall.borrow() {
        let _ = tokio::time::timeout(MAX_STALL, stall.wait_for(|s| !s)).await;
    }
    let path = req.uri().path().to_owned();
    let b = state.behaviour;
    let (status, body): (u16, String) = match (req.method().as_str(), path.as_str()) {
        ("GET", "/fast" | "/close") => (200, "ok".into()),
        ("GET", "/flaky") => {
            let n = state.flaky.fetch_add(1, Ordering::Relaxed) + 1;
            if b.flaky_every > 0 && n.is_multiple_of(b.flaky_every) {
                (500, "boom".into())
            } else {
                (200, "ok".into())
            }
        }
        ("GET", "/health") => {
            let n = state.health.fetch_add(1, Ordering::Relaxed) + 1;
            let sick = b.unhealthy_every > 0 && n.is_multiple_of(b.unhealthy_every);
            let status = if sick { "unhealthy" } else { "healthy" };
            (
                200,
                format!(r#"{{"status":"{status}","redis":{{"connected":true,"latency_ms":0}}}}"#),
            )
        }
        ("GET", "/") => {
            let n = state.counter.fetch_add(1, Ordering::Relaxed) + 1;
            (
                200,
                format!(
                    r#"{{"message":"Hello from Container Apps Chaos Lab","request_count":{n}}}"#
                ),
            )
        }
        ("GET", "/chaos/status") => (
            200,
            r#"{"load":{"active":false},"hang":{"active":false}}"#.into(),
        ),
        ("POST", "/chaos/load") => {
            if state.chaos_loads.fetch_add(1, Ordering::Relaxed) == 0 {
                (200, r#"{"status":"load_started"}"#.into())
            } else {
                (409, r#"{"error":"Conflict"}"#.into())
            }
        }
        ("GET", p) if p.starts_with("/delay/") => {
            let ms: u64 = p["/delay/".len()..].parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
            (200, "ok".into())
        }
        _ => (404, "not found".into()),
    };
    let response_path = path.clone();
    if let Ok(mut hits) = state.hits.lock() {
        *hits.entry((path, status)).or_default() += 1;
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if path_closes(&response_path) {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    Ok(response)
}

/// `/close` answers like `/fast` but closes the connection after each
/// response, as a server with keep-alive off does.
fn path_closes(path: &str) -> bool {
    path == "/close"
}
