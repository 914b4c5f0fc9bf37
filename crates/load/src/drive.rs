//! What the load-making side shares (target, tasks, the sample channel,
//! the abort signal, gauges) and the `Driver` that hides which model is
//! running from the runner: it only sets a target and asks for the load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::arrivals::Arrivals;
use crate::config::Model;
use crate::http::Target;
use crate::parse::WaitRange;
use crate::sample::Sample;
use crate::scenario::TaskMix;
use crate::threads::Threads;
use crate::users::Users;

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

/// The model at work.
pub enum Driver {
    /// Closed model or `max`.
    Users(Users),
    /// Open model.
    Arrivals(Arrivals),
}

impl Driver {
    /// Starts the driver of `model` with zero load; users run on
    /// `threads` generator threads.
    pub fn start(
        model: &Model,
        shared: Arc<Shared>,
        wait: WaitRange,
        max_in_flight: usize,
        threads: usize,
    ) -> std::io::Result<Self> {
        Ok(match model {
            Model::Closed(_) => Self::Users(Users::new(shared, wait, Threads::start(threads)?)),
            Model::Max(_) => Self::Users(Users::new(
                shared,
                WaitRange::ZERO,
                Threads::start(threads)?,
            )),
            Model::Open(_) => Self::Arrivals(Arrivals::start(shared, max_in_flight)?),
        })
    }

    /// Sets the load from the plan: users, or requests per second.
    pub fn set_target(&mut self, target: f64) {
        match self {
            Self::Users(u) => u.set_target(target),
            Self::Arrivals(a) => a.set_rate(target),
        }
    }

    /// The load now: users running, or the arrival rate.
    pub fn load(&self) -> f64 {
        match self {
            Self::Users(u) => u.count() as f64,
            Self::Arrivals(a) => a.rate(),
        }
    }

    /// Stops making new requests; those in flight may finish.
    pub fn stop(self) {
        match self {
            Self::Users(u) => u.stop(),
            Self::Arrivals(a) => a.stop(),
        }
    }
}

impl Gauges {
    /// Current in-flight count.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}
