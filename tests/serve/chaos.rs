//! The chaos API's timing and concurrency promises: one load at a time,
//! loads that end on time, and hangs of both scopes that clear on DELETE
//! and when their client goes away.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{RedisServer, Service, eventually_async, get_json, get_status, http};

async fn status(client: &reqwest::Client, svc: &Service) -> Value {
    get_json(client, svc.url("/chaos/status")).await
}

#[tokio::test]
async fn two_concurrent_loads_give_exactly_one_409() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(10));
    let body = json!({"level": "low", "duration_seconds": 5, "cpu_percent": 5, "memory_mb": 0});
    let (a, b) = tokio::join!(
        client.post(svc.url("/chaos/load")).json(&body).send(),
        client.post(svc.url("/chaos/load")).json(&body).send()
    );
    let mut codes = [a.unwrap().status(), b.unwrap().status()];
    codes.sort();
    assert_eq!(codes, [StatusCode::OK, StatusCode::CONFLICT]);
    let resp = client
        .post(svc.url("/chaos/load"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "Conflict");
    let s = status(&client, &svc).await;
    assert_eq!(s["load"]["active"], true);
    assert_eq!(s["load"]["level"], "low");
    assert!((1..=5).contains(&s["load"]["remaining_seconds"].as_i64().unwrap()));
    let stopped: Value = client
        .delete(svc.url("/chaos/load"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["was_active"], true);
    assert_eq!(status(&client, &svc).await["load"]["active"], false);
    assert_eq!(
        client
            .post(svc.url("/chaos/load"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_second_load_is_active_at_0_9_s_and_over_at_1_2_s() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(10));
    let sent = Instant::now();
    let resp = client
        .post(svc.url("/chaos/load"))
        .json(&json!({"level": "low", "duration_seconds": 1, "cpu_percent": 5, "memory_mb": 0}))
        .send()
        .await
        .unwrap();
    let answered = Instant::now();
    assert_eq!(resp.status(), StatusCode::OK);
    let started: Value = resp.json().await.unwrap();
    assert_eq!(
        started,
        json!({"status": "load_started", "level": "low", "duration_seconds": 1, "cpu_percent": 5, "memory_mb": 0})
    );
    tokio::time::sleep_until((sent + Duration::from_millis(900)).into()).await;
    assert_eq!(
        status(&client, &svc).await["load"]["active"],
        true,
        "active at 0.9 s"
    );
    tokio::time::sleep_until((answered + Duration::from_millis(1200)).into()).await;
    let s = status(&client, &svc).await;
    assert_eq!(s["load"]["active"], false, "over at 1.2 s: {s}");
    assert_eq!(s["load"]["level"], "none");
}

#[tokio::test]
async fn request_hang_leaves_the_rest_answering_and_clears_on_delete() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(30));
    let hang_url = svc.url("/chaos/hang");
    let hanging = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .post(hang_url)
                .json(&json!({"duration_seconds": 0}))
                .send()
                .await
        })
    };
    eventually_async(Duration::from_secs(10), "hang active", || async {
        (status(&client, &svc).await["hang"]["active"] == true).then_some(())
    })
    .await;
    let s = status(&client, &svc).await;
    assert_eq!(s["hang"]["scope"], "request");
    // Everything else keeps answering.
    let quick = http(Duration::from_secs(2));
    assert_eq!(get_status(&quick, svc.url("/health")).await, StatusCode::OK);
    assert_eq!(get_status(&quick, svc.url("/")).await, StatusCode::OK);
    // A second hang conflicts.
    let resp = quick
        .post(svc.url("/chaos/hang"))
        .json(&json!({"duration_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let del: Value = quick
        .delete(svc.url("/chaos/hang"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(del["was_active"], true);
    let answer: Value = hanging.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(answer["status"], "hang_cancelled");
    assert_eq!(status(&client, &svc).await["hang"]["active"], false);
}

#[tokio::test]
async fn timed_request_hang_completes() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(30));
    let started = Instant::now();
    let resp = client
        .post(svc.url("/chaos/hang"))
        .json(&json!({"duration_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(
        resp.json::<Value>().await.unwrap()["status"],
        "hang_completed"
    );
    assert_eq!(status(&client, &svc).await["hang"]["active"], false);
}

#[tokio::test]
async fn hang_clears_when_its_client_goes_away() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(10));
    for scope in ["request", "process"] {
        let impatient = http(Duration::from_millis(700));
        let err = impatient
            .post(svc.url("/chaos/hang"))
            .json(&json!({"duration_seconds": 0, "scope": scope}))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{scope}: {err}");
        // The client hung up: the hang ends and the service answers again.
        let quick = http(Duration::from_secs(1));
        eventually_async(
            Duration::from_secs(15),
            "hang cleared after the client left",
            || async {
                let s = quick
                    .get(svc.url("/chaos/status"))
                    .send()
                    .await
                    .ok()?
                    .json::<Value>()
                    .await
                    .ok()?;
                (s["hang"]["active"] == false).then_some(())
            },
        )
        .await;
    }
    assert_eq!(
        get_status(&client, svc.url("/health")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn process_hang_stops_health_and_livez_until_deleted() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(60));
    let hang_url = svc.url("/chaos/hang");
    let hanging = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .post(hang_url)
                .json(&json!({"duration_seconds": 0, "scope": "process"}))
                .send()
                .await
        })
    };
    let probe = http(Duration::from_millis(800));
    eventually_async(
        Duration::from_secs(10),
        "/health stops answering",
        || async {
            probe
                .get(svc.url("/health"))
                .send()
                .await
                .err()
                .filter(|e| e.is_timeout())
        },
    )
    .await;
    for path in ["/livez", "/", "/chaos/status"] {
        let err = probe.get(svc.url(path)).send().await.unwrap_err();
        assert!(
            err.is_timeout(),
            "{path} answered during a process hang: {err}"
        );
    }
    // The TCP socket still accepts, as a hung process's would.
    assert!(std::net::TcpStream::connect(("127.0.0.1", svc.port)).is_ok());
    let del = http(Duration::from_secs(5))
        .delete(svc.url("/chaos/hang"))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::OK);
    assert_eq!(
        hanging
            .await
            .unwrap()
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["status"],
        "hang_cancelled"
    );
    let quick = http(Duration::from_secs(2));
    assert_eq!(get_status(&quick, svc.url("/health")).await, StatusCode::OK);
    assert_eq!(get_status(&quick, svc.url("/livez")).await, StatusCode::OK);
}
