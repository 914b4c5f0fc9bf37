//! Fixtures for the faults' end-to-end tests, on top of the lab's
//! (`tests/lab_support`): a lab with test-sized Redis timeouts in the
//! replicas (so a cut-off Redis fails in about a second, not three), the
//! Toxiproxy-compatible API on a free port, helpers to run `chaoslab fault …`
//! and to time requests through the ingress.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::lab_support::{Lab, LabBuilder, builder};

/// A lab for fault tests: small Redis timeouts and back-off in the replicas.
pub fn fault_lab() -> LabBuilder {
    builder()
        .set("faults", "toxiproxy_port", 0)
        .set("app.env", "REDIS_SOCKET_TIMEOUT", "\"1\"")
        .set("app.env", "REDIS_SOCKET_CONNECT_TIMEOUT", "\"1\"")
        .set("app.env", "REDIS_BACKOFF_BASE", "\"0.1\"")
        .set("app.env", "REDIS_BACKOFF_CAP", "\"0.2\"")
        .set("probes.readiness", "timeout_seconds", 2.5)
        .set("probes.liveness", "timeout_seconds", 2)
        .set("probes.liveness", "initial_delay_seconds", 30)
}

/// One HTTP answer, timed.
#[derive(Debug, Clone)]
pub struct Answer {
    /// 0 = no answer (connection error or client timeout).
    pub status: u16,
    pub body: Value,
    pub elapsed: Duration,
    /// `x-chaoslab-error` when the ingress made the answer itself.
    pub proxy_error: Option<String>,
}

impl Answer {
    pub fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or("")
    }
}

/// GET `url` with a 10 s client timeout.
pub async fn get(lab: &Lab, url: &str) -> Answer {
    let start = Instant::now();
    match lab
        .http
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            let proxy_error = r
                .headers()
                .get("x-chaoslab-error")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let body = r.json().await.unwrap_or(Value::Null);
            Answer {
                status,
                body,
                elapsed: start.elapsed(),
                proxy_error,
            }
        }
        Err(_) => Answer {
            status: 0,
            body: Value::Null,
            elapsed: start.elapsed(),
            proxy_error: None,
        },
    }
}

/// Runs `chaoslab <args>`; panics unless it exits 0; returns stdout.
pub async fn ok(lab: &Lab, args: &[&str]) -> String {
    let out = lab.cli(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "chaoslab {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The fault id in `fault … ` output ("fault f-3 injected: …").
pub fn fault_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// `/api/faults`.
pub async fn faults(lab: &Lab) -> Vec<Value> {
    lab.api("/api/faults")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Replica port (APP_PORT) of the first active replica.
pub async fn replica_url(lab: &Lab, path: &str) -> String {
    let replicas = lab.active_replicas().await;
    let port = replicas[0]["port"].as_u64().expect("replica port");
    format!("http://127.0.0.1:{port}{path}")
}

/// Sum of restarts of the active replicas.
pub async fn restarts(lab: &Lab) -> u64 {
    lab.active_replicas()
        .await
        .iter()
        .map(|r| r["restarts"].as_u64().unwrap_or(0))
        .sum()
}

/// Median of `n` sequential GET `/` through the ingress (all must be 200).
pub async fn median_ms(lab: &Lab, n: usize) -> f64 {
    let url = lab.ingress("/");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let a = get(lab, &url).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        times.push(a.elapsed.as_secs_f64() * 1000.0);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[n / 2]
}

/// Lab events with a reason starting with `Fault`: (reason, id).
pub async fn fault_events(lab: &Lab) -> Vec<(String, String)> {
    let url = format!(
        "{}/api/events?limit=2000",
        lab.state["control_url"].as_str().unwrap_or_default()
    );
    let text = lab
        .http
        .get(url)
        .bearer_auth(lab.state["token"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("events")
        .text()
        .await
        .expect("events text");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["reason"].as_str().is_some_and(|r| r.starts_with("Fault")))
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["data"]["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}
