//! The registry of active faults: ids (`f-1`, `f-2`… never reused), start
//! time, duration and a timer that ends each fault by itself; every
//! injection, clearing and expiry is an event on the lab's bus
//! (`FaultInjected`, `FaultCleared`, `FaultExpired`, data `{id, kind,
//! target, …}`). Operations are serialised (one at a time: a clear never
//! races an injection), each bounded by its kind's own timeouts. What is set
//! through the Toxiproxy-compatible API is a fault too — listed, announced,
//! cleared with the rest: its toxics (id = the toxic's name) and a disabled
//! proxy (`POST /proxies/redis {"enabled": false}`, id `redis-disabled`,
//! mode `proxy-disabled`; clearing enables the proxy again).
//!
//! Any local process can call that API, so every change made through it is
//! also a `ToxiproxyChange` event naming the caller's address (`data.caller`;
//! the fault events it causes carry it too), and every request it refused —
//! moving or deleting one of the lab's own proxies, a proxy forwarding off
//! the machine — a `ToxiproxyRefused` warning (SPEC section 13).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chaoslab_faultproxy::{Change, FaultEvent, FaultProxy, Origin, ProxyInfo, ToxicInfo};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::FaultError;
use crate::fault::{FaultSpec, Injected};
use crate::{LabHandle, REDIS_PROXY};

/// At most this many faults active at once (each has one timer task).
pub const MAX_ACTIVE: usize = 256;

/// How a fault ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `fault clear` (or `down`).
    Cleared,
    /// Its duration ran out.
    Expired,
}

struct Active {
    id: String,
    spec: FaultSpec,
    injected: Injected,
    started: DateTime<Utc>,
    duration: Option<Duration>,
    cancel: CancellationToken,
}

impl Active {
    fn record(&self) -> Value {
        record(
            &self.id,
            self.spec.kind(),
            &self.injected,
            self.started,
            self.duration,
            "lab",
        )
    }
}

fn record(
    id: &str,
    kind: &str,
    injected: &Injected,
    started: DateTime<Utc>,
    duration: Option<Duration>,
    origin: &str,
) -> Value {
    let remaining = duration.map(|d| {
        let end = started + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
        let left = (end - Utc::now()).num_milliseconds().max(0) as u64;
        left.div_ceil(1000)
    });
    let mut out = json!({
        "id": id,
        "kind": kind,
        "target": injected.target,
        "started": chaoslab_foundation::time::rfc3339(started),
        "duration_seconds": duration.map_or(0, |d| d.as_secs()),
        "remaining_seconds": if injected.one_shot { Some(0) } else { remaining },
        "origin": origin,
    });
    if let Value::Object(map) = &mut out {
        for (k, v) in &injected.details {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out
}

/// What `POST /api/faults` did.
#[derive(Debug)]
pub enum Outcome {
    /// A new fault (201).
    Injected(Value),
    /// `auth restore`: these revocations were cleared (200).
    Restored(Vec<String>),
}

/// The registry.
pub struct Registry {
    lab: Arc<LabHandle>,
    /// One operation at a time.
    ops: tokio::sync::Mutex<()>,
    active: Mutex<BTreeMap<u64, Active>>,
    next: AtomicU64,
    timers: TaskTracker,
    /// Toxiproxy API toxics this registry removed (and announced) itself,
    /// so the proxy follower does not announce them twice.
    removed_api: Mutex<std::collections::HashSet<String>>,
    /// Proxies this registry enabled again (and announced) itself, so the
    /// proxy follower does not announce them twice.
    reenabled: Mutex<std::collections::HashSet<String>>,
    /// Disabled proxies announced (`FaultInjected`) and not yet cleared.
    disabled: Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// An empty registry acting on `lab`.
    pub fn new(lab: Arc<LabHandle>) -> Arc<Self> {
        Arc::new(Self {
            lab,
            ops: tokio::sync::Mutex::new(()),
            active: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(1),
            timers: TaskTracker::new(),
            removed_api: Mutex::new(std::collections::HashSet::new()),
            reenabled: Mutex::new(std::collections::HashSet::new()),
            disabled: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// The lab it acts on.
    pub fn lab(&self) -> &Arc<LabHandle> {
        &self.lab
    }

    /// Injects a fault: validates first (nothing changes on bad input),
    /// then does it, records it, announces it and arms its timer.
    pub async fn inject(self: &Arc<Self>, spec: FaultSpec) -> Result<Outcome, FaultError> {
        if spec.is_auth_restore() {
            return self.restore_auth().await.map(Outcome::Restored);
        }
        spec.check(&self.lab)?;
        let _op = self.ops.lock().await;
        if self.lab.platform.shutdown().is_cancelled() {
            return Err(FaultError::ShuttingDown);
        }
        self.check_exclusive(&spec)?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("f-{n}");
        let started = Utc::now();
        let injected = spec.inject(&self.lab, &id).await?;
        let duration = spec.duration();
        let active = Active {
            id: id.clone(),
            spec,
            injected,
            started,
            duration,
            cancel: self.lab.platform.shutdown().child_token(),
        };
        let record = active.record();
        self.lab.platform.events().warning(
            "FaultInjected",
            &id,
            describe(&record, "injected"),
            record.clone(),
        );
        if active.injected.one_shot {
            self.lab.platform.events().normal(
                "FaultExpired",
                &id,
                format!("fault {id} ({}) done: a one-shot fault", active.spec.kind()),
                json!({"id": id, "kind": active.spec.kind()}),
            );
            return Ok(Outcome::Injected(record));
        }
        if let Some(duration) = duration {
            let (weak, cancel, timer_id) = (Arc::downgrade(self), active.cancel.clone(), n);
            self.timers
                .spawn(expire_after(weak, timer_id, duration, cancel));
        }
        lock(&self.active).insert(n, active);
        Ok(Outcome::Injected(record))
    }

    fn check_exclusive(&self, spec: &FaultSpec) -> Result<(), FaultError> {
        let active = lock(&self.active);
        if active.len() >= MAX_ACTIVE {
            return Err(FaultError::Conflict(format!(
                "{MAX_ACTIVE} faults are active; clear some first"
            )));
        }
        let same = |kind: &str| active.values().find(|a| a.spec.kind() == kind);
        match spec {
            FaultSpec::Auth(_) => {
                if let Some(a) = same("auth") {
                    return Err(FaultError::Conflict(format!(
                        "the credential is already revoked by fault {}; `chaoslab fault auth restore` first",
                        a.id
                    )));
                }
            }
            FaultSpec::Redis(_) => {
                if let Some(a) = same("redis") {
                    return Err(FaultError::Conflict(format!(
                        "Redis is already stopped by fault {}; clear it first",
                        a.id
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn restore_auth(self: &Arc<Self>) -> Result<Vec<String>, FaultError> {
        let ids: Vec<String> = lock(&self.active)
            .values()
            .filter(|a| a.spec.kind() == "auth")
            .map(|a| a.id.clone())
            .collect();
        for id in &ids {
            self.clear(id, Ending::Cleared, true).await?;
        }
        Ok(ids)
    }

    /// Ends fault `id`; `Ok(false)` when there was no such fault (already
    /// gone: clearing is idempotent). With `restore` false (the lab is
    /// stopping) only what must not outlive the lab is undone.
    pub async fn clear(&self, id: &str, ending: Ending, restore: bool) -> Result<bool, FaultError> {
        let _op = self.ops.lock().await;
        let found = {
            let mut active = lock(&self.active);
            let key = active.iter().find(|(_, a)| a.id == id).map(|(k, _)| *k);
            key.and_then(|k| active.remove(&k))
        };
        let Some(fault) = found else {
            if self.clear_api_toxic(id)? {
                return Ok(true);
            }
            return self.clear_disabled_proxy(id, restore).await;
        };
        fault.cancel.cancel();
        let result = fault
            .spec
            .clear(&self.lab, &fault.id, &fault.injected, restore)
            .await;
        let (reason, verb) = match ending {
            Ending::Cleared => ("FaultCleared", "cleared"),
            Ending::Expired => ("FaultExpired", "expired"),
        };
        let mut data =
            json!({"id": fault.id, "kind": fault.spec.kind(), "target": fault.injected.target});
        if let Err(e) = &result {
            data["error"] = json!(e.to_string());
            self.lab.platform.events().warning(
                reason,
                &fault.id,
                format!("fault {} {verb}, but undoing it failed: {e}", fault.id),
                data,
            );
        } else {
            self.lab.platform.events().normal(
                reason,
                &fault.id,
                describe(&fault.record(), verb),
                data,
            );
        }
        result.map(|()| true)
    }

    /// A toxic set through the Toxiproxy API, cleared by its name.
    fn clear_api_toxic(&self, name: &str) -> Result<bool, FaultError> {
        let Some(proxy) = &self.lab.proxy else {
            return Ok(false);
        };
        let is_api = proxy
            .all_toxics()
            .iter()
            .any(|t| t.name == name && t.origin == Origin::Api);
        if !is_api {
            return Ok(false);
        }
        {
            let mut removed = lock(&self.removed_api);
            if removed.len() > 1024 {
                removed.clear();
            }
            removed.insert(name.to_string());
        }
        match proxy.remove_toxic(REDIS_PROXY, name) {
            Ok(toxic) => {
                self.lab.platform.events().normal(
                    "FaultCleared",
                    name,
                    format!("fault {name} (Toxiproxy API) cleared"),
                    json!({"id": name, "kind": "network", "target": toxic.proxy}),
                );
                Ok(true)
            }
            Err(chaoslab_faultproxy::Error::ToxicNotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A proxy disabled through the Toxiproxy API, cleared by its fault id
    /// (`redis-disabled`): enabled again and announced. With `restore` false
    /// (the lab is stopping, the proxy with it) it is only announced.
    async fn clear_disabled_proxy(&self, id: &str, restore: bool) -> Result<bool, FaultError> {
        let Some(proxy) = &self.lab.proxy else {
            return Ok(false);
        };
        let Some(info) = proxy
            .proxies()
            .into_iter()
            .find(|p| !p.enabled && disabled_id(&p.name) == id)
        else {
            return Ok(false);
        };
        let name = info.name.clone();
        // Cleared before the follower saw it disabled: announce the
        // injection first, so the events come in order and once.
        self.announce_disabled(&info);
        if restore {
            {
                let mut reenabled = lock(&self.reenabled);
                if reenabled.len() > 1024 {
                    reenabled.clear();
                }
                reenabled.insert(name.clone());
            }
            if let Err(e) = proxy.set_enabled(&name, true).await {
                lock(&self.reenabled).remove(&name);
                return match e {
                    chaoslab_faultproxy::Error::ProxyNotFound => Ok(false),
                    e => Err(e.into()),
                };
            }
        }
        let how = if restore {
            format!("proxy {name} enabled")
        } else {
            format!("proxy {name} stops with the lab")
        };
        self.lab.platform.events().normal(
            "FaultCleared",
            id,
            format!("fault {id} (Toxiproxy API) cleared: {how}"),
            json!({"id": id, "kind": "network", "target": name}),
        );
        Ok(true)
    }

    /// Ends every fault; returns the ids cleared.
    pub async fn clear_all(&self, restore: bool) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.active).values().map(|a| a.id.clone()).collect();
        if let Some(proxy) = &self.lab.proxy {
            ids.extend(
                proxy
                    .all_toxics()
                    .into_iter()
                    .filter(|t| t.origin == Origin::Api)
                    .map(|t| t.name),
            );
            ids.extend(
                proxy
                    .proxies()
                    .iter()
                    .filter(|p| !p.enabled)
                    .map(|p| disabled_id(&p.name)),
            );
        }
        let mut cleared = Vec::new();
        for id in ids {
            match self.clear(&id, Ending::Cleared, restore).await {
                Ok(true) => cleared.push(id),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(fault = %id, error = %e, "clearing a fault failed");
                    cleared.push(id);
                }
            }
        }
        cleared
    }

    /// Every active fault, oldest first (the Toxiproxy API's toxics and
    /// disabled proxies last).
    pub fn list(&self) -> Vec<Value> {
        let mut out: Vec<Value> = lock(&self.active).values().map(Active::record).collect();
        if let Some(proxy) = &self.lab.proxy {
            out.extend(
                proxy
                    .all_toxics()
                    .iter()
                    .filter(|t| t.origin == Origin::Api)
                    .map(api_record),
            );
            out.extend(
                proxy
                    .proxies()
                    .iter()
                    .filter(|p| !p.enabled)
                    .map(disabled_record),
            );
        }
        out
    }

    /// Stops the timers (the lab is stopping; call after `clear_all`).
    pub async fn close(&self) {
        self.timers.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.timers.wait()).await;
    }

    /// Follows the fault proxy's events: the Toxiproxy API's toxics and
    /// disabled proxies become `FaultInjected`/`FaultCleared` events, and a
    /// lab fault whose toxic was removed behind the lab's back (e.g.
    /// `POST /reset`) is cleared.
    pub async fn follow_proxy(self: Arc<Self>) {
        let Some(proxy) = self.lab.proxy.clone() else {
            return;
        };
        let mut events = proxy.subscribe();
        for p in proxy.proxies().iter().filter(|p| !p.enabled) {
            self.announce_disabled(p);
        }
        let stop = self.lab.platform.shutdown().clone();
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = stop.cancelled() => return,
            };
            let event = match event {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            self.on_proxy_event(&proxy, event).await;
        }
    }

    /// One change of the fault proxy: what the Toxiproxy API did is
    /// announced as a fault injected or cleared; a lab fault's toxic
    /// removed by someone else clears that fault.
    async fn on_proxy_event(&self, proxy: &FaultProxy, event: FaultEvent) {
        let FaultEvent {
            at,
            proxy: name,
            caller,
            change,
        } = event;
        let bus = &self.lab.platform.events();
        if let Some(caller) = caller {
            announce_api_change(&self.lab, caller, &name, &change);
        }
        let by = caller.map(|c| format!(" by {c}")).unwrap_or_default();
        let with_caller = |data: Value| with_caller(caller, data);
        match change {
            Change::ProxyCreated { enabled: false, .. }
            | Change::ProxyUpdated { enabled: false, .. } => {
                self.on_proxy_disabled(proxy, &name, at, caller);
            }
            Change::ProxyUpdated { enabled: true, .. } | Change::ProxyRemoved => {
                self.on_proxy_enabled(&name, caller);
            }
            Change::Added { toxic } if toxic.origin == Origin::Api => {
                let data = with_caller(api_record(&toxic));
                bus.warning(
                    "FaultInjected",
                    &toxic.name,
                    describe(&data, &format!("injected through the Toxiproxy API{by}")),
                    data,
                );
            }
            Change::Removed { toxic } | Change::Expired { toxic }
                if toxic.origin == Origin::Api =>
            {
                if lock(&self.removed_api).remove(&toxic.name) {
                    return;
                }
                bus.normal(
                    "FaultCleared",
                    &toxic.name,
                    format!("fault {} (Toxiproxy API) cleared{by}", toxic.name),
                    with_caller(
                        json!({"id": toxic.name, "kind": "network", "target": toxic.proxy}),
                    ),
                );
            }
            Change::Removed { toxic } => {
                let known = lock(&self.active).values().any(|a| a.id == toxic.name);
                if known {
                    let _ = self.clear(&toxic.name, Ending::Cleared, true).await;
                }
            }
            _ => {}
        }
    }

    /// A proxy disabled (made or updated so): announced as a fault, once.
    fn on_proxy_disabled(
        &self,
        proxy: &FaultProxy,
        name: &str,
        at: DateTime<Utc>,
        caller: Option<SocketAddr>,
    ) {
        let info = proxy.proxy(name).ok().filter(|p| !p.enabled);
        let info = info.unwrap_or_else(|| ProxyInfo {
            name: name.to_string(),
            listen: String::new(),
            upstream: String::new(),
            origin: Origin::Api,
            enabled: false,
            disabled_since: Some(at),
            connections: 0,
            toxics: Vec::new(),
        });
        self.announce_disabled_by(&info, caller);
    }

    /// A proxy enabled again or removed: the Toxiproxy API's disabling
    /// fault is cleared (not when the lab itself re-enabled it).
    fn on_proxy_enabled(&self, name: &str, caller: Option<SocketAddr>) {
        let was_disabled = lock(&self.disabled).remove(name);
        let by_the_lab = lock(&self.reenabled).remove(name);
        if !was_disabled || by_the_lab {
            return;
        }
        let id = disabled_id(name);
        let by = caller.map(|c| format!(" by {c}")).unwrap_or_default();
        self.lab.platform.events().normal(
            "FaultCleared",
            &id,
            format!("fault {id} (Toxiproxy API) cleared: proxy {name} enabled{by}"),
            with_caller(caller, json!({"id": id, "kind": "network", "target": name})),
        );
    }
}

/// `data` with the API client's address as `caller`, when known.
fn with_caller(caller: Option<SocketAddr>, mut data: Value) -> Value {
    if let (Some(c), Value::Object(map)) = (caller, &mut data) {
        map.insert("caller".into(), json!(c.to_string()));
    }
    data
}

/// A Toxiproxy API toxic as a fault record.
fn api_record(t: &ToxicInfo) -> Value {
    let injected = Injected {
        target: t.proxy.clone(),
        details: match json!({"mode": t.kind.type_name(), "stream": t.stream.as_str(), "attributes": t.kind.attributes()})
        {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
        ..Default::default()
    };
    let duration = t
        .duration_ms
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    record(&t.name, "network", &injected, t.started_at, duration, "api")
}

impl Registry {
    /// `FaultInjected` for a disabled proxy, once until it is enabled again
    /// (moving a disabled proxy is not a new fault).
    fn announce_disabled(&self, p: &ProxyInfo) {
        self.announce_disabled_by(p, None);
    }

    /// The same, naming the API client that disabled it when known.
    fn announce_disabled_by(&self, p: &ProxyInfo, caller: Option<SocketAddr>) {
        if !lock(&self.disabled).insert(p.name.clone()) {
            return;
        }
        let mut data = disabled_record(p);
        let mut verb = "injected through the Toxiproxy API".to_string();
        if let (Some(c), Value::Object(map)) = (caller, &mut data) {
            map.insert("caller".into(), json!(c.to_string()));
            verb.push_str(&format!(" by {c}"));
        }
        self.lab.platform.events().warning(
            "FaultInjected",
            &disabled_id(&p.name),
            describe(&data, &verb),
            data,
        );
    }
}

/// The audit trail of the Toxiproxy API: a `ToxiproxyChange` event for each
/// change a client made, a `ToxiproxyRefused` warning for each request it
/// was refused; both name the client's address.
fn announce_api_change(lab: &LabHandle, caller: SocketAddr, proxy: &str, change: &Change) {
    let bus = &lab.platform.events();
    let who = format!("Toxiproxy API client {caller}");
    let mut data = json!({"caller": caller.to_string(), "proxy": proxy});
    let mut put = |key: &str, value: Value| {
        if let Value::Object(map) = &mut data {
            map.insert(key.into(), value);
        }
    };
    let (what, message) = match change {
        Change::Added { toxic } | Change::Updated { toxic } | Change::Removed { toxic } => {
            put("toxic", json!(toxic.name));
            put("type", json!(toxic.kind.type_name()));
            let (what, verb, on) = match change {
                Change::Added { .. } => ("toxic_added", "added", "to"),
                Change::Updated { .. } => ("toxic_updated", "changed", "on"),
                _ => ("toxic_removed", "removed", "from"),
            };
            if !matches!(change, Change::Removed { .. }) {
                put("attributes", toxic.kind.attributes());
            }
            let message = format!(
                "{who} {verb} toxic {} ({}) {on} proxy {proxy}",
                toxic.name,
                toxic.kind.type_name()
            );
            (what, message)
        }
        Change::Expired { .. } => return,
        Change::ProxyCreated {
            enabled,
            listen,
            upstream,
        }
        | Change::ProxyUpdated {
            enabled,
            listen,
            upstream,
        } => {
            put("enabled", json!(enabled));
            put("listen", json!(listen));
            put("upstream", json!(upstream));
            let (what, verb) = match change {
                Change::ProxyCreated { .. } => ("proxy_created", "created"),
                _ => ("proxy_updated", "updated"),
            };
            let state = if *enabled { "enabled" } else { "disabled" };
            let message = format!("{who} {verb} proxy {proxy}: {listen} → {upstream}, {state}");
            (what, message)
        }
        Change::ProxyRemoved => ("proxy_removed", format!("{who} deleted proxy {proxy}")),
        Change::Reset => (
            "reset",
            format!("{who} reset every proxy (toxics cleared, proxies enabled)"),
        ),
        Change::Refused { request, reason } => {
            put("change", json!("refused"));
            put("request", json!(request));
            put("reason", json!(reason));
            bus.warning(
                "ToxiproxyRefused",
                proxy,
                format!("{who} was refused {request}: {reason}"),
                data,
            );
            return;
        }
    };
    put("change", json!(what));
    bus.normal("ToxiproxyChange", proxy, message, data);
}

/// The fault id of a proxy disabled through the Toxiproxy API.
pub fn disabled_id(proxy: &str) -> String {
    format!("{proxy}-disabled")
}

/// A disabled proxy as a fault record: kind `network`, mode
/// `proxy-disabled`, until cleared.
fn disabled_record(p: &ProxyInfo) -> Value {
    let injected = Injected {
        target: p.name.clone(),
        details: match json!({"mode": "proxy-disabled", "enabled": false}) {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
        ..Default::default()
    };
    let started = p.disabled_since.unwrap_or_else(Utc::now);
    record(
        &disabled_id(&p.name),
        "network",
        &injected,
        started,
        None,
        "api",
    )
}

fn describe(record: &Value, verb: &str) -> String {
    let mut s = format!(
        "fault {} {}",
        record["id"].as_str().unwrap_or("?"),
        record["kind"].as_str().unwrap_or("?")
    );
    for key in ["mode", "variant", "action", "signal"] {
        if let Some(v) = record[key].as_str() {
            s.push(' ');
            s.push_str(v);
        }
    }
    s.push_str(&format!(
        " on {} {verb}",
        record["target"].as_str().unwrap_or("?")
    ));
    match record["duration_seconds"].as_u64() {
        Some(0) | None => {}
        Some(d) if verb == "injected" => s.push_str(&format!(" for {d} s")),
        Some(_) => {}
    }
    s
}

async fn expire_after(
    registry: Weak<Registry>,
    key: u64,
    after: Duration,
    cancel: CancellationToken,
) {
    tokio::select! {
        _ = tokio::time::sleep(after) => {}
        _ = cancel.cancelled() => return,
    }
    let Some(registry) = registry.upgrade() else {
        return;
    };
    let id = lock(&registry.active).get(&key).map(|a| a.id.clone());
    if let Some(id) = id
        && let Err(e) = registry.clear(&id, Ending::Expired, true).await
    {
        tracing::warn!(fault = %id, error = %e, "an expired fault could not be fully undone");
    }
}
