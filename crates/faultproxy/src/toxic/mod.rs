//! What a fault is. As in Toxiproxy (`toxics/toxic.go`), a *toxic* is a small
//! config struct plus its behaviour behind one trait, [`Toxic`]; the closed
//! serde enum [`ToxicKind`] names every kind and dispatches to it; the
//! cross-cutting fields — name, stream (direction), toxicity (probability),
//! duration — live in the wrapper [`ToxicSpec`], not in each toxic.
//!
//! Unlike Toxiproxy's goroutine-per-toxic pipeline, a toxic here does not
//! wait itself: it *decides* ([`Verdict`]) and the link (`link.rs`) does the
//! waiting, in one `select!` that also watches the chain and the kill switch.
//! That makes every wait interruptible and every decision cancel-safe: a
//! decision is re-taken from the chunk's timestamps whenever the chain
//! changes, so removing a toxic releases what it held at once, with no byte
//! lost.

mod bandwidth;
mod blackhole;
mod deny_new;
mod latency;
mod limit_data;
mod reset;
mod reset_peer;
mod slicer;
mod slow_close;
mod timeout;

pub use bandwidth::Bandwidth;
pub use blackhole::Blackhole;
pub use deny_new::DenyNew;
pub use latency::Latency;
pub use limit_data::LimitData;
pub use reset::Reset;
pub use reset_peer::ResetPeer;
pub use slicer::Slicer;
pub use slow_close::SlowClose;
pub use timeout::Timeout;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Which way through a connection a toxic acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client → server (e.g. commands sent to Redis).
    Upstream,
    /// Server → client (e.g. Redis's replies). Toxiproxy's default.
    Downstream,
    /// Both directions (a chaoslab extension; Toxiproxy has one toxic per
    /// direction).
    Both,
}

impl Stream {
    /// Whether a toxic on `self` acts on the `link` direction.
    pub fn covers(self, link: Direction) -> bool {
        matches!(
            (self, link),
            (Stream::Both, _)
                | (Stream::Upstream, Direction::Upstream)
                | (Stream::Downstream, Direction::Downstream)
        )
    }

    /// The name used in JSON and in Toxiproxy's default toxic names.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
            Stream::Both => "both",
        }
    }

    /// Parses `upstream`, `downstream` or `both`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "upstream" => Ok(Stream::Upstream),
            "downstream" => Ok(Stream::Downstream),
            "both" => Ok(Stream::Both),
            _ => Err(Error::InvalidStream),
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One direction of one proxied connection (a *link*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → server.
    Upstream,
    /// Server → client.
    Downstream,
}

/// How a fault ends a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Orderly close of both sockets (FIN).
    Close,
    /// Abortive close of both sockets (`SO_LINGER` 0, then close: RST).
    Reset,
}

/// What a toxic decides for the chunk at its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The whole chunk moves on to the next stage now.
    Pass,
    /// The first `n` bytes move on now; the rest stays at this stage.
    PassSome(usize),
    /// Ask again at this instant (or sooner, if the chain changes).
    WaitUntil(Instant),
    /// Hold the chunk until the chain changes (nothing is dropped).
    Hold,
    /// Discard the chunk (only toxics whose fault *is* dropping data).
    Drop,
    /// End the whole connection.
    End(End),
}

/// What a toxic sees of the chunk at its stage.
#[derive(Debug, Clone, Copy)]
pub struct ChunkView {
    /// Bytes in the chunk.
    pub len: usize,
    /// When the chunk entered this stage (read time for the first stage).
    pub entered: Instant,
    /// A number in 0..1, fixed for this chunk at this toxic (for jitter):
    /// re-deciding gives the same answer.
    pub random: f64,
}

/// Per-link state of one toxic (Toxiproxy's `StatefulToxic`), created when
/// the toxic meets the link — at connection start or when added live.
#[derive(Debug, Clone)]
pub struct StageState {
    /// When the toxic began acting on this link.
    pub started: Instant,
    /// Bytes this toxic let through on this link (`limit_data`).
    pub bytes: u64,
    /// When the link is next free to send (`bandwidth`).
    pub next_free: Option<Instant>,
    /// When the first chunk reached this toxic (`reset_peer`).
    pub first_data: Option<Instant>,
    /// Whether the toxic discarded anything (`timeout`: the stream is then
    /// corrupt, so removing the toxic closes the connection, as Toxiproxy).
    pub dropped: bool,
}

impl StageState {
    /// A fresh state for a toxic starting now.
    pub fn new(now: Instant) -> Self {
        Self {
            started: now,
            bytes: 0,
            next_free: None,
            first_data: None,
            dropped: false,
        }
    }
}

/// Where a toxic acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// On the bytes of each link it covers.
    Link,
    /// On new connections, before anything is read or dialled (`deny_new`).
    Accept,
}

/// The behaviour of one kind of fault. All methods are pure decisions taken
/// by the link; none waits.
pub trait Toxic {
    /// Checks the attributes (Toxiproxy's `ValidatedToxic`).
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// Where the toxic acts; most act on links.
    fn scope(&self) -> Scope {
        Scope::Link
    }

    /// What happens to the chunk at this toxic's stage at `now`.
    fn on_chunk(&self, chunk: ChunkView, state: &mut StageState, now: Instant) -> Verdict;

    /// Whether the link may read from its source while this toxic is on it.
    /// `false` leaves bytes in the kernel (the sender's window fills) instead
    /// of buffering them: a blackhole stops reading.
    fn reads(&self) -> bool {
        true
    }

    /// An instant at which the toxic ends the connection whether data flows
    /// or not (`timeout`, `reset`).
    fn deadline(&self, _state: &StageState) -> Option<(Instant, End)> {
        None
    }

    /// Until when the end of stream (the source's FIN) is held back.
    fn hold_eof(&self, _eof_at: Instant) -> Option<Instant> {
        None
    }

    /// What removing the toxic does to a link it acted on.
    fn on_remove(&self, _state: &StageState) -> Option<End> {
        None
    }
}

/// Every kind of fault, as JSON `{"type": …, "attributes": {…}}` with
/// Toxiproxy's type names, attribute names and units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum ToxicKind {
    /// Delay every chunk by `latency` ± `jitter` ms.
    Latency(Latency),
    /// Limit throughput to `rate` KB/s.
    Bandwidth(Bandwidth),
    /// Stop all data; close after `timeout` ms (0: never).
    Timeout(Timeout),
    /// Reset the connection `timeout` ms after data arrives.
    ResetPeer(ResetPeer),
    /// Delay the close by `delay` ms.
    SlowClose(SlowClose),
    /// Close after `bytes` bytes.
    LimitData(LimitData),
    /// Pass data in slices of `average_size` ± `size_variation` bytes,
    /// `delay` µs apart.
    Slicer(Slicer),
    /// Stateful NSG deny: established connections flow, new ones hang.
    DenyNew(DenyNew),
    /// No byte passes; nothing is closed.
    Blackhole(Blackhole),
    /// Every live and new connection is reset (RST).
    Reset(Reset),
}

impl ToxicKind {
    /// Every type name, Toxiproxy's first.
    pub const TYPES: [&'static str; 10] = crate::toxic_names::TOXIC_TYPES;

    /// The behaviour behind this kind.
    pub fn toxic(&self) -> &dyn Toxic {
        match self {
            ToxicKind::Latency(t) => t,
            ToxicKind::Bandwidth(t) => t,
            ToxicKind::Timeout(t) => t,
            ToxicKind::ResetPeer(t) => t,
            ToxicKind::SlowClose(t) => t,
            ToxicKind::LimitData(t) => t,
            ToxicKind::Slicer(t) => t,
            ToxicKind::DenyNew(t) => t,
            ToxicKind::Blackhole(t) => t,
            ToxicKind::Reset(t) => t,
        }
    }

    /// The JSON type name (`latency`, `deny_new`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency(_) => "latency",
            ToxicKind::Bandwidth(_) => "bandwidth",
            ToxicKind::Timeout(_) => "timeout",
            ToxicKind::ResetPeer(_) => "reset_peer",
            ToxicKind::SlowClose(_) => "slow_close",
            ToxicKind::LimitData(_) => "limit_data",
            ToxicKind::Slicer(_) => "slicer",
            ToxicKind::DenyNew(_) => "deny_new",
            ToxicKind::Blackhole(_) => "blackhole",
            ToxicKind::Reset(_) => "reset",
        }
    }

    /// The stream a toxic of this kind gets when none is given: Toxiproxy's
    /// `downstream` for its kinds, `both` for chaoslab's network faults.
    pub fn default_stream(&self) -> Stream {
        match self {
            ToxicKind::DenyNew(_) | ToxicKind::Blackhole(_) | ToxicKind::Reset(_) => Stream::Both,
            _ => Stream::Downstream,
        }
    }

    /// Builds a kind from a type name and its attributes (missing attributes
    /// take their defaults, unknown ones are ignored — as Toxiproxy). Each
    /// known attribute must be a whole number, 0 or more; an error names
    /// the attribute (never a Rust type).
    pub fn from_parts(type_name: &str, attributes: Option<serde_json::Value>) -> Result<Self> {
        use serde_json::Value;
        if !Self::TYPES.contains(&type_name) {
            return Err(Error::InvalidToxicType(crate::address::clipped(type_name)));
        }
        let given = match attributes {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(Error::BadRequestBody(format!(
                    "field attributes must be an object, got {}",
                    crate::json::kind(&other)
                )));
            }
        };
        let invalid = || Error::BadRequestBody(format!("attributes of {type_name}"));
        let defaults: ToxicKind =
            serde_json::from_value(serde_json::json!({ "type": type_name, "attributes": {} }))
                .map_err(|_| invalid())?;
        let mut attributes = match defaults.attributes() {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        for (name, value) in attributes.iter_mut() {
            match given.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::Number(n)) if n.as_u64().is_some() => *value = Value::Number(n.clone()),
                Some(Value::Number(n)) if n.as_i64().is_some() => {
                    return Err(Error::InvalidValue(format!(
                        "{type_name}: attribute {name} must not be negative, got {n}"
                    )));
                }
                Some(Value::Number(n)) => {
                    return Err(Error::InvalidValue(format!(
                        "{type_name}: attribute {name} must be a whole number from 0 to {}, got {n}",
                        u64::MAX
                    )));
                }
                Some(other) => {
                    return Err(Error::BadRequestBody(format!(
                        "{type_name}: attribute {name} must be a number, got {}",
                        crate::json::kind(other)
                    )));
                }
            }
        }
        let tagged = serde_json::json!({ "type": type_name, "attributes": attributes });
        let kind: ToxicKind = serde_json::from_value(tagged).map_err(|_| invalid())?;
        kind.toxic().validate()?;
        Ok(kind)
    }

    /// The attributes as JSON (`{}` for kinds without any).
    pub fn attributes(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("attributes").map(serde_json::Value::take))
            .unwrap_or_else(|| serde_json::json!({}))
    }
}

/// A fault to add: the kind plus the cross-cutting fields.
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicSpec {
    /// Unique per proxy; `None` gives Toxiproxy's `{type}_{stream}`.
    pub name: Option<String>,
    /// Which direction(s); `None` gives the kind's default.
    pub stream: Option<Stream>,
    /// Probability (0..1) that the toxic acts on a given connection.
    pub toxicity: f32,
    /// The fault itself.
    pub kind: ToxicKind,
    /// The toxic removes itself after this long; `None` or zero: until
    /// cleared.
    pub duration: Option<Duration>,
}

impl ToxicSpec {
    /// A toxic of `kind` on its default stream, always acting, until cleared.
    pub fn new(kind: ToxicKind) -> Self {
        Self {
            name: None,
            stream: None,
            toxicity: 1.0,
            kind,
            duration: None,
        }
    }

    /// Names the toxic (the lab uses its fault id).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the direction(s).
    pub fn on(mut self, stream: Stream) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Sets the probability of acting on a connection.
    pub fn toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }

    /// Makes the toxic expire after `duration` (zero: until cleared).
    pub fn lasting(mut self, duration: Duration) -> Self {
        self.duration = (!duration.is_zero()).then_some(duration);
        self
    }
}

/// Whether a toxicity value is a probability.
pub(crate) fn check_toxicity(toxicity: f32) -> Result<()> {
    if (0.0..=1.0).contains(&toxicity) {
        Ok(())
    } else {
        Err(Error::InvalidValue(format!(
            "toxicity must be between 0 and 1, got {toxicity}"
        )))
    }
}

/// The longest wait a toxic attribute may ask for: a day (milliseconds).
/// Longer is no lab fault, and keeps every instant computed from one far
/// from overflowing.
pub const MAX_WAIT_MS: u64 = 86_400_000;

/// A milliseconds attribute as a duration.
pub(crate) fn ms(value: u64) -> Duration {
    Duration::from_millis(value.min(MAX_WAIT_MS))
}

/// Checks a waiting attribute (milliseconds) against [`MAX_WAIT_MS`].
pub(crate) fn check_wait(toxic: &str, attribute: &str, value: u64) -> Result<()> {
    if value > MAX_WAIT_MS {
        return Err(Error::InvalidValue(format!(
            "{toxic}: {attribute} must be at most {MAX_WAIT_MS} ms (a day), got {value}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
