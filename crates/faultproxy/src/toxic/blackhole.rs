//! `blackhole` (chaoslab): a route to nowhere. No byte passes in the
//! directions it covers and nothing is closed: the link stops reading (bytes
//! wait in the kernel and the sender's TCP window fills, nothing piles up in
//! the proxy) and holds what it had read. Clearing it lets everything held
//! through, in order, with no byte lost — the pending reply arrives.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, StageState, Toxic, Verdict};

/// No attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blackhole {}

impl Toxic for Blackhole {
    fn on_chunk(&self, _chunk: ChunkView, _state: &mut StageState, _now: Instant) -> Verdict {
        Verdict::Hold
    }

    fn reads(&self) -> bool {
        false
    }
}
