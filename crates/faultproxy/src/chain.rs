//! The toxics installed on one proxy, as the links see them. The registry
//! publishes the whole chain through a `tokio::sync::watch` on every change;
//! each link and each connection waiting at the door holds a receiver, so a
//! toxic added or removed reaches live connections at once (Toxiproxy's
//! `ToxicCollection` interrupts every stub instead).
//!
//! Toxicity is decided per connection and toxic, from a seed drawn when the
//! connection is accepted: both links of a connection agree, and asking again
//! gives the same answer.

use std::sync::Arc;

use crate::splitmix::{mix, unit};
use crate::toxic::{Scope, Stream, ToxicKind};

/// One toxic as installed on a proxy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Installed {
    /// Unique across the fault proxy; keeps a link's per-toxic state across
    /// updates of the toxic.
    pub id: u64,
    /// Which direction(s) it covers.
    pub stream: Stream,
    /// Probability of acting on a connection.
    pub toxicity: f32,
    /// The fault.
    pub kind: ToxicKind,
}

/// Every toxic of a proxy, in the order added: each link applies the ones
/// covering its direction in this order.
pub(crate) type Chain = Arc<Vec<Arc<Installed>>>;

impl Installed {
    /// Whether this toxic acts on the connection with `seed`.
    pub fn acts_on(&self, seed: u64) -> bool {
        if self.toxicity >= 1.0 {
            return true;
        }
        if self.toxicity <= 0.0 {
            return false;
        }
        unit(mix(seed ^ self.id.wrapping_mul(0x9E37_79B9_7F4A_7C15))) < f64::from(self.toxicity)
    }

    /// Whether this toxic acts on new connections rather than on bytes.
    pub fn at_accept(&self) -> bool {
        self.kind.toxic().scope() == Scope::Accept
    }
}

/// What a connection arriving with `seed` meets at the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Door {
    /// Serve it.
    Open,
    /// Hold it, unanswered (`deny_new`).
    Held,
    /// Reset it (`reset`).
    Reset,
}

/// The door for a new connection under `chain`.
pub(crate) fn door(chain: &Chain, seed: u64) -> Door {
    let acting = |t: &&Arc<Installed>| t.acts_on(seed);
    if chain.iter().filter(acting).any(|t| t.at_accept()) {
        Door::Held
    } else if chain
        .iter()
        .filter(acting)
        .any(|t| matches!(t.kind, ToxicKind::Reset(_)))
    {
        Door::Reset
    } else {
        Door::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxic::{Blackhole, DenyNew, Latency, Reset};

    fn installed(id: u64, toxicity: f32, kind: ToxicKind) -> Arc<Installed> {
        Arc::new(Installed {
            id,
            stream: Stream::Both,
            toxicity,
            kind,
        })
    }

    #[test]
    fn toxicity_is_a_probability_per_connection() {
        let t = installed(7, 0.3, ToxicKind::Blackhole(Blackhole {}));
        let acting = (0..10_000u64).filter(|s| t.acts_on(mix(*s))).count();
        assert!((2_500..3_500).contains(&acting), "{acting}");
        // The same connection gets the same answer.
        assert_eq!(t.acts_on(42), t.acts_on(42));
        assert!(installed(1, 1.0, ToxicKind::Reset(Reset {})).acts_on(3));
        assert!(!installed(1, 0.0, ToxicKind::Reset(Reset {})).acts_on(3));
    }

    #[test]
    fn door_holds_before_it_resets() {
        let open: Chain = Arc::new(vec![installed(
            1,
            1.0,
            ToxicKind::Latency(Latency::default()),
        )]);
        assert_eq!(door(&open, 1), Door::Open);
        let reset: Chain = Arc::new(vec![installed(2, 1.0, ToxicKind::Reset(Reset {}))]);
        assert_eq!(door(&reset, 1), Door::Reset);
        let both: Chain = Arc::new(vec![
            installed(2, 1.0, ToxicKind::Reset(Reset {})),
            installed(3, 1.0, ToxicKind::DenyNew(DenyNew {})),
        ]);
        assert_eq!(door(&both, 1), Door::Held);
    }
}
