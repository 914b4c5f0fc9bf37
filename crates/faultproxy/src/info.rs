//! What the fault proxy reports about its proxies and toxics: the values the
//! lab lists (`chaoslab fault list`) and puts in events, and their
//! Toxiproxy JSON shapes for the HTTP API.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::toxic::{Stream, ToxicKind};

/// Who set a toxic or created a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A caller of the library (the lab itself: its `redis` proxy, its
    /// `fault` commands).
    Library,
    /// A client of the Toxiproxy-compatible HTTP API.
    Api,
}

/// A toxic installed on a proxy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToxicInfo {
    /// Unique across the fault proxy, never reused.
    pub id: u64,
    /// The proxy it is on.
    pub proxy: String,
    /// Unique per proxy; how the API and `remove_toxic` name it.
    pub name: String,
    /// Which direction(s) it acts on.
    pub stream: Stream,
    /// Probability of acting on a connection.
    pub toxicity: f32,
    /// The fault (`type` and `attributes`).
    #[serde(flatten)]
    pub kind: ToxicKind,
    /// When it was added.
    pub started_at: DateTime<Utc>,
    /// How long it lasts, ms; `None`: until cleared.
    pub duration_ms: Option<u64>,
    /// When it removes itself, if it does.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who set it.
    pub origin: Origin,
}

impl ToxicInfo {
    /// Time left before it expires, `None` if it lasts until cleared.
    pub fn remaining(&self) -> Option<Duration> {
        self.expires_at
            .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }

    /// Toxiproxy's JSON for a toxic: `name`, `type`, `stream`, `toxicity`,
    /// `attributes`.
    pub fn toxiproxy_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind.type_name(),
            "stream": self.stream.as_str(),
            "toxicity": self.toxicity,
            "attributes": self.kind.attributes(),
        })
    }
}

/// A proxy and its toxics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyInfo {
    /// Unique name.
    pub name: String,
    /// The address it listens on (the bound one, port resolved).
    pub listen: String,
    /// The address it forwards to.
    pub upstream: String,
    /// The lab's own ([`Origin::Library`]: the API may change only its
    /// toxics and `enabled`) or a Toxiproxy client's ([`Origin::Api`]).
    pub origin: Origin,
    /// Whether it listens and forwards.
    pub enabled: bool,
    /// Since when it has been disabled (`None` while enabled): a disabled
    /// proxy is a fault the lab lists.
    pub disabled_since: Option<DateTime<Utc>>,
    /// Connections open through it now (including ones held by `deny_new`).
    pub connections: usize,
    /// Its toxics, in chain order.
    pub toxics: Vec<ToxicInfo>,
}

impl ProxyInfo {
    /// Toxiproxy's JSON for a proxy: `name`, `listen`, `upstream`, `enabled`,
    /// `toxics`.
    pub fn toxiproxy_json(&self) -> Value {
        json!({
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics.iter().map(ToxicInfo::toxiproxy_json).collect::<Vec<_>>(),
        })
    }
}
