//! The closed model (and `--rate max`): a set of users, each a task that
//! loops pick-a-task → send → wait for the answer → think. The runner sets
//! how many users there should be; this adds or retires users to match.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::http::Session;
use crate::parse::WaitRange;
use crate::sample::Sample;
use crate::shared::Shared;
use crate::threads::Threads;

/// Samples a user collects before handing them to the aggregator.
const BATCH: usize = 64;
/// Longest a finished sample waits in a user's batch.
const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// The running users.
pub struct Users {
    shared: Arc<Shared>,
    wait: WaitRange,
    stop: CancellationToken,
    active: Vec<CancellationToken>,
    /// Every user task, retired or not (finished ones are reaped on each
    /// `set_target`); cancelled when the run aborts after the stop grace.
    tasks: JoinSet<()>,
    /// Where user tasks run.
    threads: Threads,
    seed: u64,
}

impl Users {
    /// No users yet; `set_target` starts them.
    pub fn new(shared: Arc<Shared>, wait: WaitRange, threads: Threads) -> Self {
        Self {
            shared,
            wait,
            stop: CancellationToken::new(),
            active: Vec::new(),
            tasks: JoinSet::new(),
            threads,
            seed: rand::random(),
        }
    }

    /// Starts or retires users to reach `target` (fractional targets from
    /// a ramp round up: the first user starts at once, as in Locust).
    pub fn set_target(&mut self, target: f64) {
        let want = (target - 1e-6).ceil().max(0.0) as usize;
        while self.active.len() < want {
            let token = self.stop.child_token();
            self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let user = user(self.shared.clone(), self.wait, token.clone(), self.seed);
            self.tasks.spawn_on(user, self.threads.next());
            self.active.push(token);
        }
        while self.active.len() > want {
            if let Some(token) = self.active.pop() {
                token.cancel();
            }
        }
        while self.tasks.try_join_next().is_some() {}
        let running = self.active.len() as u64;
        self.shared
            .gauges
            .peak
            .fetch_max(running, Ordering::Relaxed);
    }

    /// Users running now.
    pub fn count(&self) -> usize {
        self.active.len()
    }

    /// Tells every user to finish its current request and stop; those
    /// still busy when the run aborts (`Shared::abort`) are cancelled.
    pub fn stop(self) {
        self.stop.cancel();
        let abort = self.shared.abort.clone();
        let mut tasks = self.tasks;
        let threads = self.threads;
        tokio::spawn(async move {
            tokio::select! {
                () = async { while tasks.join_next().await.is_some() {} } => {}
                () = abort.cancelled() => tasks.abort_all(),
            }
            // The generator threads end once their users are gone.
            drop(threads);
        });
    }
}

async fn user(shared: Arc<Shared>, wait: WaitRange, me: CancellationToken, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut session = Session::default();
    let abort = shared.abort.child_token();
    let total = shared.mix.total_weight();
    let mut batch = Vec::with_capacity(BATCH);
    let mut flushed = Instant::now();
    while !me.is_cancelled() {
        let index = shared.mix.pick(rng.random_range(0..total));
        let (Some(task), Some(wire)) = (shared.mix.tasks.get(index), shared.wires.get(index))
        else {
            break;
        };
        shared.gauges.in_flight.fetch_add(1, Ordering::Relaxed);
        let send = session.send(
            &shared.target,
            index,
            task,
            wire,
            Instant::now(),
            shared.timeout,
        );
        let sample = tokio::select! {
            sample = send => Some(sample),
            () = abort.cancelled() => None,
        };
        shared.gauges.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(sample) = sample else { break };
        batch.push(sample);
        let think = think_time(&mut rng, wait);
        if !think.is_zero() || batch.len() >= BATCH || flushed.elapsed() >= FLUSH_AFTER {
            if !flush(&shared, &mut batch).await {
                return;
            }
            flushed = Instant::now();
        }
        if !think.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(think) => {}
                () = me.cancelled() => break,
            }
        }
    }
    flush(&shared, &mut batch).await;
}

/// Hands the batch to the aggregator; false once the run is gone.
async fn flush(shared: &Shared, batch: &mut Vec<Sample>) -> bool {
    if batch.is_empty() {
        return true;
    }
    let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
    shared.tx.send(full).await.is_ok()
}

fn think_time(rng: &mut StdRng, wait: WaitRange) -> Duration {
    if wait.max <= wait.min {
        return wait.min;
    }
    let (lo, hi) = (wait.min.as_secs_f64(), wait.max.as_secs_f64());
    Duration::from_secs_f64(rng.random_range(lo..hi))
}
