//! Alert rules evaluated on the lab's metrics, with the seed's defaults:
//! more than 5 HTTP 5xx in 5 minutes, and an average response time above
//! 5 s over 5 minutes. The engine is pure (samples in, transitions out) so
//! windows are tested without waiting; the lab turns transitions into
//! events and, when configured, POSTs them as JSON to a webhook.
//!
//! Webhook deliveries go through a bounded outbox ([`Outbox`]): at most
//! [`MAX_IN_FLIGHT`] at once, one at a time per rule (a rule's "firing"
//! always reaches the receiver before its "resolved"), at most
//! [`MAX_QUEUED`] waiting. When the outbox is full the oldest waiting
//! "firing" is dropped together with its "resolved"; a "resolved" whose
//! "firing" was sent (delivered or attempted) is never dropped. The client
//! speaks HTTPS (rustls, the system's certificate store plus an optional
//! `webhook_ca_file`), and the webhook URL, which may hold a secret, is
//! only ever shown as [`redact_url`] makes it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest rule window: the lab keeps 15 minutes of per-second metrics.
pub const MAX_WINDOW_SECONDS: u64 = 900;
/// Longest pause between two evaluations.
pub const MAX_EVALUATE_EVERY_SECONDS: u64 = 900;
/// Most rules in `[alerts] rules`.
pub const MAX_RULES: usize = 100;
/// Longest rule name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Webhook deliveries in flight at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// Notifications waiting for a delivery slot before the oldest waiting
/// "firing" ones are dropped.
pub const MAX_QUEUED: usize = 64;
/// How long one webhook delivery may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// Length of the window the condition looks at (1..=900).
    pub window_seconds: u64,
}

/// The `[alerts]` section of chaoslab.toml.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub enabled: bool,
    /// How often the rules are evaluated (1..=900).
    pub evaluate_every_seconds: u64,
    /// Where firing/resolved transitions are POSTed as JSON (optional).
    /// Never shown in full: see [`redact_url`].
    pub webhook_url: Option<String>,
    /// A PEM file of CA certificates trusted for an `https://` webhook in
    /// addition to the system's certificate store: for a receiver with a
    /// private or self-signed certificate. Verification is never off.
    pub webhook_ca_file: Option<PathBuf>,
    pub rules: Vec<AlertRule>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            evaluate_every_seconds: 5,
            webhook_url: None,
            webhook_ca_file: None,
            rules: default_rules(),
        }
    }
}

/// Shows the webhook URL redacted, so logging a configuration leaks no
/// secret.
impl fmt::Debug for AlertsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertsConfig")
            .field("enabled", &self.enabled)
            .field("evaluate_every_seconds", &self.evaluate_every_seconds)
            .field("webhook_url", &self.webhook_url.as_deref().map(redact_url))
            .field("webhook_ca_file", &self.webhook_ca_file)
            .field("rules", &self.rules)
            .finish()
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

/// A bad alert configuration (the message never holds the webhook URL in
/// full).
#[derive(Debug, thiserror::Error)]
#[error("alerts: {0}")]
pub struct AlertConfigError(String);

/// `scheme://host:port/…`: what may be shown of a webhook URL. Userinfo,
/// path, query and fragment (where tokens live, as in Slack's or Teams'
/// hook URLs) become `…`; the port is always written. Something that does
/// not parse as a URL shows as `(invalid URL)`.
pub fn redact_url(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else {
        return "(invalid URL)".into();
    };
    let Some(host) = parsed.host_str() else {
        return format!("{}://…", parsed.scheme());
    };
    let port = parsed
        .port_or_known_default()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let hidden = !parsed.username().is_empty()
        || parsed.password().is_some()
        || !matches!(parsed.path(), "" | "/")
        || parsed.query().is_some()
        || parsed.fragment().is_some();
    format!(
        "{}://{host}{port}{}",
        parsed.scheme(),
        if hidden { "/…" } else { "" }
    )
}

impl AlertsConfig {
    /// Checks names, ranges (windows 1..=900 s, evaluation every 1..=900 s,
    /// at most 100 rules), the webhook URL and the CA file, each with one
    /// clear line.
    pub fn validate(&self) -> Result<(), AlertConfigError> {
        if self.rules.len() > MAX_RULES {
            return Err(AlertConfigError(format!(
                "{} rules: at most {MAX_RULES}",
                self.rules.len()
            )));
        }
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            if rule.name.trim().is_empty() {
                return Err(AlertConfigError("every rule needs a name".into()));
            }
            if rule.name.chars().count() > MAX_NAME_CHARS || rule.name.chars().any(char::is_control)
            {
                return Err(AlertConfigError(format!(
                    "rule {:?}: a name is at most {MAX_NAME_CHARS} characters, none of them control characters",
                    rule.name.chars().take(MAX_NAME_CHARS).collect::<String>()
                )));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(AlertConfigError(format!(
                    "two rules are named {:?}",
                    rule.name
                )));
            }
            if !(1..=MAX_WINDOW_SECONDS).contains(&rule.window_seconds) {
                return Err(AlertConfigError(format!(
                    "rule {:?}: window_seconds ({}) must be 1..={MAX_WINDOW_SECONDS} (the lab keeps 15 minutes of metrics)",
                    rule.name, rule.window_seconds
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
        if !(1..=MAX_EVALUATE_EVERY_SECONDS).contains(&self.evaluate_every_seconds) {
            return Err(AlertConfigError(format!(
                "evaluate_every_seconds ({}) must be 1..={MAX_EVALUATE_EVERY_SECONDS}",
                self.evaluate_every_seconds
            )));
        }
        let https = match &self.webhook_url {
            None => false,
            Some(url) => {
                let shown = redact_url(url);
                let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
                    AlertConfigError(format!("webhook_url {shown} is not a URL: {e}"))
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    return Err(AlertConfigError(format!(
                        "webhook_url {shown} must be an http:// or https:// URL with a host"
                    )));
                }
                parsed.scheme() == "https"
            }
        };
        if let Some(path) = &self.webhook_ca_file {
            if !https {
                return Err(AlertConfigError(
                    "webhook_ca_file needs an https:// webhook_url".into(),
                ));
            }
            read_ca_file(path)?;
        }
        Ok(())
    }

    /// The HTTP client for the webhook: HTTPS through rustls with the
    /// system's certificate store plus `webhook_ca_file`'s certificates,
    /// certificates always verified, no redirects followed (a 3xx is a
    /// failed delivery), [`DELIVERY_TIMEOUT`] per delivery.
    pub fn webhook_client(&self) -> Result<reqwest::Client, AlertConfigError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(DELIVERY_TIMEOUT)
            .timeout(DELIVERY_TIMEOUT);
        if let Some(path) = &self.webhook_ca_file {
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| AlertConfigError(format!("webhook client: {}", e.without_url())))
    }
}

/// The certificates of a PEM file (at least one).
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, AlertConfigError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| AlertConfigError(format!("webhook_ca_file {shown}: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        AlertConfigError(format!(
            "webhook_ca_file {shown}: not PEM certificates ({})",
            e.without_url()
        ))
    })?;
    if certs.is_empty() {
        return Err(AlertConfigError(format!(
            "webhook_ca_file {shown}: no PEM certificate in it"
        )));
    }
    Ok(certs)
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
    /// changed since the last call. Saturating arithmetic throughout: no
    /// window, clock or sample overflows.
    pub fn evaluate(&mut self, now_ms: i64, samples: &[Sample]) -> Vec<AlertTransition> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let window_ms = i64::try_from(rule.window_seconds)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000);
            let from = now_ms.saturating_sub(window_ms);
            let window = samples
                .iter()
                .filter(|s| s.unix_ms > from && s.unix_ms <= now_ms);
            let (value, threshold, fires, what) = match rule.condition {
                Condition::ErrorCount { more_than } => {
                    let errors = window.fold(0u64, |n, s| n.saturating_add(s.errors_5xx));
                    (
                        errors as f64,
                        more_than as f64,
                        errors > more_than,
                        "HTTP 5xx answers",
                    )
                }
                Condition::AvgLatency { above_ms } => {
                    let (n, sum) = window.fold((0u64, 0.0), |(n, sum), s| {
                        (n.saturating_add(s.requests), sum + s.latency_sum_ms)
                    });
                    let mean = if n > 0 && sum.is_finite() {
                        sum / n as f64
                    } else {
                        0.0
                    };
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

/// POSTs a transition as JSON to the webhook; bounded by `timeout`. The
/// error names the webhook redacted ([`redact_url`]), never in full.
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
        .map_err(|e| format!("webhook {}: {}", redact_url(url), describe(e)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "webhook {} answered {}",
            redact_url(url),
            response.status()
        ))
    }
}

/// A reqwest error and its causes, without the URL.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The webhook deliveries waiting and in flight: a bounded queue that
/// keeps each rule's notifications in order and never drops a "resolved"
/// whose "firing" was sent. See the module doc for the policy.
#[derive(Debug)]
pub struct Outbox {
    capacity: usize,
    waiting: VecDeque<AlertTransition>,
    in_flight: BTreeSet<String>,
    /// Rules whose last "firing" was dropped unsent: their next "resolved"
    /// is dropped too (the receiver never heard them fire).
    unsent_firing: BTreeSet<String>,
}

impl Outbox {
    /// An outbox holding at most `capacity` waiting notifications (beyond
    /// that only "resolved" ones whose "firing" was sent are kept: at most
    /// one per rule).
    pub fn new(capacity: usize) -> Self {
        Outbox {
            capacity,
            waiting: VecDeque::new(),
            in_flight: BTreeSet::new(),
            unsent_firing: BTreeSet::new(),
        }
    }

    /// Notifications waiting for a delivery slot.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Deliveries started and not yet [`done`](Self::done).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Queues a transition; returns what was dropped to keep the bound
    /// (possibly `t` itself), oldest first.
    pub fn push(&mut self, t: AlertTransition) -> Vec<AlertTransition> {
        if t.state != "firing" && self.unsent_firing.remove(&t.rule) {
            return vec![t];
        }
        if t.state == "firing" {
            self.unsent_firing.remove(&t.rule);
        }
        self.waiting.push_back(t);
        let mut dropped = Vec::new();
        while self.waiting.len() > self.capacity {
            let Some(i) = self.waiting.iter().position(|w| w.state == "firing") else {
                break;
            };
            let Some(firing) = self.waiting.remove(i) else {
                break;
            };
            let pair = self
                .waiting
                .iter()
                .skip(i)
                .position(|w| w.rule == firing.rule)
                .map(|j| i + j);
            match pair.and_then(|j| self.waiting.remove(j)) {
                Some(resolved) => {
                    dropped.push(firing);
                    dropped.push(resolved);
                }
                None => {
                    self.unsent_firing.insert(firing.rule.clone());
                    dropped.push(firing);
                }
            }
        }
        dropped
    }

    /// The next notification to deliver, if a slot is free (fewer than
    /// `max_in_flight`) and a waiting one's rule has nothing in flight.
    pub fn start(&mut self, max_in_flight: usize) -> Option<AlertTransition> {
        if self.in_flight.len() >= max_in_flight {
            return None;
        }
        let i = self
            .waiting
            .iter()
            .position(|w| !self.in_flight.contains(&w.rule))?;
        let t = self.waiting.remove(i)?;
        self.in_flight.insert(t.rule.clone());
        Some(t)
    }

    /// A delivery for `rule` ended (delivered or failed).
    pub fn done(&mut self, rule: &str) {
        self.in_flight.remove(rule);
    }
}

/// Runs the rules every `evaluate_every_seconds` until `shutdown` resolves:
/// `samples()` gives the recent per-second samples, `emit` is called with
/// every transition (the lab turns it into an event), and when a webhook is
/// configured each transition is also POSTed to it through an [`Outbox`]
/// (at most [`MAX_IN_FLIGHT`] deliveries at once, one per rule,
/// [`DELIVERY_TIMEOUT`] each, [`MAX_QUEUED`] waiting; what is dropped is
/// logged). Deliveries still waiting or in flight at shutdown are abandoned
/// (and logged).
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
    let webhook = webhook_target(&config);
    let mut deliveries = Deliveries::new();
    let every = config
        .evaluate_every_seconds
        .clamp(1, MAX_EVALUATE_EVERY_SECONDS);
    let mut tick = tokio::time::interval(Duration::from_secs(every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => {
                let abandoned = deliveries.outbox.waiting() + deliveries.outbox.in_flight();
                if abandoned > 0 {
                    tracing::warn!(abandoned, "the lab stops: alert webhook deliveries abandoned");
                }
                return;
            }
            Some(ended) = deliveries.tasks.join_next_with_id(), if !deliveries.tasks.is_empty() => {
                let id = match ended {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                deliveries.ended(id);
            }
            _ = tick.tick() => {
                for transition in engine.evaluate(unix_ms(), &samples()) {
                    emit(&transition);
                    if webhook.is_some() {
                        deliveries.queue(transition);
                    }
                }
            }
        }
        if let Some((client, url)) = &webhook {
            deliveries.start_waiting(client, url);
        }
    }
}

/// The webhook's client and URL, if one is configured and its client can
/// be built (if not, alerts still become events and the reason is logged).
fn webhook_target(config: &AlertsConfig) -> Option<(reqwest::Client, String)> {
    let url = config.webhook_url.as_ref()?;
    match config.webhook_client() {
        Ok(client) => {
            tracing::info!(webhook = %redact_url(url), "alerts are POSTed to the webhook");
            Some((client, url.clone()))
        }
        Err(e) => {
            tracing::warn!(error = %e, "alert webhook disabled");
            None
        }
    }
}

/// The webhook deliveries of [`run`]: the outbox, and one task per
/// delivery in flight with the rule it delivers for.
struct Deliveries {
    outbox: Outbox,
    tasks: tokio::task::JoinSet<()>,
    rules_by_task: HashMap<tokio::task::Id, String>,
}

impl Deliveries {
    fn new() -> Self {
        Self {
            outbox: Outbox::new(MAX_QUEUED),
            tasks: tokio::task::JoinSet::new(),
            rules_by_task: HashMap::new(),
        }
    }

    /// Queues a transition, logging what the full outbox drops.
    fn queue(&mut self, transition: AlertTransition) {
        for lost in self.outbox.push(transition) {
            tracing::warn!(
                rule = %lost.rule,
                state = lost.state,
                "alert webhook busy: dropping this notification (its pair is dropped too)"
            );
        }
    }

    /// The delivery task `id` ended: its rule's slot is free again.
    fn ended(&mut self, id: tokio::task::Id) {
        if let Some(rule) = self.rules_by_task.remove(&id) {
            self.outbox.done(&rule);
        }
    }

    /// Starts every waiting delivery a free slot allows.
    fn start_waiting(&mut self, client: &reqwest::Client, url: &str) {
        while let Some(transition) = self.outbox.start(MAX_IN_FLIGHT) {
            let client = client.clone();
            let url = url.to_string();
            let rule = transition.rule.clone();
            let handle = self.tasks.spawn(async move {
                if let Err(error) = post_webhook(&client, &url, &transition, DELIVERY_TIMEOUT).await
                {
                    tracing::warn!(
                        rule = %transition.rule,
                        state = transition.state,
                        %error,
                        "alert webhook delivery failed"
                    );
                }
            });
            self.rules_by_task.insert(handle.id(), rule);
        }
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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

#[cfg(test)]
mod outbox_tests {
    use super::*;

    fn t(rule: &str, state: &'static str) -> AlertTransition {
        AlertTransition {
            rule: rule.into(),
            state,
            value: 1.0,
            threshold: 0.0,
            window_seconds: 60,
            message: String::new(),
        }
    }

    fn names(v: &[AlertTransition]) -> Vec<String> {
        v.iter()
            .map(|t| format!("{}:{}", t.rule, t.state))
            .collect()
    }

    #[test]
    fn one_delivery_per_rule_in_order_and_at_most_max_in_flight() {
        let mut outbox = Outbox::new(MAX_QUEUED);
        assert!(outbox.push(t("a", "firing")).is_empty());
        assert!(outbox.push(t("a", "resolved")).is_empty());
        assert!(outbox.push(t("b", "firing")).is_empty());
        let first = outbox.start(2).expect("a's firing");
        assert_eq!((first.rule.as_str(), first.state), ("a", "firing"));
        let second = outbox.start(2).expect("b's firing, a is busy");
        assert_eq!(second.rule, "b");
        assert!(outbox.start(2).is_none(), "a is in flight");
        outbox.done("a");
        let third = outbox.start(2).expect("a's resolved");
        assert_eq!((third.rule.as_str(), third.state), ("a", "resolved"));
        assert!(outbox.start(1).is_none(), "two in flight, max 1");
    }

    #[test]
    fn a_full_outbox_drops_the_oldest_unsent_firing_with_its_resolved() {
        let mut outbox = Outbox::new(3);
        // a's firing is sent: its resolved may never be dropped.
        outbox.push(t("a", "firing"));
        assert_eq!(outbox.start(8).expect("a").rule, "a");
        outbox.push(t("b", "firing"));
        outbox.push(t("a", "resolved"));
        outbox.push(t("b", "resolved"));
        // Full (3 waiting). A fourth drops b's pair, the oldest unsent firing.
        let dropped = outbox.push(t("c", "firing"));
        assert_eq!(names(&dropped), ["b:firing", "b:resolved"]);
        assert_eq!(outbox.waiting(), 2);
        // d fires (3 waiting), c resolves: over the bound, c's pair goes.
        assert!(outbox.push(t("d", "firing")).is_empty());
        let dropped = outbox.push(t("c", "resolved"));
        assert_eq!(names(&dropped), ["c:firing", "c:resolved"]);
        assert!(outbox.push(t("e", "firing")).is_empty());
        // What is left: a's resolved, d and e firing.
        outbox.done("a");
        let mut sent = Vec::new();
        while let Some(next) = outbox.start(8) {
            sent.push(next);
        }
        assert_eq!(names(&sent), ["a:resolved", "d:firing", "e:firing"]);
    }

    #[test]
    fn a_resolved_whose_firing_was_dropped_is_dropped_and_the_next_firing_is_kept() {
        let mut outbox = Outbox::new(1);
        outbox.push(t("a", "firing"));
        let dropped = outbox.push(t("b", "firing"));
        assert_eq!(names(&dropped), ["a:firing"]);
        let dropped = outbox.push(t("a", "resolved"));
        assert_eq!(
            names(&dropped),
            ["a:resolved"],
            "the receiver never heard a fire"
        );
        assert_eq!(outbox.waiting(), 1);
        // Resolved ones whose firing was sent stay, even past the bound.
        let mut outbox = Outbox::new(1);
        for rule in ["x", "y", "z"] {
            outbox.push(t(rule, "firing"));
            assert!(outbox.start(8).is_some());
        }
        for rule in ["x", "y", "z"] {
            assert!(outbox.push(t(rule, "resolved")).is_empty());
        }
        assert_eq!(outbox.waiting(), 3);
        // A new firing then is the one dropped: it is the only unsent one.
        let dropped = outbox.push(t("w", "firing"));
        assert_eq!(names(&dropped), ["w:firing"]);
    }

    #[test]
    fn redacted_urls_keep_scheme_host_and_port_only() {
        let cases = [
            (
                "https://hooks.example.com/services/T0/B0/SECRET",
                "https://hooks.example.com:443/…",
            ),
            (
                "http://user:SECRET@127.0.0.1:9000/hook?token=SECRET#SECRET",
                "http://127.0.0.1:9000/…",
            ),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
            ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
            ("http://[::1]:8080/SECRET", "http://[::1]:8080/…"),
            ("https://x.test/?SECRET", "https://x.test:443/…"),
            ("not a url SECRET", "(invalid URL)"),
            ("", "(invalid URL)"),
            ("mailto:SECRET@example.com", "mailto://…"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
        let shown = format!(
            "{:?}",
            AlertsConfig {
                webhook_url: Some("https://u:SECRET@h.test/SECRET".into()),
                ..AlertsConfig::default()
            }
        );
        assert!(shown.contains("https://h.test:443/…") && !shown.contains("SECRET"));
    }

    #[test]
    fn out_of_range_values_are_refused_with_one_clear_line() {
        let with_window = |window_seconds| AlertsConfig {
            rules: vec![AlertRule {
                name: "r".into(),
                condition: Condition::ErrorCount { more_than: 1 },
                window_seconds,
            }],
            ..AlertsConfig::default()
        };
        for bad in [0, 901, u64::MAX] {
            let e = with_window(bad).validate().expect_err("out of range");
            assert_eq!(
                e.to_string(),
                format!(
                    "alerts: rule \"r\": window_seconds ({bad}) must be 1..=900 (the lab keeps 15 minutes of metrics)"
                )
            );
        }
        with_window(900)
            .validate()
            .expect("900 s is the lab's history");
        for bad in [0, 901, u64::MAX] {
            let e = AlertsConfig {
                evaluate_every_seconds: bad,
                ..AlertsConfig::default()
            }
            .validate()
            .expect_err("out of range");
            assert_eq!(
                e.to_string(),
                format!("alerts: evaluate_every_seconds ({bad}) must be 1..=900")
            );
        }
        let many = AlertsConfig {
            rules: (0..=MAX_RULES)
                .map(|i| AlertRule {
                    name: format!("r{i}"),
                    condition: Condition::ErrorCount { more_than: 1 },
                    window_seconds: 1,
                })
                .collect(),
            ..AlertsConfig::default()
        };
        assert!(many.validate().is_err());
        let odd_name = AlertsConfig {
            rules: vec![AlertRule {
                name: "a\nb".into(),
                ..default_rules()[0].clone()
            }],
            ..AlertsConfig::default()
        };
        assert!(odd_name.validate().is_err());
    }
}
