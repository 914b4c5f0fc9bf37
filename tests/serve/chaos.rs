//! The chaos API's timing and concurrency promises: one load at a time,
//! loads that end on time, and hangs of both scopes that clear on DELETE
//! and when their client goes away.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{GENEROUS, RedisServer, Service, eventually_async, get_json, get_status, http};

async fn status(client: &reqwest::Client, svc: &Service) -> Value {
    get_json(client, svc.url("/chaos/status")).await
}

#[tokio::test]
async fn two_concurrent_loads_give_exactly_one_409() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(GENEROUS);
    // Long enough to be still running at every check below however slow
    // the machine; it is stopped by DELETE.
    let body = json!({"level": "low", "duration_seconds": 300, "cpu_percent": 5, "memory_mb": 0});
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
    assert!((1..=300).contains(&s["load"]["remaining_seconds"].as_i64().unwrap()));
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

/// A 1 s load is active until its deadline and over after it. Judged by
/// when each status answer arrived, not by sleeping to fixed instants: the
/// load starts after the POST was sent, so a status answered within 1 s of
/// that must say active, and "over" can only be said once 1 s has passed
/// since it (a slow machine makes the test slower, never red).
#[tokio::test]
async fn one_second_load_is_active_until_its_deadline_and_over_after_it() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(GENEROUS);
    let sent = Instant::now();
    let resp = client
        .post(svc.url("/chaos/load"))
        .json(&json!({"level": "low", "duration_seconds": 1, "cpu_percent": 5, "memory_mb": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let started: Value = resp.json().await.unwrap();
    assert_eq!(
        started,
        json!({"status": "load_started", "level": "low", "duration_seconds": 1, "cpu_percent": 5, "memory_mb": 0})
    );
    let deadline = Duration::from_secs(1);
    let seen_active = std::cell::Cell::new(false);
    let over = eventually_async(GENEROUS, "the 1 s load to be over", || async {
        let s = status(&client, &svc).await;
        let answered_after = sent.elapsed();
        let active = s["load"]["active"] == true;
        if answered_after < deadline {
            assert!(active, "over after {answered_after:?}, before its 1 s: {s}");
        }
        if !active {
            assert!(
                answered_after >= deadline,
                "over after {answered_after:?}, before its 1 s: {s}"
            );
        }
        seen_active.set(seen_active.get() || active);
        (!active).then_some(s)
    })
    .await;
    assert_eq!(over["load"]["level"], "none", "{over}");
    if !seen_active.get() {
        eprintln!("note: the machine was too slow to see the load active before its 1 s");
    }
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
    eventually_async(GENEROUS, "hang active", || async {
        (status(&client, &svc).await["hang"]["active"] == true).then_some(())
    })
    .await;
    let s = status(&client, &svc).await;
    assert_eq!(s["hang"]["scope"], "request");
    // Everything else keeps answering (the hang itself never ends, so
    // any finite timeout tells the two apart).
    let quick = http(Duration::from_secs(30));
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
        let quick = http(Duration::from_secs(10));
        eventually_async(GENEROUS, "hang cleared after the client left", || async {
            let s = quick
                .get(svc.url("/chaos/status"))
                .send()
                .await
                .ok()?
                .json::<Value>()
                .await
                .ok()?;
            (s["hang"]["active"] == false).then_some(())
        })
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
    eventually_async(GENEROUS, "/health stops answering", || async {
        probe
            .get(svc.url("/health"))
            .send()
            .await
            .err()
            .filter(|e| e.is_timeout())
    })
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
    let del = http(GENEROUS)
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
    assert_eq!(
        get_status(&client, svc.url("/health")).await,
        StatusCode::OK
    );
    assert_eq!(get_status(&client, svc.url("/livez")).await, StatusCode::OK);
}
