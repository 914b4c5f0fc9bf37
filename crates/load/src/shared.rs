//! What the load-making side shares (target, tasks, the sample channel,
//! the abort signal, gauges): the context every closed-model user and
//! open-model arrival holds. It sits below the models (`users`,
//! `arrivals`) and the `drive` that chooses between them, so none of them
//! depends on another for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::http::Target;
use crate::sample::Sample;
use crate::scenario::TaskMix;

/// Counters the generator keeps about itself.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Requests sent and not yet answered.
    pub in_flight: AtomicU64,
    /// Highest concurrency seen (users or requests in flight).
    pub peak: AtomicU64,
    /// Open-model arrivals that started late.
    pub late: AtomicU64,
}

/// Read-only context of every user and arrival. Holding it keeps the
/// sample channel open: the run's drain ends when the last holder is gone.
pub struct Shared {
    /// Where requests go.
    pub target: Target,
    /// What they are.
    pub mix: TaskMix,
    /// Each task's request as bytes on the wire, prepared once.
    pub wires: Vec<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Batches of samples to the aggregator (bounded: a slow aggregator
    /// slows the senders rather than growing a queue).
    pub tx: mpsc::Sender<Vec<Sample>>,
    /// Cancels requests still in flight after the stop grace.
    pub abort: CancellationToken,
    /// Self-measurements.
    pub gauges: Arc<Gauges>,
}

impl Gauges {
    /// Current in-flight count.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}
