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

use std::io;
use std::thread;

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

/// Sends `signal` to process `pid` (ignoring "no such process").
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

/// Whether a process with this pid exists (and is not a zombie we could see).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spawns_with_a_death_signal_in_its_own_group() {
        let spawner = Spawner::start().unwrap();
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("grep -E '^SigPnd|^ShdPnd' /proc/self/status >/dev/null; exit 3");
        let mut child = spawner.spawn(command, DeathSignal::Kill).await.unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(3));
        let missing = spawner
            .spawn(
                Command::new("/nonexistent/chaoslab-image"),
                DeathSignal::Kill,
            )
            .await;
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn alive_tracks_a_process() {
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
