//! `deploy`: a failing revision through the lab's revision machinery —
//! `wrong-image` (an executable that does not exist: ImagePullBackOff),
//! `bad-env` (REDIS_PORT=invalid: the service exits at start, a crash
//! loop), `bad-port` (the target port is one where nothing listens: never
//! ready). The lab marks it Failed and the previous revision keeps serving.
//! A one-shot fault: the revision's own events tell the rest.

use std::sync::Arc;
use std::time::Duration;

use chaoslab_lab::{DeployError, DeployRequest};
use serde::Deserialize;
use serde_json::json;

use crate::LabHandle;
use crate::error::FaultError;
use crate::fault_kind::{Fault, Injected};

/// The image of `wrong-image`: a path that does not exist.
pub const WRONG_IMAGE: &str = "/nonexistent/chaoslab/wrong-image";

/// `{"kind":"deploy","variant":"wrong-image|bad-env|bad-port"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployFault {
    pub variant: String,
    #[serde(default)]
    pub duration_seconds: Option<i64>,
}

impl DeployFault {
    fn request(&self) -> Result<DeployRequest, FaultError> {
        let mut request = DeployRequest::default();
        match self.variant.as_str() {
            "wrong-image" => request.image = Some(WRONG_IMAGE.into()),
            "bad-env" => request.env.push("REDIS_PORT=invalid".into()),
            "bad-port" => {
                // Free now and not given to the replicas: nothing listens.
                let port = chaoslab_foundation::listen::free_loopback_port()
                    .map_err(|e| FaultError::Failed(format!("cannot pick a port: {e}")))?;
                request.port = Some(port);
            }
            other => {
                return Err(FaultError::bad(format!(
                    "unknown deploy variant `{other}`: use wrong-image, bad-env or bad-port"
                )));
            }
        }
        Ok(request)
    }
}

impl Fault for DeployFault {
    fn kind(&self) -> &'static str {
        "deploy"
    }

    fn check(&self, _lab: &LabHandle) -> Result<(), FaultError> {
        crate::fault_kind::check_seconds(self.duration_seconds)?;
        match self.variant.as_str() {
            "wrong-image" | "bad-env" | "bad-port" => Ok(()),
            other => Err(FaultError::bad(format!(
                "unknown deploy variant `{other}`: use wrong-image, bad-env or bad-port"
            ))),
        }
    }

    fn duration(&self) -> Option<Duration> {
        None
    }

    async fn inject(&self, lab: &Arc<LabHandle>, _id: &str) -> Result<Injected, FaultError> {
        let request = self.request()?;
        let revision = lab.platform.deploy(&request).map_err(|e| match e {
            DeployError::Busy | DeployError::Exists(_) | DeployError::AlreadyActive(_) => {
                FaultError::Conflict(e.to_string())
            }
            DeployError::NotFound(_) | DeployError::Invalid(_) => FaultError::bad(e.to_string()),
        })?;
        let mut details = serde_json::Map::new();
        details.insert("variant".into(), json!(self.variant));
        details.insert("revision".into(), json!(revision.name));
        if let Some(port) = request.port {
            details.insert("target_port".into(), json!(port));
        }
        Ok(Injected {
            target: revision.name.clone(),
            details,
            one_shot: true,
            undo: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(variant: &str) -> Result<DeployRequest, FaultError> {
        DeployFault {
            variant: variant.into(),
            duration_seconds: None,
        }
        .request()
    }

    #[test]
    fn each_variant_is_a_failing_revision_request() {
        let wrong = deploy("wrong-image").unwrap();
        assert_eq!(
            wrong.image.as_deref(),
            Some(std::path::Path::new(WRONG_IMAGE))
        );
        assert!(!std::path::Path::new(WRONG_IMAGE).exists());
        assert_eq!(deploy("bad-env").unwrap().env, vec!["REDIS_PORT=invalid"]);
        assert!(deploy("bad-port").unwrap().port.is_some_and(|p| p > 0));
        let err = deploy("bad-mood").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown deploy variant `bad-mood`")
        );
    }
}
