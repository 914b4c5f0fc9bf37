//! The lab's state files. `<state dir>/lab.json` (mode 0600): how the CLI
//! in another terminal finds the running lab (pid, URLs) and authenticates
//! to its control API (token). Written once everything is bound,
//! atomically (a temp file renamed over it: a crash never leaves half a
//! file), removed when the lab stops; a file whose process is gone, or
//! whose pid now names another process (its start time differs), is stale.
//!
//! `<state dir>/lab.lock`: one lab per directory. The lab holds an
//! exclusive `flock` on it for its whole life and writes its pid in it; a
//! second `chaoslab up` in the directory fails at once naming that pid. The
//! kernel drops the lock when the lab's process ends however it ends, so a
//! crashed lab never blocks the next one; the file itself stays (removing
//! a lock file races with the next lab opening it).

use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chaoslab_foundation::proc;
use rustix::fs::FlockOperation;
use serde::{Deserialize, Serialize};

use crate::files::write_private;

/// Contents of `lab.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub pid: u32,
    /// When the lab's process started (clock ticks after boot, field 22 of
    /// `/proc/<pid>/stat`): with the pid, names the lab's process for good.
    /// Absent in files written before it existed.
    #[serde(default)]
    pub pid_start_time: Option<u64>,
    pub started_at: String,
    pub ingress_url: String,
    pub control_url: String,
    /// Bearer token of the control API.
    pub token: String,
    pub redis: String,
    /// Pid of the lab's redis-server (none with an external Redis).
    pub redis_pid: Option<u32>,
}

impl StateFile {
    /// `<dir>/lab.json`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("lab.json")
    }

    /// Reads the state file of the lab in `state_dir`.
    pub fn read(state_dir: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(Self::path(state_dir))?;
        serde_json::from_str(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Writes it atomically with mode 0600.
    pub fn write(&self, state_dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        write_private(&Self::path(state_dir), &text)
    }

    /// Whether the lab that wrote this file still runs: its pid is alive,
    /// started when the lab's did (a recycled pid started later) and runs
    /// chaoslab.
    pub fn lab_alive(&self) -> bool {
        let same_process = match self.pid_start_time {
            Some(recorded) => proc::start_time(self.pid) == Some(recorded),
            // A file of an older chaoslab: the command line is all there is.
            None => true,
        };
        same_process
            && proc::alive(self.pid)
            && proc::cmdline(self.pid)
                .is_ok_and(|args| args.iter().any(|arg| arg.contains("chaoslab")))
    }

    /// Removes the file if it is this one's (same pid).
    pub fn remove_if_mine(state_dir: &Path, pid: u32) {
        if Self::read(state_dir).is_ok_and(|s| s.pid == pid) {
            let _ = std::fs::remove_file(Self::path(state_dir));
        }
    }
}

/// Why the lab lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another lab holds it; its pid as it wrote it (none if it had not
    /// written it yet).
    #[error("the lab lock is held by pid {}", .pid.map_or("(unknown)".into(), |p| p.to_string()))]
    Held { pid: Option<u32> },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lab's hold on its state dir (see the module docs); released when
/// dropped, or by the kernel when the process ends.
#[derive(Debug)]
pub struct LabLock {
    _file: std::fs::File,
}

impl LabLock {
    /// `<dir>/lab.lock`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("lab.lock")
    }

    /// Takes the lock without waiting and writes this process's pid in it.
    pub fn acquire(state_dir: &Path) -> Result<Self, LockError> {
        let path = Self::path(state_dir);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // Close-on-exec (std's default): no child inherits the lock.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(LockError::Held {
                    pid: holder_pid(&mut file),
                });
            }
            Err(e) => return Err(io(e.into())),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()))
            .map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// The pid the holder of the lock wrote; it writes it right after taking
/// the lock, so an empty file is read again for a moment.
fn holder_pid(file: &mut std::fs::File) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut text = String::new();
        let read = file.rewind().and_then(|()| file.read_to_string(&mut text));
        if let Ok(pid) = text.trim().parse() {
            return Some(pid);
        }
        if read.is_err() || Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn state(pid: u32) -> StateFile {
        StateFile {
            pid,
            pid_start_time: None,
            started_at: "2025-01-01T00:00:00Z".into(),
            ingress_url: "http://127.0.0.1:8000".into(),
            control_url: "http://127.0.0.1:8090".into(),
            token: "t".repeat(40),
            redis: "test".into(),
            redis_pid: Some(pid + 1),
        }
    }

    #[test]
    fn the_state_file_is_replaced_atomically_and_private() {
        let dir = tempfile::tempdir().unwrap();
        state(1).write(dir.path()).unwrap();
        let path = StateFile::path(dir.path());
        let mut before = std::fs::File::open(&path).unwrap();
        state(2).write(dir.path()).unwrap();
        // Whoever had the old file open reads the whole old file: it was
        // replaced, not truncated and rewritten.
        let mut text = String::new();
        std::io::Read::read_to_string(&mut before, &mut text).unwrap();
        assert_eq!(serde_json::from_str::<StateFile>(&text).unwrap(), state(1));
        assert_eq!(StateFile::read(dir.path()).unwrap(), state(2));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1, "no temp file left");
        StateFile::remove_if_mine(dir.path(), 3);
        assert!(path.exists(), "not mine");
        StateFile::remove_if_mine(dir.path(), 2);
        assert!(!path.exists());
    }

    /// A lab.json whose pid is alive and runs chaoslab (this test binary)
    /// but started at another time is a recycled pid: not the lab.
    #[test]
    fn a_recycled_pid_is_not_the_lab() {
        let me = std::process::id();
        let started = proc::start_time(me).expect("own start time");
        let mut json = serde_json::to_value(state(me)).unwrap();
        json["pid_start_time"] = serde_json::json!(started);
        let file: StateFile = serde_json::from_value(json.clone()).unwrap();
        assert!(file.lab_alive(), "same pid, same start: the lab");
        json["pid_start_time"] = serde_json::json!(started + 1);
        let recycled: StateFile = serde_json::from_value(json).unwrap();
        assert!(!recycled.lab_alive(), "same pid, other start: not the lab");
    }

    #[test]
    fn one_lock_holder_per_directory() {
        let dir = tempfile::tempdir().unwrap();
        let lock = LabLock::acquire(dir.path()).unwrap();
        let text = std::fs::read_to_string(LabLock::path(dir.path())).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        // flock belongs to the open file: a second open conflicts even in
        // the same process, as a second `chaoslab up` would.
        match LabLock::acquire(dir.path()) {
            Err(LockError::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(lock);
        let again = LabLock::acquire(dir.path()).expect("released when dropped");
        let mode = std::fs::metadata(LabLock::path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "owner only");
        drop(again);
    }
}
