//! `reset` (chaoslab): every connection is reset at once — the live ones when
//! the toxic lands, new ones as soon as they are accepted — by closing both
//! sockets with `SO_LINGER` 0, which sends an RST. Clients see "connection
//! reset by peer" immediately, as when a firewall or load balancer drops its
//! flow state.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, End, StageState, Toxic, Verdict};

/// No attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reset {}

impl Toxic for Reset {
    fn on_chunk(&self, _chunk: ChunkView, _state: &mut StageState, _now: Instant) -> Verdict {
        Verdict::End(End::Reset)
    }

    fn deadline(&self, state: &StageState) -> Option<(Instant, End)> {
        Some((state.started, End::Reset))
    }
}
