//! The lab's Redis: a real `redis-server` child with its own port, data dir
//! under the state dir, AOF on, the default user behind an admin password and
//! an ACL user `chaoslab` for the service whose password sits in an
//! owner-only file (the service reads it through REDIS_PASSWORD_FILE, as it
//! would read a mounted secret). Started first, up when it answers PING.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::files::{private_dir, secret, write_private};
use crate::resp::{AdminConnection, Reply};
use crate::spawner::{DeathSignal, Spawner};

/// The ACL user the service authenticates as.
pub const SERVICE_USER: &str = "chaoslab";

/// Why Redis could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// No redis-server executable.
    #[error(
        "redis-server not found (looked for `{0}`); install it with `apt-get install -y redis-server`, or pass --redis-url redis://HOST:PORT"
    )]
    NotInstalled(String),
    /// Files in the state dir.
    #[error("redis state in {path}: {source}")]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The process would not start.
    #[error("cannot start redis-server: {0}")]
    Spawn(#[source] std::io::Error),
    /// It started but never answered.
    #[error("redis-server did not answer PING within {0:?} (see {1})")]
    NotReady(Duration, PathBuf),
    /// An admin command failed.
    #[error("redis admin command failed: {0}")]
    Admin(String),
}

/// Where and how to start Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// redis-server executable (a name is looked up on PATH).
    pub server: PathBuf,
    /// Port to listen on (already chosen; never 0).
    pub port: u16,
    /// `<state>/redis`: config, data and secrets.
    pub dir: PathBuf,
    /// Where redis-server's own log goes.
    pub log_file: PathBuf,
    /// Deadline for PING at start.
    pub start_timeout: Duration,
}

/// A running Redis server owned by the lab.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    admin_password: String,
    /// File holding the service user's password (0600).
    pub service_password_file: PathBuf,
    /// Data directory (AOF).
    pub data_dir: PathBuf,
}

/// How the lab reaches its Redis as admin (PING for the time series).
#[derive(Clone)]
pub struct AdminTarget {
    pub addr: SocketAddr,
    pub password: String,
}

impl std::fmt::Debug for AdminTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTarget")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Finds an executable: a path is checked, a bare name searched on PATH.
pub fn find_executable(name: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.components().count() > 1 {
        return is_exec(name).then(|| name.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_exec(candidate))
}

impl RedisServer {
    /// Starts redis-server, waits for PING and creates the service user.
    pub async fn start(spawner: &Spawner, options: &RedisOptions) -> Result<Self, RedisError> {
        let server = find_executable(&options.server)
            .ok_or_else(|| RedisError::NotInstalled(options.server.display().to_string()))?;
        let files = |source| RedisError::Files {
            path: options.dir.clone(),
            source,
        };
        let data_dir = options.dir.join("data");
        private_dir(&data_dir).map_err(files)?;
        let admin_password = secret(32);
        let service_password = secret(32);
        write_private(
            &options.dir.join("admin.password"),
            admin_password.as_bytes(),
        )
        .map_err(files)?;
        let service_password_file = options.dir.join("service.password");
        write_private(&service_password_file, service_password.as_bytes()).map_err(files)?;
        let conf_path = options.dir.join("redis.conf");
        let conf = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode yes\ndaemonize no\n\
             dir {dir}\nappendonly yes\nappendfsync everysec\nsave \"\"\n\
             logfile \"\"\nrequirepass {admin_password}\n",
            port = options.port,
            dir = data_dir.display(),
        );
        write_private(&conf_path, conf.as_bytes()).map_err(files)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.log_file)
            .map_err(files)?;
        let log_err = log.try_clone().map_err(files)?;
        let mut command = Command::new(&server);
        command
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let child = spawner
            .spawn(command, DeathSignal::Term)
            .await
            .map_err(RedisError::Spawn)?;
        let pid = child.id().unwrap_or(0);
        let addr = SocketAddr::from(([127, 0, 0, 1], options.port));
        let mut server = Self {
            child,
            pid,
            addr,
            admin_password,
            service_password_file,
            data_dir,
        };
        server.wait_ready(options).await?;
        server.set_service_password(&service_password).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, options: &RedisOptions) -> Result<(), RedisError> {
        let deadline = tokio::time::Instant::now() + options.start_timeout;
        let not_ready = || RedisError::NotReady(options.start_timeout, options.log_file.clone());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(RedisError::Admin(format!(
                    "redis-server exited at start ({status}); see {}",
                    options.log_file.display()
                )));
            }
            if let Ok(mut conn) = AdminConnection::connect(
                self.addr,
                Some(&self.admin_password),
                Duration::from_millis(500),
            )
            .await
                && let Ok(Reply::Value(pong)) = conn.command(&["PING"]).await
                && pong == "PONG"
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(not_ready());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An authenticated admin connection.
    pub async fn admin(&self) -> Result<AdminConnection, RedisError> {
        AdminConnection::connect(
            self.addr,
            Some(&self.admin_password),
            Duration::from_secs(2),
        )
        .await
        .map_err(|e| RedisError::Admin(e.to_string()))
    }

    /// (Re)creates the service user with `password` (a rotation when it
    /// differs from the file; the auth fault of a later issue uses this).
    pub async fn set_service_password(&self, password: &str) -> Result<(), RedisError> {
        let mut conn = self.admin().await?;
        let pass = format!(">{password}");
        let reply = conn
            .command(&[
                "ACL",
                "SETUSER",
                SERVICE_USER,
                "reset",
                "on",
                &pass,
                "~*",
                "&*",
                "+@all",
            ])
            .await
            .map_err(|e| RedisError::Admin(e.to_string()))?;
        match reply {
            Reply::Value(_) => Ok(()),
            Reply::Error(e) => Err(RedisError::Admin(e)),
        }
    }

    /// Where Redis listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address and admin password, for the lab's own health pings.
    pub fn admin_target(&self) -> AdminTarget {
        AdminTarget {
            addr: self.addr,
            password: self.admin_password.clone(),
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Stops Redis: SIGTERM (it flushes the AOF), SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        crate::spawner::signal(self.pid, libc::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables() {
        assert!(find_executable(Path::new("sh")).is_some());
        assert!(find_executable(Path::new("/bin/sh")).is_some());
        assert!(find_executable(Path::new("no-such-redis-server-x")).is_none());
    }

    #[tokio::test]
    async fn missing_server_is_one_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = Spawner::start().unwrap();
        let options = RedisOptions {
            server: "no-such-redis-server-x".into(),
            port: 1,
            dir: dir.path().join("redis"),
            log_file: dir.path().join("redis.log"),
            start_timeout: Duration::from_secs(1),
        };
        let err = RedisServer::start(&spawner, &options).await.unwrap_err();
        assert!(
            err.to_string().contains("apt-get install -y redis-server"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn starts_a_real_redis_with_the_service_user() {
        if find_executable(Path::new("redis-server")).is_none() {
            eprintln!("redis-server not installed; skipping");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let spawner = Spawner::start().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = RedisOptions {
            server: "redis-server".into(),
            port,
            dir: dir.path().join("redis"),
            log_file: dir.path().join("redis.log"),
            start_timeout: Duration::from_secs(10),
        };
        let server = RedisServer::start(&spawner, &options).await.unwrap();
        let password = std::fs::read_to_string(&server.service_password_file).unwrap();
        let mut conn = AdminConnection::connect(server.addr(), None, Duration::from_secs(2))
            .await
            .unwrap();
        let auth = conn
            .command(&["AUTH", SERVICE_USER, &password])
            .await
            .unwrap();
        assert_eq!(auth, Reply::Value("OK".into()));
        assert_eq!(
            conn.command(&["INCR", "k"]).await.unwrap(),
            Reply::Value("1".into())
        );
        let pid = server.pid();
        server.stop(Duration::from_secs(5)).await;
        assert!(!crate::spawner::alive(pid));
    }
}
