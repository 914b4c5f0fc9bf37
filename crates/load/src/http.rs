//! The client side of a user: the target, resolved once; one keep-alive
//! connection per user session (as Locust's `HttpSession`), a bounded pool
//! of them for the open model,
//! and `Session::send` which runs one task under the timeout and applies
//! the failure rules, returning a `Sample`.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::Method;

use crate::error::LoadError;
use crate::h1::{self, Conn, Response};
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
    pub authority: String,
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
        let authority = uri.authority().map_or(host, |a| a.as_str()).to_owned();
        Ok(Self {
            url: url.to_owned(),
            authority,
            addr,
        })
    }
}

/// One user's keep-alive connection, opened on first use and reopened
/// after errors or when the server closes it.
#[derive(Default)]
pub struct Session {
    conn: Option<Conn>,
}

impl Session {
    /// Runs `task` (index `index` of the mix, serialized as `wire`) against
    /// `target`; latency is counted from `intended`. Never fails: errors
    /// become failed samples.
    pub async fn send(
        &mut self,
        target: &Target,
        index: usize,
        task: &Task,
        wire: &[u8],
        intended: Instant,
        timeout: Duration,
    ) -> Sample {
        let outcome = tokio::time::timeout(timeout, self.exchange(target, task, wire)).await;
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
            Ok(Ok(response)) => {
                let status = response.status;
                let ok = (200..300).contains(&status) || task.accept.contains(&status);
                let failure = if !ok {
                    Some(Failure::Status(status))
                } else if task.check == Check::Health && is_unhealthy(&response.body) {
                    Some(Failure::Unhealthy)
                } else {
                    None
                };
                (status, response.bytes, failure)
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
        wire: &[u8],
    ) -> Result<Response, Failure> {
        let head_only = task.method == Method::HEAD;
        let keep = if task.check == Check::Health {
            MAX_CHECKED_BODY
        } else {
            0
        };
        if self
            .conn
            .as_ref()
            .is_some_and(|c| c.closed_while_idle(Duration::from_millis(500)))
        {
            self.conn = None;
        }
        if let Some(conn) = self.conn.as_mut() {
            match conn.exchange(wire, head_only, keep).await {
                Ok(response) => return Ok(self.keep_if_reusable(response)),
                // The server closed the idle connection: resend on a fresh
                // one when the request cannot have been acted on twice.
                Err(h1::Error::Stale { sent }) if !sent || task.method.is_idempotent() => {}
                Err(h1::Error::Stale { .. }) => {
                    self.conn = None;
                    return Err(Failure::Io("connection closed before the response".into()));
                }
                Err(h1::Error::Failed(e)) => {
                    self.conn = None;
                    return Err(Failure::Io(e));
                }
            }
        }
        self.conn = None;
        let conn = Conn::connect(target.addr)
            .await
            .map_err(|e| Failure::Connect(e.to_string()))?;
        let conn = self.conn.insert(conn);
        match conn.exchange(wire, head_only, keep).await {
            Ok(response) => Ok(self.keep_if_reusable(response)),
            Err(h1::Error::Stale { .. }) => {
                self.conn = None;
                Err(Failure::Io("connection closed before the response".into()))
            }
            Err(h1::Error::Failed(e)) => {
                self.conn = None;
                Err(Failure::Io(e))
            }
        }
    }

    fn keep_if_reusable(&mut self, response: Response) -> Response {
        if !response.reusable {
            self.conn = None;
        }
        response
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
        if session.conn.is_none() {
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
