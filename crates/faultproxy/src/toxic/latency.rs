//! `latency`: every chunk waits `latency` ± `jitter` ms at this stage before
//! moving on (Toxiproxy's `toxics/latency.go`). The wait counts from when the
//! chunk entered the stage, so chunks read while an earlier one waits are
//! not delayed twice: latency does not cap throughput.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, StageState, Toxic, Verdict, check_wait, ms};
use crate::error::Result;

/// Delay in milliseconds, with a uniform jitter of ± `jitter` ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Added delay, ms.
    pub latency: u64,
    /// Spread around `latency`, ms.
    pub jitter: u64,
}

impl Latency {
    /// The delay for a chunk whose fixed random draw is `random` (0..1).
    pub fn delay(&self, random: f64) -> std::time::Duration {
        let spread = (random * 2.0 - 1.0) * self.jitter as f64;
        let total = (self.latency as f64 + spread).max(0.0);
        ms(total.round() as u64)
    }
}

impl Toxic for Latency {
    fn validate(&self) -> Result<()> {
        check_wait("latency", "latency", self.latency)?;
        check_wait("latency", "jitter", self.jitter)
    }

    fn on_chunk(&self, chunk: ChunkView, _state: &mut StageState, now: Instant) -> Verdict {
        let due = chunk.entered + self.delay(chunk.random);
        if now >= due {
            Verdict::Pass
        } else {
            Verdict::WaitUntil(due)
        }
    }
}
