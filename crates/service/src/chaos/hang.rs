//! Hangs, as the seed's service did them and as the platform must notice:
//! `request` scope hangs only the calling request; `process` scope makes the
//! whole HTTP service stop answering (health probes included) while the
//! socket keeps accepting — exactly what a stuck process looks like to a
//! TCP probe (fine) and to an HTTP probe (timeouts). A hang ends at its
//! deadline, when its caller goes away, or on `DELETE /chaos/hang`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::NotStarted;

/// What a hang stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HangScope {
    /// Only the request that asked for it.
    #[default]
    Request,
    /// Every request to the HTTP service.
    Process,
}

impl HangScope {
    /// Every scope by the name clients use, in the API's order.
    pub const CHOICES: &'static [(&'static str, HangScope)] = &[
        ("request", HangScope::Request),
        ("process", HangScope::Process),
    ];
}

struct ActiveHang {
    id: u64,
    scope: HangScope,
    deadline: Option<Instant>,
    cancel: CancellationToken,
}

/// How a hang ended, for the hanging request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangEnd {
    Completed,
    Cancelled,
}

/// Owns the one hang that may be active.
pub struct HangController {
    active: Mutex<Option<ActiveHang>>,
    next_id: AtomicU64,
    /// `true` while a process-scope hang holds every request.
    process_hung: watch::Sender<bool>,
    /// Shutting down: no hang starts.
    closed: AtomicBool,
}

impl Default for HangController {
    fn default() -> Self {
        HangController {
            active: Mutex::new(None),
            next_id: AtomicU64::new(1),
            process_hung: watch::channel(false).0,
            closed: AtomicBool::new(false),
        }
    }
}

/// Ends its hang when dropped: the hanging request finished or its client
/// went away (the server drops the request's future).
pub struct HangGuard<'a> {
    controller: &'a HangController,
    id: u64,
    deadline: Option<Instant>,
    cancel: CancellationToken,
}

impl HangGuard<'_> {
    /// Waits until the hang's deadline or until it is cancelled.
    pub async fn wait(&self) -> HangEnd {
        match self.deadline {
            Some(deadline) => tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => HangEnd::Completed,
                _ = self.cancel.cancelled() => HangEnd::Cancelled,
            },
            None => {
                self.cancel.cancelled().await;
                HangEnd::Cancelled
            }
        }
    }
}

impl Drop for HangGuard<'_> {
    fn drop(&mut self) {
        self.controller.clear(self.id);
    }
}

impl HangController {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a hang; `duration` zero means until cancelled.
    pub fn start(&self, scope: HangScope, duration: Duration) -> Result<HangGuard<'_>, NotStarted> {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Relaxed) {
            return Err(NotStarted::ShuttingDown);
        }
        if let Some(a) = active.as_ref() {
            return Err(NotStarted::AlreadyActive(format!(
                "a {} hang is already active; DELETE /chaos/hang ends it",
                if a.scope == HangScope::Process {
                    "process"
                } else {
                    "request"
                }
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let deadline = (!duration.is_zero()).then(|| Instant::now() + duration);
        let cancel = CancellationToken::new();
        *active = Some(ActiveHang {
            id,
            scope,
            deadline,
            cancel: cancel.clone(),
        });
        if scope == HangScope::Process {
            self.process_hung.send_replace(true);
        }
        tracing::warn!(
            ?scope,
            duration_s = duration.as_secs(),
            "chaos hang started"
        );
        Ok(HangGuard {
            controller: self,
            id,
            deadline,
            cancel,
        })
    }

    /// At shutdown: ends the active hang and starts no other.
    pub fn close(&self) {
        // Under the lock, so that no start slips in between.
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Relaxed);
        drop(active);
        self.cancel();
    }

    /// Ends the active hang, if any. Returns whether there was one.
    pub fn cancel(&self) -> bool {
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        match active.as_ref() {
            Some(a) => {
                a.cancel.cancel();
                drop(active);
                true
            }
            None => false,
        }
    }

    fn clear(&self, id: u64) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if active.as_ref().is_some_and(|a| a.id == id) {
            *active = None;
            self.process_hung.send_replace(false);
            tracing::info!("chaos hang ended");
        }
    }

    /// `(scope, seconds left, indefinite)` of the active hang.
    pub fn status(&self) -> Option<(HangScope, u64, bool)> {
        let active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        active.as_ref().map(|a| match a.deadline {
            Some(d) => (a.scope, super::remaining_seconds(d), false),
            None => (a.scope, 0, true),
        })
    }

    /// Waits while a process-scope hang is active (used by every request).
    pub async fn wait_while_process_hung(&self) {
        let mut rx = self.process_hung.subscribe();
        let _ = rx.wait_for(|hung| !*hung).await;
    }

    pub fn is_process_hung(&self) -> bool {
        *self.process_hung.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_the_guard_clears_the_hang() {
        let c = HangController::new();
        let g = c.start(HangScope::Process, Duration::ZERO).unwrap();
        assert!(c.is_process_hung());
        assert!(c.start(HangScope::Request, Duration::ZERO).is_err());
        drop(g);
        assert!(!c.is_process_hung());
        assert!(c.status().is_none());
    }

    #[tokio::test]
    async fn cancel_wakes_the_waiter() {
        let c = HangController::new();
        let g = c.start(HangScope::Request, Duration::ZERO).unwrap();
        assert!(c.cancel());
        assert_eq!(g.wait().await, HangEnd::Cancelled);
    }

    /// At shutdown the hang ends and none starts again: a request held at
    /// the process-hang gate, released by that end, must not hang anew.
    #[tokio::test]
    async fn closing_ends_the_hang_and_refuses_new_ones() {
        let c = HangController::new();
        let g = c.start(HangScope::Process, Duration::ZERO).unwrap();
        c.close();
        assert_eq!(g.wait().await, HangEnd::Cancelled);
        drop(g);
        let refused = c.start(HangScope::Process, Duration::ZERO).err();
        assert!(
            matches!(refused, Some(NotStarted::ShuttingDown)),
            "{refused:?}"
        );
        assert_eq!(
            refused.map(|e| e.status()),
            Some(http::StatusCode::SERVICE_UNAVAILABLE)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn completes_at_deadline() {
        let c = HangController::new();
        let g = c.start(HangScope::Request, Duration::from_secs(2)).unwrap();
        assert_eq!(g.wait().await, HangEnd::Completed);
    }
}
