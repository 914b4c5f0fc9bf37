//! Starting and stopping the whole lab, in order. Start: validate, refuse a
//! second lab in the same state dir, bind the ingress and control ports,
//! start Redis (PING, ACL user) and the fault proxy in front of it (the
//! replicas reach Redis only through it; its Toxiproxy-compatible API on its
//! own loopback port), plug in the faults ([`start_with`]), the first
//! revision's replicas, the ingress, the control API and the loops, then
//! write the state file. Stop (Ctrl-C, SIGTERM, `chaoslab down`): every
//! replica SIGTERM then SIGKILL after the grace, then the plugged-in
//! component (the faults: every fault cleared), then Redis and the fault
//! proxy, then the state file; nothing is left running.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chaoslab_faultproxy::FaultProxy;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, LabConfig, secs};
use crate::control_api::{self, LabInfo};
use crate::files::{private_dir, secret};
use crate::platform::{Platform, RedisEndpoint, free_port};
use crate::redis_server::{RedisError, RedisOptions, RedisServer, SERVICE_USER, find_executable};
use crate::spawner::Spawner;
use crate::state::StateFile;

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("a lab is already running in {dir} (pid {pid}); stop it with `chaoslab down`")]
    AlreadyRunning { dir: PathBuf, pid: u32 },
    #[error("image not found: {0} (the executable replicas run)")]
    ImageNotFound(PathBuf),
    #[error(transparent)]
    Redis(#[from] RedisError),
    #[error("cannot listen for the {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let context = context.into();
    move |source| LabError::Io { context, source }
}

/// The fault proxy's proxy in front of the lab's Redis.
pub const REDIS_PROXY: &str = "redis";

/// What the lab hands, at start, to a component plugged into it (the
/// faults, crate `chaoslab-faults`, which depends on this one).
pub struct LabParts {
    pub platform: Arc<Platform>,
    /// The fault proxy with [`REDIS_PROXY`] in front of the lab's Redis
    /// (none with an external Redis).
    pub proxy: Option<FaultProxy>,
    /// The lab's redis-server, handed over (none with an external Redis):
    /// the component stops it when the lab stops.
    pub redis: Option<RedisServer>,
    /// The redis-server executable.
    pub redis_server: PathBuf,
    /// Where redis-server's output goes.
    pub redis_log: PathBuf,
    /// `http://127.0.0.1:PORT` of the ingress.
    pub ingress_url: String,
}

/// A plugged-in component's stop step.
pub type StopStep = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What a plugged-in component gives back.
pub struct Plugin {
    /// Routes for the control API, behind its bearer token.
    pub routes: axum::Router,
    /// Run when the lab stops, after the replicas stopped.
    pub stop: StopStep,
}

/// Builds a [`Plugin`] from the lab's parts.
pub type PlugFn = Box<dyn FnOnce(LabParts) -> Result<Plugin, String> + Send>;

/// A started lab.
pub struct RunningLab {
    pub platform: Arc<Platform>,
    pub ingress_addr: SocketAddr,
    pub control_addr: SocketAddr,
    pub info: LabInfo,
    redis: Option<RedisServer>,
    proxy: Option<FaultProxy>,
    plugin_stop: Option<StopStep>,
    servers: Vec<JoinHandle<()>>,
    state_dir: PathBuf,
}

impl std::fmt::Debug for RunningLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningLab")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Starts the lab described by `config` (no plugged-in component).
pub async fn start(config: LabConfig) -> Result<RunningLab, LabError> {
    start_with(config, None).await
}

/// Starts the lab with a component plugged in (`chaoslab up` plugs in the
/// faults): it gets the platform, the fault proxy and the Redis server, and
/// gives back control API routes and a stop step.
pub async fn start_with(
    mut config: LabConfig,
    plug: Option<PlugFn>,
) -> Result<RunningLab, LabError> {
    let state_dir = std::path::absolute(&config.state_dir).map_err(io("state dir"))?;
    if let Ok(existing) = StateFile::read(&state_dir)
        && existing.pid != std::process::id()
        && existing.lab_alive()
    {
        return Err(LabError::AlreadyRunning {
            dir: state_dir,
            pid: existing.pid,
        });
    }
    if find_executable(&config.image).is_none() {
        return Err(LabError::ImageNotFound(config.image.clone()));
    }
    let external = config.file.redis.url.clone();
    if external.is_none() && find_executable(&config.file.redis.server).is_none() {
        return Err(
            RedisError::NotInstalled(config.file.redis.server.display().to_string()).into(),
        );
    }
    let logs_dir = state_dir.join("logs");
    private_dir(&state_dir).map_err(io(format!("cannot create {}", state_dir.display())))?;
    if config.file.app.chaos_token {
        config.chaos_token = Some(kept_secret(&state_dir, "chaos-token"));
    }
    private_dir(&logs_dir).map_err(io(format!("cannot create {}", logs_dir.display())))?;

    let bind = |what: &'static str, port: u16| async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        TcpListener::bind(addr)
            .await
            .map_err(|source| LabError::Bind { what, addr, source })
    };
    let ingress_listener = bind("ingress", config.file.ingress.port).await?;
    let control_listener = bind("control API", config.file.control.port).await?;
    let ingress_addr = ingress_listener
        .local_addr()
        .map_err(io("ingress address"))?;
    let control_addr = control_listener
        .local_addr()
        .map_err(io("control address"))?;

    let spawner = Spawner::start().map_err(io("cannot start the spawner thread"))?;
    let mut fault_proxy: Option<FaultProxy> = None;
    let (redis, endpoint) = match &external {
        Some(url) => (
            None,
            RedisEndpoint {
                env: vec![("REDIS_URL".into(), url.clone())],
                describe: format!("external {url}"),
                admin: None,
            },
        ),
        None => {
            let port = match config.file.redis.port {
                0 => free_port().map_err(io("cannot find a free port for Redis"))?,
                p => p,
            };
            let options = RedisOptions {
                server: config.file.redis.server.clone(),
                port,
                dir: state_dir.join("redis"),
                log_file: logs_dir.join("redis.log"),
                start_timeout: secs(config.file.redis.start_timeout_seconds),
            };
            let server = RedisServer::start(&spawner, &options).await?;
            // Every replica reaches Redis through the fault proxy.
            let proxy = FaultProxy::dedicated().map_err(io("cannot start the fault proxy"))?;
            let listener = bind("fault proxy", 0).await?;
            let via = listener.local_addr().map_err(io("fault proxy address"))?;
            if let Err(e) = proxy
                .add_proxy(REDIS_PROXY, listener, &server.addr().to_string())
                .await
            {
                server.stop(Duration::from_secs(5)).await;
                return Err(LabError::Io {
                    context: "cannot start the fault proxy".into(),
                    source: std::io::Error::other(e.to_string()),
                });
            }
            let endpoint = RedisEndpoint {
                env: vec![
                    ("REDIS_HOST".into(), "127.0.0.1".into()),
                    ("REDIS_PORT".into(), via.port().to_string()),
                    ("REDIS_USERNAME".into(), SERVICE_USER.into()),
                    (
                        "REDIS_PASSWORD_FILE".into(),
                        server.service_password_file.display().to_string(),
                    ),
                ],
                describe: format!(
                    "redis://{SERVICE_USER}@{via} via the fault proxy (redis-server on port {port}, pid {}, data {})",
                    server.pid(),
                    server.data_dir.display()
                ),
                // The lab's own admin connection: redis-server directly.
                admin: Some(server.admin_target()),
            };
            fault_proxy = Some(proxy);
            (Some(server), endpoint)
        }
    };

    let ingress_config = chaoslab_ingress::IngressConfig {
        request_timeout: secs(config.file.ingress.request_timeout_seconds),
        ..Default::default()
    };
    // The Toxiproxy-compatible API of the fault proxy, on its own port.
    let toxiproxy_listener = match &fault_proxy {
        Some(_) => Some(
            bind(
                "Toxiproxy-compatible API",
                config.file.faults.toxiproxy_port,
            )
            .await?,
        ),
        None => None,
    };
    let toxiproxy_url = match &toxiproxy_listener {
        Some(l) => Some(format!(
            "http://{}",
            l.local_addr().map_err(io("Toxiproxy API address"))?
        )),
        None => None,
    };
    let redis_server = config.file.redis.server.clone();
    let redis_log = logs_dir.join("redis.log");
    let platform = Platform::new(config, spawner, endpoint, logs_dir);
    let info = LabInfo {
        pid: std::process::id(),
        started_at: platform.started_at.clone(),
        state_dir: state_dir.display().to_string(),
        ingress_url: format!("http://{ingress_addr}"),
        control_url: format!("http://{control_addr}"),
        redis: platform.redis.describe.clone(),
        toxiproxy_url,
    };
    platform.events.normal(
        "LabStarting",
        "lab",
        format!("lab starting; redis {}", info.redis),
        serde_json::Value::Null,
    );
    let mut lab = RunningLab {
        platform: platform.clone(),
        ingress_addr,
        control_addr,
        info: info.clone(),
        redis,
        proxy: fault_proxy.clone(),
        plugin_stop: None,
        servers: Vec::new(),
        state_dir: state_dir.clone(),
    };
    if let (Some(listener), Some(proxy)) = (toxiproxy_listener, &fault_proxy) {
        let stop = platform.shutdown.clone().cancelled_owned();
        let api_config = chaoslab_faultproxy::api::ApiConfig {
            allow_remote_upstream: platform.config.file.faults.allow_remote_upstream,
        };
        let api = chaoslab_faultproxy::api::serve_with(listener, proxy.clone(), api_config, stop);
        lab.servers.push(tokio::spawn(async move {
            if let Err(e) = api.await {
                tracing::error!(error = %e, "Toxiproxy-compatible API stopped");
            }
        }));
    }
    // The pid at start (a `fault redis restart` changes it later).
    let redis_pid = lab.redis.as_ref().map(RedisServer::pid);
    let mut routes = axum::Router::new();
    if let Some(plug) = plug {
        let parts = LabParts {
            platform: platform.clone(),
            proxy: fault_proxy.clone(),
            redis: lab.redis.take(),
            redis_server,
            redis_log,
            ingress_url: info.ingress_url.clone(),
        };
        match plug(parts) {
            Ok(plugin) => {
                routes = plugin.routes;
                lab.plugin_stop = Some(plugin.stop);
            }
            Err(e) => {
                lab.stop().await;
                return Err(LabError::Io {
                    context: "cannot start the faults".into(),
                    source: std::io::Error::other(e),
                });
            }
        }
    }
    if let Err(e) = platform.start_initial() {
        lab.stop().await;
        return Err(LabError::Config(ConfigError::Invalid(e.to_string())));
    }

    let shutdown = platform.shutdown.clone();
    // The ingress runs on its own single-threaded runtimes (one per
    // `ingress.threads`), away from the lab's: a proxy on a work-stealing
    // runtime spends much of its time waking threads across cores.
    let std_listener = ingress_listener
        .into_std()
        .map_err(io("ingress listener"))?;
    for i in 0..platform.config.file.ingress.threads.max(1) {
        let listener = std_listener.try_clone().map_err(io("ingress listener"))?;
        let (upstreams, config) = (platform.upstreams(), ingress_config.clone());
        let (metrics, stop) = (platform.ingress_metrics.clone(), shutdown.clone());
        lab.servers.push(tokio::task::spawn_blocking(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return tracing::error!(error = %e, "ingress runtime {i} failed"),
            };
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => return tracing::error!(error = %e, "ingress listener {i} failed"),
                };
                let shutdown = stop.cancelled_owned();
                if let Err(e) =
                    chaoslab_ingress::run(listener, upstreams, config, metrics, shutdown).await
                {
                    tracing::error!(error = %e, "ingress stopped");
                }
            });
        }));
    }
    let token = kept_secret(&state_dir, "control-token");
    let router = control_api::router_with(
        platform.clone(),
        token.clone(),
        info.clone(),
        routes,
        chaoslab_console::router(),
    );
    let control = control_api::serve(control_listener, router, shutdown.clone().cancelled_owned());
    lab.servers.push(tokio::spawn(async move {
        if let Err(e) = control.await {
            tracing::error!(error = %e, "control API stopped");
        }
    }));
    lab.servers
        .push(tokio::spawn(crate::loops::autoscale(platform.clone())));
    lab.servers
        .push(tokio::spawn(crate::loops::sample(platform.clone())));
    lab.servers.push(tokio::spawn(crate::alerting::run(
        platform.clone(),
        platform.config.file.alerts.clone(),
    )));

    let state = StateFile {
        pid: info.pid,
        started_at: info.started_at.clone(),
        ingress_url: info.ingress_url.clone(),
        control_url: info.control_url.clone(),
        token,
        redis: info.redis.clone(),
        redis_pid,
    };
    if let Err(e) = state.write(&state_dir) {
        lab.stop().await;
        return Err(io(format!(
            "cannot write {}",
            StateFile::path(&state_dir).display()
        ))(e));
    }
    Ok(lab)
}

impl RunningLab {
    /// Waits until the ingress has at least one ready replica; false on timeout.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut upstreams = self.platform.upstreams();
        tokio::time::timeout(timeout, upstreams.wait_for(|set| !set.is_empty()))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Runs until `signal` resolves or the control API asks to stop, then
    /// stops everything.
    pub async fn run(self, signal: impl Future<Output = ()>) {
        tokio::select! {
            _ = signal => {}
            _ = self.platform.shutdown.cancelled() => {}
        }
        self.stop().await;
    }

    /// The state dir in use.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Stops replicas (SIGTERM, SIGKILL after the grace), servers, Redis,
    /// and removes the state file.
    pub async fn stop(mut self) {
        let p = self.platform.clone();
        p.events.normal(
            "LabStopping",
            "lab",
            "stopping replicas, ingress and Redis",
            serde_json::Value::Null,
        );
        p.shutdown.cancel();
        p.replica_tasks.close();
        let grace = secs(p.config.file.restart.termination_grace_seconds) + Duration::from_secs(2);
        if tokio::time::timeout(grace, p.replica_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("replicas did not stop within {grace:?}");
        }
        for server in self.servers.drain(..) {
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(6), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        if let Some(stop) = self.plugin_stop.take()
            && tokio::time::timeout(Duration::from_secs(30), stop())
                .await
                .is_err()
        {
            tracing::warn!("the faults did not stop within 30 s");
        }
        if let Some(redis) = self.redis.take() {
            redis.stop(Duration::from_secs(5)).await;
        }
        if let Some(proxy) = self.proxy.take() {
            proxy.shutdown().await;
        }
        StateFile::remove_if_mine(&self.state_dir, std::process::id());
        p.events.normal(
            "LabStopped",
            "lab",
            "every replica, the faults, the fault proxy and Redis are stopped",
            serde_json::Value::Null,
        );
    }
}

/// A token kept in `<state dir>/<name>` (0600) and reused by the next lab
/// in the same directory — the control API's (so an open console and
/// scripts keep working across `down` and `up`) and the chaos API's; made
/// fresh when absent.
fn kept_secret(state_dir: &Path, name: &str) -> String {
    let path = state_dir.join(name);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim();
        if token.len() >= 32 && token.chars().all(|c| c.is_ascii_alphanumeric()) {
            return token.to_string();
        }
    }
    let token = secret(40);
    if let Err(e) = crate::files::write_private(&path, token.as_bytes()) {
        tracing::warn!(error = %e, file = name, "cannot keep a token; the next lab will make a new one");
    }
    token
}

#[cfg(test)]
mod token_tests {
    #[test]
    fn the_control_token_survives_a_restart_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = super::kept_secret(dir.path(), "control-token");
        assert_eq!(first.len(), 40);
        assert_eq!(super::kept_secret(dir.path(), "control-token"), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("control-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable only by its owner");
    }
}
