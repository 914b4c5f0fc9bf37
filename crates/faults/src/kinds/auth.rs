//! `auth`: the seed's token failure. `revoke` rotates the service user's
//! ACL password in Redis to a new secret and drops its connections, without
//! telling the service (the password file keeps the old one): every
//! reconnect fails, the service re-reads the file once, fails again and
//! answers 503 `Redis authentication failed`. Clearing it (`restore`, or the
//! duration ending) models a new token being issued: the new password is
//! written to the password file, which the service reads on its next
//! authentication failure.
//!
//! With Entra ID (`chaoslab up --auth entra`) the credential is the
//! stand-in managed identity's token: `revoke` switches the identity's
//! Redis user off and closes its connections (its access is removed; the
//! endpoint still mints tokens, Redis refuses them), `restore` switches it
//! on again, so every token still valid works at once.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::LabHandle;
use crate::error::FaultError;
use crate::fault_kind::{Fault, Injected, check_seconds, needs_own_redis, seconds};

/// `revoke` or `restore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthAction {
    Revoke,
    Restore,
}

/// `{"kind":"auth","action":"revoke|restore"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFault {
    pub action: AuthAction,
    #[serde(default)]
    pub duration_seconds: Option<i64>,
}

impl Fault for AuthFault {
    fn kind(&self) -> &'static str {
        "auth"
    }

    fn check(&self, lab: &LabHandle) -> Result<(), FaultError> {
        check_seconds(self.duration_seconds)?;
        needs_own_redis(lab, "auth faults (the service user's ACL password)")
    }

    fn duration(&self) -> Option<Duration> {
        seconds(self.duration_seconds, 0).ok().flatten()
    }

    async fn inject(&self, lab: &Arc<LabHandle>, _id: &str) -> Result<Injected, FaultError> {
        let redis = lab.redis.as_ref().ok_or(FaultError::ShuttingDown)?;
        if let Some(object_id) = redis.entra_object_id() {
            redis.revoke_identity().await?;
            let mut details = serde_json::Map::new();
            details.insert("action".into(), json!("revoke"));
            details.insert("user".into(), json!(object_id));
            details.insert("auth".into(), json!("entra"));
            return Ok(Injected {
                target: format!("entra identity {object_id}"),
                details,
                one_shot: false,
                undo: None,
            });
        }
        let password = uuid::Uuid::new_v4().simple().to_string();
        redis.set_override(Some(password.clone()));
        if let Err(e) = redis.set_acl_password(&password, true).await {
            redis.set_override(None);
            return Err(e.into());
        }
        let mut details = serde_json::Map::new();
        details.insert("action".into(), json!("revoke"));
        details.insert("user".into(), json!(chaoslab_lab::SERVICE_USER));
        Ok(Injected {
            target: format!("redis user {}", chaoslab_lab::SERVICE_USER),
            details,
            one_shot: false,
            undo: Some(password),
        })
    }

    async fn clear(
        &self,
        lab: &Arc<LabHandle>,
        _id: &str,
        injected: &Injected,
        restore: bool,
    ) -> Result<(), FaultError> {
        if let (Some(redis), true) = (&lab.redis, restore)
            && redis.entra_object_id().is_some()
        {
            return Ok(redis.restore_identity().await?);
        }
        let (Some(redis), Some(password), true) = (&lab.redis, &injected.undo, restore) else {
            return Ok(());
        };
        // A new credential is issued: the secret store (the file) gets it.
        redis.write_file_password(password)?;
        redis.set_override(None);
        Ok(())
    }
}
