//! `limit_data`: the link carries `bytes` bytes, then the connection is
//! closed (Toxiproxy's `toxics/limit_data.go`). The count is per link and
//! survives updates of the toxic.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, End, StageState, Toxic, Verdict};

/// Close after `bytes` bytes have passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitData {
    /// Bytes let through before the close.
    pub bytes: u64,
}

impl Toxic for LimitData {
    fn on_chunk(&self, chunk: ChunkView, state: &mut StageState, _now: Instant) -> Verdict {
        let remaining = self.bytes.saturating_sub(state.bytes);
        if remaining == 0 {
            return Verdict::End(End::Close);
        }
        let n = (chunk.len as u64).min(remaining);
        state.bytes += n;
        if n as usize == chunk.len {
            Verdict::Pass
        } else {
            Verdict::PassSome(n as usize)
        }
    }

    fn deadline(&self, state: &StageState) -> Option<(Instant, End)> {
        // Close as soon as the limit is reached and what passed is written.
        (self.bytes > 0 && state.bytes >= self.bytes).then_some((state.started, End::Close))
    }
}
