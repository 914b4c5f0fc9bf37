//! The `Driver` that hides which model is running from the runner: it
//! only sets a target and asks for the load. What the users and arrivals
//! it drives share lives below them, in [`crate::shared`].

use std::sync::Arc;

use crate::arrivals::Arrivals;
use crate::config::Model;
use crate::parse::WaitRange;
use crate::shared::Shared;
use crate::threads::Threads;
use crate::users::Users;

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
