//! The lab's state file, `<state dir>/lab.json` (mode 0600): how the CLI in
//! another terminal finds the running lab (pid, URLs) and authenticates to
//! its control API (token). Written once everything is bound, removed when
//! the lab stops; a file whose pid is dead is stale and replaced.

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

    /// Writes it with mode 0600.
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
