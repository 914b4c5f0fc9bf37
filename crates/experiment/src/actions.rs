//! Steps and rollbacks: `chaoslab` command lines run against the
//! experiment's lab exactly as a user types them (the same binary, with
//! CHAOSLAB_STATE_DIR pointing at the lab), waits, and the HTTP and process
//! activities of Chaos Toolkit files. A `load` action runs in the
//! background until its own run time ends or the run's clean-up stops it;
//! every child is in its own process group, bounded in time and reaped.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chaoslab_lab::{DeathSignal, Spawner, signal_group};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::model::Action;

/// Longest a foreground action may take (a `deploy` waits for its outcome).
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(180);
/// Output kept per action.
const OUTPUT_LIMIT: usize = 16 * 1024;
/// Background loads tracked at once.
const MAX_BACKGROUND: usize = 16;

/// What an action did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ok: bool,
    /// Its output (stdout then stderr, cut to a bound) or the error.
    pub output: String,
    pub duration: Duration,
}

/// Runs actions against one lab.
pub struct ActionRunner {
    exe: PathBuf,
    state_dir: PathBuf,
    ingress_url: String,
    spawner: Spawner,
    http: reqwest::Client,
    background: Mutex<Vec<(u32, Child)>>,
}

impl std::fmt::Debug for ActionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionRunner")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl ActionRunner {
    pub fn new(exe: PathBuf, state_dir: PathBuf, ingress_url: String, spawner: Spawner) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self {
            exe,
            state_dir,
            ingress_url,
            spawner,
            http,
            background: Mutex::new(Vec::new()),
        }
    }

    /// Runs `action`; `cancel` (Ctrl-C) cuts a long one short.
    pub async fn run(&self, action: &Action, cancel: &CancellationToken) -> Outcome {
        let started = Instant::now();
        let (ok, output) = match action {
            Action::Wait(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(*d) => (true, String::new()),
                    _ = cancel.cancelled() => (false, "interrupted".into()),
                }
            }
            Action::Cli(words) if words.first().is_some_and(|w| w == "load") => {
                self.start_background(words).await
            }
            Action::Cli(words) => {
                let mut command = Command::new(&self.exe);
                command.args(words);
                self.child(command, ACTION_TIMEOUT, cancel).await
            }
            Action::Process {
                path,
                args,
                timeout,
            } => {
                let mut command = Command::new(path);
                command.args(args);
                self.child(command, *timeout, cancel).await
            }
            Action::Http {
                method,
                path,
                body,
                timeout,
            } => self.http(method, path, body.as_deref(), *timeout).await,
        };
        Outcome {
            ok,
            output,
            duration: started.elapsed(),
        }
    }

    fn env(&self, command: &mut Command) {
        command
            .env("CHAOSLAB_STATE_DIR", &self.state_dir)
            .env("CHAOSLAB_LOAD_HOST", &self.ingress_url)
            .env("CHAOSLAB_INGRESS_URL", &self.ingress_url)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
    }

    async fn child(
        &self,
        mut command: Command,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> (bool, String) {
        self.env(&mut command);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match self.spawner.spawn(command, DeathSignal::Kill).await {
            Ok(child) => child,
            Err(e) => return (false, format!("cannot start: {e}")),
        };
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let read = async {
            let (a, b) = tokio::join!(read_bounded(stdout), read_bounded(stderr));
            (a, b)
        };
        let waited = async {
            let (out, err) = read.await;
            let status = child.wait().await;
            (status, out, err)
        };
        tokio::select! {
            (status, out, err) = waited => {
                let mut output = out;
                if !err.trim().is_empty() {
                    if !output.is_empty() && !output.ends_with('\n') { output.push('\n'); }
                    output.push_str(&err);
                }
                match status {
                    Ok(s) if s.success() => (true, output.trim_end().to_string()),
                    Ok(s) => (false, format!("{} (exit {})", output.trim_end(), s.code().unwrap_or(-1))),
                    Err(e) => (false, format!("wait failed: {e}")),
                }
            }
            _ = tokio::time::sleep(timeout) => {
                signal_group(pid, libc::SIGKILL);
                (false, format!("did not finish within {timeout:?}; killed"))
            }
            _ = cancel.cancelled() => {
                signal_group(pid, libc::SIGKILL);
                (false, "interrupted".into())
            }
        }
    }

    async fn start_background(&self, words: &[String]) -> (bool, String) {
        let mut command = Command::new(&self.exe);
        command.args(words).arg("--quiet");
        self.env(&mut command);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        if self.background_count() >= MAX_BACKGROUND {
            return (
                false,
                format!("more than {MAX_BACKGROUND} background loads at once"),
            );
        }
        match self.spawner.spawn(command, DeathSignal::Kill).await {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                lock(&self.background).push((pid, child));
                (true, format!("load started in the background (pid {pid})"))
            }
            Err(e) => (false, format!("cannot start the load: {e}")),
        }
    }

    fn background_count(&self) -> usize {
        let mut list = lock(&self.background);
        list.retain_mut(|(_, c)| matches!(c.try_wait(), Ok(None)));
        list.len()
    }

    /// Stops every background load (SIGINT, then SIGKILL) and reaps it.
    pub async fn stop_background(&self) {
        let children: Vec<(u32, Child)> = lock(&self.background).drain(..).collect();
        for (pid, mut child) in children {
            signal_group(pid, libc::SIGINT);
            if tokio::time::timeout(Duration::from_secs(8), child.wait())
                .await
                .is_err()
            {
                signal_group(pid, libc::SIGKILL);
                let _ = tokio::time::timeout(Duration::from_secs(3), child.wait()).await;
            }
        }
    }

    async fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        timeout: Duration,
    ) -> (bool, String) {
        let url = if path.starts_with("http://") {
            reqwest::Url::parse(path).map_err(|e| format!("`{path}` is not a URL: {e}"))
        } else {
            chaoslab_lab::url_on(&self.ingress_url, path)
        };
        let url = match url {
            Ok(url) => url,
            Err(e) => return (false, e),
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut request = self.http.request(method, url).timeout(timeout);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(OUTPUT_LIMIT).collect();
                // As Chaos Toolkit's http provider: an answer, whatever its
                // status, is a result; only no answer fails the activity.
                (true, format!("{} {text}", status.as_u16()))
            }
            Err(e) => (false, format!("request failed: {e}")),
        }
    }
}

async fn read_bounded<R: tokio::io::AsyncRead + Unpin>(reader: Option<R>) -> String {
    let Some(mut reader) = reader else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
