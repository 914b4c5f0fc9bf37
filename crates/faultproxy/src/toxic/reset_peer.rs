//! `reset_peer`: once data reaches the toxic, the connection is reset (RST)
//! `timeout` ms later, 0 = at once; the data is not passed on (Toxiproxy's
//! `toxics/reset_peer.go`).

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, End, StageState, Toxic, Verdict, check_wait, ms};
use crate::error::Result;

/// Reset `timeout` ms after the first data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetPeer {
    /// ms between the first data and the reset.
    pub timeout: u64,
}

impl Toxic for ResetPeer {
    fn validate(&self) -> Result<()> {
        check_wait("reset_peer", "timeout", self.timeout)
    }

    fn on_chunk(&self, chunk: ChunkView, state: &mut StageState, now: Instant) -> Verdict {
        let first = *state.first_data.get_or_insert(chunk.entered);
        let due = first + ms(self.timeout);
        if now >= due {
            Verdict::End(End::Reset)
        } else {
            Verdict::WaitUntil(due)
        }
    }
}
