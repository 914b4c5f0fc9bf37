//! The open model: a scheduler that starts requests at a planned arrival
//! rate whatever the server does. Each arrival keeps its scheduled time and
//! latency counts from it, so when the server stalls the stall appears as
//! latency instead of silently sending less (coordinated omission). In
//! flight requests are bounded by a semaphore; arrivals that find it full
//! wait for a slot and are counted as late.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::http::Pool;
use crate::shared::Shared;
use crate::threads::Threads;

/// An arrival later than this after its schedule counts as late.
const LATE: Duration = Duration::from_millis(10);

/// The running scheduler.
pub struct Arrivals {
    rate: watch::Sender<f64>,
    stop: CancellationToken,
}

impl Arrivals {
    /// Starts the scheduler at rate 0 on a generator thread of its own
    /// (its timers and requests undisturbed by the aggregator); `set_rate`
    /// sets the pace.
    pub fn start(shared: Arc<Shared>, max_in_flight: usize) -> std::io::Result<Self> {
        let (rate, rate_rx) = watch::channel(0.0);
        let stop = CancellationToken::new();
        let mut threads = Threads::start(1)?;
        let scheduler = threads.next().spawn(schedule(
            shared,
            rate_rx,
            stop.clone(),
            max_in_flight.max(1),
        ));
        // The thread lives until the scheduler has drained its requests.
        tokio::spawn(async move {
            let _ = scheduler.await;
            drop(threads);
        });
        Ok(Self { rate, stop })
    }

    /// Sets the arrival rate, requests per second.
    pub fn set_rate(&mut self, per_sec: f64) {
        let per_sec = per_sec.max(0.0);
        self.rate.send_if_modified(|r| {
            let changed = (*r - per_sec).abs() > 1e-9;
            *r = per_sec;
            changed
        });
    }

    /// The rate now.
    pub fn rate(&self) -> f64 {
        *self.rate.borrow()
    }

    /// Stops scheduling; requests in flight go on.
    pub fn stop(self) {
        self.stop.cancel();
    }
}

async fn schedule(
    shared: Arc<Shared>,
    rate: watch::Receiver<f64>,
    stop: CancellationToken,
    max_in_flight: usize,
) {
    let mut inflight = JoinSet::new();
    arrive(&shared, rate, &stop, max_in_flight, &mut inflight).await;
    // Stopped: requests in flight may finish until the run aborts them.
    tokio::select! {
        () = async { while inflight.join_next().await.is_some() {} } => {}
        () = shared.abort.cancelled() => inflight.abort_all(),
    }
}

/// Starts arrivals on schedule until `stop`; each one is a task in
/// `inflight` holding a semaphore slot.
async fn arrive(
    shared: &Arc<Shared>,
    mut rate: watch::Receiver<f64>,
    stop: &CancellationToken,
    max_in_flight: usize,
    inflight: &mut JoinSet<()>,
) {
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let pool = Arc::new(Pool::new(max_in_flight));
    let mut rng = StdRng::seed_from_u64(rand::random());
    let total = shared.mix.total_weight();
    // The previous arrival's scheduled time: the next one is 1/rate later,
    // recomputed whenever the rate changes (ramps).
    let mut last: Option<Instant> = None;
    loop {
        let per_sec = *rate.borrow_and_update();
        if per_sec <= 0.0 {
            tokio::select! {
                changed = rate.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = stop.cancelled() => return,
            }
            last = None;
            continue;
        }
        let next = match last {
            // A ramp passes through tiny rates: at most an hour between
            // two arrivals (the rate is re-read at least that often).
            Some(prev) => prev + Duration::from_secs_f64((1.0 / per_sec).min(3600.0)),
            None => Instant::now(),
        };
        if next > Instant::now() {
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                changed = rate.changed() => {
                    if changed.is_err() { return }
                    continue;
                }
                () = stop.cancelled() => return,
            }
        }
        if stop.is_cancelled() {
            return;
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::select! {
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                () = stop.cancelled() => return,
            },
        };
        let intended = next;
        if intended.elapsed() > LATE {
            shared.gauges.late.fetch_add(1, Ordering::Relaxed);
        }
        let index = shared.mix.pick(rng.random_range(0..total));
        while inflight.try_join_next().is_some() {}
        inflight.spawn(send_one(
            shared.clone(),
            pool.clone(),
            index,
            intended,
            permit,
        ));
        last = Some(next);
    }
}

/// One arrival: sends task `index` on a pooled session, counting it in
/// flight, and hands the sample to the aggregator; `permit` holds its
/// slot until it is done.
async fn send_one(
    shared: Arc<Shared>,
    pool: Arc<Pool>,
    index: usize,
    intended: Instant,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    let (Some(task), Some(wire)) = (shared.mix.tasks.get(index), shared.wires.get(index)) else {
        return;
    };
    let now = shared.gauges.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    shared.gauges.peak.fetch_max(now, Ordering::Relaxed);
    let mut session = pool.take();
    let sample = session
        .send(
            &shared.target,
            index,
            task,
            wire,
            intended.into_std(),
            shared.timeout,
        )
        .await;
    shared.gauges.in_flight.fetch_sub(1, Ordering::Relaxed);
    pool.put(session);
    let _ = shared.tx.send(vec![sample]).await;
}
