//! The lab's event bus: every decision and state change (replica started,
//! probe failed, restarted, OOMKilled, scaled, revision failed…) is an
//! [`Event`]. A bounded history answers "what happened" and a bounded
//! broadcast feeds live streams (`chaoslab events --follow`, the console);
//! a slow subscriber loses events (and is told so), never the lab.

use std::collections::VecDeque;
use std::sync::Mutex;

use chaoslab_foundation::now_rfc3339;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// How many events the history keeps.
pub const HISTORY: usize = 2000;
/// How many events a live subscriber may lag behind before losing some.
pub const LIVE_BUFFER: usize = 1024;

/// Something that happened in the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing number, for `since=` and to detect gaps.
    pub seq: u64,
    /// RFC 3339 UTC time.
    pub time: String,
    /// `Normal` or `Warning`, as Kubernetes events.
    pub level: String,
    /// A CamelCase reason, e.g. `Unhealthy`, `OOMKilled`, `ScaledUp`.
    pub reason: String,
    /// What it is about: a replica id, a revision name, `lab`, `redis`.
    pub subject: String,
    /// One human sentence.
    pub message: String,
    /// The inputs of the decision, machine-readable.
    #[serde(default)]
    pub data: serde_json::Value,
}

/// History plus live fan-out.
#[derive(Debug)]
pub struct EventBus {
    history: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
    next_seq: Mutex<u64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            history: Mutex::new(VecDeque::with_capacity(64)),
            live: broadcast::channel(LIVE_BUFFER).0,
            next_seq: Mutex::new(1),
        }
    }
}

impl EventBus {
    /// Records and broadcasts a `Normal` event.
    pub fn normal(
        &self,
        reason: &str,
        subject: &str,
        message: impl Into<String>,
        data: serde_json::Value,
    ) {
        self.emit("Normal", reason, subject, message.into(), data);
    }

    /// Records and broadcasts a `Warning` event.
    pub fn warning(
        &self,
        reason: &str,
        subject: &str,
        message: impl Into<String>,
        data: serde_json::Value,
    ) {
        self.emit("Warning", reason, subject, message.into(), data);
    }

    fn emit(
        &self,
        level: &str,
        reason: &str,
        subject: &str,
        message: String,
        data: serde_json::Value,
    ) {
        // One lock for seq + history keeps the history ordered by seq.
        let mut history = lock(&self.history);
        let seq = {
            let mut next = lock(&self.next_seq);
            let seq = *next;
            *next += 1;
            seq
        };
        let event = Event {
            seq,
            time: now_rfc3339(),
            level: level.into(),
            reason: reason.into(),
            subject: subject.into(),
            message,
            data,
        };
        tracing::info!(target: "chaoslab::events", reason, subject, "{}", event.message);
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        // No subscriber is fine.
        let _ = self.live.send(event);
    }

    /// Events with `seq > since`, oldest first, at most `limit`, the newest.
    pub fn history(&self, since: u64, limit: usize) -> Vec<Event> {
        let history = lock(&self.history);
        let matching: Vec<&Event> = history.iter().filter(|e| e.seq > since).collect();
        let skip = matching.len().saturating_sub(limit);
        matching.into_iter().skip(skip).cloned().collect()
    }

    /// A live subscription (events from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }
}

/// Locks a mutex, recovering from poisoning (the data is plain values).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_ordered() {
        let bus = EventBus::default();
        for i in 0..(HISTORY + 10) {
            bus.normal("Tick", "lab", format!("{i}"), serde_json::Value::Null);
        }
        let all = bus.history(0, usize::MAX);
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all.first().unwrap().seq, 11);
        assert_eq!(bus.history(all.last().unwrap().seq - 2, 10).len(), 2);
        assert_eq!(bus.history(0, 3).len(), 3);
    }

    #[tokio::test]
    async fn live_subscribers_see_new_events() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        bus.warning(
            "OOMKilled",
            "r1",
            "over the limit",
            serde_json::json!({"rss_mb": 600}),
        );
        let e = rx.recv().await.unwrap();
        assert_eq!(
            (e.reason.as_str(), e.level.as_str()),
            ("OOMKilled", "Warning")
        );
        assert_eq!(e.data["rss_mb"], 600);
    }
}
