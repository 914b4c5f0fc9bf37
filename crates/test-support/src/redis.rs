//! A private, real `redis-server` for one test: loopback only, a free port,
//! its own temp directory, no persistence; killed and reaped on drop. With
//! an ACL user it runs as the lab runs it (service user `chaoslab` whose
//! password is in a file; `default` needs the admin password).
//!
//! `REDIS_SERVER` names another binary. A missing one fails the test under
//! `CI` and skips it otherwise ([`RedisServer::start_or_skip`]).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{net, process, tool, wait};

/// How to install it, for messages.
const INSTALL: &str = "apt-get install -y redis-server";

/// The redis-server binary tests run.
pub fn binary() -> String {
    std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// Whether redis-server is installed, under the missing-tool policy (fails
/// under CI, prints a note otherwise).
pub fn installed_or_skip() -> bool {
    tool::present_or_skip(
        tool::find_on_path(&binary()).is_some(),
        &format!("redis-server is not installed ({INSTALL})"),
    )
}

/// A running redis-server; see the module doc.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// ACL user and its password file, when started with one.
    pub acl: Option<(String, PathBuf)>,
}

impl RedisServer {
    /// A Redis without authentication; panics if it cannot start.
    pub fn start() -> Self {
        Self::start_inner(false)
    }

    /// A Redis with an ACL user `chaoslab` (password `first-secret`, in
    /// the file of [`Self::service_env`]); `default` needs the admin
    /// password `admin`.
    pub fn start_with_acl() -> Self {
        Self::start_inner(true)
    }

    /// [`Self::start`], or `None` when redis-server is not installed and
    /// `CI` is not set (a note is printed; under CI the test fails).
    pub fn start_or_skip() -> Option<Self> {
        installed_or_skip().then(Self::start)
    }

    /// A Redis without authentication on `port` (for a service started
    /// before its Redis); retried until the port is free, bounded.
    pub fn start_on(port: u16) -> Self {
        let mut server = Self::stopped(port);
        server.restart();
        server
    }

    /// The fixture, its directory made, no process yet.
    fn stopped(port: u16) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("chaoslab-test-redis-")
            .tempdir()
            .expect("temp dir");
        RedisServer {
            port,
            dir,
            child: None,
            acl: None,
        }
    }

    fn start_inner(acl: bool) -> Self {
        let mut server = Self::stopped(0);
        if acl {
            let pw = server.dir.path().join("redis-password");
            std::fs::write(&pw, "first-secret\n").expect("write the password file");
            server.acl = Some(("chaoslab".into(), pw));
        }
        // A free port can be taken before redis-server binds it: retry.
        for _ in 0..5 {
            server.port = net::free_port();
            if server.spawn() {
                return server;
            }
        }
        panic!(
            "could not start {} on loopback (is it installed? {INSTALL})",
            binary()
        );
    }

    /// Starts the process on `self.port`; whether it answers.
    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new(binary());
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.acl.is_some() {
            cmd.args(["--requirepass", "admin"]).args([
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
        let addr = self.addr();
        let up = wait::poll(wait::GENEROUS, || {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(false); // exited: port taken, most likely
            }
            answers_ping(addr).then_some(true)
        });
        if up == Some(true) {
            self.child = Some(child);
            true
        } else {
            process::kill_and_reap(&mut child);
            false
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Runs a command as the admin with redis-cli; its output, trimmed.
    pub fn admin(&self, args: &[&str]) -> std::io::Result<String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.acl.is_some() {
            cmd.args(["--no-auth-warning", "-a", "admin"]);
        }
        let out = cmd.args(args).stdin(Stdio::null()).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stops the server with SIGKILL (as a crash or a cut would look).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::kill_and_reap(&mut child);
        }
    }

    /// Starts it again on the same port (waiting, bounded, for the port).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + wait::GENEROUS;
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not restart on port {} within {:?}",
                self.port,
                wait::GENEROUS
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

    /// Its private directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether a Redis at `addr` answers PING (any reply: `+PONG`, or
/// `-NOAUTH` when a password is required, proves it is serving).
fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 1];
    matches!(stream.read(&mut reply), Ok(1) if reply[0] == b'+' || reply[0] == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answers_and_is_gone_after_drop() {
        let Some(redis) = RedisServer::start_or_skip() else {
            return;
        };
        let addr = redis.addr();
        assert!(answers_ping(addr));
        let pid = redis.child.as_ref().map(Child::id).expect("running");
        drop(redis);
        assert!(!process::alive(pid), "reaped on drop");
        assert!(!answers_ping(addr));
    }
}
