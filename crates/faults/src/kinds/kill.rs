//! `kill`: a replica's process is signalled (KILL or TERM), as a container
//! crash; one replica (`replica`), a random ready one of the active revision
//! (neither given), or all of the active revision (`all`). The lab's
//! supervisor sees the exit and restarts it. A one-shot fault.
//!
//! The signal goes through the replica's pidfd, held by the platform for
//! its current process, never to a pid number read from a snapshot: by
//! the time it is sent, that pid may belong to another process.

use std::sync::Arc;
use std::time::Duration;

use rand::seq::IndexedRandom;
use serde::Deserialize;
use serde_json::json;

use chaoslab_lab::SignalError;

use crate::LabHandle;
use crate::error::FaultError;
use crate::fault_kind::{Fault, Injected};

/// `{"kind":"kill","replica":ID|null,"all":bool,"signal":"KILL|TERM"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillFault {
    #[serde(default)]
    pub replica: Option<String>,
    #[serde(default)]
    pub all: bool,
    #[serde(default)]
    pub signal: Option<String>,
    /// Accepted for symmetry with other kinds; a kill is instantaneous.
    #[serde(default)]
    pub duration_seconds: Option<i64>,
}

impl KillFault {
    fn signal(&self) -> Result<(i32, &'static str), FaultError> {
        match self
            .signal
            .as_deref()
            .unwrap_or("KILL")
            .to_ascii_uppercase()
            .as_str()
        {
            "KILL" | "SIGKILL" | "9" => Ok((libc::SIGKILL, "KILL")),
            "TERM" | "SIGTERM" | "15" => Ok((libc::SIGTERM, "TERM")),
            other => Err(FaultError::bad(format!(
                "unknown signal `{other}`: use KILL or TERM"
            ))),
        }
    }

    /// The replicas to kill: (id, pid when looked at).
    fn victims(&self, lab: &LabHandle) -> Result<Vec<(String, u32)>, FaultError> {
        let replicas = lab.platform.replicas();
        if self.all && self.replica.is_some() {
            return Err(FaultError::bad("give either a replica or all, not both"));
        }
        if let Some(id) = &self.replica {
            let r = replicas.iter().find(|r| &r.id == id).ok_or_else(|| {
                let known: Vec<&str> = replicas.iter().map(|r| r.id.as_str()).collect();
                FaultError::bad(format!(
                    "unknown replica `{id}` (replicas: {})",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
            let pid = r
                .pid
                .ok_or_else(|| FaultError::Conflict(format!("replica {id} has no process now")))?;
            return Ok(vec![(id.clone(), pid)]);
        }
        let active = lab.platform.active();
        let candidates: Vec<(String, u32)> = replicas
            .iter()
            .filter(|r| Some(&r.revision) == active.as_ref())
            .filter_map(|r| r.pid.map(|pid| (r.id.clone(), pid)))
            .collect();
        if candidates.is_empty() {
            return Err(FaultError::Conflict(
                "no replica of the active revision has a process to kill".into(),
            ));
        }
        if self.all {
            return Ok(candidates);
        }
        let pick = candidates
            .choose(&mut rand::rng())
            .cloned()
            .ok_or_else(|| FaultError::Conflict("no replica to kill".into()))?;
        Ok(vec![pick])
    }
}

impl Fault for KillFault {
    fn kind(&self) -> &'static str {
        "kill"
    }

    fn check(&self, lab: &LabHandle) -> Result<(), FaultError> {
        self.signal()?;
        crate::fault_kind::check_seconds(self.duration_seconds)?;
        self.victims(lab).map(|_| ())
    }

    fn duration(&self) -> Option<Duration> {
        None
    }

    async fn inject(&self, lab: &Arc<LabHandle>, _id: &str) -> Result<Injected, FaultError> {
        let (signal, name) = self.signal()?;
        let mut killed: Vec<(String, u32)> = Vec::new();
        let mut gone = Vec::new();
        for (id, _) in self.victims(lab)? {
            match lab.platform.signal_replica(&id, signal) {
                Ok(pid) => killed.push((id, pid)),
                // Its process ended (or the replica went) since it was
                // picked: nothing to kill there.
                Err(SignalError::NoProcess(_) | SignalError::UnknownReplica(_)) => gone.push(id),
                Err(e) => return Err(FaultError::Failed(e.to_string())),
            }
        }
        if killed.is_empty() {
            return Err(FaultError::Conflict(format!(
                "no process to kill: {} ended meanwhile",
                gone.join(", ")
            )));
        }
        let ids: Vec<&str> = killed.iter().map(|(id, _)| id.as_str()).collect();
        let pids: Vec<u32> = killed.iter().map(|(_, pid)| *pid).collect();
        let mut details = serde_json::Map::new();
        details.insert("signal".into(), json!(name));
        details.insert("replicas".into(), json!(ids));
        details.insert("pids".into(), json!(pids));
        Ok(Injected {
            target: ids.join(","),
            details,
            one_shot: true,
            undo: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill(signal: Option<&str>) -> KillFault {
        KillFault {
            replica: None,
            all: false,
            signal: signal.map(String::from),
            duration_seconds: None,
        }
    }

    #[test]
    fn signals() {
        assert_eq!(kill(None).signal().unwrap(), (libc::SIGKILL, "KILL"));
        assert_eq!(
            kill(Some("term")).signal().unwrap(),
            (libc::SIGTERM, "TERM")
        );
        assert_eq!(kill(Some("SIGKILL")).signal().unwrap().1, "KILL");
        let err = kill(Some("HUP")).signal().unwrap_err();
        assert!(err.to_string().contains("unknown signal `HUP`"), "{err}");
    }
}
