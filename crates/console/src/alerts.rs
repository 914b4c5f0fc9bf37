//! Alert rules evaluated on the lab's metrics, with the seed's defaults:
//! more than 5 HTTP 5xx in 5 minutes, and an average response time above
//! 5 s over 5 minutes. The engine is pure (samples in, transitions out) so
//! windows are tested without waiting; the lab turns transitions into
//! events and, when configured, POSTs them as JSON to a webhook.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// More than `more_than` HTTP 5xx answers in the window.
    ErrorCount { more_than: u64 },
    /// Mean response time above `above_ms` over the window (only when
    /// there were requests).
    AvgLatency { above_ms: f64 },
}

/// One rule of `[[alerts.rules]]` in chaoslab.toml. (Unknown keys cannot be
/// refused here: serde's `flatten` does not support it.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub name: String,
    #[serde(flatten)]
    pub condition: Condition,
    /// Length of the window the condition looks at.
    pub window_seconds: u64,
}

/// The `[alerts]` section of chaoslab.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub enabled: bool,
    /// How often the rules are evaluated.
    pub evaluate_every_seconds: u64,
    /// Where firing/resolved transitions are POSTed as JSON (optional).
    pub webhook_url: Option<String>,
    pub rules: Vec<AlertRule>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            evaluate_every_seconds: 5,
            webhook_url: None,
            rules: default_rules(),
        }
    }
}

/// The seed's two alert rules.
pub fn default_rules() -> Vec<AlertRule> {
    vec![
        AlertRule {
            name: "http-5xx".into(),
            condition: Condition::ErrorCount { more_than: 5 },
            window_seconds: 300,
        },
        AlertRule {
            name: "slow-responses".into(),
            condition: Condition::AvgLatency { above_ms: 5000.0 },
            window_seconds: 300,
        },
    ]
}

/// A bad alert configuration.
#[derive(Debug, thiserror::Error)]
#[error("alerts: {0}")]
pub struct AlertConfigError(String);

impl AlertsConfig {
    /// Checks names, windows and the webhook URL.
    pub fn validate(&self) -> Result<(), AlertConfigError> {
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            if rule.name.trim().is_empty() {
                return Err(AlertConfigError("every rule needs a name".into()));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(AlertConfigError(format!(
                    "two rules are named {:?}",
                    rule.name
                )));
            }
            if rule.window_seconds == 0 {
                return Err(AlertConfigError(format!(
                    "rule {:?}: window_seconds must be at least 1",
                    rule.name
                )));
            }
            if let Condition::AvgLatency { above_ms } = rule.condition
                && !(above_ms.is_finite() && above_ms > 0.0)
            {
                return Err(AlertConfigError(format!(
                    "rule {:?}: above_ms must be a positive number",
                    rule.name
                )));
            }
        }
        if self.evaluate_every_seconds == 0 {
            return Err(AlertConfigError(
                "evaluate_every_seconds must be at least 1".into(),
            ));
        }
        if let Some(url) = &self.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(AlertConfigError(format!(
                "webhook_url {url:?} must be an http:// or https:// URL"
            )));
        }
        Ok(())
    }
}

/// One second of the lab's ingress metrics, as the rules need them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    pub unix_ms: i64,
    pub requests: u64,
    pub errors_5xx: u64,
    /// Sum of the response times of `requests`, in ms.
    pub latency_sum_ms: f64,
}

/// A rule starting or stopping to fire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertTransition {
    pub rule: String,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// The measured value (5xx count or mean ms).
    pub value: f64,
    pub threshold: f64,
    pub window_seconds: u64,
    pub message: String,
}

/// Remembers which rules fire, to report only transitions.
#[derive(Debug, Default)]
pub struct AlertEngine {
    rules: Vec<AlertRule>,
    firing: BTreeSet<String>,
}

impl AlertEngine {
    pub fn new(rules: Vec<AlertRule>) -> Self {
        AlertEngine {
            rules,
            firing: BTreeSet::new(),
        }
    }

    /// Rules firing now.
    pub fn firing(&self) -> impl Iterator<Item = &str> {
        self.firing.iter().map(String::as_str)
    }

    /// Evaluates every rule on the samples up to `now_ms`; returns what
    /// changed since the last call.
    pub fn evaluate(&mut self, now_ms: i64, samples: &[Sample]) -> Vec<AlertTransition> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let from = now_ms - (rule.window_seconds as i64) * 1000;
            let window = samples
                .iter()
                .filter(|s| s.unix_ms > from && s.unix_ms <= now_ms);
            let (value, threshold, fires, what) = match rule.condition {
                Condition::ErrorCount { more_than } => {
                    let errors: u64 = window.map(|s| s.errors_5xx).sum();
                    (
                        errors as f64,
                        more_than as f64,
                        errors > more_than,
                        "HTTP 5xx answers",
                    )
                }
                Condition::AvgLatency { above_ms } => {
                    let (n, sum) = window.fold((0u64, 0.0), |(n, sum), s| {
                        (n + s.requests, sum + s.latency_sum_ms)
                    });
                    let mean = if n > 0 { sum / n as f64 } else { 0.0 };
                    (
                        mean,
                        above_ms,
                        n > 0 && mean > above_ms,
                        "ms mean response time",
                    )
                }
            };
            let was = self.firing.contains(&rule.name);
            if fires != was {
                let state = if fires { "firing" } else { "resolved" };
                if fires {
                    self.firing.insert(rule.name.clone());
                } else {
                    self.firing.remove(&rule.name);
                }
                out.push(AlertTransition {
                    rule: rule.name.clone(),
                    state,
                    value,
                    threshold,
                    window_seconds: rule.window_seconds,
                    message: format!(
                        "alert {} {state}: {value:.0} {what} in the last {} s (threshold {threshold:.0})",
                        rule.name, rule.window_seconds
                    ),
                });
            }
        }
        out
    }
}

/// POSTs a transition as JSON to the webhook; bounded by `timeout`.
pub async fn post_webhook(
    client: &reqwest::Client,
    url: &str,
    transition: &AlertTransition,
    timeout: Duration,
) -> Result<(), String> {
    let response = client
        .post(url)
        .timeout(timeout)
        .json(transition)
        .send()
        .await
        .map_err(|e| format!("webhook {url}: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("webhook {url} answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(sec: i64, requests: u64, errors: u64, mean_ms: f64) -> Sample {
        Sample {
            unix_ms: sec * 1000,
            requests,
            errors_5xx: errors,
            latency_sum_ms: mean_ms * requests as f64,
        }
    }

    #[test]
    fn five_xx_rule_fires_above_five_and_resolves_when_the_window_passes() {
        let mut engine = AlertEngine::new(default_rules());
        let mut samples = vec![s(1, 10, 5, 10.0)];
        assert!(
            engine.evaluate(1000, &samples).is_empty(),
            "5 is not more than 5"
        );
        samples.push(s(2, 10, 1, 10.0));
        let t = engine.evaluate(2000, &samples);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].rule.as_str(), t[0].state), ("http-5xx", "firing"));
        assert!(
            engine.evaluate(3000, &samples).is_empty(),
            "only transitions"
        );
        let t = engine.evaluate(302_000, &samples);
        assert_eq!((t[0].rule.as_str(), t[0].state), ("http-5xx", "resolved"));
    }

    #[test]
    fn latency_rule_uses_the_mean_and_ignores_idle_windows() {
        let mut engine = AlertEngine::new(default_rules());
        let samples = vec![s(1, 1, 0, 9000.0), s(2, 9, 0, 100.0)];
        assert!(engine.evaluate(2000, &samples).is_empty(), "mean 990 ms");
        let samples = vec![s(1, 2, 0, 6000.0)];
        assert_eq!(engine.evaluate(2000, &samples)[0].state, "firing");
        assert_eq!(engine.evaluate(400_000, &[])[0].state, "resolved");
    }

    #[test]
    fn config_parses_from_toml_shaped_json_and_validates() {
        let cfg: AlertsConfig = serde_json::from_value(serde_json::json!({
            "webhook_url": "http://127.0.0.1:9/hook",
            "rules": [{"name": "x", "kind": "error_count", "more_than": 1, "window_seconds": 10}]
        }))
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(
            cfg.rules[0].condition,
            Condition::ErrorCount { more_than: 1 }
        );
        let bad = AlertsConfig {
            webhook_url: Some("ftp://x".into()),
            ..AlertsConfig::default()
        };
        assert!(bad.validate().is_err());
        AlertsConfig::default().validate().unwrap();
    }
}

/// Runs the rules every `evaluate_every_seconds` until `shutdown` resolves:
/// `samples()` gives the recent per-second samples, `emit` is called with
/// every transition (the lab turns it into an event), and when a webhook is
/// configured each transition is also POSTed to it in the background (at
/// most 8 deliveries in flight, 5 s each; more are dropped and logged).
pub async fn run<S, E>(
    config: AlertsConfig,
    samples: S,
    emit: E,
    shutdown: impl std::future::Future<Output = ()>,
) where
    S: Fn() -> Vec<Sample>,
    E: Fn(&AlertTransition),
{
    if !config.enabled || config.rules.is_empty() {
        return shutdown.await;
    }
    let mut engine = AlertEngine::new(config.rules.clone());
    let client = reqwest::Client::new();
    let deliveries = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let mut tick = tokio::time::interval(Duration::from_secs(config.evaluate_every_seconds));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let now_ms = unix_ms();
        for transition in engine.evaluate(now_ms, &samples()) {
            emit(&transition);
            let Some(url) = config.webhook_url.clone() else {
                continue;
            };
            let Ok(permit) = deliveries.clone().try_acquire_owned() else {
                tracing::warn!(rule = %transition.rule, "alert webhook busy; dropping this notification");
                continue;
            };
            let client = client.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    post_webhook(&client, &url, &transition, Duration::from_secs(5)).await
                {
                    tracing::warn!(error = %e, "alert webhook delivery failed");
                }
                drop(permit);
            });
        }
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod run_tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn fires_and_posts_to_the_webhook() {
        // A real webhook receiver on loopback.
        let received = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
        let app = {
            let received = received.clone();
            axum::Router::new().route(
                "/hook",
                axum::routing::post(move |axum::Json(v): axum::Json<serde_json::Value>| {
                    let received = received.clone();
                    async move {
                        received.lock().unwrap().push(v);
                        "ok"
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = AlertsConfig {
            evaluate_every_seconds: 1,
            webhook_url: Some(format!("http://{addr}/hook")),
            rules: vec![AlertRule {
                name: "burst".into(),
                condition: Condition::ErrorCount { more_than: 1 },
                window_seconds: 60,
            }],
            ..AlertsConfig::default()
        };
        let emitted = Arc::new(Mutex::new(Vec::new()));
        let sink = emitted.clone();
        let stop = tokio::sync::Notify::new();
        let run = run(
            config,
            || {
                vec![Sample {
                    unix_ms: unix_ms() - 500,
                    requests: 5,
                    errors_5xx: 3,
                    latency_sum_ms: 5.0,
                }]
            },
            move |t| sink.lock().unwrap().push(t.state),
            stop.notified(),
        );
        let wait = async {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while received.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stop.notify_one();
        };
        tokio::join!(run, wait);
        assert_eq!(*emitted.lock().unwrap(), vec!["firing"]);
        let got = received.lock().unwrap();
        assert_eq!(got[0]["rule"], "burst");
        assert_eq!(got[0]["state"], "firing");
    }
}
