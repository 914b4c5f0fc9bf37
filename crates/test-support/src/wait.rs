//! Deadline-bounded waits: poll a condition until it holds, give up after a
//! deadline with a message naming what was awaited and for how long. This
//! is how tests synchronise with processes and servers — never a fixed
//! sleep, which is either too long on a fast machine or too short on a
//! loaded one. Deadlines are generous ([`GENEROUS`]): a slow machine makes
//! a test slower, never red.

use std::future::Future;
use std::time::{Duration, Instant};

/// The deadline for "this must happen": long enough that only a real
/// failure (not a loaded 2-core machine) reaches it.
pub const GENEROUS: Duration = Duration::from_secs(60);

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(20);

/// The panic message of a wait that gave up.
fn gave_up(what: &str, deadline: Duration) -> String {
    format!("timed out after {deadline:?} waiting for: {what}")
}

/// Polls `check` until it returns `Some`, or `None` once `deadline` has
/// passed (for fixtures that report failure themselves).
pub fn poll<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `check` until it returns `Some`; panics naming `what` after
/// `deadline`.
pub fn eventually<T>(deadline: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll(deadline, check).unwrap_or_else(|| panic!("{}", gave_up(what, deadline)))
}

/// Polls `check` until it holds; panics naming `what` after `deadline`.
pub fn until(deadline: Duration, what: &str, mut check: impl FnMut() -> bool) {
    eventually(deadline, what, || check().then_some(()))
}

/// Async [`poll`].
pub async fn poll_async<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= end {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Async [`eventually`].
pub async fn eventually_async<T, F, Fut>(deadline: Duration, what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll_async(deadline, check).await {
        Some(value) => value,
        None => panic!("{}", gave_up(what, deadline)),
    }
}

/// Async [`until`].
pub async fn until_async<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_async(deadline, what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await
}

/// [`eventually`] for async code polling a cheap synchronous `check` (it
/// yields to the runtime between polls instead of blocking it).
pub async fn eventually_from_async<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    eventually_async(deadline, what, || {
        let value = check();
        async move { value }
    })
    .await
}

/// Polls a cheap synchronous `check` from async code until it holds;
/// whether it did within `deadline` (for callers that report the failure
/// themselves, with the state they saw).
pub async fn holds_within(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    poll_async(deadline, || {
        let done = check();
        async move { done.then_some(()) }
    })
    .await
    .is_some()
}

/// Runs a whole test body under `bound`; panics naming `what` when it takes
/// longer (a hung test fails instead of hanging the suite).
pub async fn bounded<F: Future>(bound: Duration, what: &str, body: F) -> F::Output {
    match tokio::time::timeout(bound, body).await {
        Ok(output) => output,
        Err(_) => panic!("{}", gave_up(what, bound)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventually_returns_the_first_value() {
        let mut n = 0;
        let got = eventually(GENEROUS, "n reaches 3", || {
            n += 1;
            (n >= 3).then_some(n)
        });
        assert_eq!(got, 3);
    }

    #[test]
    fn a_wait_that_gives_up_names_what_and_how_long() {
        let panic = std::panic::catch_unwind(|| {
            until(Duration::from_millis(30), "the impossible", || false)
        })
        .expect_err("gives up");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("the impossible"), "{message}");
        assert!(message.contains("30ms"), "{message}");
    }

    #[tokio::test]
    async fn async_waits_poll_until_the_condition_holds() {
        let start = Instant::now();
        until_async(GENEROUS, "50 ms passed", || async {
            start.elapsed() >= Duration::from_millis(50)
        })
        .await;
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
