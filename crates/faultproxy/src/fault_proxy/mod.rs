//! The fault proxy as the lab embeds it: named proxies, each with its chain
//! of toxics; toxics added, updated, removed and expired programmatically or
//! through the HTTP API; every change published to live connections (a
//! `watch` per proxy) and to observers (a `broadcast` of [`FaultEvent`]s).
//!
//! State sits behind one `std::sync::Mutex`, never held across an await.
//! Proxy lifecycle changes (bind, enable, disable, remove), which await,
//! are serialised by a second, async mutex.
//!
//! A proxy is the lab's own ([`Origin::Library`]: added or created through
//! the library) or a Toxiproxy client's ([`Origin::Api`]). The API lets a
//! client change only the toxics and `enabled` of the lab's proxies, and a
//! disabled lab proxy keeps its listener (resetting new connections), so
//! its port cannot be taken by another process meanwhile.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::address::{MAX_ADDRESS, Upstream, check_name, check_upstream, shown};
use crate::chain::{Chain, Installed};
use crate::connections::Connections;
use crate::error::{Error, Result};
use crate::event::{Change, EVENT_CAPACITY, FaultEvent, caller};
use crate::info::{Origin, ProxyInfo};
use crate::proxy::Running;

mod toxics;

use toxics::toxic_info;

/// A proxy to create, as Toxiproxy's `POST /proxies` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProxyConfig {
    /// Unique name.
    #[serde(default)]
    pub name: String,
    /// Loopback address to listen on; port 0 picks a free one.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Address to forward to.
    #[serde(default)]
    pub upstream: String,
    /// Whether to start listening at once (default true).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

pub(crate) fn default_listen() -> String {
    "127.0.0.1:0".to_owned()
}

fn default_enabled() -> bool {
    true
}

/// Changes to a proxy; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProxyUpdate {
    /// New listen address (the proxy restarts, closing its connections).
    pub listen: Option<String>,
    /// New upstream (the proxy restarts, closing its connections).
    pub upstream: Option<String>,
    /// `false` closes the listener and every live connection; `true`
    /// listens again.
    pub enabled: Option<bool>,
}

/// The fault proxy. Cheap to clone; every clone drives the same proxies.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Mutex<BTreeMap<String, ProxyEntry>>,
    lifecycle: tokio::sync::Mutex<()>,
    events: broadcast::Sender<FaultEvent>,
    shutdown: CancellationToken,
    timers: TaskTracker,
    next_id: AtomicU64,
    /// Where listeners, connections and timers run.
    runtime: Handle,
    /// Ends the dedicated runtime's thread, if there is one.
    runtime_stop: Option<CancellationToken>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(stop) = &self.runtime_stop {
            stop.cancel();
        }
    }
}

#[derive(Debug)]
struct ProxyEntry {
    listen: String,
    upstream: String,
    /// The lab's own, or a Toxiproxy client's.
    origin: Origin,
    /// Its listener at work: serving while enabled; refusing while a lab
    /// proxy is disabled; none otherwise.
    running: Option<Running>,
    /// When it was disabled; `None` while it runs.
    disabled_since: Option<DateTime<Utc>>,
    chain: watch::Sender<Chain>,
    toxics: Vec<ToxicEntry>,
    connections: Arc<Connections>,
}

#[derive(Debug)]
struct ToxicEntry {
    installed: Arc<Installed>,
    name: String,
    started_at: DateTime<Utc>,
    duration: Option<Duration>,
    origin: Origin,
    expiry: Option<AbortHandle>,
}

impl Default for FaultProxy {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultProxy {
    /// An empty fault proxy: no proxy, no toxic. Its listeners, connections
    /// and timers run on the current tokio runtime. Dropping the last clone
    /// closes every proxy.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn new() -> Self {
        Self::on(Handle::current(), None)
    }

    /// An empty fault proxy whose data path runs on a runtime of its own: one
    /// thread named `faultproxy` with a current-thread tokio runtime. The
    /// proxied connections then neither wait behind nor slow down the
    /// embedding program's tasks, and cost the least CPU per request (no
    /// wake-ups across threads). The thread ends with
    /// [`shutdown`](Self::shutdown) or when the last clone is dropped.
    pub fn dedicated() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let stop = CancellationToken::new();
        let until = stop.clone();
        std::thread::Builder::new()
            .name("faultproxy".into())
            .spawn(move || runtime.block_on(until.cancelled_owned()))?;
        Ok(Self::on(handle, Some(stop)))
    }

    fn on(runtime: Handle, runtime_stop: Option<CancellationToken>) -> Self {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                registry: Mutex::new(BTreeMap::new()),
                lifecycle: tokio::sync::Mutex::new(()),
                events,
                shutdown: CancellationToken::new(),
                timers: TaskTracker::new(),
                next_id: AtomicU64::new(1),
                runtime,
                runtime_stop,
            }),
        }
    }

    /// Every change from now on (see [`FaultEvent`]).
    pub fn subscribe(&self) -> broadcast::Receiver<FaultEvent> {
        self.inner.events.subscribe()
    }

    /// Starts a proxy named `name` accepting on `listener` (bound by the
    /// caller) and forwarding to `upstream`: `host:port`, or
    /// `unix:/absolute/path` for a Unix stream socket (at most
    /// [`MAX_UNIX_PATH`](crate::MAX_UNIX_PATH) bytes of path; the API does
    /// not accept these). It is the lab's own ([`Origin::Library`]).
    pub async fn add_proxy(
        &self,
        name: &str,
        listener: TcpListener,
        upstream: &str,
    ) -> Result<ProxyInfo> {
        check_names(name, upstream)?;
        let _lifecycle = self.inner.lifecycle.lock().await;
        self.insert_proxy(name, upstream, Some(listener), None, Origin::Library)
    }

    /// Creates a proxy from Toxiproxy's fields, binding `listen` itself
    /// (loopback only) when it is enabled. It is the lab's own
    /// ([`Origin::Library`]); the API creates its proxies as
    /// [`Origin::Api`].
    pub async fn create_proxy(&self, config: ProxyConfig) -> Result<ProxyInfo> {
        self.create_proxy_as(config, Origin::Library).await
    }

    pub(crate) async fn create_proxy_as(
        &self,
        config: ProxyConfig,
        origin: Origin,
    ) -> Result<ProxyInfo> {
        check_names(&config.name, &config.upstream)?;
        let _lifecycle = self.inner.lifecycle.lock().await;
        if self.registry()?.contains_key(&config.name) {
            return Err(Error::ProxyAlreadyExists);
        }
        let addr = loopback(&config.listen).await?;
        if config.enabled {
            let listener = bind(addr).await?;
            self.insert_proxy(&config.name, &config.upstream, Some(listener), None, origin)
        } else {
            let listen = addr.to_string();
            self.insert_proxy(&config.name, &config.upstream, None, Some(listen), origin)
        }
    }

    fn insert_proxy(
        &self,
        name: &str,
        upstream: &str,
        listener: Option<TcpListener>,
        listen: Option<String>,
        origin: Origin,
    ) -> Result<ProxyInfo> {
        let listen = match (&listener, listen) {
            (Some(l), _) => local_addr(l)?,
            (None, Some(listen)) => listen,
            (None, None) => default_listen(),
        };
        let mut registry = self.registry()?;
        if registry.contains_key(name) {
            return Err(Error::ProxyAlreadyExists);
        }
        let (chain, _) = watch::channel(Chain::default());
        let connections = Arc::new(Connections::default());
        let target = Upstream::parse(upstream)?;
        let running = listener.map(|l| {
            Running::start(
                l,
                target,
                chain.subscribe(),
                connections.clone(),
                &self.inner.shutdown,
                &self.inner.runtime,
            )
        });
        let enabled = running.is_some();
        let entry = ProxyEntry {
            listen: listen.clone(),
            upstream: upstream.to_owned(),
            origin,
            disabled_since: (!enabled).then(Utc::now),
            running,
            chain,
            toxics: Vec::new(),
            connections,
        };
        let info = proxy_info(name, &entry);
        registry.insert(name.to_owned(), entry);
        self.emit(
            name,
            Change::ProxyCreated {
                enabled,
                listen,
                upstream: upstream.to_owned(),
            },
        );
        Ok(info)
    }

    /// One proxy.
    pub fn proxy(&self, name: &str) -> Result<ProxyInfo> {
        let registry = self.registry()?;
        let entry = registry.get(name).ok_or(Error::ProxyNotFound)?;
        Ok(proxy_info(name, entry))
    }

    /// Every proxy, by name.
    pub fn proxies(&self) -> Vec<ProxyInfo> {
        match self.registry() {
            Ok(registry) => registry.iter().map(|(n, e)| proxy_info(n, e)).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Enables or disables a proxy, or moves it (Toxiproxy's
    /// `POST /proxies/{name}`). Disabling closes every live connection
    /// before it returns; a lab proxy ([`Origin::Library`]) keeps its
    /// listener meanwhile and resets new connections, an API proxy closes it
    /// (connections are refused, as Toxiproxy).
    pub async fn update_proxy(&self, name: &str, update: ProxyUpdate) -> Result<ProxyInfo> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        let (listen, upstream, enabled, origin, had_listener) = {
            let registry = self.registry()?;
            let entry = registry.get(name).ok_or(Error::ProxyNotFound)?;
            (
                entry.listen.clone(),
                entry.upstream.clone(),
                is_enabled(entry),
                entry.origin,
                entry.running.is_some(),
            )
        };
        let new_listen = update.listen.unwrap_or_else(|| listen.clone());
        let new_upstream = update.upstream.unwrap_or_else(|| upstream.clone());
        let new_enabled = update.enabled.unwrap_or(enabled);
        check_names(name, &new_upstream)?;
        let addr = loopback(&new_listen).await?;
        let moved = new_listen != listen || new_upstream != upstream;
        if !moved && new_enabled == enabled {
            return self.proxy(name);
        }
        // A lab proxy keeps a listener while disabled, so its port stays
        // taken.
        let want_listener = new_enabled || (origin == Origin::Library && had_listener);

        let running = self.with_entry(name, |e| {
            if !new_enabled {
                e.disabled_since.get_or_insert_with(Utc::now);
            }
            e.running.take()
        })?;
        let kept = match running {
            Some(running) => running.stop().await,
            None => None,
        };
        let listener = match kept {
            // Same address (a new upstream at most): the same listener.
            Some(listener) if want_listener && new_listen == listen => Some(listener),
            _ if !want_listener => None,
            _ => match bind(addr).await {
                Ok(listener) => Some(listener),
                Err(e) => {
                    self.note_failed_move(name, enabled, listen, upstream);
                    return Err(e);
                }
            },
        };
        let info = self.with_entry(name, |entry| {
            self.install_listener(
                name,
                entry,
                listener,
                &new_listen,
                &new_upstream,
                new_enabled,
            )
        })??;
        if (info.enabled, &info.listen, &info.upstream) != (enabled, &listen, &upstream) {
            self.emit(
                name,
                Change::ProxyUpdated {
                    enabled: info.enabled,
                    listen: info.listen.clone(),
                    upstream: info.upstream.clone(),
                },
            );
        }
        Ok(info)
    }

    /// A proxy stopped to move could not listen at its new address: it is
    /// disabled now, and observers must know when it was enabled.
    fn note_failed_move(&self, name: &str, was_enabled: bool, listen: String, upstream: String) {
        let _ = self.with_entry(name, |e| {
            e.disabled_since.get_or_insert_with(Utc::now);
        });
        if was_enabled {
            self.emit(
                name,
                Change::ProxyUpdated {
                    enabled: false,
                    listen,
                    upstream,
                },
            );
        }
    }

    /// Puts a proxy's new address, upstream and listener (serving when
    /// enabled, refusing when not) into its entry.
    fn install_listener(
        &self,
        name: &str,
        entry: &mut ProxyEntry,
        listener: Option<TcpListener>,
        new_listen: &str,
        new_upstream: &str,
        new_enabled: bool,
    ) -> Result<ProxyInfo> {
        let target = Upstream::parse(new_upstream)?;
        entry.upstream = new_upstream.to_string();
        entry.listen = match &listener {
            Some(l) => local_addr(l)?,
            None => new_listen.to_string(),
        };
        entry.running = listener.map(|listener| {
            if new_enabled {
                Running::start(
                    listener,
                    target,
                    entry.chain.subscribe(),
                    entry.connections.clone(),
                    &self.inner.shutdown,
                    &self.inner.runtime,
                )
            } else {
                Running::refuse(listener, &self.inner.shutdown, &self.inner.runtime)
            }
        });
        match (is_enabled(entry), entry.disabled_since) {
            (true, _) => entry.disabled_since = None,
            (false, None) => entry.disabled_since = Some(Utc::now()),
            (false, Some(_)) => {}
        }
        Ok(proxy_info(name, entry))
    }

    /// Enables or disables a proxy.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<ProxyInfo> {
        let update = ProxyUpdate {
            enabled: Some(enabled),
            ..ProxyUpdate::default()
        };
        self.update_proxy(name, update).await
    }

    /// Removes a proxy: its toxics are cleared, its listener and connections
    /// closed.
    pub async fn remove_proxy(&self, name: &str) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        let mut entry = {
            let mut registry = self.registry()?;
            registry.remove(name).ok_or(Error::ProxyNotFound)?
        };
        for toxic in entry.toxics.drain(..) {
            self.emit_removed(name, toxic, false);
        }
        if let Some(running) = entry.running.take() {
            drop(running.stop().await);
        }
        self.emit(name, Change::ProxyRemoved);
        Ok(())
    }

    /// Toxiproxy's `POST /reset`: clears every toxic and enables every proxy.
    pub async fn reset(&self) -> Result<()> {
        drop(self.registry()?);
        self.emit("*", Change::Reset);
        self.clear_all();
        for proxy in self.proxies() {
            if !proxy.enabled {
                self.set_enabled(&proxy.name, true).await?;
            }
        }
        Ok(())
    }

    /// Clears every toxic, closes every listener and connection, and waits
    /// (briefly) for them to go. Later calls fail with `ShuttingDown`.
    pub async fn shutdown(&self) {
        let _lifecycle = self.inner.lifecycle.lock().await;
        self.clear_all();
        self.inner.shutdown.cancel();
        let running: Vec<Running> = match self.inner.registry.lock() {
            Ok(mut registry) => registry
                .values_mut()
                .filter_map(|e| e.running.take())
                .collect(),
            Err(_) => Vec::new(),
        };
        for run in running {
            drop(run.stop().await);
        }
        self.inner.timers.close();
        self.inner.timers.wait().await;
        if let Some(stop) = &self.inner.runtime_stop {
            stop.cancel();
        }
    }

    fn registry(&self) -> Result<MutexGuard<'_, BTreeMap<String, ProxyEntry>>> {
        if self.inner.shutdown.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        // A panic while holding the lock leaves consistent data: every
        // mutation is a single step.
        Ok(self
            .inner
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    fn with_entry<T>(&self, name: &str, f: impl FnOnce(&mut ProxyEntry) -> T) -> Result<T> {
        let mut registry = self.registry()?;
        let entry = registry.get_mut(name).ok_or(Error::ProxyNotFound)?;
        Ok(f(entry))
    }

    /// Announces that the API refused `request` on `proxy` (nothing
    /// changed): a [`Change::Refused`] naming the caller.
    pub(crate) fn announce_refusal(&self, proxy: &str, request: String, reason: &Error) {
        self.emit(
            proxy,
            Change::Refused {
                request,
                reason: reason.to_string(),
            },
        );
    }

    fn emit(&self, proxy: &str, change: Change) {
        // No receiver is fine: nobody is watching.
        let _ = self.inner.events.send(FaultEvent {
            at: Utc::now(),
            proxy: proxy.to_owned(),
            caller: caller(),
            change,
        });
    }
}

/// Whether the proxy serves connections.
fn is_enabled(entry: &ProxyEntry) -> bool {
    entry.running.as_ref().is_some_and(Running::serving)
}

fn proxy_info(name: &str, entry: &ProxyEntry) -> ProxyInfo {
    let enabled = is_enabled(entry);
    ProxyInfo {
        name: name.to_owned(),
        listen: entry.listen.clone(),
        upstream: entry.upstream.clone(),
        origin: entry.origin,
        enabled,
        disabled_since: if enabled { None } else { entry.disabled_since },
        connections: entry.connections.count(),
        toxics: entry.toxics.iter().map(|t| toxic_info(name, t)).collect(),
    }
}

fn check_names(name: &str, upstream: &str) -> Result<()> {
    check_name("name", name)?;
    check_upstream(upstream)
}

/// Parses `listen` — an IP address and port, or `localhost:port` — and
/// insists it is a loopback address. No name is resolved: a caller's text
/// never becomes a DNS query.
async fn loopback(listen: &str) -> Result<SocketAddr> {
    let invalid = || Error::InvalidValue(format!("listen address {}", shown(listen)));
    if listen.len() > MAX_ADDRESS {
        return Err(invalid());
    }
    let addr = match listen.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let (host, port) = listen.rsplit_once(':').ok_or_else(invalid)?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(invalid)?;
            if !host.eq_ignore_ascii_case("localhost") {
                return Err(Error::NotLoopback(shown(listen)));
            }
            SocketAddr::from(([127, 0, 0, 1], port))
        }
    };
    if addr.ip().to_canonical().is_loopback() {
        Ok(addr)
    } else {
        Err(Error::NotLoopback(shown(listen)))
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen {
            addr: addr.to_string(),
            source,
        })
}

fn local_addr(listener: &TcpListener) -> Result<String> {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .map_err(|source| Error::Listen {
            addr: "?".into(),
            source,
        })
}
