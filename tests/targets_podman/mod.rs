//! What `podman` needs on this machine to run the k8s export's containers,
//! found by trying, and a guard that removes everything a test created.
//!
//! Found on the development machine (Debian 12, podman 4.3.1, root, cgroup
//! v1 with a cgroup2 hierarchy also mounted at /sys/fs/cgroup/unified, no
//! systemd): crun 1.8.1 refuses the hybrid layout ("cgroups in hybrid mode
//! not supported, drop all controllers from cgroupv2") — runc works;
//! podman's default ulimits (nofile/nproc 1048576/4194304) exceed the
//! hard limits and crun/runc cannot raise them without CAP_SYS_RESOURCE —
//! 4096 (or the hard limit if lower) works; pods need `catatonit` to build
//! their local pause image. Those go into a CONTAINERS_CONF file the tests
//! pass to every podman call, never into the machine's own configuration.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs a command with a deadline (killed after it); `None` on timeout.
pub fn run_bounded(cmd: &mut Command, deadline: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let read = |pipe: Option<std::process::ChildStdout>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = std::io::Read::read_to_end(&mut p, &mut buf);
            }
            buf
        })
    };
    let out_thread = read(stdout);
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = stderr {
            let _ = std::io::Read::read_to_end(&mut p, &mut buf);
        }
        buf
    });
    let status = chaoslab_test_support::process::wait_exit(&mut child, deadline);
    let Some(status) = status else {
        chaoslab_test_support::process::kill_and_reap(&mut child);
        return None;
    };
    Some(Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    })
}

/// A hard resource limit of this process (`Max open files`…), from /proc.
fn hard_limit(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    let fields: Vec<&str> = line[name.len()..].split_whitespace().collect();
    fields.get(1).and_then(|v| v.parse().ok())
}

/// Podman settings that work here.
#[derive(Debug, Clone)]
pub struct Podman {
    /// A CONTAINERS_CONF file (runtime and ulimits).
    pub conf: PathBuf,
    pub runtime: String,
    pub ulimit: u64,
}

impl Podman {
    /// `podman ARGS` with this configuration.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf).args(args);
        // In the test's temp dir: conmon writes an `oom` marker into its
        // working directory when a container is OOM-killed, and that must
        // not land in the checkout.
        if let Some(dir) = self.conf.parent() {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs `podman ARGS` bounded; stdout on success, else an error text.
    pub fn run(&self, args: &[&str], deadline: Duration) -> Result<String, String> {
        match run_bounded(&mut self.cmd(args), deadline) {
            None => Err(format!(
                "podman {} timed out after {deadline:?}",
                args.join(" ")
            )),
            Some(out) if out.status.success() => {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Some(out) => Err(format!(
                "podman {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }
}

/// Finds a runtime and ulimits with which podman starts `image` (running
/// `chaoslab --version` in it) here, writing the CONTAINERS_CONF into
/// `dir`. Err: every attempt's error, for the report.
pub fn probe(dir: &Path, image: &str) -> Result<Podman, Vec<String>> {
    let ulimit = [hard_limit("Max open files"), hard_limit("Max processes")]
        .into_iter()
        .flatten()
        .fold(4096, u64::min);
    let mut errors = Vec::new();
    for runtime in ["crun", "runc"] {
        if chaoslab_test_support::tool::find_on_path(runtime).is_none() {
            errors.push(format!("{runtime}: not installed"));
            continue;
        }
        let conf = dir.join(format!("containers-{runtime}.conf"));
        std::fs::write(
            &conf,
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={ulimit}:{ulimit}\", \"nproc={ulimit}:{ulimit}\"]\n[engine]\nruntime = \"{runtime}\"\n"
            ),
        )
        .unwrap();
        let podman = Podman {
            conf,
            runtime: runtime.into(),
            ulimit,
        };
        let name = format!("chaoslab-test-probe-{}", std::process::id());
        let result = podman.run(
            &[
                "run",
                "--rm",
                "--name",
                &name,
                "--network",
                "none",
                "--memory",
                "64m",
                "--entrypoint",
                "/usr/local/bin/chaoslab",
                image,
                "--version",
            ],
            Duration::from_secs(60),
        );
        let _ = podman.run(&["rm", "-f", &name], Duration::from_secs(30));
        match result {
            Ok(_) => return Ok(podman),
            Err(e) => errors.push(format!("{runtime}: {e}")),
        }
    }
    Err(errors)
}

/// Removes, when dropped, what a test created: plays (kube down), pods,
/// containers and images by name, then the temporary directory.
pub struct Cleanup {
    pub conf: Option<PathBuf>,
    pub plays: Vec<PathBuf>,
    pub pods: Vec<String>,
    pub images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let podman = |args: &[&str]| {
            let mut cmd = Command::new("podman");
            if let Some(conf) = &self.conf {
                cmd.env("CONTAINERS_CONF", conf);
            }
            cmd.args(args);
            let _ = run_bounded(&mut cmd, Duration::from_secs(60));
        };
        for play in &self.plays {
            podman(&["kube", "down", &play.to_string_lossy()]);
        }
        for pod in &self.pods {
            podman(&["pod", "rm", "-f", "--ignore", pod]);
        }
        for image in &self.images {
            podman(&["rmi", "-f", "--ignore", image]);
        }
    }
}

/// One HTTP/1.1 request over a plain TCP connection (`Connection: close`),
/// bounded by 5 s: status and JSON body. Enough for the service's JSON
/// answers, which carry a Content-Length.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Option<(u16, serde_json::Value)> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(token) = bearer {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).ok()?;
    let text = String::from_utf8_lossy(&reply);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (_, json) = text.split_once("\r\n\r\n")?;
    Some((status, serde_json::from_str(json).ok()?))
}
