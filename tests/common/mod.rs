//! Fixtures for end-to-end tests: a private `redis-server` and the real
//! `chaoslab serve` binary, both on loopback with free ports, both killed
//! and reaped on drop; plus `eventually`, the deadline-bounded poll every
//! timing assertion uses instead of sleeping.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; retried by callers on clash).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Polls `cond` every 20 ms until it returns `Some`, or panics with `what`
/// after `deadline`.
pub fn eventually<T>(deadline: Duration, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async flavour of [`eventually`].
pub async fn eventually_async<T, F, Fut>(deadline: Duration, what: &str, mut cond: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = cond().await {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn redis_server_binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// A private redis-server for one test.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// ACL user and its password file, when started with one.
    pub acl: Option<(String, PathBuf)>,
}

impl RedisServer {
    /// A Redis without authentication.
    pub fn start() -> Self {
        Self::start_inner(false)
    }

    /// A Redis with an ACL user `chaoslab` whose password is in a file
    /// (as the lab runs it); `default` needs the admin password `admin`.
    pub fn start_with_acl() -> Self {
        Self::start_inner(true)
    }

    fn start_inner(acl: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = RedisServer {
            port: 0,
            dir,
            child: None,
            acl: None,
        };
        if acl {
            let pw = server.dir.path().join("redis-password");
            std::fs::write(&pw, "first-secret\n").unwrap();
            server.acl = Some(("chaoslab".into(), pw));
        }
        for _ in 0..5 {
            server.port = free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server (is it installed? apt-get install -y redis-server)");
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new(redis_server_binary());
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(self.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if self.acl.is_some() {
            cmd.args([
                "--requirepass",
                "admin",
                "--user",
                "chaoslab",
                "on",
                ">first-secret",
                "~*",
                "+@all",
            ]);
        }
        let Ok(mut child) = cmd.spawn() else {
            return false;
        };
        let up = wait_for(Duration::from_secs(10), || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(false);
            }
            self.admin(&["PING"])
                .ok()
                .filter(|r| r.contains("PONG"))
                .map(|_| true)
        });
        if up == Some(true) {
            self.child = Some(child);
            true
        } else {
            let _ = child.kill();
            let _ = child.wait();
            false
        }
    }

    /// Runs a command as the admin with redis-cli and returns its output.
    pub fn admin(&self, args: &[&str]) -> std::io::Result<String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.acl.is_some() {
            cmd.args(["--no-auth-warning", "-a", "admin"]);
        }
        let out = cmd.args(args).stdin(Stdio::null()).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stops the server (SIGKILL, as a crash or a network cut would look).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Environment for `chaoslab serve` to reach this server.
    pub fn service_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("REDIS_HOST".to_string(), "127.0.0.1".to_string()),
            ("REDIS_PORT".to_string(), self.port.to_string()),
        ];
        if let Some((user, file)) = &self.acl {
            env.push(("REDIS_USERNAME".into(), user.clone()));
            env.push(("REDIS_PASSWORD_FILE".into(), file.display().to_string()));
        }
        env
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for<T>(deadline: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if let Some(v) = cond() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The real `chaoslab serve`, started as a user would.
pub struct Service {
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

/// Builder for [`Service`]: environment on top of test-friendly defaults.
pub struct ServiceBuilder {
    env: Vec<(String, String)>,
}

impl Service {
    pub fn builder() -> ServiceBuilder {
        ServiceBuilder {
            env: vec![
                ("LOG_FORMAT".into(), "json".into()),
                ("HEALTH_CACHE_TTL_SECONDS".into(), "0".into()),
                ("TELEMETRY_ENABLED".into(), "false".into()),
                ("SHUTDOWN_GRACE_SECONDS".into(), "5".into()),
            ],
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Everything the service wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = wait_for(Duration::from_secs(20), || child.try_wait().ok().flatten());
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        status
    }

    /// Waits (bounded) for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        wait_for(deadline, || child.try_wait().ok().flatten())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl ServiceBuilder {
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn redis(mut self, redis: &RedisServer) -> Self {
        for (k, v) in redis.service_env() {
            self = self.env(&k, v);
        }
        self
    }

    /// Starts the binary and waits until `/livez` answers.
    pub fn start(self) -> Service {
        let mut service = self.spawn();
        let port = service.port;
        let ok = wait_for(Duration::from_secs(30), || {
            if !service.is_running() {
                return Some(false);
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| true)
        });
        assert_eq!(
            ok,
            Some(true),
            "chaoslab serve did not start; its output:\n{}",
            service.logs()
        );
        service
    }

    /// Starts the binary without waiting (for start-up failure tests).
    pub fn spawn(self) -> Service {
        let logdir = tempfile::tempdir().expect("temp dir");
        let log = logdir.path().join("service.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let port = self
            .env
            .iter()
            .find(|(k, _)| k == "APP_PORT")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(free_port);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chaoslab"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("APP_HOST", "127.0.0.1")
            .env("APP_PORT", port.to_string())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd.spawn().expect("spawn chaoslab serve");
        Service {
            port,
            child: Some(child),
            log,
            _logdir: logdir,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A reqwest client with a request timeout, for tests.
pub fn http(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("http client")
}

/// Resident memory (bytes) and CPU time of a process, from /proc (the
/// same reader the service and the lab use).
pub fn proc_usage(pid: u32) -> (u64, Duration) {
    chaoslab_telemetry::process::sample(Some(pid))
        .map(|s| (s.rss_bytes, s.cpu_time))
        .unwrap_or((0, Duration::ZERO))
}

/// GET `url`; its status (panics on a transport error).
pub async fn get_status(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
) -> reqwest::StatusCode {
    client.get(url).send().await.expect("GET").status()
}

/// POST `url` without a body; its status (panics on a transport error).
pub async fn post_status(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
) -> reqwest::StatusCode {
    client.post(url).send().await.expect("POST").status()
}

/// GET `url`; its JSON body (panics on a transport or JSON error).
pub async fn get_json(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON body")
}
