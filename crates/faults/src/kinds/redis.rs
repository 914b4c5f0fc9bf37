//! `redis`: the lab's redis-server process itself. `stop` keeps it down
//! until cleared or for `duration_seconds`, then starts it again on the same
//! port with the same data dir (the AOF brings the data back). `restart`
//! stops it and starts it again at once (a one-shot), or after
//! `duration_seconds` of downtime (then it is a `stop` that ends by itself).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use crate::LabHandle;
use crate::error::FaultError;
use crate::fault_kind::{Fault, Injected, check_seconds, needs_own_redis, seconds};

/// `{"kind":"redis","action":"stop|restart","duration_seconds":N}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisFault {
    pub action: String,
    #[serde(default)]
    pub duration_seconds: Option<i64>,
}

impl Fault for RedisFault {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn check(&self, lab: &LabHandle) -> Result<(), FaultError> {
        check_seconds(self.duration_seconds)?;
        if !matches!(self.action.as_str(), "stop" | "restart") {
            return Err(FaultError::bad(format!(
                "unknown redis action `{}`: use stop or restart",
                self.action
            )));
        }
        needs_own_redis(lab, "redis faults")
    }

    fn duration(&self) -> Option<Duration> {
        seconds(self.duration_seconds, 0).ok().flatten()
    }

    async fn inject(&self, lab: &Arc<LabHandle>, _id: &str) -> Result<Injected, FaultError> {
        let redis = lab.redis.as_ref().ok_or(FaultError::ShuttingDown)?;
        let pid = redis.pid().await;
        redis.stop().await;
        let mut details = serde_json::Map::new();
        details.insert("action".into(), json!(self.action));
        details.insert("stopped_pid".into(), json!(pid));
        let one_shot = self.action == "restart" && self.duration().is_none();
        if one_shot {
            if let Err(first) = redis.start().await {
                tokio::time::sleep(Duration::from_millis(500)).await;
                redis.start().await.map_err(|e| {
                    FaultError::Failed(format!(
                        "Redis was stopped but did not start again ({first}; then {e}); \
                         `chaoslab fault redis restart` tries again"
                    ))
                })?;
            }
            details.insert("pid".into(), json!(redis.pid().await));
        }
        Ok(Injected {
            target: "redis".into(),
            details,
            one_shot,
            undo: None,
        })
    }

    async fn clear(
        &self,
        lab: &Arc<LabHandle>,
        _id: &str,
        _injected: &Injected,
        restore: bool,
    ) -> Result<(), FaultError> {
        match (&lab.redis, restore) {
            (Some(redis), true) => Ok(redis.start().await?),
            _ => Ok(()),
        }
    }
}
