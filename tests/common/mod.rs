//! The real `chaoslab serve` for end-to-end tests, started as a user would
//! (loopback, a free port, killed and reaped on drop), and HTTP helpers.
//! The generic fixtures (free ports, deadline waits, a private
//! redis-server) come from `chaoslab-test-support` and are re-exported
//! here under the names these tests use.

#![allow(dead_code, unused_imports)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chaoslab_foundation::listen::PortReservation;
use chaoslab_test_support::process;
pub use chaoslab_test_support::wait::{self, GENEROUS};
pub use chaoslab_test_support::{RedisServer, eventually, eventually_async, free_port};

/// The real `chaoslab serve`, started as a user would.
pub struct Service {
    pub port: u16,
    child: Option<Child>,
    /// Holds the port for the service's whole life, so no other socket
    /// (another test's listener, an outgoing connection's source port)
    /// takes it between choosing and binding; the service binds it with
    /// SO_REUSEADDR.
    _port: Option<PortReservation>,
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
        process::signal(child.id(), libc::SIGTERM);
        let status = process::wait_exit(&mut child, GENEROUS);
        if status.is_none() {
            process::kill_and_reap(&mut child);
        }
        status
    }

    /// Waits (bounded) for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        process::wait_exit(child, deadline)
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

    /// Starts the binary and waits until `/livez` answers with HTTP.
    pub fn start(self) -> Service {
        let mut service = self.spawn();
        let port = service.port;
        let ok = wait::poll(GENEROUS, || {
            if !service.is_running() {
                return Some(false);
            }
            livez_answers(port).then_some(true)
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
        let chosen: Option<u16> = self
            .env
            .iter()
            .find(|(k, _)| k == "APP_PORT")
            .and_then(|(_, v)| v.parse().ok());
        let reservation = match chosen {
            Some(_) => None,
            None => Some(PortReservation::any().expect("reserve a loopback port")),
        };
        let port = chosen.unwrap_or_else(|| reservation.as_ref().map_or(0, |r| r.port()));
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
            _port: reservation,
            log,
            _logdir: logdir,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::kill_and_reap(&mut child);
        }
    }
}

/// Whether `GET /livez` on `127.0.0.1:port` gets an HTTP answer (any
/// status) within a second: the service itself listens, not merely some
/// socket.
fn livez_answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let request =
        format!("GET /livez HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
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
    chaoslab_foundation::proc::sample(Some(pid))
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
