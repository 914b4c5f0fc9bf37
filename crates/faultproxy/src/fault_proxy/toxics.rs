//! The toxic half of the [`FaultProxy`]: adding, updating, removing,
//! listing and expiring toxics. Each change replaces the proxy's chain (its
//! links see it at once) and is sent as a [`FaultEvent`](crate::FaultEvent).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::Utc;
use tokio::task::AbortHandle;

use super::{FaultProxy, Inner, ProxyEntry, ToxicEntry};
use crate::address::check_name;
use crate::chain::{Chain, Installed};
use crate::error::{Error, Result};
use crate::event::Change;
use crate::info::{Origin, ToxicInfo};
use crate::toxic::{ToxicKind, ToxicSpec, check_toxicity};

impl FaultProxy {
    /// Adds a toxic to a proxy; it acts on live and new connections at once.
    pub fn add_toxic(&self, proxy: &str, spec: ToxicSpec) -> Result<ToxicInfo> {
        self.add_toxic_as(proxy, spec, Origin::Library)
    }

    pub(crate) fn add_toxic_as(
        &self,
        proxy: &str,
        spec: ToxicSpec,
        origin: Origin,
    ) -> Result<ToxicInfo> {
        check_toxicity(spec.toxicity)?;
        spec.kind.toxic().validate()?;
        let stream = spec.stream.unwrap_or_else(|| spec.kind.default_stream());
        let name = spec
            .name
            .unwrap_or_else(|| format!("{}_{}", spec.kind.type_name(), stream));
        check_name("name", &name)?;
        let mut registry = self.registry()?;
        let entry = registry.get_mut(proxy).ok_or(Error::ProxyNotFound)?;
        if entry.toxics.iter().any(|t| t.name == name) {
            return Err(Error::ToxicAlreadyExists);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let duration = spec.duration.filter(|d| !d.is_zero());
        let expiry = duration.map(|d| self.expire_after(proxy, id, d));
        let toxic = ToxicEntry {
            installed: Arc::new(Installed {
                id,
                stream,
                toxicity: spec.toxicity,
                kind: spec.kind,
            }),
            name,
            started_at: Utc::now(),
            duration,
            origin,
            expiry,
        };
        let info = toxic_info(proxy, &toxic);
        entry.toxics.push(toxic);
        publish(entry);
        self.emit(
            proxy,
            Change::Added {
                toxic: info.clone(),
            },
        );
        Ok(info)
    }

    /// Changes a toxic's attributes (same type) and/or toxicity; per-link
    /// state (e.g. bytes counted by `limit_data`) carries over.
    pub fn update_toxic(
        &self,
        proxy: &str,
        name: &str,
        kind: Option<ToxicKind>,
        toxicity: Option<f32>,
    ) -> Result<ToxicInfo> {
        if let Some(t) = toxicity {
            check_toxicity(t)?;
        }
        if let Some(kind) = &kind {
            kind.toxic().validate()?;
        }
        let mut registry = self.registry()?;
        let entry = registry.get_mut(proxy).ok_or(Error::ProxyNotFound)?;
        let toxic = entry
            .toxics
            .iter_mut()
            .find(|t| t.name == name)
            .ok_or(Error::ToxicNotFound)?;
        let old = &toxic.installed;
        let kind = kind.unwrap_or_else(|| old.kind.clone());
        if kind.type_name() != old.kind.type_name() {
            return Err(Error::BadRequestBody("a toxic's type cannot change".into()));
        }
        toxic.installed = Arc::new(Installed {
            id: old.id,
            stream: old.stream,
            toxicity: toxicity.unwrap_or(old.toxicity),
            kind,
        });
        let info = toxic_info(proxy, toxic);
        publish(entry);
        self.emit(
            proxy,
            Change::Updated {
                toxic: info.clone(),
            },
        );
        Ok(info)
    }

    /// Clears a toxic: what it held flows on at once, nothing is lost.
    pub fn remove_toxic(&self, proxy: &str, name: &str) -> Result<ToxicInfo> {
        let mut registry = self.registry()?;
        let entry = registry.get_mut(proxy).ok_or(Error::ProxyNotFound)?;
        let index = entry
            .toxics
            .iter()
            .position(|t| t.name == name)
            .ok_or(Error::ToxicNotFound)?;
        let toxic = entry.toxics.remove(index);
        publish(entry);
        Ok(self.emit_removed(proxy, toxic, false))
    }

    /// One toxic.
    pub fn toxic(&self, proxy: &str, name: &str) -> Result<ToxicInfo> {
        let registry = self.registry()?;
        let entry = registry.get(proxy).ok_or(Error::ProxyNotFound)?;
        entry
            .toxics
            .iter()
            .find(|t| t.name == name)
            .map(|t| toxic_info(proxy, t))
            .ok_or(Error::ToxicNotFound)
    }

    /// A proxy's toxics, in chain order.
    pub fn toxics(&self, proxy: &str) -> Result<Vec<ToxicInfo>> {
        Ok(self.proxy(proxy)?.toxics)
    }

    /// Every toxic on every proxy (what `chaoslab fault list` shows).
    pub fn all_toxics(&self) -> Vec<ToxicInfo> {
        self.proxies().into_iter().flat_map(|p| p.toxics).collect()
    }

    /// Clears every toxic on every proxy; returns what was cleared.
    pub fn clear_all(&self) -> Vec<ToxicInfo> {
        let Ok(mut registry) = self.registry() else {
            return Vec::new();
        };
        let mut cleared = Vec::new();
        for (name, entry) in registry.iter_mut() {
            if entry.toxics.is_empty() {
                continue;
            }
            let toxics = std::mem::take(&mut entry.toxics);
            publish(entry);
            for toxic in toxics {
                cleared.push(self.emit_removed(name, toxic, false));
            }
        }
        cleared
    }

    /// Starts the timer that removes toxic `id` after `duration`.
    fn expire_after(&self, proxy: &str, id: u64, duration: Duration) -> AbortHandle {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let proxy = proxy.to_owned();
        let shutdown = self.inner.shutdown.clone();
        let timer = async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(duration) => {
                    if let Some(inner) = weak.upgrade() {
                        FaultProxy { inner }.expire(&proxy, id);
                    }
                }
            }
        };
        self.inner
            .timers
            .spawn_on(timer, &self.inner.runtime)
            .abort_handle()
    }

    fn expire(&self, proxy: &str, id: u64) {
        let Ok(mut registry) = self.registry() else {
            return;
        };
        let Some(entry) = registry.get_mut(proxy) else {
            return;
        };
        if let Some(index) = entry.toxics.iter().position(|t| t.installed.id == id) {
            let toxic = entry.toxics.remove(index);
            publish(entry);
            self.emit_removed(proxy, toxic, true);
        }
    }

    pub(super) fn emit_removed(
        &self,
        proxy: &str,
        mut toxic: ToxicEntry,
        expired: bool,
    ) -> ToxicInfo {
        if let Some(expiry) = toxic.expiry.take()
            && !expired
        {
            expiry.abort();
        }
        let info = toxic_info(proxy, &toxic);
        let change = if expired {
            Change::Expired {
                toxic: info.clone(),
            }
        } else {
            Change::Removed {
                toxic: info.clone(),
            }
        };
        self.emit(proxy, change);
        info
    }
}

/// Hands the proxy's links its current chain, and wakes the connections on
/// the fast path (they poll no channel) to look at it.
pub(super) fn publish(entry: &ProxyEntry) {
    let chain: Chain = Arc::new(entry.toxics.iter().map(|t| t.installed.clone()).collect());
    entry.chain.send_replace(chain);
    entry.connections.wake_all();
}

pub(super) fn toxic_info(proxy: &str, toxic: &ToxicEntry) -> ToxicInfo {
    let duration = toxic.duration;
    ToxicInfo {
        id: toxic.installed.id,
        proxy: proxy.to_owned(),
        name: toxic.name.clone(),
        stream: toxic.installed.stream,
        toxicity: toxic.installed.toxicity,
        kind: toxic.installed.kind.clone(),
        started_at: toxic.started_at,
        duration_ms: duration.map(|d| d.as_millis() as u64),
        expires_at: duration
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| toxic.started_at.checked_add_signed(d)),
        origin: toxic.origin,
    }
}
