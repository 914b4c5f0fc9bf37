//! The CLI's client of the control API: finds the running lab through its
//! state file in the current directory, authenticates with the token kept
//! there, and calls the same endpoints the tests and the console use.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::spawner::alive;
use crate::state::StateFile;

/// Why a CLI command could not talk to the lab.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no lab is running in {0} (no lab.json); start one with `chaoslab up`")]
    NoLab(PathBuf),
    #[error(
        "the lab in {dir} (pid {pid}) is not running any more; remove {dir}/lab.json or run `chaoslab up`"
    )]
    Stale { dir: PathBuf, pid: u32 },
    #[error("cannot reach the lab's control API: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the lab answered {status}: {detail}")]
    Api { status: u16, detail: String },
    #[error("{0}")]
    Timeout(String),
}

/// A connection to a running lab's control API.
#[derive(Debug, Clone)]
pub struct LabClient {
    pub state: StateFile,
    http: reqwest::Client,
}

impl LabClient {
    /// Reads `<state_dir>/lab.json`.
    pub fn discover(state_dir: &Path) -> Result<Self, ClientError> {
        let state =
            StateFile::read(state_dir).map_err(|_| ClientError::NoLab(state_dir.to_path_buf()))?;
        if !state.lab_alive() {
            return Err(ClientError::Stale {
                dir: state_dir.to_path_buf(),
                pid: state.pid,
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .no_proxy()
            .build()?;
        Ok(Self { state, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.state.control_url)
    }

    async fn check(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let detail = body["detail"].as_str().unwrap_or("no detail").to_string();
        Err(ClientError::Api { status, detail })
    }

    /// GETs a JSON document.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.state.token)
            .timeout(Duration::from_secs(15))
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// POSTs a JSON body and returns the JSON answer.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, ClientError> {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.state.token)
            .json(body)
            .timeout(Duration::from_secs(15))
            .send()
            .await?;
        Ok(Self::check(response).await?.json().await?)
    }

    /// Reads a JSON-lines endpoint, calling `on_line` per line until it
    /// breaks or the stream ends (follow streams end when the lab stops).
    pub async fn lines(
        &self,
        path: &str,
        mut on_line: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<(), ClientError> {
        let mut response = Self::check(
            self.http
                .get(self.url(path))
                .bearer_auth(&self.state.token)
                .send()
                .await?,
        )
        .await?;
        let mut buffer: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                if on_line(text.trim_end()).is_break() {
                    return Ok(());
                }
            }
            if buffer.len() > 1 << 20 {
                buffer.clear();
            }
        }
        Ok(())
    }

    /// Asks the lab to stop and waits until its process is gone.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), ClientError> {
        self.post("/api/shutdown", &serde_json::Value::Null).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        while alive(self.state.pid) {
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "the lab (pid {}) did not stop within {timeout:?}",
                    self.state.pid
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Polls a revision until it is no longer Provisioning.
    pub async fn wait_revision(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let revision: serde_json::Value = self.get(&format!("/api/revisions/{name}")).await?;
            if revision["state"] != "Provisioning" {
                return Ok(revision);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "revision {name} still provisioning after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
