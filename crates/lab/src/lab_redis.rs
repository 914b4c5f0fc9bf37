//! The lab's own redis-server as a plugged-in component (the faults) gets
//! it: something that can be stopped and started again (same port, same
//! config, same data dir — the AOF keeps the data across a restart), and
//! whose ACL user for the service can be rotated (the auth fault). The lab
//! wraps its [`RedisServer`] in a [`LabRedis`] and hands it over at start
//! (in [`LabParts`](crate::LabParts)), so the component needs none of the
//! lab's Redis internals; after the first restart the process is one this
//! module spawned from the same `redis.conf`. [`LabRedis::shutdown`] stops
//! whichever runs when the lab stops.
//!
//! The faults' admin connection goes where the lab's own does
//! ([`AdminConnection::connect_target`]): in kernel isolation over
//! redis-server's Unix socket, which no network fault (an nftables rule in
//! Redis's namespace) can cut, so a revoke or a restart works while Redis
//! is blackholed; in process isolation over TCP to redis-server itself,
//! never through the fault proxy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::identity::StandInIdentity;
use crate::redis_server::{
    AdminConnection, AdminError, AdminTarget, RedisOptions, RedisServer, SERVICE_ACL, SERVICE_USER,
    find_executable,
};
use crate::spawner::{DeathSignal, Spawner, signal};

/// Why stopping, starting or changing the lab's Redis failed (the message
/// says what and where to look).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RedisControlError(String);

/// How long Redis gets to flush and exit on SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a (re)started Redis gets to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of one admin command.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(2);

enum Process {
    /// The server the lab started.
    Lab(RedisServer),
    /// One started again by a fault.
    Restarted { child: Child, pid: u32 },
    /// Stopped by a fault.
    Stopped,
}

/// The lab's Redis, under the faults' control.
pub struct LabRedis {
    process: Mutex<Process>,
    spawner: Spawner,
    server: PathBuf,
    conf: PathBuf,
    log_file: PathBuf,
    /// Redis's TCP address for admin connections (kernel isolation: the
    /// namespace's admin address).
    addr: SocketAddr,
    /// How the faults connect as admin: the Unix socket when there is one.
    admin_target: AdminTarget,
    /// The service's password file (REDIS_PASSWORD_FILE of the replicas).
    pub service_password_file: PathBuf,
    /// The ACL password in force when it differs from the file (a revoked
    /// credential), so a restart keeps the revocation.
    acl_override: std::sync::Mutex<Option<String>>,
    /// The stand-in managed identity when the replicas use Entra ID
    /// (`--auth entra`): the auth fault revokes its access instead.
    pub(crate) identity: Option<std::sync::Arc<StandInIdentity>>,
}

impl std::fmt::Debug for LabRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabRedis")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LabRedis {
    /// Takes over the lab's running server. `server` is the redis-server
    /// executable it was started with, `log_file` where its output goes.
    pub(crate) fn new(
        running: RedisServer,
        server: &Path,
        log_file: PathBuf,
    ) -> Result<Self, RedisControlError> {
        let spawner = Spawner::start()
            .map_err(|e| RedisControlError(format!("cannot start a spawner thread: {e}")))?;
        Ok(Self::with_spawner(running, spawner, server, log_file))
    }

    /// The same, restarting Redis through `spawner`.
    fn with_spawner(
        running: RedisServer,
        spawner: Spawner,
        server: &Path,
        log_file: PathBuf,
    ) -> Self {
        let dir = running
            .data_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let admin_target = running.admin_target();
        Self {
            spawner,
            server: find_executable(server).unwrap_or_else(|| server.to_path_buf()),
            conf: dir.join("redis.conf"),
            log_file,
            addr: running.addr(),
            admin_target,
            service_password_file: running.service_password_file.clone(),
            acl_override: std::sync::Mutex::new(None),
            identity: None,
            process: Mutex::new(Process::Lab(running)),
        }
    }

    /// A lab Redis on its own, to test a plugged-in component without a
    /// lab: `server` (redis-server) on 127.0.0.1:`port`, its config, data,
    /// admin password (`admin.password`) and service password under `dir`,
    /// its output in `log_file`. Returns once it answers PING.
    pub async fn standalone(
        server: &Path,
        port: u16,
        dir: &Path,
        log_file: PathBuf,
        start_timeout: Duration,
    ) -> Result<Self, RedisControlError> {
        let spawner = Spawner::start()
            .map_err(|e| RedisControlError(format!("cannot start a spawner thread: {e}")))?;
        let options = RedisOptions {
            server: server.to_path_buf(),
            port,
            dir: dir.to_path_buf(),
            log_file: log_file.clone(),
            start_timeout,
        };
        let running = RedisServer::start(&spawner, &options)
            .await
            .map_err(|e| RedisControlError(e.to_string()))?;
        Ok(Self::with_spawner(running, spawner, server, log_file))
    }

    /// Redis's TCP address for admin connections.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// redis-server's Unix socket, which the faults' admin connection uses
    /// when there is one (kernel isolation).
    pub fn admin_socket(&self) -> Option<&Path> {
        self.admin_target.unix.as_deref()
    }

    /// The running server's pid, if one runs.
    pub async fn pid(&self) -> Option<u32> {
        match &*self.process.lock().await {
            Process::Lab(s) => Some(s.pid()),
            Process::Restarted { pid, .. } => Some(*pid),
            Process::Stopped => None,
        }
    }

    /// Stops the server (SIGTERM: it flushes the AOF; SIGKILL after the
    /// grace). Stopping a stopped server does nothing.
    pub async fn stop(&self) {
        let mut process = self.process.lock().await;
        match std::mem::replace(&mut *process, Process::Stopped) {
            Process::Lab(server) => server.stop(STOP_GRACE).await,
            Process::Restarted { mut child, pid } => {
                signal(pid, libc::SIGTERM);
                if tokio::time::timeout(STOP_GRACE, child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            }
            Process::Stopped => {}
        }
    }

    /// Starts the server again from the same config (port, data dir, admin
    /// password) and recreates the service user; waits until it answers.
    /// Starting a running server does nothing.
    pub async fn start(&self) -> Result<(), RedisControlError> {
        let mut process = self.process.lock().await;
        if !matches!(*process, Process::Stopped) {
            return Ok(());
        }
        let failed = |what: &str, e: std::io::Error| RedisControlError(format!("{what}: {e}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .map_err(|e| failed("redis log", e))?;
        let log_err = log.try_clone().map_err(|e| failed("redis log", e))?;
        let mut command = Command::new(&self.server);
        command
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let mut child = self
            .spawner
            .spawn(command, DeathSignal::Term)
            .await
            .map_err(|e| failed("cannot start redis-server", e))?;
        let pid = child.id().unwrap_or(0);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(RedisControlError(format!(
                    "redis-server exited at restart ({status}); see {}",
                    self.log_file.display()
                )));
            }
            if let Ok(mut conn) = self.admin_with(Duration::from_millis(500)).await
                && conn.ping().await.is_ok()
            {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                signal(pid, libc::SIGKILL);
                let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
                return Err(RedisControlError(format!(
                    "redis-server did not answer within {START_TIMEOUT:?} after restart"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        *process = Process::Restarted { child, pid };
        drop(process);
        let password = match self.override_password() {
            Some(p) => p,
            None => self.file_password()?,
        };
        self.set_acl_password(&password, false).await
    }

    /// Stops the server for good (the lab is stopping).
    pub async fn shutdown(&self) {
        self.stop().await;
    }

    /// Whether a server process runs now.
    pub async fn running(&self) -> bool {
        !matches!(*self.process.lock().await, Process::Stopped)
    }

    /// An admin connection to redis-server itself (never the fault proxy):
    /// over its Unix socket when it has one, so no network fault cuts it.
    async fn admin_with(&self, timeout: Duration) -> Result<AdminConnection, AdminError> {
        AdminConnection::connect_target(&self.admin_target, timeout).await
    }

    async fn admin(&self) -> Result<AdminConnection, RedisControlError> {
        self.admin_with(ADMIN_TIMEOUT)
            .await
            .map_err(|e| RedisControlError(format!("cannot reach the lab's Redis as admin: {e}")))
    }

    async fn run(
        &self,
        conn: &mut AdminConnection,
        args: &[&str],
    ) -> Result<(), RedisControlError> {
        conn.query::<()>(args)
            .await
            .map_err(|e| RedisControlError(e.to_string()))
    }

    /// Sets the service user's ACL password (`resetpass` drops the old
    /// password) and its rights, [`SERVICE_ACL`]. With `kill`, every
    /// connection of the service user is closed (`CLIENT KILL USER`), so the
    /// service must authenticate again. Returns after Redis confirmed.
    pub async fn set_acl_password(
        &self,
        password: &str,
        kill: bool,
    ) -> Result<(), RedisControlError> {
        let mut conn = self.admin().await?;
        let pass = format!(">{password}");
        // The rights too: after a Redis restart the user is created anew.
        let mut args = vec!["ACL", "SETUSER", SERVICE_USER, "on", "resetpass", &pass];
        args.extend_from_slice(SERVICE_ACL);
        self.run(&mut conn, &args).await?;
        if kill {
            self.run(&mut conn, &["CLIENT", "KILL", "USER", SERVICE_USER])
                .await?;
        }
        Ok(())
    }

    /// The password in the service's password file.
    pub fn file_password(&self) -> Result<String, RedisControlError> {
        std::fs::read_to_string(&self.service_password_file)
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                RedisControlError(format!(
                    "cannot read {}: {e}",
                    self.service_password_file.display()
                ))
            })
    }

    /// Writes the service's password file (0600), as a secret store would
    /// publish a new credential.
    pub fn write_file_password(&self, password: &str) -> Result<(), RedisControlError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.service_password_file.with_extension("new");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(password.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.service_password_file)
        };
        write().map_err(|e| {
            RedisControlError(format!(
                "cannot write {}: {e}",
                self.service_password_file.display()
            ))
        })
    }

    /// With `--auth entra`: the stand-in managed identity's object id (the
    /// replicas' Redis user); None when the replicas use the password file.
    pub fn entra_object_id(&self) -> Option<&str> {
        self.identity.as_deref().map(|i| i.object_id.as_str())
    }

    /// With `--auth entra`: revokes the stand-in identity's access (its
    /// Redis user switched off, its connections closed; tokens are still
    /// minted and refused). Without it, does nothing.
    pub async fn revoke_identity(&self) -> Result<(), RedisControlError> {
        match &self.identity {
            Some(identity) => identity
                .revoke()
                .await
                .map_err(|e| RedisControlError(e.to_string())),
            None => Ok(()),
        }
    }

    /// With `--auth entra`: gives the stand-in identity its access back.
    /// Without it, does nothing.
    pub async fn restore_identity(&self) -> Result<(), RedisControlError> {
        match &self.identity {
            Some(identity) => identity
                .restore()
                .await
                .map_err(|e| RedisControlError(e.to_string())),
            None => Ok(()),
        }
    }

    /// Remembers (or forgets) a revoked ACL password that differs from the
    /// file, so a Redis restart keeps it.
    pub fn set_override(&self, password: Option<String>) {
        *self.acl_override.lock().unwrap_or_else(|p| p.into_inner()) = password;
    }

    fn override_password(&self) -> Option<String> {
        self.acl_override
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_server::{InNamespace, Listen};

    /// A lab Redis as kernel isolation starts it (TCP and a Unix socket),
    /// here on loopback: with its TCP listener closed (`CONFIG SET port 0`,
    /// as a fault that cuts every TCP path would leave it), the faults
    /// still rotate the service user's password and restart Redis — their
    /// admin connection is the Unix socket.
    #[tokio::test]
    async fn the_admin_path_is_the_unix_socket_when_there_is_one() {
        if !chaoslab_test_support::redis::installed_or_skip() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let redis_dir = dir.path().join("redis");
        std::fs::create_dir(&redis_dir).unwrap();
        let port = chaoslab_test_support::net::free_port();
        let server = PathBuf::from(chaoslab_test_support::redis::binary());
        let socket = redis_dir.join("redis.sock");
        let options = RedisOptions {
            server: server.clone(),
            port,
            dir: redis_dir.clone(),
            log_file: dir.path().join("redis.log"),
            start_timeout: Duration::from_secs(10),
        };
        let namespace = InNamespace {
            launcher: find_executable(&server).unwrap(),
            listen: Listen {
                bind: vec!["127.0.0.1".into()],
                unix_socket: Some(socket.clone()),
            },
            admin_addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let spawner = Spawner::start().unwrap();
        let running = RedisServer::start_in(&spawner, &options, Some(&namespace))
            .await
            .unwrap();
        let redis = LabRedis::new(running, &server, dir.path().join("redis.log")).unwrap();
        assert_eq!(redis.admin_socket(), Some(socket.as_path()));

        let mut conn = redis.admin().await.unwrap();
        redis
            .run(&mut conn, &["CONFIG", "SET", "port", "0"])
            .await
            .unwrap();
        drop(conn);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "no TCP listener left"
        );
        redis.set_acl_password("rotated", true).await.unwrap();
        redis.stop().await;
        assert!(!redis.running().await);
        // The restart waits for an answer over the socket and puts the
        // (overridden) password back in place.
        redis.set_override(Some("revoked".into()));
        redis.start().await.unwrap();
        let mut service = AdminConnection::connect_as(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Some(SERVICE_USER),
            Some("revoked"),
            ADMIN_TIMEOUT,
        )
        .await
        .expect("the service user has the password set over the socket");
        service.ping().await.unwrap();
        redis.shutdown().await;
    }
}
