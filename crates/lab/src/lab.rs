//! Starting and stopping the whole lab, in order. Start: validate, take the
//! state dir's lock (one lab per directory: a second `chaoslab up` fails at
//! once naming the first's pid), bind every listener (ingress, control
//! API, the fault proxy and its Toxiproxy-compatible API) and reserve
//! Redis's port before any child starts, start Redis (PING, ACL user) and
//! the fault proxy in front of it (the replicas reach Redis only through
//! it), plug in the faults ([`start_with`]), the first revision's replicas,
//! the ingress, the control API and the loops, then write the state file.
//! Once Redis started, any failure stops what started, as a stop does.
//! Stop (Ctrl-C, SIGTERM, `chaoslab down`): every replica SIGTERM then
//! SIGKILL after the grace, then the plugged-in component (the faults:
//! every fault cleared), then Redis and the fault proxy, then what kernel
//! isolation made (cgroups, namespace, veth, nftables tables), then the
//! state file, then the lock; nothing is left running.
//!
//! Isolation (SPEC §14, [`crate::isolation`]): once the lock is held, the
//! lab first removes whatever a killed lab of the same directory left in
//! the kernel (everything carries the lab's name), then decides per
//! mechanism — cgroups for the replicas, a network namespace for Redis —
//! and makes them before Redis starts; a failure after that removes them.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chaoslab_faultproxy::{FaultProxy, UNIX_UPSTREAM_PREFIX};
use chaoslab_foundation::listen::{BindError, PortReservation, bind_loopback};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::cgroup::{CgroupVersion, Hierarchies, LabCgroups};
use crate::config::{ConfigError, LabConfig, LimitsSection, secs};
use crate::control_api::{self, LabInfo};
use crate::files::{private_dir, secret};
use crate::identity::StandInIdentity;
use crate::isolation::{
    IsolationMode, IsolationReport, KernelParts, Mechanism, kernel_name, lab_id, not_root,
};
use crate::kernel_claim::{CLAIM_DIR, KernelClaim, sweep_dead_labs};
use crate::lab_redis::LabRedis;
use crate::netns::LabNetwork;
use crate::platform::{Platform, RedisEndpoint};
use crate::plug::{LabParts, PlugFn, REDIS_PROXY, StopStep};
use crate::redis_server::{
    InNamespace, Listen, RedisError, RedisOptions, RedisServer, SERVICE_USER, find_executable,
};
use crate::spawner::Spawner;
use crate::state::{LabLock, LockError, StateFile};

/// Why the lab could not start.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "a lab is already running in {dir} (pid {}); stop it with `chaoslab down`",
        .pid.map_or("unknown".into(), |p| p.to_string())
    )]
    AlreadyRunning { dir: PathBuf, pid: Option<u32> },
    #[error("image not found: {0} (the executable replicas run)")]
    ImageNotFound(PathBuf),
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// A port the lab needs is taken (says which, where and why).
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The stand-in identity endpoint (`--auth entra`).
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
    #[error("kernel isolation is not possible here: {0} (use --isolation auto or process)")]
    Isolation(String),
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

/// Runs blocking file work (fsyncs, locks) off the runtime's threads.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, LabError> + Send + 'static,
) -> Result<T, LabError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io(what)(std::io::Error::other(e)))?
}

/// What kernel isolation made, removed when dropped unless disarmed (a
/// start that fails before the lab exists).
struct KernelGuard {
    parts: Option<KernelParts>,
}

impl KernelGuard {
    fn disarm(&mut self) -> Option<KernelParts> {
        self.parts.take()
    }
}

impl Drop for KernelGuard {
    fn drop(&mut self) {
        if let Some(parts) = self.parts.take() {
            remove_kernel_parts(&parts);
        }
    }
}

/// Removes the lab's namespace (Redis must be stopped) and cgroups.
fn remove_kernel_parts(parts: &KernelParts) {
    if let Some(network) = &parts.network {
        network.remove();
    }
    if let Some(cgroups) = &parts.cgroups {
        cgroups.remove();
    }
}

/// Decides the isolation of each mechanism and makes what kernel mode
/// needs (blocking: file system and `ip`/`nft` calls).
fn plan_isolation(
    config: &LabConfig,
    state_dir: &Path,
    own_redis: bool,
) -> Result<KernelParts, LabError> {
    let requested = config.file.lab.isolation;
    let id = lab_id(state_dir);
    let name = kernel_name(&id);
    if requested == IsolationMode::Process {
        return Ok(KernelParts::process(IsolationReport::process(
            requested,
            name,
            "--isolation process",
        )));
    }
    let mut report = IsolationReport::process(requested, name.clone(), "");
    if let Some(why) = not_root() {
        if requested == IsolationMode::Kernel {
            return Err(LabError::Isolation(why));
        }
        return Ok(KernelParts::process(IsolationReport::process(
            requested, name, &why,
        )));
    }
    let limits = &config.file.limits;
    let cgroups = match Hierarchies::detect().and_then(|h| LabCgroups::create(h, &name)) {
        Ok(cgroups) => {
            let (memory, cpu) = cgroup_mechanisms(&cgroups.hierarchies, &name, limits);
            report.memory = Mechanism::kernel(memory);
            report.cpu = Mechanism::kernel(cpu);
            Some(cgroups)
        }
        Err(why) => {
            if requested == IsolationMode::Kernel {
                return Err(LabError::Isolation(format!("cgroups: {why}")));
            }
            let process = IsolationReport::process(requested, name.clone(), &why);
            report.memory = process.memory;
            report.cpu = process.cpu;
            None
        }
    };
    let mut guard = KernelGuard {
        parts: Some(KernelParts {
            report: report.clone(),
            cgroups,
            network: None,
        }),
    };
    let network = plan_network(config, &id, &name, own_redis, &mut report)?;
    let mut parts = guard
        .disarm()
        .unwrap_or_else(|| KernelParts::process(report.clone()));
    parts.report = report;
    parts.network = network;
    Ok(parts)
}

/// What kernel mode's memory and CPU limits are, per cgroup version.
fn cgroup_mechanisms(h: &Hierarchies, name: &str, limits: &LimitsSection) -> (String, String) {
    match h.version {
        CgroupVersion::V1 => (
            format!(
                "cgroup v1: memory.limit_in_bytes per replica ({} MiB by default) under {}, OOM kills from memory.oom_control",
                limits.memory_mb,
                h.memory.join(name).display()
            ),
            format!(
                "cgroup v1: CFS quota per replica (cpu.cfs_quota_us, {} cores by default) under {}, usage from cpuacct.usage, throttling from cpu.stat",
                limits.cpu,
                h.cpu.join(name).display()
            ),
        ),
        CgroupVersion::V2 => (
            format!(
                "cgroup v2: memory.max per replica ({} MiB by default) under {}, OOM kills from memory.events",
                limits.memory_mb,
                h.memory.join(name).display()
            ),
            format!(
                "cgroup v2: CFS quota per replica (cpu.max, {} cores by default), usage and throttling from cpu.stat",
                limits.cpu
            ),
        ),
    }
}

/// Decides Redis's network isolation and, in kernel mode, makes its
/// namespace; says which in `report.network`.
fn plan_network(
    config: &LabConfig,
    id: &str,
    name: &str,
    own_redis: bool,
    report: &mut IsolationReport,
) -> Result<Option<Arc<LabNetwork>>, LabError> {
    let requested = config.file.lab.isolation;
    let network = if !own_redis {
        let why = "an external Redis (--redis-url): no namespace of the lab's to put it in";
        if requested == IsolationMode::Kernel {
            return Err(LabError::Isolation(why.into()));
        }
        report.network = IsolationReport::process(requested, name.to_string(), why).network;
        None
    } else {
        let port = match config.file.redis.port {
            0 => 6379,
            port => port,
        };
        match LabNetwork::create(id, name, port) {
            Ok(network) => {
                report.network = Mechanism::kernel(format!(
                    "Redis in network namespace {name} at {}:{port} over veth clh{id} ({}/29); replicas connect directly; deny-new, blackhole and reset are nftables rules there (table inet {name}, conntrack on from start-up); latency and bandwidth route new connections through the userspace fault proxy while active; the lab's admin connection is a Unix socket",
                    network.direct, network.host_addr
                ));
                Some(Arc::new(network))
            }
            Err(e) => {
                if requested == IsolationMode::Kernel {
                    return Err(LabError::Isolation(format!("network: {e}")));
                }
                report.network =
                    IsolationReport::process(requested, name.to_string(), &e.to_string()).network;
                None
            }
        }
    };
    Ok(network)
}

/// The script that runs redis-server in the lab's namespace.
fn write_launcher(dir: &Path, network: &LabNetwork, server: &Path) -> Result<PathBuf, LabError> {
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let ip = crate::netns::Tools::find()
        .map_err(|e| LabError::Isolation(e.to_string()))?
        .ip;
    let server = find_executable(server)
        .ok_or_else(|| RedisError::NotInstalled(server.display().to_string()))?;
    let script = format!(
        "#!/bin/sh\n# Written by chaoslab: runs redis-server in the lab's network namespace.\nexec {} netns exec {} {} \"$@\"\n",
        quote(&ip),
        quote(Path::new(&network.name)),
        quote(&server)
    );
    let path = dir.join("redis-server-in-namespace");
    private_dir(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    crate::files::write_private(&path, script.as_bytes())
        .map_err(io(format!("cannot write {}", path.display())))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("cannot make {} executable", path.display())))?;
    Ok(path)
}

/// A started lab.
pub struct RunningLab {
    pub platform: Arc<Platform>,
    pub ingress_addr: SocketAddr,
    pub control_addr: SocketAddr,
    pub info: LabInfo,
    redis: Option<RedisServer>,
    proxy: Option<FaultProxy>,
    identity: Option<Arc<crate::identity::StandInIdentity>>,
    plugin_stop: Option<StopStep>,
    servers: Vec<JoinHandle<()>>,
    state_dir: PathBuf,
    /// Redis's port, held for the lab's life (a `fault redis restart`
    /// starts it on the same port again).
    _redis_port: Option<PortReservation>,
    /// The state dir's lock, released last.
    lock: Option<LabLock>,
    /// What kernel isolation made, removed at stop.
    kernel: Option<KernelParts>,
    /// The lab's kernel name, released once the parts are removed.
    kernel_claim: Option<KernelClaim>,
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
    check_executables(&config)?;
    let external = config.file.redis.url.clone();
    let logs_dir = state_dir.join("logs");
    let (lock, chaos_token) = prepare_state_dir(&config, &state_dir, &logs_dir).await?;
    if chaos_token.is_some() {
        config.chaos_token = chaos_token;
    }

    // What a killed lab of this directory left in the kernel goes first;
    // then each mechanism's isolation is decided and made.
    let (kernel, swept, kernel_claim) =
        prepare_kernel(&config, &state_dir, external.is_none()).await?;
    let mut kernel = KernelGuard {
        parts: Some(kernel),
    };
    let network = kernel.parts.as_ref().and_then(|k| k.network.clone());

    // Every listener and port, before any child starts: a taken port stops
    // the start with nothing to undo.
    let listeners = bind_listeners(&config, external.is_none(), network.is_some()).await?;

    let spawner = Spawner::start().map_err(io("cannot start the spawner thread"))?;
    let dirs = (state_dir.as_path(), logs_dir.as_path());
    let redis = match listeners.own_redis {
        None => RedisParts::external(external.as_deref().unwrap_or_default()),
        Some(own) => start_own_redis(&config, &spawner, own, dirs, network.as_ref()).await?,
    };

    let redis_server = redis_executable(&config, &state_dir, network.is_some());
    let redis_log = logs_dir.join("redis.log");
    let kernel_parts = kernel.disarm();
    let platform = new_platform(config, spawner, redis.endpoint, logs_dir, &kernel_parts);
    let toxiproxy_url = redis.toxiproxy.as_ref().map(|(_, url)| url.clone());
    let addrs = (listeners.ingress_addr, listeners.control_addr);
    let info = announce_start(&platform, &state_dir, addrs, toxiproxy_url);
    // From here on the lab stops what it started on any failure.
    let mut lab = RunningLab {
        platform: platform.clone(),
        ingress_addr: listeners.ingress_addr,
        control_addr: listeners.control_addr,
        info,
        redis: redis.server,
        proxy: redis.proxy,
        identity: redis.identity,
        plugin_stop: None,
        servers: Vec::new(),
        state_dir,
        _redis_port: redis.port,
        lock: Some(lock),
        kernel: kernel_parts,
        kernel_claim,
    };
    announce_isolation(&platform, &swept);
    let rest = Rest {
        ingress_listener: listeners.ingress,
        control_listener: listeners.control,
        toxiproxy_listener: redis.toxiproxy.map(|(listener, _)| listener),
        plug,
        redis_server,
        redis_log,
    };
    match lab.finish_start(rest).await {
        Ok(()) => Ok(lab),
        Err(e) => {
            lab.stop().await;
            Err(e)
        }
    }
}

/// Start step: the platform, in the isolation kernel mode made (process
/// isolation when none was planned).
fn new_platform(
    config: LabConfig,
    spawner: Spawner,
    endpoint: RedisEndpoint,
    logs_dir: PathBuf,
    kernel_parts: &Option<KernelParts>,
) -> Arc<Platform> {
    Platform::with_kernel(
        config,
        spawner,
        endpoint,
        logs_dir,
        kernel_parts.clone().unwrap_or_else(|| {
            KernelParts::process(IsolationReport::process(
                IsolationMode::Process,
                String::new(),
                "not planned",
            ))
        }),
    )
}

/// Start step: what the state file and `status` say about the lab, and
/// the `LabStarting` event.
fn announce_start(
    platform: &Platform,
    state_dir: &Path,
    (ingress_addr, control_addr): (SocketAddr, SocketAddr),
    toxiproxy_url: Option<String>,
) -> LabInfo {
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
    info
}

/// The executable the faults restart Redis with: in kernel mode the
/// launcher, so a restarted Redis is in the namespace again.
fn redis_executable(config: &LabConfig, state_dir: &Path, in_namespace: bool) -> PathBuf {
    if in_namespace {
        state_dir.join("redis").join("redis-server-in-namespace")
    } else {
        config.file.redis.server.clone()
    }
}

/// Start step: the replicas' executable and (unless Redis is external)
/// redis-server exist.
fn check_executables(config: &LabConfig) -> Result<(), LabError> {
    if find_executable(&config.image).is_none() {
        return Err(LabError::ImageNotFound(config.image.clone()));
    }
    if config.file.redis.url.is_none() && find_executable(&config.file.redis.server).is_none() {
        return Err(
            RedisError::NotInstalled(config.file.redis.server.display().to_string()).into(),
        );
    }
    Ok(())
}

/// Start step: creates the state dir, takes its lock (refusing when a lab
/// runs there), keeps the chaos token if asked for, creates the logs dir.
async fn prepare_state_dir(
    config: &LabConfig,
    state_dir: &Path,
    logs_dir: &Path,
) -> Result<(LabLock, Option<String>), LabError> {
    let (dir, logs_dir) = (state_dir.to_path_buf(), logs_dir.to_path_buf());
    let chaos_token = config.file.app.chaos_token;
    blocking("cannot prepare the state dir", move || {
        private_dir(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let lock = LabLock::acquire(&dir).map_err(|e| match e {
            LockError::Held { pid } => LabError::AlreadyRunning {
                dir: dir.clone(),
                pid,
            },
            LockError::Io { path, source } => io(format!("cannot lock {}", path.display()))(source),
        })?;
        // A lab of an older chaoslab, which took no lock.
        if let Ok(existing) = StateFile::read(&dir)
            && existing.pid != std::process::id()
            && existing.lab_alive()
        {
            return Err(LabError::AlreadyRunning {
                dir,
                pid: Some(existing.pid),
            });
        }
        let token = chaos_token.then(|| kept_secret(&dir, "chaos-token"));
        private_dir(&logs_dir).map_err(io(format!("cannot create {}", logs_dir.display())))?;
        Ok((lock, token))
    })
    .await
}

/// Start step: claims the lab's kernel name (kernel mode), removes what a
/// killed lab of this directory — and any other dead lab — left in the
/// kernel, then decides and makes each mechanism's isolation. Returns the
/// parts made, the names swept and the claim (held until the parts are
/// removed).
async fn prepare_kernel(
    config: &LabConfig,
    state_dir: &Path,
    own_redis: bool,
) -> Result<(KernelParts, Vec<String>, Option<KernelClaim>), LabError> {
    let (config, dir) = (config.clone(), state_dir.to_path_buf());
    blocking("cannot set up isolation", move || {
        let id = lab_id(&dir);
        let name = kernel_name(&id);
        let kernel_wanted =
            config.file.lab.isolation != IsolationMode::Process && not_root().is_none();
        let claim = if kernel_wanted {
            let claim = KernelClaim::take(&name).map_err(|e| {
                LabError::Isolation(format!(
                    "cannot claim the kernel name {name} in {CLAIM_DIR}: {e}"
                ))
            })?;
            Some(claim)
        } else {
            None
        };
        let mut swept = Vec::new();
        if LabCgroups::sweep(&name) | LabNetwork::sweep(&id, &name) {
            tracing::warn!("removed what a killed lab left in the kernel ({name})");
            swept.push(name.clone());
        }
        if kernel_wanted {
            swept.extend(sweep_dead_labs(&name));
        }
        plan_isolation(&config, &dir, own_redis).map(|parts| (parts, swept, claim))
    })
    .await
}

/// Every listener the lab binds before any child starts.
struct Listeners {
    ingress: TcpListener,
    control: TcpListener,
    ingress_addr: SocketAddr,
    control_addr: SocketAddr,
    /// None with an external Redis.
    own_redis: Option<OwnRedis>,
}

/// Start step: binds the ingress and control API and, for the lab's own
/// Redis, the Toxiproxy-compatible API and the fault proxy, and reserves
/// Redis's port (not in Redis's own namespace, where it is free).
async fn bind_listeners(
    config: &LabConfig,
    own_redis: bool,
    in_namespace: bool,
) -> Result<Listeners, LabError> {
    let ingress = bind_loopback("ingress", config.file.ingress.port).await?;
    let control = bind_loopback("control API", config.file.control.port).await?;
    let ingress_addr = ingress.local_addr().map_err(io("ingress address"))?;
    let control_addr = control.local_addr().map_err(io("control address"))?;
    let own_redis = if own_redis {
        let toxiproxy = bind_loopback(
            "Toxiproxy-compatible API",
            config.file.faults.toxiproxy_port,
        )
        .await?;
        let toxiproxy_url = format!(
            "http://{}",
            toxiproxy
                .local_addr()
                .map_err(io("Toxiproxy API address"))?
        );
        let proxy = bind_loopback("fault proxy", 0).await?;
        let via = proxy.local_addr().map_err(io("fault proxy address"))?;
        // In its own namespace, Redis's port is free: nothing to hold.
        let reservation = if in_namespace {
            None
        } else {
            Some(PortReservation::for_what("Redis", config.file.redis.port)?)
        };
        Some(OwnRedis {
            toxiproxy,
            toxiproxy_url,
            proxy,
            via,
            reservation,
        })
    } else {
        None
    };
    Ok(Listeners {
        ingress,
        control,
        ingress_addr,
        control_addr,
        own_redis,
    })
}

/// What the lab runs for Redis: nothing but an endpoint with an external
/// Redis; with its own, the server, the fault proxy in front of it, the
/// Toxiproxy-compatible API's listener, the port held and (`--auth entra`)
/// the stand-in identity.
struct RedisParts {
    server: Option<RedisServer>,
    proxy: Option<FaultProxy>,
    endpoint: RedisEndpoint,
    toxiproxy: Option<(TcpListener, String)>,
    port: Option<PortReservation>,
    identity: Option<Arc<StandInIdentity>>,
}

impl RedisParts {
    /// An external Redis at `url`.
    fn external(url: &str) -> Self {
        Self {
            server: None,
            proxy: None,
            endpoint: RedisEndpoint {
                env: vec![("REDIS_URL".into(), url.to_string())],
                describe: format!("external {url}"),
                admin: None,
            },
            toxiproxy: None,
            port: None,
            identity: None,
        }
    }
}

/// Start step: starts the lab's own redis-server (in its namespace in
/// kernel mode), the fault proxy in front of it and, with `--auth entra`,
/// the stand-in identity; on failure, stops what it started.
async fn start_own_redis(
    config: &LabConfig,
    spawner: &Spawner,
    own: OwnRedis,
    (state_dir, logs_dir): (&Path, &Path),
    network: Option<&Arc<LabNetwork>>,
) -> Result<RedisParts, LabError> {
    let port = match (&own.reservation, network) {
        (Some(reservation), _) => reservation.port(),
        (None, Some(network)) => network.port,
        (None, None) => config.file.redis.port,
    };
    let options = RedisOptions {
        server: config.file.redis.server.clone(),
        port,
        dir: state_dir.join("redis"),
        log_file: logs_dir.join("redis.log"),
        start_timeout: secs(config.file.redis.start_timeout_seconds),
    };
    let namespace = match network {
        Some(network) => Some(redis_in_namespace(&options, network).await?),
        None => None,
    };
    let (server, proxy, mut endpoint) = start_redis(
        spawner,
        &options,
        own.proxy,
        own.via,
        namespace.as_ref(),
        network.map(|n| &**n),
    )
    .await?;
    let mut identity = None;
    if config.file.redis.auth == crate::config::RedisAuthMode::Entra {
        let lifetime = secs(config.file.redis.token_lifetime_seconds);
        let started = StandInIdentity::start(&options.dir, server.admin_target(), lifetime).await;
        let started = match started {
            Ok(identity) => identity,
            Err(e) => {
                proxy.shutdown().await;
                server.stop(Duration::from_secs(5)).await;
                return Err(e.into());
            }
        };
        entra_endpoint(&mut endpoint, &started);
        identity = Some(started);
    }
    Ok(RedisParts {
        server: Some(server),
        proxy: Some(proxy),
        endpoint,
        toxiproxy: Some((own.toxiproxy, own.toxiproxy_url)),
        port: own.reservation,
        identity,
    })
}

/// How redis-server runs in the lab's network namespace: through a
/// launcher written next to its data, listening on the namespace's
/// addresses and a unix socket.
async fn redis_in_namespace(
    options: &RedisOptions,
    network: &Arc<LabNetwork>,
) -> Result<InNamespace, LabError> {
    let (dir, network2, server) = (options.dir.clone(), network.clone(), options.server.clone());
    let launcher = blocking("cannot write the Redis launcher", move || {
        write_launcher(&dir, &network2, &server)
    })
    .await?;
    Ok(InNamespace {
        launcher,
        listen: Listen {
            bind: [network.direct, network.proxied, network.admin]
                .iter()
                .map(ToString::to_string)
                .collect(),
            unix_socket: Some(options.dir.join("redis.sock")),
        },
        admin_addr: SocketAddr::from((network.admin, options.port)),
    })
}

/// Start step: the events saying which isolation is in force and what a
/// killed lab left that was removed.
fn announce_isolation(platform: &Platform, swept: &[String]) {
    let iso = &platform.isolation;
    platform.events.normal(
        "Isolation",
        "lab",
        format!(
            "isolation: memory {:?}, cpu {:?}, network {:?} (requested {:?})",
            iso.memory.mode, iso.cpu.mode, iso.network.mode, iso.requested
        )
        .to_lowercase(),
        serde_json::to_value(iso).unwrap_or_default(),
    );
    if !swept.is_empty() {
        platform.events.warning(
            "KernelLeftoversRemoved",
            "lab",
            format!(
                "removed what killed labs left in the kernel: {}",
                swept.join(", ")
            ),
            serde_json::json!({ "names": swept }),
        );
    }
}

/// What the lab binds for its own Redis before it starts it.
struct OwnRedis {
    toxiproxy: TcpListener,
    toxiproxy_url: String,
    proxy: TcpListener,
    via: SocketAddr,
    /// None when Redis runs in the lab's namespace.
    reservation: Option<PortReservation>,
}

/// What [`RunningLab::finish_start`] takes over.
struct Rest {
    ingress_listener: TcpListener,
    control_listener: TcpListener,
    toxiproxy_listener: Option<TcpListener>,
    plug: Option<PlugFn>,
    redis_server: PathBuf,
    redis_log: PathBuf,
}

/// Starts redis-server on the reserved port and the fault proxy in front
/// of it, on `listener`; on failure, stops what it started.
async fn start_redis(
    spawner: &Spawner,
    options: &RedisOptions,
    listener: TcpListener,
    via: SocketAddr,
    namespace: Option<&InNamespace>,
    network: Option<&LabNetwork>,
) -> Result<(RedisServer, FaultProxy, RedisEndpoint), LabError> {
    let server = RedisServer::start_in(spawner, options, namespace).await?;
    // Kernel mode: the proxy's upstream is the namespace's `proxied`
    // address (replicas go to `direct`, past the proxy). Process mode:
    // Redis's Unix socket when it has one (the upstream leg costs less than
    // over TCP loopback), else its loopback port.
    let upstream = match (network, server.unix_socket()) {
        (Some(network), _) => SocketAddr::from((network.proxied, options.port)).to_string(),
        (None, Some(socket)) => format!("{UNIX_UPSTREAM_PREFIX}{}", socket.display()),
        (None, None) => server.addr().to_string(),
    };
    // Every replica reaches Redis through the fault proxy.
    let proxy = match FaultProxy::dedicated() {
        Ok(proxy) => proxy,
        Err(e) => {
            server.stop(Duration::from_secs(5)).await;
            return Err(io("cannot start the fault proxy")(e));
        }
    };
    if let Err(e) = proxy.add_proxy(REDIS_PROXY, listener, &upstream).await {
        proxy.shutdown().await;
        server.stop(Duration::from_secs(5)).await;
        return Err(io("cannot start the fault proxy")(std::io::Error::other(
            e.to_string(),
        )));
    }
    let (host, port, describe) = match network {
        Some(network) => (
            network.direct.to_string(),
            options.port,
            format!(
                "redis://{SERVICE_USER}@{}:{} directly, in network namespace {} (redis-server pid {}, data {}; the fault proxy on {via} for latency and bandwidth)",
                network.direct,
                options.port,
                network.name,
                server.pid(),
                server.data_dir.display()
            ),
        ),
        None => (
            "127.0.0.1".to_string(),
            via.port(),
            format!(
                "redis://{SERVICE_USER}@{via} via the fault proxy (redis-server on port {}, pid {}, data {})",
                options.port,
                server.pid(),
                server.data_dir.display()
            ),
        ),
    };
    let endpoint = RedisEndpoint {
        env: vec![
            ("REDIS_HOST".into(), host),
            ("REDIS_PORT".into(), port.to_string()),
            ("REDIS_USERNAME".into(), SERVICE_USER.into()),
            (
                "REDIS_PASSWORD_FILE".into(),
                server.service_password_file.display().to_string(),
            ),
        ],
        describe,
        // The lab's own admin connection: redis-server directly.
        admin: Some(server.admin_target()),
    };
    Ok((server, proxy, endpoint))
}

/// `--auth entra`: the replicas get a token from the stand-in identity
/// endpoint instead of the service user's password file.
fn entra_endpoint(endpoint: &mut RedisEndpoint, identity: &StandInIdentity) {
    endpoint
        .env
        .retain(|(k, _)| k != "REDIS_USERNAME" && k != "REDIS_PASSWORD_FILE");
    endpoint.env.extend(identity.replica_env());
    let user = format!("redis://{}@", identity.object_id);
    let describe = endpoint
        .describe
        .replacen(&format!("redis://{SERVICE_USER}@"), &user, 1);
    endpoint.describe = format!(
        "{describe}; auth: Entra ID as object id {} (stand-in identity endpoint {}, tokens valid {:?})",
        identity.object_id,
        identity.endpoint,
        identity.lifetime()
    );
}

impl RunningLab {
    /// The start after Redis: the Toxiproxy API, the plugged-in component,
    /// the first replicas, the ingress, the control API, the loops, the
    /// state file. An error leaves the caller to stop the lab.
    async fn finish_start(&mut self, rest: Rest) -> Result<(), LabError> {
        self.serve_toxiproxy_api(rest.toxiproxy_listener);
        // The pid at start (a `fault redis restart` changes it later).
        let redis_pid = self.redis.as_ref().map(RedisServer::pid);
        let routes = self.plug_in(rest.plug, rest.redis_server, rest.redis_log)?;
        self.platform
            .start_initial()
            .map_err(|e| LabError::Config(ConfigError::Invalid(e.to_string())))?;
        self.serve_ingress(rest.ingress_listener)?;
        let token = self
            .serve_control_api(rest.control_listener, routes)
            .await?;
        self.start_loops();
        self.write_state_file(token, redis_pid).await
    }

    /// Start step: the Toxiproxy-compatible API over the fault proxy (the
    /// lab's own Redis only).
    fn serve_toxiproxy_api(&mut self, listener: Option<TcpListener>) {
        let (Some(listener), Some(proxy)) = (listener, &self.proxy) else {
            return;
        };
        let platform = &self.platform;
        let stop = platform.shutdown.clone().cancelled_owned();
        let api_config = chaoslab_faultproxy::api::ApiConfig {
            allow_remote_upstream: platform.config.file.faults.allow_remote_upstream,
        };
        let api = chaoslab_faultproxy::api::serve_with(listener, proxy.clone(), api_config, stop);
        self.servers.push(tokio::spawn(async move {
            if let Err(e) = api.await {
                tracing::error!(error = %e, "Toxiproxy-compatible API stopped");
            }
        }));
    }

    /// Start step: hands the lab's parts to the plugged-in component (if
    /// any); returns its control API routes and keeps its stop step.
    fn plug_in(
        &mut self,
        plug: Option<PlugFn>,
        redis_server: PathBuf,
        redis_log: PathBuf,
    ) -> Result<axum::Router, LabError> {
        let Some(plug) = plug else {
            return Ok(axum::Router::new());
        };
        let failed = |e: String| LabError::Io {
            context: "cannot start the faults".into(),
            source: std::io::Error::other(e),
        };
        let redis = match self.redis.take() {
            Some(server) => {
                let mut redis = LabRedis::new(server, &redis_server, redis_log)
                    .map_err(|e| failed(e.to_string()))?;
                redis.identity = self.identity.clone();
                Some(redis)
            }
            None => None,
        };
        let parts = LabParts {
            platform: self.platform.clone(),
            proxy: self.proxy.clone(),
            redis,
            ingress_url: self.info.ingress_url.clone(),
        };
        let plugin = plug(parts).map_err(failed)?;
        self.plugin_stop = Some(plugin.stop);
        Ok(plugin.routes)
    }

    /// Start step: the ingress. It runs on its own single-threaded runtimes
    /// (one per `ingress.threads`), away from the lab's: a proxy on a
    /// work-stealing runtime spends much of its time waking threads across
    /// cores.
    fn serve_ingress(&mut self, listener: TcpListener) -> Result<(), LabError> {
        let platform = &self.platform;
        let shutdown = platform.shutdown.clone();
        let ingress_config = chaoslab_ingress::IngressConfig {
            request_timeout: secs(platform.config.file.ingress.request_timeout_seconds),
            ..Default::default()
        };
        let std_listener = listener.into_std().map_err(io("ingress listener"))?;
        for i in 0..platform.config.file.ingress.threads.max(1) {
            let listener = std_listener.try_clone().map_err(io("ingress listener"))?;
            let (upstreams, config) = (platform.upstreams(), ingress_config.clone());
            let (metrics, stop) = (platform.ingress_metrics.clone(), shutdown.clone());
            self.servers.push(tokio::task::spawn_blocking(move || {
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
        Ok(())
    }

    /// Start step: the control API (with the plugged-in routes and the
    /// console) behind the kept control token; returns the token.
    async fn serve_control_api(
        &mut self,
        listener: TcpListener,
        routes: axum::Router,
    ) -> Result<String, LabError> {
        let dir = self.state_dir.clone();
        let token = blocking("cannot read the control token", move || {
            Ok(kept_secret(&dir, "control-token"))
        })
        .await?;
        let router = control_api::router_with(
            self.platform.clone(),
            token.clone(),
            self.info.clone(),
            routes,
            chaoslab_console::router(),
        );
        let stop = self.platform.shutdown.clone().cancelled_owned();
        let control = control_api::serve(listener, router, stop);
        self.servers.push(tokio::spawn(async move {
            if let Err(e) = control.await {
                tracing::error!(error = %e, "control API stopped");
            }
        }));
        Ok(token)
    }

    /// Start step: the autoscaler, the sampler and the alert rules.
    fn start_loops(&mut self) {
        let platform = &self.platform;
        self.servers
            .push(tokio::spawn(crate::loops::autoscale(platform.clone())));
        self.servers
            .push(tokio::spawn(crate::loops::sample(platform.clone())));
        self.servers.push(tokio::spawn(crate::alerting::run(
            platform.clone(),
            platform.config.file.alerts.clone(),
        )));
    }

    /// Start step, the last: the state file `status` and `down` read.
    async fn write_state_file(
        &self,
        token: String,
        redis_pid: Option<u32>,
    ) -> Result<(), LabError> {
        let state = StateFile {
            pid: self.info.pid,
            pid_start_time: chaoslab_foundation::proc::start_time(self.info.pid),
            started_at: self.info.started_at.clone(),
            ingress_url: self.info.ingress_url.clone(),
            control_url: self.info.control_url.clone(),
            token,
            redis: self.info.redis.clone(),
            redis_pid,
        };
        let dir = self.state_dir.clone();
        blocking("cannot write the state file", move || {
            state.write(&dir).map_err(io(format!(
                "cannot write {}",
                StateFile::path(&dir).display()
            )))
        })
        .await
    }
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
        if let Some(identity) = self.identity.take() {
            identity.stop();
        }
        if let Some(kernel) = self.kernel.take() {
            let removed = tokio::task::spawn_blocking(move || remove_kernel_parts(&kernel));
            if let Err(e) = removed.await {
                tracing::warn!(error = %e, "cannot remove the lab's cgroups and namespace");
            }
        }
        drop(self.kernel_claim.take());
        let dir = self.state_dir.clone();
        let removed = tokio::task::spawn_blocking(move || {
            StateFile::remove_if_mine(&dir, std::process::id());
        });
        if let Err(e) = removed.await {
            tracing::warn!(error = %e, "cannot remove the state file");
        }
        p.events.normal(
            "LabStopped",
            "lab",
            "every replica, the faults, the fault proxy and Redis are stopped",
            serde_json::Value::Null,
        );
        // Last: the next lab in this directory may start now.
        drop(self.lock.take());
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
