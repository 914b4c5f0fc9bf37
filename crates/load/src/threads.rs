//! Generator threads, as wrk's `-t`: each OS thread runs its own
//! single-threaded tokio runtime (its own epoll and timers); users are
//! spread over them, and the open model's scheduler has one to itself. A user, its connection and its timers then live on
//! one thread, so sending a request costs no cross-thread wake-up; only
//! batches of samples cross to the aggregator.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How long a thread may take to build its runtime.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Running generator threads; they stop when this is dropped.
pub struct Threads {
    handles: Vec<Handle>,
    next: usize,
    stop: CancellationToken,
}

impl Threads {
    /// Starts `n` threads (at least one).
    pub fn start(n: usize) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let (tx, rx) = std_mpsc::channel();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("load-gen-{i}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(runtime.handle().clone()));
                    // Drives the users spawned here until the run ends;
                    // dropping the runtime then ends whatever is left.
                    runtime.block_on(stop.cancelled());
                })?;
            let handle = rx
                .recv_timeout(START_TIMEOUT)
                .map_err(|_| std::io::Error::other("a generator thread did not start"))??;
            handles.push(handle);
        }
        Ok(Self {
            handles,
            next: 0,
            stop,
        })
    }

    /// The thread for the next user (round robin).
    pub fn next(&mut self) -> &Handle {
        let i = self.next % self.handles.len();
        self.next = self.next.wrapping_add(1);
        &self.handles[i]
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
