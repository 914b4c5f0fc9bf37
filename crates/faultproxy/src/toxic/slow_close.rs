//! `slow_close`: data passes, but the end of stream (the source's FIN) is
//! passed on `delay` ms late (Toxiproxy's `toxics/slow_close.go`).

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, StageState, Toxic, Verdict, check_wait, ms};
use crate::error::Result;

/// Hold the close back by `delay` ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlowClose {
    /// ms the close is delayed.
    pub delay: u64,
}

impl Toxic for SlowClose {
    fn validate(&self) -> Result<()> {
        check_wait("slow_close", "delay", self.delay)
    }

    fn on_chunk(&self, _chunk: ChunkView, _state: &mut StageState, _now: Instant) -> Verdict {
        Verdict::Pass
    }

    fn hold_eof(&self, eof_at: Instant) -> Option<Instant> {
        Some(eof_at + ms(self.delay))
    }
}
