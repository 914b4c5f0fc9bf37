//! `timeout`: no data passes (it is read and discarded, as Toxiproxy's
//! `toxics/timeout.go`); the connection is closed `timeout` ms after the
//! toxic met it, or never when `timeout` is 0. Removing it from a link where
//! it discarded data closes that connection: its stream is corrupt.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, End, StageState, Toxic, Verdict, check_wait, ms};
use crate::error::Result;

/// Close after `timeout` ms; 0 = hold the connection open forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeout {
    /// ms until the connection is closed; 0: never.
    pub timeout: u64,
}

impl Toxic for Timeout {
    fn validate(&self) -> Result<()> {
        check_wait("timeout", "timeout", self.timeout)
    }

    fn on_chunk(&self, _chunk: ChunkView, state: &mut StageState, _now: Instant) -> Verdict {
        state.dropped = true;
        Verdict::Drop
    }

    fn deadline(&self, state: &StageState) -> Option<(Instant, End)> {
        (self.timeout > 0).then(|| (state.started + ms(self.timeout), End::Close))
    }

    fn on_remove(&self, state: &StageState) -> Option<End> {
        state.dropped.then_some(End::Close)
    }
}
