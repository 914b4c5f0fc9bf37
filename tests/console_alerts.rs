//! The seed's alert rules, test-sized: a burst of HTTP 5xx through the
//! ingress makes the 5xx rule fire, and it resolves once the window has
//! passed without errors; both transitions are lab events (printed by
//! `chaoslab events`) and both are POSTed to the configured webhook.

mod fault_support;
mod lab_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use lab_support::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_burst_fires_the_alert_and_it_resolves_with_webhook_calls() {
    // A webhook receiver on loopback.
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/hook",
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
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

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
    let out = lab.cli(&["fault", "clear", "--all"]).await;
    assert!(out.status.success());

    eventually(
        Duration::from_secs(30),
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
}
