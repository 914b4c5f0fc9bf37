//! The HTTP/1.1 client side: one keep-alive connection per user session
//! (as Locust's `HttpSession`), a bounded pool of them for the open model,
//! and `Session::send` which runs one task under the timeout and applies
//! the failure rules, returning a `Sample`.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::LoadError;
use crate::sample::{Failure, Sample};
use crate::scenario::{Check, Task};

/// Largest body kept in memory for a health check; the rest is counted.
const MAX_CHECKED_BODY: usize = 64 * 1024;

/// Where the load goes: `http://host:port`, resolved once before the run.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, for reports.
    pub url: String,
    /// The `Host` header value.
    pub authority: http::HeaderValue,
    /// The address connections go to.
    pub addr: SocketAddr,
}

impl Target {
    /// Parses and resolves `http://HOST[:PORT]` (no path). HTTPS is not
    /// supported: put an ingress or a TLS terminator in front.
    pub async fn resolve(url: &str) -> Result<Self, LoadError> {
        let url = url.trim().trim_end_matches('/');
        let uri: http::Uri = url
            .parse()
            .map_err(|e| LoadError::config("--host", format!("`{url}`: {e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(LoadError::config(
                    "--host",
                    "https is not supported; target the plain-HTTP ingress",
                ));
            }
            _ => {
                return Err(LoadError::config(
                    "--host",
                    format!("`{url}` is not an http:// URL"),
                ));
            }
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(LoadError::config(
                "--host",
                "give only scheme, host and port (tasks hold the paths)",
            ));
        }
        let host = uri
            .host()
            .ok_or_else(|| LoadError::config("--host", "missing host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let lookup = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
        )
        .await
        .map_err(|_| LoadError::config("--host", format!("resolving `{host}` timed out")))?
        .map_err(|e| LoadError::config("--host", format!("cannot resolve `{host}`: {e}")))?;
        let mut addrs: Vec<SocketAddr> = lookup.collect();
        addrs.sort_by_key(|a| !a.is_ipv4());
        let addr = *addrs
            .first()
            .ok_or_else(|| LoadError::config("--host", format!("`{host}` has no address")))?;
        let authority = uri
            .authority()
            .map(|a| a.as_str())
            .unwrap_or(host)
            .parse()
            .map_err(|_| LoadError::config("--host", "bad host"))?;
        Ok(Self {
            url: url.to_owned(),
            authority,
            addr,
        })
    }
}

/// One user's keep-alive connection, opened on first use and reopened
/// after errors.
#[derive(Default)]
pub struct Session {
    conn: Option<SendRequest<Full<Bytes>>>,
}

enum Attempt {
    Done(u16, u64, bool),
    /// The request never left on a reused connection (closed by the
    /// server while idle): safe to resend on a fresh one.
    Stale,
}

impl Session {
    /// Runs `task` (index `index` of the mix) against `target`; latency is
    /// counted from `intended`. Never fails: errors become failed samples.
    pub async fn send(
        &mut self,
        target: &Target,
        index: usize,
        task: &Task,
        intended: Instant,
        timeout: Duration,
    ) -> Sample {
        let outcome = tokio::time::timeout(timeout, self.exchange(target, task)).await;
        let latency = intended.elapsed();
        let (status, bytes, failure) = match outcome {
            Err(_) => {
                self.conn = None;
                (0, 0, Some(Failure::Timeout(timeout)))
            }
            Ok(Err(failure)) => {
                self.conn = None;
                (0, 0, Some(failure))
            }
            Ok(Ok((status, bytes, unhealthy))) => {
                let ok = (200..300).contains(&status) || task.accept.contains(&status);
                let failure = if !ok {
                    Some(Failure::Status(status))
                } else if unhealthy {
                    Some(Failure::Unhealthy)
                } else {
                    None
                };
                (status, bytes, failure)
            }
        };
        Sample {
            task: index,
            intended,
            latency,
            status,
            bytes,
            failure,
        }
    }

    async fn exchange(
        &mut self,
        target: &Target,
        task: &Task,
    ) -> Result<(u16, u64, bool), Failure> {
        let reused = self.conn.as_ref().is_some_and(|c| !c.is_closed());
        if reused {
            if let Attempt::Done(s, b, u) = self.attempt(target, task).await? {
                return Ok((s, b, u));
            }
            self.conn = None;
        }
        match self.attempt(target, task).await? {
            Attempt::Done(s, b, u) => Ok((s, b, u)),
            Attempt::Stale => Err(Failure::Io(
                "connection closed before the request was sent".into(),
            )),
        }
    }

    async fn attempt(&mut self, target: &Target, task: &Task) -> Result<Attempt, Failure> {
        let fresh = self.conn.as_ref().is_none_or(|c| c.is_closed());
        if fresh {
            self.conn = Some(connect(target).await?);
        }
        let Some(sender) = self.conn.as_mut() else {
            return Err(Failure::Io("no connection".into()));
        };
        if sender.ready().await.is_err() {
            self.conn = None;
            return if fresh {
                Err(Failure::Io("connection closed".into()))
            } else {
                Ok(Attempt::Stale)
            };
        }
        let mut builder = Request::builder()
            .method(task.method.clone())
            .uri(task.path.as_str())
            .header(header::HOST, target.authority.clone())
            .header(header::USER_AGENT, "chaoslab-load");
        if task.body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(task.body.clone().unwrap_or_default()))
            .map_err(|e| Failure::Io(format!("bad request: {e}")))?;
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                if !fresh && e.is_canceled() {
                    return Ok(Attempt::Stale);
                }
                return Err(Failure::Io(describe(&e)));
            }
        };
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = 0u64;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                self.conn = None;
                Failure::Io(describe(&e))
            })?;
            if let Some(data) = frame.data_ref() {
                bytes += data.len() as u64;
                if task.check == Check::Health && kept.len() + data.len() <= MAX_CHECKED_BODY {
                    kept.extend_from_slice(data);
                }
            }
        }
        let unhealthy = task.check == Check::Health && is_unhealthy(&kept);
        Ok(Attempt::Done(status, bytes, unhealthy))
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = TcpStream::connect(target.addr)
        .await
        .map_err(|e| Failure::Connect(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Connect(describe(&e)))?;
    tokio::spawn(async move {
        // Ends when the session drops its sender or the peer closes.
        let _ = conn.await;
    });
    Ok(sender)
}

/// hyper's error text plus its cause ("connection reset by peer").
fn describe(e: &hyper::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The seed's rule: a health body whose JSON `status` is `"unhealthy"`.
pub fn is_unhealthy(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("status")
                .and_then(|s| s.as_str())
                .map(|s| s == "unhealthy")
        })
        .unwrap_or(false)
}

/// Idle sessions for the open model, where a request takes whichever
/// connection is free. Holds at most `cap` idle sessions.
pub struct Pool {
    idle: Mutex<Vec<Session>>,
    cap: usize,
}

impl Pool {
    /// An empty pool keeping at most `cap` idle sessions.
    pub fn new(cap: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            cap,
        }
    }

    /// An idle session, or a new (unconnected) one.
    pub fn take(&self) -> Session {
        self.idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
            .unwrap_or_default()
    }

    /// Gives a session back for reuse (dropped when the pool is full or
    /// its connection is gone).
    pub fn put(&self, session: Session) {
        if session.conn.as_ref().is_none_or(|c| c.is_closed()) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.cap
        {
            idle.push(session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_rule() {
        assert!(is_unhealthy(br#"{"status":"unhealthy","redis":{}}"#));
        assert!(!is_unhealthy(br#"{"status":"healthy"}"#));
        assert!(!is_unhealthy(br#"{"status":"degraded"}"#));
        assert!(!is_unhealthy(b"unhealthy but not json"));
    }

    #[tokio::test]
    async fn resolves_targets() {
        let t = Target::resolve("http://127.0.0.1:8000/")
            .await
            .expect("target");
        assert_eq!(t.addr.port(), 8000);
        assert_eq!(t.authority, "127.0.0.1:8000");
        assert!(Target::resolve("https://127.0.0.1").await.is_err());
        assert!(Target::resolve("127.0.0.1:80").await.is_err());
        assert!(Target::resolve("http://127.0.0.1:80/x").await.is_err());
    }
}
