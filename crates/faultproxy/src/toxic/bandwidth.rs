//! `bandwidth`: the link carries at most `rate` KB/s (1 KB = 1000 bytes, as
//! Toxiproxy's `toxics/bandwidth.go`). Large chunks are cut into 100 ms
//! slices so a slow rate still trickles instead of stalling.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, StageState, Toxic, Verdict};

/// Throughput limit in KB/s; 0 means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bandwidth {
    /// KB/s (1000 bytes per second per unit).
    pub rate: u64,
}

/// Scheduling slop forgiven when the link wakes a little late, so timer
/// granularity does not slow the rate down.
const SLOP: Duration = Duration::from_millis(10);

impl Toxic for Bandwidth {
    fn on_chunk(&self, chunk: ChunkView, state: &mut StageState, now: Instant) -> Verdict {
        if self.rate == 0 {
            return Verdict::Pass;
        }
        let free = state.next_free.unwrap_or(now);
        if now < free {
            return Verdict::WaitUntil(free);
        }
        // `rate` KB/s is `rate` bytes per millisecond.
        let slice = (self.rate.saturating_mul(100)).max(1) as usize;
        let n = chunk.len.min(slice);
        let cost = Duration::from_nanos((n as u64).saturating_mul(1_000_000) / self.rate);
        let base = if now.duration_since(free) <= SLOP {
            free
        } else {
            now
        };
        state.next_free = Some(base + cost);
        if n == chunk.len {
            Verdict::Pass
        } else {
            Verdict::PassSome(n)
        }
    }
}
