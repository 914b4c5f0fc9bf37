//! The registry of active faults: ids (`f-1`, `f-2`… never reused), start
//! time, duration and a timer that ends each fault by itself; every
//! injection, clearing and expiry is an event on the lab's bus
//! (`FaultInjected`, `FaultCleared`, `FaultExpired`, data `{id, kind,
//! target, …}`). Operations are serialised (one at a time: a clear never
//! races an injection), each bounded by its kind's own timeouts. Toxics set
//! through the Toxiproxy-compatible API are listed and announced too, and can
//! be cleared by their name.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chaoslab_faultproxy::{Change, Origin, ToxicInfo};
use chrono::{DateTime, SecondsFormat, Utc};
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
        "started": started.to_rfc3339_opts(SecondsFormat::Millis, true),
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
        if self.lab.platform.shutdown.is_cancelled() {
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
            cancel: self.lab.platform.shutdown.child_token(),
        };
        let record = active.record();
        self.lab.platform.events.warning(
            "FaultInjected",
            &id,
            describe(&record, "injected"),
            record.clone(),
        );
        if active.injected.one_shot {
            self.lab.platform.events.normal(
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
            return self.clear_api_toxic(id);
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
            self.lab.platform.events.warning(
                reason,
                &fault.id,
                format!("fault {} {verb}, but undoing it failed: {e}", fault.id),
                data,
            );
        } else {
            self.lab.platform.events.normal(
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
                self.lab.platform.events.normal(
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

    /// Every active fault, oldest first (the Toxiproxy API's toxics last).
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
        }
        out
    }

    /// Stops the timers (the lab is stopping; call after `clear_all`).
    pub async fn close(&self) {
        self.timers.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.timers.wait()).await;
    }

    /// Follows the fault proxy's events: the Toxiproxy API's toxics become
    /// `FaultInjected`/`FaultCleared` events, and a lab fault whose toxic was
    /// removed behind the lab's back (e.g. `POST /reset`) is cleared.
    pub async fn follow_proxy(self: Arc<Self>) {
        let Some(proxy) = self.lab.proxy.clone() else {
            return;
        };
        let mut events = proxy.subscribe();
        let stop = self.lab.platform.shutdown.clone();
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = stop.cancelled() => return,
            };
            let change = match event {
                Ok(e) => e.change,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let bus = &self.lab.platform.events;
            match change {
                Change::Added { toxic } if toxic.origin == Origin::Api => {
                    let data = api_record(&toxic);
                    bus.warning(
                        "FaultInjected",
                        &toxic.name,
                        describe(&data, "injected through the Toxiproxy API"),
                        data,
                    );
                }
                Change::Removed { toxic } | Change::Expired { toxic }
                    if toxic.origin == Origin::Api =>
                {
                    if lock(&self.removed_api).remove(&toxic.name) {
                        continue;
                    }
                    bus.normal(
                        "FaultCleared",
                        &toxic.name,
                        format!("fault {} (Toxiproxy API) cleared", toxic.name),
                        json!({"id": toxic.name, "kind": "network", "target": toxic.proxy}),
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
    }
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
