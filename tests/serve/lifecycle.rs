//! Start-up and shutdown as a container platform sees them: bad
//! configuration exits 2 with one line naming the variable; SIGTERM lets
//! in-flight requests finish and exits 0; Redis down at start is not fatal.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{GENEROUS, RedisServer, Service, eventually_async, free_port, http};

#[test]
fn bad_configuration_exits_2_naming_the_variable() {
    for (var, value) in [
        ("REDIS_PORT", "invalid"),
        ("APP_PORT", "99999"),
        ("REDIS_ENABLED", "maybe"),
        ("REDIS_SOCKET_TIMEOUT", "soon"),
        ("TELEMETRY_SAMPLING_RATE", "2"),
        ("APP_HOST", "not-an-ip"),
        ("LOAD_MAX_MEMORY_MB", "99999999999"),
        // Chaos open to the network without a token.
        ("APP_HOST", "0.0.0.0"),
    ] {
        let mut svc = Service::builder().env(var, value).spawn();
        let exit = svc.wait_exit(GENEROUS);
        assert_eq!(
            exit.and_then(|s| s.code()),
            Some(2),
            "{var}={value}: exit status"
        );
        let logs = svc.logs();
        let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{var}={value}: expected one line, got:\n{logs}"
        );
        let flag = var.to_ascii_lowercase().replace('_', "-");
        assert!(
            lines[0].contains(var) || lines[0].contains(&flag),
            "{var}: {}",
            lines[0]
        );
    }
}

#[test]
fn exit_status_of_bad_configuration_is_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chaoslab"))
        .arg("serve")
        .env("REDIS_PORT", "invalid")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("REDIS_PORT"), "{stderr}");
}

#[test]
fn help_lists_every_setting_with_its_default() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chaoslab"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "APP_HOST",
        "APP_PORT",
        "REDIS_ENABLED",
        "REDIS_URL",
        "REDIS_HOST",
        "REDIS_PORT",
        "REDIS_SSL",
        "REDIS_USERNAME",
        "REDIS_PASSWORD",
        "REDIS_PASSWORD_FILE",
        "REDIS_MAX_CONNECTIONS",
        "REDIS_SOCKET_TIMEOUT",
        "REDIS_SOCKET_CONNECT_TIMEOUT",
        "REDIS_MAX_RETRIES",
        "REDIS_BACKOFF_BASE",
        "REDIS_BACKOFF_CAP",
        "HEALTH_CACHE_TTL_SECONDS",
        "CHAOS_ENABLED",
        "CHAOS_API_TOKEN",
        "TELEMETRY_ENABLED",
        "TELEMETRY_SAMPLING_RATE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "LOG_LEVEL",
        "LOG_FORMAT",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
    assert!(
        help.contains("[default: 50]") && help.contains("[default: 6379]"),
        "{help}"
    );
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let redis = RedisServer::start();
    // A grace far longer than the hang: a slow machine must not cut the
    // in-flight request short.
    let mut svc = Service::builder()
        .redis(&redis)
        .env("SHUTDOWN_GRACE_SECONDS", 30)
        .start();
    let client = http(GENEROUS);
    let url = svc.url("/chaos/hang");
    let in_flight = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"duration_seconds": 3}))
                .send()
                .await
        })
    };
    // Wait until the request is being served, then ask the service to stop.
    let status_url = svc.url("/chaos/status");
    eventually_async(GENEROUS, "hang in flight", || async {
        let s: serde_json::Value = client
            .get(&status_url)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (s["hang"]["active"] == true).then_some(())
    })
    .await;
    let status = tokio::task::spawn_blocking(move || {
        let status = svc.terminate();
        (status, svc.logs())
    })
    .await
    .unwrap();
    let resp = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(resp.status(), StatusCode::OK);
    let (exit, logs) = status;
    assert_eq!(exit.and_then(|s| s.code()), Some(0), "logs:\n{logs}");
    assert!(logs.contains("shutting down"), "{logs}");
}

#[tokio::test]
async fn starts_with_redis_down_and_connects_when_it_comes_back() {
    let port = free_port();
    let svc = Service::builder()
        .env("REDIS_HOST", "127.0.0.1")
        .env("REDIS_PORT", port)
        .env("REDIS_BACKOFF_BASE", "0.1")
        .env("REDIS_BACKOFF_CAP", "0.2")
        .start();
    let client = http(Duration::from_secs(15));
    let health = client.get(svc.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "unhealthy"
    );
    let resp = client.get(svc.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["detail"],
        "Redis connection failed"
    );
    // Redis appears on that port: the service recovers without a restart.
    let _redis = RedisServer::start_on(port);
    eventually_async(GENEROUS, "GET / is 200 again", || async {
        (client.get(svc.url("/")).send().await.ok()?.status() == StatusCode::OK).then_some(())
    })
    .await;
}
