//! The lab's state file, `<state dir>/lab.json` (mode 0600): how the CLI in
//! another terminal finds the running lab (pid, URLs) and authenticates to
//! its control API (token). Written once everything is bound, atomically (a
//! temp file renamed over it: a crash never leaves half a file), removed
//! when the lab stops; a file whose pid is dead is stale and replaced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::files::write_private;

/// Contents of `lab.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub pid: u32,
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

    /// Whether the lab that wrote this file still runs: its pid is alive and
    /// is a chaoslab process (not a recycled pid).
    pub fn lab_alive(&self) -> bool {
        crate::spawner::alive(self.pid)
            && std::fs::read(format!("/proc/{}/cmdline", self.pid))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("chaoslab"))
    }

    /// Removes the file if it is this one's (same pid).
    pub fn remove_if_mine(state_dir: &Path, pid: u32) {
        if Self::read(state_dir).is_ok_and(|s| s.pid == pid) {
            let _ = std::fs::remove_file(Self::path(state_dir));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn state(pid: u32) -> StateFile {
        StateFile {
            pid,
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
}
