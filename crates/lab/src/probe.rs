//! Health probes as the kubelet runs them: an action (TCP connect or HTTP
//! GET) tried every `period` after an `initial_delay`, each try bounded by
//! `timeout`, and a verdict that flips only after `failure_threshold`
//! consecutive failures or `success_threshold` consecutive successes.
//! [`ProbeTracker`] is the pure counting; [`run_probe`] drives it on tokio
//! time (tested with paused time); [`check`] is one real try.

use std::future::Future;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ProbeAction {
    /// Succeeds when a TCP connection is accepted.
    Tcp,
    /// Succeeds on an HTTP status in 200..400.
    Http { path: String },
}

/// One probe's configuration (serialised with durations in seconds, named
/// as in `chaoslab.toml`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProbeSpec {
    pub action: ProbeAction,
    #[serde(rename = "initial_delay_seconds", serialize_with = "as_secs")]
    pub initial_delay: Duration,
    #[serde(rename = "period_seconds", serialize_with = "as_secs")]
    pub period: Duration,
    #[serde(rename = "timeout_seconds", serialize_with = "as_secs")]
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Consecutive-result counting with thresholds.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    failure_threshold: u32,
    success_threshold: u32,
    successes: u32,
    failures: u32,
    passing: bool,
}

impl ProbeTracker {
    /// Starts in `passing` (liveness starts live, readiness starts unready).
    pub fn new(spec: &ProbeSpec, passing: bool) -> Self {
        Self {
            failure_threshold: spec.failure_threshold.max(1),
            success_threshold: spec.success_threshold.max(1),
            successes: 0,
            failures: 0,
            passing,
        }
    }

    /// Records one result; returns the new verdict when it flipped.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.passing && self.successes >= self.success_threshold {
                self.passing = true;
                return Some(true);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.passing && self.failures >= self.failure_threshold {
                self.passing = false;
                return Some(false);
            }
        }
        None
    }

    /// Consecutive failures so far (for events).
    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Runs a probe until `on_flip` breaks: waits `initial_delay`, then tries
/// `try_once` every `period` (a try slower than `timeout` is a failure) and
/// calls `on_flip(verdict, last_error)` whenever the verdict flips.
pub async fn run_probe<F, Fut>(
    spec: &ProbeSpec,
    initially_passing: bool,
    mut try_once: F,
    mut on_flip: impl FnMut(bool, &str) -> ControlFlow<()>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut tracker = ProbeTracker::new(spec, initially_passing);
    tokio::time::sleep(spec.initial_delay).await;
    let mut ticks = tokio::time::interval(spec.period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let result = match tokio::time::timeout(spec.timeout, try_once()).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {:?}", spec.timeout)),
        };
        let error = result.as_ref().err().cloned().unwrap_or_default();
        if let Some(verdict) = tracker.record(result.is_ok())
            && on_flip(verdict, &error).is_break()
        {
            return;
        }
    }
}

/// One real try of `action` against `addr` (the caller bounds the time).
pub async fn check(action: &ProbeAction, addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let path = match action {
        ProbeAction::Tcp => return Ok(()),
        ProbeAction::Http { path } => path,
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: chaoslab-probe/1\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    // The status line fits in the first read; never read more than 1 KiB.
    let mut buf = [0u8; 1024];
    let mut filled = 0;
    while !buf[..filled].windows(2).any(|w| w == b"\r\n") && filled < buf.len() {
        let n = stream
            .read(&mut buf[filled..])
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let head = String::from_utf8_lossy(&buf[..filled]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "no HTTP status line".to_string())?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    fn spec(fail: u32, ok: u32) -> ProbeSpec {
        ProbeSpec {
            action: ProbeAction::Tcp,
            initial_delay: Duration::from_secs(10),
            period: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            failure_threshold: fail,
            success_threshold: ok,
        }
    }

    #[test]
    fn tracker_flips_on_thresholds() {
        let mut t = ProbeTracker::new(&spec(2, 2), false);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(true));
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(false), Some(false));
        assert_eq!(t.failures(), 2);
    }

    /// Readiness with the seed's values: ready after initial 10 s + two
    /// successes 5 s apart; a hang (tries time out after 3 s) makes it
    /// unready after two failed periods.
    #[tokio::test(start_paused = true)]
    async fn readiness_timeline_on_paused_time() {
        let start = Instant::now();
        let hung_from = Duration::from_secs(30);
        let flips = Arc::new(Mutex::new(Vec::new()));
        let log = flips.clone();
        let spec = spec(2, 2);
        run_probe(
            &spec,
            false,
            || async move {
                if start.elapsed() >= hung_from {
                    std::future::pending::<()>().await;
                }
                Ok(())
            },
            |verdict, error| {
                log.lock()
                    .unwrap()
                    .push((start.elapsed().as_secs(), verdict, error.to_string()));
                if verdict {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            },
        )
        .await;
        let flips = flips.lock().unwrap().clone();
        assert_eq!(flips.len(), 2, "{flips:?}");
        // Tries at 10, 15 → ready at 15.
        assert_eq!((flips[0].0, flips[0].1), (15, true));
        // Tries at 30 and 35(+3 s timeout each, the interval delays) fail.
        assert!(!flips[1].1);
        assert!((36..=42).contains(&flips[1].0), "{flips:?}");
        assert!(flips[1].2.contains("timed out"));
    }

    #[tokio::test]
    async fn real_checks_against_a_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /ok");
                let reply: &[u8] = if ok {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                } else {
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
                };
                let _ = s.write_all(reply).await;
            }
        });
        assert_eq!(check(&ProbeAction::Tcp, addr).await, Ok(()));
        assert_eq!(
            check(&ProbeAction::Http { path: "/ok".into() }, addr).await,
            Ok(())
        );
        assert_eq!(
            check(
                &ProbeAction::Http {
                    path: "/bad".into()
                },
                addr
            )
            .await,
            Err("HTTP 503".into())
        );
        let closed: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(check(&ProbeAction::Tcp, closed).await.is_err());
    }
}
