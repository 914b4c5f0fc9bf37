//! The lab's alerting: the console crate's rules (`[alerts]` in
//! chaoslab.toml, the seed's defaults) evaluated on the lab's metrics time
//! series; firing and resolving become events (`AlertFiring`,
//! `AlertResolved`), shown by `chaoslab events` and the console, and are
//! POSTed to the webhook when one is configured.

use std::sync::Arc;

use chaoslab_console::alerts::{self, AlertsConfig, Sample};

use crate::platform::Platform;

/// Runs until the lab stops.
pub async fn run(platform: Arc<Platform>, config: AlertsConfig) {
    let longest = config
        .rules
        .iter()
        .map(|r| r.window_seconds)
        .max()
        .unwrap_or(0) as i64;
    let samples = {
        let platform = platform.clone();
        move || {
            let since = chrono::Utc::now().timestamp_millis() - (longest + 1) * 1000;
            platform
                .series
                .since(since)
                .into_iter()
                .map(|p| Sample {
                    unix_ms: p.unix_ms,
                    requests: p.requests,
                    errors_5xx: p.errors_5xx,
                    latency_sum_ms: p.latency_sum_ms,
                })
                .collect()
        }
    };
    let emit = {
        let platform = platform.clone();
        move |t: &alerts::AlertTransition| {
            let data = serde_json::to_value(t).unwrap_or_default();
            if t.state == "firing" {
                platform
                    .events
                    .warning("AlertFiring", "alerts", t.message.clone(), data);
            } else {
                platform
                    .events
                    .normal("AlertResolved", "alerts", t.message.clone(), data);
            }
        }
    };
    let shutdown = platform.shutdown.clone();
    alerts::run(config, samples, emit, shutdown.cancelled_owned()).await;
}
