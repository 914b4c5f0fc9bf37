//! The seed's alert rules, test-sized: a burst of HTTP 5xx through the
//! ingress makes the 5xx rule fire, and it resolves once the window has
//! passed without errors; both transitions are lab events (printed by
//! `chaoslab events`) and both are POSTed to the configured webhook, whose
//! URL (it holds a secret) shows in no output of the lab. Out-of-range
//! alert settings stop `chaoslab up` before anything starts.

mod fault_support;
mod lab_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use lab_support::{Lab, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_burst_fires_the_alert_and_it_resolves_with_webhook_calls() {
    // A webhook receiver on loopback, at a URL holding a secret.
    const SECRET: &str = "hookS3cretT0ken";
    let (hook, received) = webhook_receiver(SECRET).await;

    let lab = fault_support::fault_lab()
        .set("alerts", "evaluate_every_seconds", 1)
        .set("alerts", "webhook_url", format!("\"{hook}\""))
        .set(
            "alerts",
            "rules",
            r#"[{ name = "http-5xx", kind = "error_count", more_than = 5, window_seconds = 4 }]"#,
        )
        .start()
        .await;

    // Cut Redis off with immediate errors: `/` answers 5xx.
    five_xx_burst(&lab).await;
    let out = lab.cli(&["fault", "clear", "--all"]).await;
    assert!(out.status.success());

    eventually(
        chaoslab_test_support::GENEROUS,
        "the webhook gets firing then resolved",
        || async {
            let got = received.lock().unwrap().clone();
            let states: Vec<&str> = got.iter().filter_map(|v| v["state"].as_str()).collect();
            (states == ["firing", "resolved"]).then_some(())
        },
    )
    .await;
    let first = received.lock().unwrap()[0].clone();
    assert_eq!(first["rule"], "http-5xx");
    assert!(first["value"].as_f64().unwrap() > 5.0, "{first}");

    let events = lab.cli(&["events", "--tail", "500"]).await;
    let text = String::from_utf8_lossy(&events.stdout);
    assert!(
        text.contains("AlertFiring") && text.contains("AlertResolved"),
        "{text}"
    );

    // The secret is in no event, status or output of the lab.
    assert_secret_shown_nowhere(&lab, SECRET, events).await;
}

/// A webhook receiver on loopback at a URL holding `secret` (in its path
/// and query); its URL and what it received.
async fn webhook_receiver(secret: &str) -> (String, Arc<Mutex<Vec<Value>>>) {
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            &format!("/hook/{secret}"),
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push(v);
                    "ok"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!(
        "http://{}/hook/{secret}?token={secret}",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (hook, received)
}

/// Blocks Redis with immediate resets, then sends `/` through the ingress
/// until more than 10 answers were 5xx (at most 200 requests).
async fn five_xx_burst(lab: &Lab) {
    let out = lab
        .cli(&[
            "fault",
            "network",
            "block",
            "--mode",
            "reset",
            "--duration",
            "0",
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut errors = 0;
    for _ in 0..200 {
        if let Ok(r) = lab
            .http
            .get(lab.ingress("/"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            && r.status().is_server_error()
        {
            errors += 1;
        }
        if errors > 10 {
            break;
        }
    }
    assert!(errors > 10, "no 5xx burst ({errors})");
}

/// `secret` shows in neither `events` (already run), `status`, `status
/// --json`, `/api/status` nor `up`'s output.
async fn assert_secret_shown_nowhere(lab: &Lab, secret: &str, events: std::process::Output) {
    let status = lab.cli(&["status"]).await;
    let status_json = lab.cli(&["status", "--json"]).await;
    for (what, out) in [
        ("events", events),
        ("status", status),
        ("status --json", status_json),
    ] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(secret), "{what} shows the webhook URL: {all}");
    }
    let api_status = lab.api("/api/status").await.to_string();
    assert!(
        !api_status.contains(secret),
        "/api/status shows the webhook URL"
    );
    let output = lab.output();
    assert!(!output.contains(secret), "chaoslab up printed it: {output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_alert_settings_stop_the_lab_before_it_starts() {
    for (key, value, message) in [
        (
            "rules",
            r#"[{ name = "wide", kind = "error_count", more_than = 5, window_seconds = 9223372036854775 }]"#,
            "window_seconds (9223372036854775) must be 1..=900",
        ),
        (
            "evaluate_every_seconds",
            "0",
            "evaluate_every_seconds (0) must be 1..=900",
        ),
        (
            "webhook_url",
            r#""ftp://user:hookS3cretT0ken@127.0.0.1/hookS3cretT0ken""#,
            "webhook_url ftp://127.0.0.1:",
        ),
    ] {
        let mut lab = lab_support::builder()
            .set("alerts", key, value)
            .no_wait()
            .start()
            .await;
        let code = lab.wait_exit(chaoslab_test_support::GENEROUS).await;
        let output = lab.output();
        assert_ne!(code, Some(0), "{key} = {value} was accepted: {output}");
        assert!(output.contains(message), "{key} = {value}: {output}");
        assert!(!output.contains("hookS3cretT0ken"), "{output}");
        assert!(
            !lab.state_dir().join("lab.json").exists(),
            "the lab started anyway"
        );
    }
}
