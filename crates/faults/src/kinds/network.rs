//! `network`: the seed's NSG rule, as a toxic on the lab's fault proxy
//! between the replicas and Redis. `deny-new` (a stateful deny: established
//! connections carry on, new ones hang), `blackhole`, `reset`, `latency`,
//! `bandwidth`. A block is followed by a redis-reset on every replica unless
//! `no_reset` — what the seed's script did after adding its rule, so that
//! the service's pooled connections are dropped and must be made again.
//!
//! In kernel isolation (SPEC §14) the replicas reach Redis directly, in the
//! lab's network namespace, and the blocks are nftables rules there
//! ([`chaoslab_lab::LabNetwork`]): deny-new drops new connections (`ct state
//! new`) while established ones flow, blackhole drops every packet, reset
//! rejects with TCP resets and destroys the open flows. Latency and
//! bandwidth stay toxics of the userspace fault proxy: while one is
//! active, the replicas' new connections are routed through the proxy (a
//! NAT rule in the lab's namespace) and every replica gets a redis-reset so
//! its pooled connections are made again, through the proxy.

use std::sync::Arc;
use std::time::Duration;

use chaoslab_faultproxy::toxic::{Bandwidth, Blackhole, DenyNew, Latency, Reset};
use chaoslab_faultproxy::{Stream, ToxicKind, ToxicSpec};
use serde::Deserialize;
use serde_json::json;

use chaoslab_lab::{Block, LabNetwork, NetError};

use crate::error::FaultError;
use crate::fault_kind::{Fault, Injected, check_seconds, seconds};
use crate::{LabHandle, REDIS_PROXY};

/// Default duration of a network fault.
pub const DEFAULT_SECONDS: u64 = 60;

/// `{"kind":"network","mode":…}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFault {
    /// `deny-new` (default), `blackhole`, `reset`, `latency`, `bandwidth`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Seconds; 0 = until cleared; default 60.
    #[serde(default)]
    pub duration_seconds: Option<i64>,
    /// Skip the redis-reset on every replica after a block.
    #[serde(default)]
    pub no_reset: bool,
    /// `latency`: added ms per round trip.
    #[serde(default)]
    pub latency_ms: Option<i64>,
    /// `latency`: ± ms.
    #[serde(default)]
    pub jitter_ms: Option<i64>,
    /// `bandwidth`: KB/s per direction.
    #[serde(default)]
    pub kbps: Option<i64>,
}

/// The modes, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    DenyNew,
    Blackhole,
    Reset,
    Latency { ms: u64, jitter: u64 },
    Bandwidth { kbps: u64 },
}

impl NetworkFault {
    fn mode(&self) -> Result<Mode, FaultError> {
        let non_negative = |name: &str, v: Option<i64>, required: bool| match v {
            None if required => Err(FaultError::bad(format!("{name} is required for this mode"))),
            None => Ok(0),
            Some(v) if v < 0 => Err(FaultError::bad(format!(
                "{name} must be 0 or more, not {v}"
            ))),
            Some(v) => Ok(v as u64),
        };
        let mode = match self.mode.as_deref().unwrap_or("deny-new") {
            "deny-new" | "deny_new" | "block" => Mode::DenyNew,
            "blackhole" => Mode::Blackhole,
            "reset" => Mode::Reset,
            "latency" => Mode::Latency {
                ms: non_negative("latency_ms", self.latency_ms, true)?,
                jitter: non_negative("jitter_ms", self.jitter_ms, false)?,
            },
            "bandwidth" => Mode::Bandwidth {
                kbps: non_negative("kbps", self.kbps, true)?,
            },
            other => {
                return Err(FaultError::bad(format!(
                    "unknown network mode `{other}`: use deny-new, blackhole, reset, latency or bandwidth"
                )));
            }
        };
        if let Mode::Latency { ms, jitter } = mode
            && (ms == 0 || ms > 60_000 || jitter > ms)
        {
            return Err(FaultError::bad(
                "latency_ms must be 1..60000 and jitter_ms at most latency_ms",
            ));
        }
        if let Mode::Bandwidth { kbps } = mode
            && kbps == 0
        {
            return Err(FaultError::bad("kbps must be 1 or more"));
        }
        Ok(mode)
    }

    fn is_block(mode: Mode) -> bool {
        matches!(mode, Mode::DenyNew | Mode::Blackhole | Mode::Reset)
    }
}

impl Fault for NetworkFault {
    fn kind(&self) -> &'static str {
        "network"
    }

    fn check(&self, lab: &LabHandle) -> Result<(), FaultError> {
        self.mode()?;
        check_seconds(self.duration_seconds)?;
        if lab.proxy.is_none() {
            return Err(FaultError::Conflict(
                "network faults need the lab's own Redis behind its fault proxy (this lab uses an external Redis through --redis-url)".into(),
            ));
        }
        Ok(())
    }

    fn duration(&self) -> Option<Duration> {
        seconds(self.duration_seconds, DEFAULT_SECONDS)
            .ok()
            .flatten()
    }

    async fn inject(&self, lab: &Arc<LabHandle>, id: &str) -> Result<Injected, FaultError> {
        let mode = self.mode()?;
        let proxy = lab.proxy.as_ref().ok_or(FaultError::ShuttingDown)?;
        if let Some(network) = lab.platform.network().cloned() {
            return self.inject_kernel(lab, id, mode, network).await;
        }
        let (kind, stream, details) = proxy_toxic(mode);
        proxy.add_toxic(REDIS_PROXY, ToxicSpec::new(kind).named(id).on(stream))?;
        let mut details = match details {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        if Self::is_block(mode) {
            let reset = !self.no_reset;
            details.insert("no_reset".into(), json!(!reset));
            if reset {
                let answers = crate::chaos::on_every_replica(
                    lab,
                    reqwest::Method::POST,
                    "redis-reset",
                    Some(json!({"force": true})),
                )
                .await;
                details.insert("redis_reset".into(), json!(answers));
            }
        }
        Ok(Injected {
            target: REDIS_PROXY.into(),
            details,
            ..Default::default()
        })
    }

    async fn clear(
        &self,
        lab: &Arc<LabHandle>,
        id: &str,
        _injected: &Injected,
        _restore: bool,
    ) -> Result<(), FaultError> {
        if let Some(network) = lab.platform.network().cloned() {
            let id2 = id.to_string();
            kernel(move || {
                network.unblock(&id2)?;
                if network.routed_via_proxy() {
                    network.route_via_proxy(&id2, None)?;
                }
                Ok(())
            })
            .await?;
        }
        if let Some(proxy) = &lab.proxy {
            match proxy.remove_toxic(REDIS_PROXY, id) {
                Ok(_) | Err(chaoslab_faultproxy::Error::ToxicNotFound) => {}
                Err(chaoslab_faultproxy::Error::ProxyNotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Runs `f` (`ip`/`nft` calls) off the runtime's threads.
async fn kernel(
    f: impl FnOnce() -> Result<(), NetError> + Send + 'static,
) -> Result<(), FaultError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FaultError::Failed(format!("network rules: {e}")))?
        .map_err(|e| FaultError::Failed(format!("network rules: {e}")))
}

impl NetworkFault {
    /// Kernel isolation: blocks as nftables rules in Redis's namespace,
    /// latency and bandwidth as proxy toxics with the replicas routed
    /// through the proxy.
    async fn inject_kernel(
        &self,
        lab: &Arc<LabHandle>,
        id: &str,
        mode: Mode,
        network: Arc<LabNetwork>,
    ) -> Result<Injected, FaultError> {
        let block = match mode {
            Mode::DenyNew => Some((Block::DenyNew, "deny-new", "ct state new drop")),
            Mode::Blackhole => Some((Block::Blackhole, "blackhole", "drop")),
            Mode::Reset => Some((Block::Reset, "reset", "reject with tcp reset")),
            Mode::Latency { .. } | Mode::Bandwidth { .. } => None,
        };
        let mut details = serde_json::Map::new();
        if let Some((block, name, rule)) = block {
            let (network2, id2) = (network.clone(), id.to_string());
            kernel(move || network2.block(&id2, block)).await?;
            details.insert("mode".into(), json!(name));
            details.insert("enforced_by".into(), json!("nftables"));
            details.insert(
                "rule".into(),
                json!(format!(
                    "table inet {} (namespace {}): tcp dport {} {rule}",
                    network.name, network.name, network.port
                )),
            );
        } else {
            route_through_proxy(lab, id, mode, &network, &mut details).await?;
        }
        // Blocks: the seed's redis-reset. Latency and bandwidth: pooled
        // connections are made again, through the proxy.
        let reset = !self.no_reset || block.is_none();
        details.insert("no_reset".into(), json!(!reset));
        if reset {
            let answers = crate::chaos::on_every_replica(
                lab,
                reqwest::Method::POST,
                "redis-reset",
                Some(json!({"force": true})),
            )
            .await;
            details.insert("redis_reset".into(), json!(answers));
        }
        Ok(Injected {
            target: REDIS_PROXY.into(),
            details,
            ..Default::default()
        })
    }
}

/// The fault proxy's toxic for `mode`, the stream it acts on and what the
/// fault's details say about it (process mode: every mode; kernel mode:
/// latency and bandwidth, which keep the proxy).
fn proxy_toxic(mode: Mode) -> (ToxicKind, Stream, serde_json::Value) {
    match mode {
        Mode::DenyNew => (
            ToxicKind::DenyNew(DenyNew {}),
            Stream::Both,
            json!({"mode": "deny-new"}),
        ),
        Mode::Blackhole => (
            ToxicKind::Blackhole(Blackhole {}),
            Stream::Both,
            json!({"mode": "blackhole"}),
        ),
        Mode::Reset => (
            ToxicKind::Reset(Reset {}),
            Stream::Both,
            json!({"mode": "reset"}),
        ),
        // Downstream only: N ms more per round trip (Toxiproxy's habit).
        Mode::Latency { ms, jitter } => (
            ToxicKind::Latency(Latency {
                latency: ms,
                jitter,
            }),
            Stream::Downstream,
            json!({"mode": "latency", "latency_ms": ms, "jitter_ms": jitter}),
        ),
        Mode::Bandwidth { kbps } => (
            ToxicKind::Bandwidth(Bandwidth { rate: kbps }),
            Stream::Both,
            json!({"mode": "bandwidth", "kbps": kbps}),
        ),
    }
}

/// Latency and bandwidth in kernel mode: a toxic on the fault proxy, and
/// new connections to Redis routed through it while the fault is active.
async fn route_through_proxy(
    lab: &Arc<LabHandle>,
    id: &str,
    mode: Mode,
    network: &Arc<LabNetwork>,
    details: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), FaultError> {
    let proxy = lab.proxy.as_ref().ok_or(FaultError::ShuttingDown)?;
    let info = proxy.proxy(REDIS_PROXY)?;
    let port = info
        .listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| FaultError::Failed(format!("the fault proxy listens on {}", info.listen)))?;
    let (kind, stream, shown) = proxy_toxic(mode);
    proxy.add_toxic(REDIS_PROXY, ToxicSpec::new(kind).named(id).on(stream))?;
    let (network2, id2) = (network.clone(), id.to_string());
    if let Err(e) = kernel(move || network2.route_via_proxy(&id2, Some(port))).await {
        let _ = proxy.remove_toxic(REDIS_PROXY, id);
        return Err(e);
    }
    if let serde_json::Value::Object(map) = shown {
        details.extend(map);
    }
    details.insert("enforced_by".into(), json!("fault proxy"));
    details.insert(
        "route".into(),
        json!(format!(
            "new connections to {}:{} go to the fault proxy on {} while active",
            network.direct, network.port, info.listen
        )),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> NetworkFault {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn modes_and_bad_input() {
        assert_eq!(parse(json!({})).mode().unwrap(), Mode::DenyNew);
        assert_eq!(
            parse(json!({"mode": "latency", "latency_ms": 200}))
                .mode()
                .unwrap(),
            Mode::Latency { ms: 200, jitter: 0 }
        );
        let err = parse(json!({"mode": "nope"})).mode().unwrap_err();
        assert!(err.to_string().contains("unknown network mode `nope`"));
        assert!(parse(json!({"mode": "latency"})).mode().is_err());
        assert!(
            parse(json!({"mode": "bandwidth", "kbps": -1}))
                .mode()
                .is_err()
        );
        assert!(check_seconds(Some(-1)).is_err());
        assert_eq!(
            parse(json!({})).duration(),
            Some(Duration::from_secs(DEFAULT_SECONDS))
        );
        assert_eq!(parse(json!({"duration_seconds": 0})).duration(), None);
    }
}
