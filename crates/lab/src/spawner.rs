//! Spawns the lab's children (redis-server, replicas) so that they die with
//! the lab even when the lab is SIGKILLed: each child asks the kernel for a
//! parent-death signal (`PR_SET_PDEATHSIG`) between fork and exec.
//!
//! The kernel sends that signal when the *thread* that forked the child
//! exits, not the process, and tokio's blocking threads come and go. So every
//! spawn happens on one dedicated OS thread that lives as long as the
//! [`Spawner`] (the lab). Children also get their own process group, so a
//! Ctrl-C in the terminal reaches only the lab, which then stops them in
//! order.
//!
//! A child is signalled through a [`ProcessHandle`], a pidfd: a signal sent
//! through it reaches that process or nobody, never a process that got its
//! pid after it was reaped (pids are recycled, and 32768 of them go
//! quickly on a busy machine).

use std::io;
use std::os::fd::OwnedFd;
use std::thread;

use chaoslab_foundation::proc::alive;
use rustix::process::{Pid, PidfdFlags, Signal};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// Which signal a child gets when the lab dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeathSignal {
    /// Graceful stop (Redis flushes its AOF).
    Term,
    /// Immediate stop (a replica that may be hung).
    Kill,
}

struct Job {
    command: Command,
    signal: DeathSignal,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// A handle to the spawning thread; cheap to clone. The thread ends when the
/// last handle is dropped (and so do the children's parent-death signals:
/// drop it only after every child has been stopped).
#[derive(Debug, Clone)]
pub struct Spawner {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("command", &self.command)
            .finish()
    }
}

impl Spawner {
    /// Starts the spawning thread; must be called inside a tokio runtime
    /// (children are registered with it for `wait`).
    pub fn start() -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::current();
        let (jobs, mut rx) = mpsc::channel::<Job>(16);
        thread::Builder::new()
            .name("chaoslab-spawner".into())
            .spawn(move || {
                let _guard = runtime.enter();
                while let Some(mut job) = rx.blocking_recv() {
                    prepare(&mut job.command, job.signal);
                    let _ = job.reply.send(job.command.spawn());
                }
            })?;
        Ok(Self { jobs })
    }

    /// Spawns `command` on the spawning thread.
    pub async fn spawn(&self, command: Command, signal: DeathSignal) -> io::Result<Child> {
        let (reply, result) = oneshot::channel();
        self.jobs
            .send(Job {
                command,
                signal,
                reply,
            })
            .await
            .map_err(|_| io::Error::other("the lab's spawner thread is gone"))?;
        result
            .await
            .map_err(|_| io::Error::other("the lab's spawner thread dropped a spawn"))?
    }
}

fn prepare(command: &mut Command, signal: DeathSignal) {
    let signal = match signal {
        DeathSignal::Term => libc::SIGTERM,
        DeathSignal::Kill => libc::SIGKILL,
    };
    let parent = std::process::id() as libc::pid_t;
    command.process_group(0).kill_on_drop(true);
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: prctl and getppid are system
    // calls, and the errors are built without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The lab may have died between fork and prctl: then nobody
            // would ever send the signal.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// One child process, held by a pidfd (Linux 5.3 or later): signals sent
/// through it reach this process or nobody, and it says when the process
/// has exited without reaping it (so its pid, and the process group it
/// leads, cannot be recycled until its owner reaps it).
#[derive(Debug)]
pub struct ProcessHandle {
    pid: u32,
    fd: AsyncFd<OwnedFd>,
}

impl ProcessHandle {
    /// A handle on `child`, which its owner has not reaped yet (its `wait`
    /// has not returned), so its pid is still its own. Must be called
    /// inside a tokio runtime.
    pub fn open(child: &Child) -> io::Result<Self> {
        let pid = child
            .id()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the process was reaped"))?;
        let raw = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a pid"))?;
        let fd = rustix::process::pidfd_open(raw, PidfdFlags::empty()).map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("pidfd_open({pid}): {e} (the lab needs Linux 5.3 or later)"),
            )
        })?;
        #[allow(unsafe_code)]
        // SAFETY: registering asks that the descriptor stay open and be the
        // same file while registered: the OwnedFd moves into the AsyncFd,
        // which deregisters it before closing it when dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(Self { pid, fd })
    }

    /// The process's pid (for display: never signal it by number).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` to this process; an error of kind `NotFound` (ESRCH)
    /// once it has been reaped, whoever has its pid now.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        let signal = Signal::from_named_raw(signal).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("no signal {signal}"))
        })?;
        rustix::process::pidfd_send_signal(self.fd.get_ref(), signal).map_err(|e| {
            if e == rustix::io::Errno::SRCH {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("process {} is gone", self.pid),
                )
            } else {
                io::Error::from(e)
            }
        })
    }

    /// Sends `signal` to the process group this process leads (every child
    /// is spawned as its own group leader). Only while the process is not
    /// reaped: then the group id is surely still this group's (a zombie
    /// leader keeps it), which its owner guarantees by signalling before
    /// its `wait` returns.
    pub fn signal_group(&self, signal: i32) {
        signal_group(self.pid, signal);
    }

    /// Resolves once the process has exited (it may still be a zombie:
    /// this does not reap it).
    pub async fn exited(&self) {
        // Readable = exited.
        if let Err(e) = self.fd.readable().await {
            // Never seen; then /proc tells, as the pid stays this process's
            // until its owner reaps it.
            tracing::warn!(pid = self.pid, error = %e, "cannot poll a pidfd");
            while alive(self.pid) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Sends `signal` to process `pid` (ignoring "no such process"). Only for
/// a process its caller has not reaped (redis-server, whose `Child` the lab
/// holds): anything else goes through a [`ProcessHandle`].
pub fn signal(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Sends `signal` to the process group led by `pid` (every child is spawned
/// as its own group leader), so a replica's own children go with it.
pub fn signal_group(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid
    // names a process group.
    unsafe {
        libc::kill(-pid, signal);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use chaoslab_foundation::proc::ProcStat;

    use super::*;

    fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "not within 20 s: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn spawns_in_its_own_process_group() {
        let spawner = Spawner::start().unwrap();
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut child = spawner.spawn(command, DeathSignal::Kill).await.unwrap();
        let handle = ProcessHandle::open(&child).unwrap();
        let pid = handle.pid();
        let stat = ProcStat::read(pid).unwrap();
        assert_eq!(stat.ppid, std::process::id(), "our child");
        assert_eq!(stat.pgrp, pid, "leads its own process group");
        handle.signal(libc::SIGKILL).unwrap();
        child.wait().await.unwrap();

        let mut command = Command::new("sh");
        command.arg("-c").arg("exit 3");
        let mut child = spawner.spawn(command, DeathSignal::Kill).await.unwrap();
        assert_eq!(child.wait().await.unwrap().code(), Some(3));
        let missing = spawner
            .spawn(
                Command::new("/nonexistent/chaoslab-image"),
                DeathSignal::Kill,
            )
            .await;
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    /// Where the helper process writes its child's pid.
    const HELPER_ENV: &str = "CHAOSLAB_SPAWNER_HELPER_PID_FILE";

    /// Not a test: the helper process of
    /// `a_child_dies_when_the_process_that_spawned_it_is_killed` (this test
    /// binary run again). It spawns `sleep` through a Spawner, writes its
    /// pid and waits for its stdin to close, or to be killed.
    #[test]
    #[ignore = "helper process, run by another test"]
    fn spawner_helper_process() {
        let Some(out) = std::env::var_os(HELPER_ENV) else {
            return;
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _child = runtime.block_on(async {
            let spawner = Spawner::start().unwrap();
            let mut command = Command::new("sleep");
            command.arg("120");
            let child = spawner.spawn(command, DeathSignal::Kill).await.unwrap();
            std::fs::write(&out, child.id().unwrap().to_string()).unwrap();
            (spawner, child)
        });
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    }

    /// PR_SET_PDEATHSIG has no /proc field: its effect is tested. A helper
    /// process spawns a child through a Spawner and is SIGKILLed (no chance
    /// to clean up): the kernel kills the child.
    #[test]
    fn a_child_dies_when_the_process_that_spawned_it_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child.pid");
        let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "spawner::tests::spawner_helper_process",
                "--ignored",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, &pid_file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Killed on every path out of this test.
        struct Cleanup(u32, Option<u32>);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                signal(self.0, libc::SIGKILL);
                if let Some(child) = self.1.filter(|&p| alive(p)) {
                    signal(child, libc::SIGKILL);
                }
            }
        }
        let mut cleanup = Cleanup(helper.id(), None);
        let child: u32 = until("the helper's child started", || {
            std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
        });
        cleanup.1 = Some(child);
        let stat = ProcStat::read(child).unwrap();
        assert_eq!(stat.ppid, helper.id(), "the helper's child");
        assert_eq!(stat.pgrp, child, "its own process group");
        assert!(alive(child));
        signal(helper.id(), libc::SIGKILL);
        helper.wait().unwrap();
        until("the child died with the helper", || {
            (!alive(child)).then_some(())
        });
        drop(cleanup);
    }

    /// Makes the kernel give `pid` to a new, unrelated process (root only:
    /// `/proc/sys/kernel/ns_last_pid`); none when that cannot be done.
    fn recycle(pid: u32) -> Option<std::process::Child> {
        for _ in 0..500 {
            if let Err(e) = std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()) {
                eprintln!("cannot set ns_last_pid ({e}): pid recycling not exercised");
                return None;
            }
            let mut other = std::process::Command::new("sleep").arg("30").spawn().ok()?;
            if other.id() == pid {
                return Some(other);
            }
            let _ = other.kill();
            let _ = other.wait();
        }
        eprintln!("pid {pid} not recycled in 500 tries (a busy machine): not exercised");
        None
    }

    #[tokio::test]
    async fn a_process_handle_never_signals_a_recycled_pid() {
        let spawner = Spawner::start().unwrap();
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut child = spawner.spawn(command, DeathSignal::Kill).await.unwrap();
        let handle = ProcessHandle::open(&child).unwrap();
        let pid = handle.pid();
        handle.signal(libc::SIGKILL).unwrap();
        tokio::time::timeout(Duration::from_secs(10), handle.exited())
            .await
            .expect("exit seen through the pidfd");
        // Exited but not reaped: still ours, a signal is harmless.
        assert!(handle.signal(libc::SIGTERM).is_ok());
        child.wait().await.unwrap();
        assert!(
            ProcessHandle::open(&child).is_err(),
            "reaped: no new handle"
        );
        assert_eq!(
            handle.signal(libc::SIGKILL).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        if let Some(mut other) = recycle(pid) {
            // What kill(pid) would now hit; the handle does not.
            assert_eq!(
                handle.signal(libc::SIGKILL).unwrap_err().kind(),
                io::ErrorKind::NotFound
            );
            assert!(other.try_wait().unwrap().is_none(), "the new process lives");
            let _ = other.kill();
            let _ = other.wait();
        }
    }

    #[tokio::test]
    async fn a_spawned_child_is_alive_until_killed_and_reaped() {
        let spawner = Spawner::start().unwrap();
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut child = spawner.spawn(command, DeathSignal::Kill).await.unwrap();
        let pid = child.id().unwrap();
        assert!(alive(pid));
        signal(pid, libc::SIGKILL);
        child.wait().await.unwrap();
        assert!(!alive(pid));
    }
}
