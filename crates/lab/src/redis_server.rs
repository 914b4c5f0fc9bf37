//! The lab's Redis: a real `redis-server` child with its own port, data dir
//! under the state dir, AOF on, the default user behind an admin password and
//! an ACL user `chaoslab` for the service whose password sits in an
//! owner-only file (the service reads it through REDIS_PASSWORD_FILE, as it
//! would read a mounted secret). Started first, up when it answers PING.
//!
//! Every value written into `redis.conf` is a double-quoted, escaped string
//! ([`conf_quote`]), so the lab works under any directory path (spaces,
//! quotes, non-ASCII, even a newline cannot inject a directive). The lab's
//! own admin connection ([`AdminConnection`], on the `redis` crate, every
//! call bounded by a timeout) goes to redis-server directly, never through
//! the fault proxy.

use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use redis::IntoConnectionInfo;
use tokio::process::{Child, Command};

use crate::files::{private_dir, secret, write_private};
use crate::spawner::{DeathSignal, Spawner};

/// The ACL user the service authenticates as.
pub const SERVICE_USER: &str = "chaoslab";

/// What the service's Redis user may do (`ACL SETUSER` rules): its own
/// `chaos_lab:*` keys and the commands the service runs — GET, SET (NX,
/// EX), INCR/INCRBY (the client library increments with INCRBY), PING —
/// nothing else (FLUSHALL, CONFIG, KEYS, other keys:
/// NOPERM). AUTH and HELLO are allowed to every user; the `CLIENT SETINFO`
/// the client library sends at connection may fail, and it ignores that
/// (Redis before 7.2 does not know the command at all).
pub const SERVICE_ACL: &[&str] = &[
    "resetkeys",
    "~chaos_lab:*",
    "resetchannels",
    "-@all",
    "+get",
    "+set",
    "+incr",
    "+incrby",
    "+ping",
];

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
    /// A value the lab would write into redis.conf cannot be written safely.
    #[error(transparent)]
    Conf(#[from] ConfValueError),
}

/// A value that cannot go into `redis.conf`: redis-server reads its values
/// as C strings, so a NUL byte would silently cut them short.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {what} into redis.conf: {value:?} holds a NUL byte")]
pub struct ConfValueError {
    /// Which directive.
    pub what: String,
    /// The value, lossily decoded.
    pub value: String,
}

/// Quotes `value` for `redis.conf` as redis-server's own parser
/// (`sdssplitargs`) reads it back: a double-quoted string in which `"` and
/// `\` are backslash-escaped, newline, carriage return and tab are `\n`,
/// `\r`, `\t`, every other control byte and every byte of invalid UTF-8 is
/// `\xHH`, and everything else (non-ASCII letters too) is itself. The
/// result is one line whatever the input. A NUL byte is refused.
pub fn conf_quote(what: &str, value: &[u8]) -> Result<String, ConfValueError> {
    if value.contains(&0) {
        return Err(ConfValueError {
            what: what.to_string(),
            value: String::from_utf8_lossy(value).into_owned(),
        });
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    Ok(out)
}

/// The lab's `redis.conf`: every value quoted with [`conf_quote`].
#[cfg(test)]
pub fn render_conf(
    port: u16,
    data_dir: &Path,
    admin_password: &str,
) -> Result<String, ConfValueError> {
    render_conf_on(port, data_dir, admin_password, &Listen::default())
}

/// Where redis-server listens: loopback (process isolation), or the
/// addresses of the lab's network namespace and a Unix socket (kernel).
#[derive(Debug, Clone)]
pub struct Listen {
    pub bind: Vec<String>,
    pub unix_socket: Option<PathBuf>,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            bind: vec!["127.0.0.1".into()],
            unix_socket: None,
        }
    }
}

impl Listen {
    /// Process isolation: loopback, and a Unix socket `<dir>/redis.sock`
    /// when that path is absolute, printable UTF-8 and short enough for a
    /// Unix socket
    /// — the fault proxy forwards to it (cheaper per request than TCP
    /// loopback, issue 13 item 5), and the lab's admin connection uses it.
    pub fn on_loopback(dir: &Path) -> Self {
        let socket = dir.join("redis.sock");
        let fits = socket.is_absolute()
            && socket
                .to_str()
                .is_some_and(|path| !path.chars().any(char::is_control))
            && socket.as_os_str().len() <= chaoslab_faultproxy::MAX_UNIX_PATH;
        Self {
            unix_socket: fits.then_some(socket),
            ..Self::default()
        }
    }
}

/// [`render_conf`] listening on `listen`.
pub fn render_conf_on(
    port: u16,
    data_dir: &Path,
    admin_password: &str,
    listen: &Listen,
) -> Result<String, ConfValueError> {
    let port = port.to_string();
    let mut conf = String::new();
    conf.push_str("bind");
    for addr in &listen.bind {
        conf.push(' ');
        conf.push_str(&conf_quote("bind", addr.as_bytes())?);
    }
    conf.push('\n');
    if let Some(path) = &listen.unix_socket {
        conf.push_str("unixsocket ");
        conf.push_str(&conf_quote("unixsocket", path.as_os_str().as_bytes())?);
        conf.push_str("\nunixsocketperm \"700\"\n");
    }
    let entries: [(&str, &[u8]); 9] = [
        ("port", port.as_bytes()),
        ("protected-mode", b"yes"),
        ("daemonize", b"no"),
        ("dir", data_dir.as_os_str().as_bytes()),
        ("appendonly", b"yes"),
        ("appendfsync", b"everysec"),
        ("save", b""),
        ("logfile", b""),
        ("requirepass", admin_password.as_bytes()),
    ];
    for (name, value) in entries {
        conf.push_str(name);
        conf.push(' ');
        let quoted = conf_quote(name, value).map_err(|mut e| {
            if name == "requirepass" {
                e.value = "(the admin password)".into();
            }
            e
        })?;
        conf.push_str(&quoted);
        conf.push('\n');
    }
    Ok(conf)
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
    unix_socket: Option<PathBuf>,
    admin_password: String,
    /// File holding the service user's password (0600).
    pub service_password_file: PathBuf,
    /// Data directory (AOF).
    pub data_dir: PathBuf,
}

/// How the lab reaches its Redis as admin (PING for the time series, ACL
/// changes): redis-server's own address, never a fault proxy's.
#[derive(Clone)]
pub struct AdminTarget {
    pub addr: SocketAddr,
    pub password: String,
    /// Kernel isolation: redis-server's Unix socket, which the lab's own
    /// admin connection uses (a network fault never cuts it).
    pub unix: Option<PathBuf>,
}

impl std::fmt::Debug for AdminTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminTarget")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Why an admin connection or command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No connection (refused, or AUTH rejected).
    #[error("cannot connect to redis at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: redis::RedisError,
    },
    /// No answer within the deadline.
    #[error("redis at {addr} did not answer {command} within {timeout:?}")]
    Timeout {
        addr: String,
        command: String,
        timeout: Duration,
    },
    /// An error reply, a broken connection or a reply of the wrong type.
    #[error("redis {command}: {source}")]
    Command {
        command: String,
        #[source]
        source: redis::RedisError,
    },
    /// A well-formed reply that is not the one expected.
    #[error("redis {command}: unexpected reply {reply:?}")]
    Unexpected { command: String, reply: String },
    /// A command with no name.
    #[error("empty redis command")]
    Empty,
}

/// One admin connection to Redis, on the `redis` crate (the lab's only
/// RESP client): connecting, authenticating and every command are bounded
/// by the timeout given at connect. Only ever pointed at redis-server
/// itself, never at a fault proxy (the admin password must not flow
/// through one).
pub struct AdminConnection {
    conn: redis::aio::MultiplexedConnection,
    /// Where it is connected (for errors).
    addr: String,
    timeout: Duration,
}

impl std::fmt::Debug for AdminConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConnection")
            .field("addr", &self.addr)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AdminConnection {
    /// Connects as the default user (authenticating with `password` when
    /// given), all within `timeout`.
    pub async fn connect(
        addr: SocketAddr,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        Self::connect_as(addr, None, password, timeout).await
    }

    /// Connects as `username` (an ACL user) or the default user.
    pub async fn connect_as(
        addr: SocketAddr,
        username: Option<&str>,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        let endpoint = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port());
        Self::connect_to(endpoint, addr.to_string(), username, password, timeout).await
    }

    /// Connects to `target` as the default user: over its Unix socket when
    /// it has one (kernel isolation: no network rule can cut it), else TCP.
    pub async fn connect_target(
        target: &AdminTarget,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        match &target.unix {
            Some(path) => {
                let endpoint = redis::ConnectionAddr::Unix(path.clone());
                let shown = path.display().to_string();
                Self::connect_to(endpoint, shown, None, Some(&target.password), timeout).await
            }
            None => Self::connect(target.addr, Some(&target.password), timeout).await,
        }
    }

    async fn connect_to(
        endpoint: redis::ConnectionAddr,
        addr: String,
        username: Option<&str>,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, AdminError> {
        let connect_error = |source| AdminError::Connect {
            addr: addr.clone(),
            source,
        };
        let mut settings = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(username) = username {
            settings = settings.set_username(username);
        }
        if let Some(password) = password {
            settings = settings.set_password(password);
        }
        let info = endpoint
            .into_connection_info()
            .map_err(connect_error)?
            .set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(connect_error)?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn = tokio::time::timeout(
            timeout,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| AdminError::Timeout {
            addr: addr.clone(),
            command: "a connection".into(),
            timeout,
        })?
        .map_err(connect_error)?;
        Ok(Self {
            conn,
            addr,
            timeout,
        })
    }

    /// Sends one command and reads its reply as `T`, within the timeout. An
    /// error reply is an error; errors name the command (and subcommand),
    /// never its arguments (they may hold a password).
    pub async fn query<T: redis::FromRedisValue>(
        &mut self,
        args: &[&str],
    ) -> Result<T, AdminError> {
        let (name, rest) = args.split_first().ok_or(AdminError::Empty)?;
        let mut cmd = redis::cmd(name);
        for arg in rest {
            cmd.arg(*arg);
        }
        let command = command_label(args);
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut self.conn)).await {
            Err(_) => Err(AdminError::Timeout {
                addr: self.addr.clone(),
                command,
                timeout: self.timeout,
            }),
            Ok(Err(source)) => Err(AdminError::Command { command, source }),
            Ok(Ok(value)) => Ok(value),
        }
    }

    /// PING; Ok only when Redis answers PONG.
    pub async fn ping(&mut self) -> Result<(), AdminError> {
        let reply: String = self.query(&["PING"]).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(AdminError::Unexpected {
                command: "PING".into(),
                reply: reply.chars().take(64).collect(),
            })
        }
    }
}

/// `ACL SETUSER`, `CLIENT KILL`, `PING`: the command and, for commands with
/// subcommands, the subcommand.
fn command_label(args: &[&str]) -> String {
    let mut label = args
        .first()
        .map_or_else(String::new, |a| a.to_ascii_uppercase());
    if matches!(label.as_str(), "ACL" | "CLIENT" | "CONFIG")
        && let Some(sub) = args.get(1)
    {
        label.push(' ');
        label.push_str(&sub.to_ascii_uppercase());
    }
    label
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

/// Kernel isolation: redis-server in the lab's network namespace.
#[derive(Debug, Clone)]
pub struct InNamespace {
    /// What runs instead of redis-server: a script that execs it inside
    /// the namespace (`ip netns exec`), so a restart by the faults, which
    /// runs the same executable, lands there too.
    pub launcher: PathBuf,
    /// The namespace's addresses and the Unix socket.
    pub listen: Listen,
    /// Where the lab's own TCP admin connections go (an address no fault
    /// rule matches).
    pub admin_addr: SocketAddr,
}

impl RedisServer {
    /// Starts redis-server, waits for PING and creates the service user.
    pub async fn start(spawner: &Spawner, options: &RedisOptions) -> Result<Self, RedisError> {
        Self::start_in(spawner, options, None).await
    }

    /// [`start`](Self::start), in the lab's network namespace when given.
    pub async fn start_in(
        spawner: &Spawner,
        options: &RedisOptions,
        namespace: Option<&InNamespace>,
    ) -> Result<Self, RedisError> {
        let found = find_executable(&options.server)
            .ok_or_else(|| RedisError::NotInstalled(options.server.display().to_string()))?;
        let server = namespace.map_or(found, |n| n.launcher.clone());
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
        let listen =
            namespace.map_or_else(|| Listen::on_loopback(&options.dir), |n| n.listen.clone());
        let conf = render_conf_on(options.port, &data_dir, &admin_password, &listen)?;
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
        let addr = namespace.map_or(SocketAddr::from(([127, 0, 0, 1], options.port)), |n| {
            n.admin_addr
        });
        let mut server = Self {
            child,
            pid,
            addr,
            unix_socket: listen.unix_socket,
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
                && conn.ping().await.is_ok()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(not_ready());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An authenticated admin connection (over the Unix socket when there
    /// is one).
    pub async fn admin(&self) -> Result<AdminConnection, RedisError> {
        AdminConnection::connect_target(&self.admin_target(), Duration::from_secs(2))
            .await
            .map_err(|e| RedisError::Admin(e.to_string()))
    }

    /// (Re)creates the service user with `password` (a rotation when it
    /// differs from the file; the auth fault of a later issue uses this).
    pub async fn set_service_password(&self, password: &str) -> Result<(), RedisError> {
        let mut conn = self.admin().await?;
        let pass = format!(">{password}");
        let mut args = vec!["ACL", "SETUSER", SERVICE_USER, "reset", "on", &pass];
        args.extend_from_slice(SERVICE_ACL);
        conn.query::<()>(&args)
            .await
            .map_err(|e| RedisError::Admin(e.to_string()))
    }

    /// Where Redis listens for the lab's TCP admin connections (kernel
    /// isolation: the namespace's admin address, which no fault rule
    /// matches).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Address and admin password, for the lab's own health pings.
    pub fn admin_target(&self) -> AdminTarget {
        AdminTarget {
            addr: self.addr,
            password: self.admin_password.clone(),
            unix: self.unix_socket.clone(),
        }
    }

    /// Its Unix socket, if it has one.
    pub fn unix_socket(&self) -> Option<&Path> {
        self.unix_socket.as_deref()
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
    fn process_isolation_adds_a_unix_socket_only_where_one_fits() {
        let dir = Path::new("/var/lib/lab/.chaoslab/redis");
        let listen = Listen::on_loopback(dir);
        assert_eq!(listen.bind, ["127.0.0.1"]);
        assert_eq!(listen.unix_socket, Some(dir.join("redis.sock")));
        let long = Path::new("/").join("d".repeat(chaoslab_faultproxy::MAX_UNIX_PATH));
        for no_socket in [Path::new("relative/redis"), &long, Path::new("/tmp/a\nb")] {
            let listen = Listen::on_loopback(no_socket);
            assert_eq!(listen.unix_socket, None, "{no_socket:?}");
            assert_eq!(listen.bind, ["127.0.0.1"]);
        }
    }

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

    /// Whether redis-server is here; missing, a skip (a failure on CI).
    fn have_redis() -> bool {
        if find_executable(Path::new("redis-server")).is_some() {
            return true;
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server not installed (required on CI)"
        );
        eprintln!("redis-server not installed; skipping");
        false
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn starts_a_real_redis_with_the_service_user() {
        if !have_redis() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let spawner = Spawner::start().unwrap();
        let options = RedisOptions {
            server: "redis-server".into(),
            port: free_port(),
            dir: dir.path().join("redis"),
            log_file: dir.path().join("redis.log"),
            start_timeout: Duration::from_secs(10),
        };
        let server = RedisServer::start(&spawner, &options).await.unwrap();
        // Process isolation listens on a Unix socket too (the fault
        // proxy's upstream), where the admin connection goes.
        let socket = options.dir.join("redis.sock");
        assert_eq!(server.unix_socket(), Some(socket.as_path()));
        let mut admin = server.admin().await.unwrap();
        assert!(admin.ping().await.is_ok());
        let password = std::fs::read_to_string(&server.service_password_file).unwrap();
        let mut conn = AdminConnection::connect_as(
            server.addr(),
            Some(SERVICE_USER),
            Some(&password),
            Duration::from_secs(2),
        )
        .await
        .unwrap();
        assert_eq!(
            conn.query::<i64>(&["INCR", "chaos_lab:k"]).await.unwrap(),
            1
        );
        // Only what the service needs: anything else is NOPERM.
        for denied in [
            &["FLUSHALL"][..],
            &["CONFIG", "GET", "dir"],
            &["GET", "other-key"],
            &["KEYS", "*"],
            &["ACL", "LIST"],
            &["DEL", "chaos_lab:k"],
        ] {
            let err = conn.query::<redis::Value>(denied).await.unwrap_err();
            assert!(err.to_string().contains("NoPerm"), "{denied:?}: {err}");
        }
        // A wrong password is a clear error, not a hang.
        let err = AdminConnection::connect_as(
            server.addr(),
            Some(SERVICE_USER),
            Some("wrong"),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("cannot connect"), "{err}");
        let pid = server.pid();
        server.stop(Duration::from_secs(5)).await;
        assert!(!chaoslab_foundation::proc::alive(pid));
    }

    /// redis-server reads its data dir back exactly, whatever the path
    /// holds: spaces, quotes, backslashes, a newline, a tab, non-ASCII and
    /// bytes that are not UTF-8.
    #[tokio::test]
    async fn redis_starts_under_a_path_no_directive_can_be_injected_into() {
        if !have_redis() {
            return;
        }
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let weird = std::ffi::OsStr::from_bytes(
            b"lab dir \xc3\xa9 \"q\" back\\slash\nrequirepass x\ttab \xff",
        );
        let spawner = Spawner::start().unwrap();
        let options = RedisOptions {
            server: "redis-server".into(),
            port: free_port(),
            dir: dir.path().join(weird).join("redis"),
            log_file: dir.path().join("redis.log"),
            start_timeout: Duration::from_secs(10),
        };
        let server = RedisServer::start(&spawner, &options).await.unwrap();
        let mut admin = server.admin().await.unwrap();
        let (name, dir_seen): (String, Vec<u8>) =
            admin.query(&["CONFIG", "GET", "dir"]).await.unwrap();
        assert_eq!(name, "dir");
        let expected = std::fs::canonicalize(&server.data_dir).unwrap();
        assert_eq!(dir_seen, expected.as_os_str().as_bytes());
        // The newline in the path injected no password: the admin one holds.
        assert!(
            AdminConnection::connect(server.addr(), Some("x"), Duration::from_secs(2))
                .await
                .is_err()
        );
        server.stop(Duration::from_secs(5)).await;
    }

    /// A port of redis-server's `sdssplitargs` (src/sds.c), the parser of
    /// every redis.conf line, to read back what [`conf_quote`] wrote.
    fn sdssplitargs(line: &[u8]) -> Option<Vec<Vec<u8>>> {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let mut args = Vec::new();
        let mut p = 0;
        loop {
            while p < line.len() && line[p].is_ascii_whitespace() {
                p += 1;
            }
            if p == line.len() {
                return Some(args);
            }
            let (mut inq, mut insq) = (false, false);
            let mut current = Vec::new();
            loop {
                let c = line.get(p).copied();
                if inq {
                    match c {
                        None => return None,
                        Some(b'\\')
                            if line.get(p + 1) == Some(&b'x')
                                && line.get(p + 2).and_then(|&b| hex(b)).is_some()
                                && line.get(p + 3).and_then(|&b| hex(b)).is_some() =>
                        {
                            current.push(hex(line[p + 2])? * 16 + hex(line[p + 3])?);
                            p += 3;
                        }
                        Some(b'\\') if p + 1 < line.len() => {
                            p += 1;
                            current.push(match line[p] {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 8,
                                b'a' => 7,
                                other => other,
                            });
                        }
                        Some(b'"') => {
                            if line.get(p + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                                return None;
                            }
                            p += 1;
                            break;
                        }
                        Some(other) => current.push(other),
                    }
                } else if insq {
                    match c {
                        None => return None,
                        Some(b'\\') if line.get(p + 1) == Some(&b'\'') => {
                            p += 1;
                            current.push(b'\'');
                        }
                        Some(b'\'') => {
                            if line.get(p + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                                return None;
                            }
                            p += 1;
                            break;
                        }
                        Some(other) => current.push(other),
                    }
                } else {
                    match c {
                        None => break,
                        Some(b) if b.is_ascii_whitespace() => break,
                        Some(b'"') => inq = true,
                        Some(b'\'') => insq = true,
                        Some(other) => current.push(other),
                    }
                }
                p += 1;
            }
            args.push(current);
        }
    }

    #[test]
    fn conf_values_are_quoted_and_read_back_exactly() {
        let cases: &[&[u8]] = &[
            b"",
            b"plain",
            b"/tmp/lab dir/with space",
            "lab dir é ü 日本".as_bytes(),
            b"new\nline",
            b"/x\nrequirepass injected",
            b"quote\" inside",
            b"\"",
            b"back\\slash\\",
            b"\\x41 \\n literal escapes",
            b"tab\there\rcr",
            b"\x01\x07\x08\x1b\x7f controls",
            b"not utf-8 \xff\xfe \xc3",
            b"'single' quotes",
            b"# not a comment",
        ];
        for &value in cases {
            let quoted = conf_quote("dir", value).unwrap();
            assert!(
                !quoted.contains(['\n', '\r']),
                "one line for {value:?}: {quoted}"
            );
            let line = format!("dir {quoted}");
            assert_eq!(
                sdssplitargs(line.as_bytes()),
                Some(vec![b"dir".to_vec(), value.to_vec()]),
                "{value:?} -> {quoted}"
            );
        }
        assert_eq!(conf_quote("dir", b"a b").unwrap(), r#""a b""#);
        assert_eq!(conf_quote("dir", b"a\nb").unwrap(), r#""a\nb""#);
        assert_eq!(conf_quote("dir", b"a\"b").unwrap(), r#""a\"b""#);
        assert_eq!(conf_quote("dir", b"a\\b").unwrap(), r#""a\\b""#);
        assert_eq!(conf_quote("dir", "é".as_bytes()).unwrap(), "\"é\"");
    }

    #[test]
    fn a_nul_byte_cannot_go_into_redis_conf() {
        let err = conf_quote("dir", b"/tmp/a\0b").unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        assert!(err.to_string().contains("dir"), "{err}");
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/a\0b"));
        let err = render_conf(6379, path, "secret").unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        let err = render_conf(6379, Path::new("/tmp"), "sec\0ret").unwrap_err();
        assert!(
            !err.to_string().contains("sec"),
            "no password echoed: {err}"
        );
    }

    #[test]
    fn every_conf_line_is_one_directive_and_its_value() {
        let conf = render_conf(6379, Path::new("/a b/\"c\"\n/d"), "pw").unwrap();
        let lines: Vec<&str> = conf.lines().collect();
        assert_eq!(lines.len(), 10, "{conf}");
        for line in lines {
            let args = sdssplitargs(line.as_bytes()).unwrap();
            assert_eq!(args.len(), 2, "{line}");
        }
        assert!(conf.contains("dir \"/a b/\\\"c\\\"\\n/d\"\n"), "{conf}");
        assert!(conf.contains("requirepass \"pw\"\n"), "{conf}");
        assert!(conf.contains("port \"6379\"\n"), "{conf}");
    }

    /// A fake server on 127.0.0.1 that answers every read with `reply`.
    async fn fake_redis(reply: &'static [u8]) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 || stream.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn replies_with_non_ascii_or_invalid_utf8_do_not_panic() {
        let timeout = Duration::from_secs(2);
        // A simple string with a multi-byte first character.
        let addr = fake_redis("+héllo\r\n".as_bytes()).await;
        let mut conn = AdminConnection::connect(addr, None, timeout).await.unwrap();
        let err = conn.ping().await.unwrap_err();
        assert!(err.to_string().contains("unexpected reply"), "{err}");
        assert_eq!(conn.query::<String>(&["ECHO", "x"]).await.unwrap(), "héllo");
        let addr = fake_redis("+é\r\n".as_bytes()).await;
        let mut conn = AdminConnection::connect(addr, None, timeout).await.unwrap();
        assert!(conn.ping().await.is_err());
        // A bulk string that is not UTF-8: raw bytes fine, a String an error.
        let addr = fake_redis(b"$3\r\n\xff\xfe\xc3\r\n").await;
        let mut conn = AdminConnection::connect(addr, None, timeout).await.unwrap();
        assert_eq!(
            conn.query::<Vec<u8>>(&["GET", "k"]).await.unwrap(),
            b"\xff\xfe\xc3"
        );
        let err = conn.query::<String>(&["GET", "k"]).await.unwrap_err();
        assert!(err.to_string().starts_with("redis GET"), "{err}");
        assert!(conn.ping().await.is_err());
        // An error reply with non-ASCII text.
        let addr = fake_redis("-ERR détraqué\r\n".as_bytes()).await;
        let mut conn = AdminConnection::connect(addr, None, timeout).await.unwrap();
        let err = conn.ping().await.unwrap_err();
        assert!(err.to_string().contains("détraqué"), "{err}");
        // Garbage that is no RESP at all.
        let addr = fake_redis(b"\xff\xfe garbage\r\n").await;
        let mut conn = AdminConnection::connect(addr, None, timeout).await.unwrap();
        assert!(conn.ping().await.is_err());
    }

    #[tokio::test]
    async fn every_call_is_bounded_by_the_timeout() {
        // Accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let timeout = Duration::from_millis(300);
        let started = tokio::time::Instant::now();
        let mut conn = AdminConnection::connect(addr, None, timeout).await.unwrap();
        let err = conn.ping().await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "bounded");
        assert!(err.to_string().contains("PING"), "{err}");
        // With a password, the AUTH at connect is bounded too.
        let started = tokio::time::Instant::now();
        let err = AdminConnection::connect(addr, Some("pw"), timeout)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "bounded");
        assert!(!err.to_string().contains("pw"), "{err}");
        held.abort();
        // Nobody listening: a clear connect error.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let err = AdminConnection::connect(closed, None, timeout)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("cannot connect"), "{err}");
        assert!(matches!(
            conn.query::<String>(&[]).await,
            Err(AdminError::Empty)
        ));
    }

    #[test]
    fn errors_name_the_command_never_its_arguments() {
        assert_eq!(
            command_label(&["acl", "setuser", "chaoslab", ">secret"]),
            "ACL SETUSER"
        );
        assert_eq!(command_label(&["AUTH", "secret"]), "AUTH");
        assert_eq!(command_label(&["PING"]), "PING");
        assert_eq!(command_label(&[]), "");
    }
}

#[cfg(test)]
#[path = "resp_replies_tests.rs"]
mod resp_replies_tests;
