//! `deny_new` (chaoslab): a *stateful* NSG deny rule. Connections that exist
//! when the rule lands carry on — their flows are already allowed — while new
//! ones are accepted by nobody: the proxy holds the socket without dialling
//! Redis or sending anything (no RST, no FIN), so the client's command hangs
//! until its own timeout. When the rule is cleared, a held connection that
//! is still open goes through, as a retransmitted SYN would. What a held
//! client sends is read and kept (up to 256 KiB; past that it is dropped
//! and the connection is reset when the rule clears): left in the kernel it
//! would fill the window, and a client's close queued behind it would never
//! reach the proxy (`conn.rs`).

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ChunkView, Scope, StageState, Toxic, Verdict};

/// No attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyNew {}

impl Toxic for DenyNew {
    fn scope(&self) -> Scope {
        Scope::Accept
    }

    fn on_chunk(&self, _chunk: ChunkView, _state: &mut StageState, _now: Instant) -> Verdict {
        Verdict::Pass
    }
}
