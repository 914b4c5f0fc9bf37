//! Processes a test started or observed: is one alive, signal it, wait for
//! its exit under a deadline. Tests only ever signal pids they started (or
//! that the lab they started reported), never by name.

use std::process::{Child, ExitStatus};
use std::time::Duration;

use crate::wait;

/// Whether a process exists and is not a zombie (`/proc`, read by
/// `chaoslab-foundation` as the lab reads it).
pub use chaoslab_foundation::proc::alive;

/// Sends `signal` to `pid`; whether it was delivered.
pub fn signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    rc == 0
}

/// Sends `signal` to every process of the group `pgid` (a child started
/// with `process_group(0)` leads its own: a browser and its helpers).
pub fn signal_group(pgid: u32, signal: i32) -> bool {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return false;
    };
    if pgid <= 1 {
        return false;
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(-pgid, signal) };
    rc == 0
}

/// Waits up to `deadline` for `child` to exit; its status, or `None` if it
/// is still running then.
pub fn wait_exit(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    wait::poll(deadline, || child.try_wait().ok().flatten())
}

/// Kills and reaps `child` (SIGKILL; already exited is fine).
pub fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
