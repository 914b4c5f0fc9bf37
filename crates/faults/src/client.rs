//! The CLI's client for the fault and chaos routes: finds the lab through
//! its state file (as `chaoslab status` does, via the lab's `LabClient`) and
//! calls `/api/faults` and `/api/chaos` with the lab's bearer token. The
//! CLI is a thin client of the same API the console and the tests use.

use std::path::Path;
use std::time::Duration;

use chaoslab_lab::client::{ClientError, LabClient};
pub use reqwest::Method;
use serde_json::Value;

/// Why a fault command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum FaultClientError {
    /// No lab in that directory (or its process is gone).
    #[error("no lab running in {0}: start one with `chaoslab up`")]
    NoLab(String),
    /// The lab refused (bad input, conflict…): its detail.
    #[error("{detail}")]
    Refused { status: u16, detail: String },
    /// The lab could not be reached.
    #[error("cannot reach the lab's control API: {0}")]
    Http(#[from] reqwest::Error),
}

/// A client of a running lab's fault and chaos routes.
#[derive(Debug, Clone)]
pub struct FaultClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl FaultClient {
    /// Finds the lab of `state_dir`.
    pub fn discover(state_dir: &Path) -> Result<Self, FaultClientError> {
        let lab = LabClient::discover(state_dir).map_err(|e| match e {
            ClientError::NoLab(_) | ClientError::Stale { .. } => {
                FaultClientError::NoLab(state_dir.display().to_string())
            }
            other => FaultClientError::NoLab(format!("{} ({other})", state_dir.display())),
        })?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        Ok(Self {
            base: lab.state.control_url.clone(),
            token: lab.state.token.clone(),
            http,
        })
    }

    /// Calls `method path` with an optional JSON body; the JSON answer, or
    /// the lab's error detail.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, FaultClientError> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(120));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            let detail = value["detail"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("the lab answered {status}"));
            Err(FaultClientError::Refused {
                status: status.as_u16(),
                detail,
            })
        }
    }
}
