//! SPEC §3 from the client's side: every endpoint, status code and error
//! body, including the bad input the seed's clients could send.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{RedisServer, Service, get_json, get_status, http, post_status};

fn assert_error_body(body: &Value, error: &str) {
    assert_eq!(body["error"], error, "body: {body}");
    assert!(
        body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "body: {body}"
    );
    assert!(
        body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "body: {body}"
    );
}

#[tokio::test]
async fn root_counts_every_request_and_returns_the_seed_fields() {
    let redis = RedisServer::start();
    let svc = Service::builder()
        .redis(&redis)
        .env("REPLICA_ID", "r-1")
        .env("REVISION", "app--v1")
        .start();
    let client = http(Duration::from_secs(10));
    let first: Value = get_json(&client, svc.url("/")).await;
    assert_eq!(first["message"], "Hello from Container Apps Chaos Lab");
    assert_eq!(first["replica"], "r-1");
    assert_eq!(first["revision"], "app--v1");
    let sample: Value = serde_json::from_str(first["redis_data"].as_str().unwrap()).unwrap();
    assert!(sample["timestamp"].is_string() && sample["value"].is_string());
    let n1 = first["request_count"].as_i64().unwrap();
    let resp = client
        .get(svc.url("/"))
        .header("X-Request-ID", "my-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "my-id-42");
    let second: Value = resp.json().await.unwrap();
    assert_eq!(second["request_count"].as_i64().unwrap(), n1 + 1);
    assert_eq!(
        second["redis_data"], first["redis_data"],
        "the sample is created once"
    );
    assert_eq!(
        redis.admin(&["GET", "chaos_lab:counter:requests"]).unwrap(),
        (n1 + 1).to_string()
    );
}

/// `/health` and `/readyz` answer healthy or degraded with Redis's latency
/// and leave the last check in Redis with a TTL; `/livez` answers 200.
async fn assert_health_readyz_livez(client: &reqwest::Client, svc: &Service, redis: &RedisServer) {
    for path in ["/health", "/readyz"] {
        let resp = client.get(svc.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers().contains_key("x-request-id"));
        let body: Value = resp.json().await.unwrap();
        assert!(
            matches!(body["status"].as_str(), Some("healthy" | "degraded")),
            "{body}"
        );
        assert_eq!(body["redis"]["connected"], true);
        assert!(body["redis"]["latency_ms"].is_u64());
    }
    assert!(
        !redis
            .admin(&["GET", "chaos_lab:health:last_check"])
            .unwrap()
            .is_empty()
    );
    let ttl: i64 = redis
        .admin(&["TTL", "chaos_lab:health:last_check"])
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&ttl), "ttl {ttl}");
    assert_eq!(get_status(client, svc.url("/livez")).await, StatusCode::OK);
}

/// `/chaos/status` at rest, then a Redis reset: counted, recorded in the
/// status, recovered from by the next operation, its body optional.
async fn assert_status_and_redis_reset(client: &reqwest::Client, svc: &Service) {
    let status: Value = get_json(client, svc.url("/chaos/status")).await;
    assert_eq!(
        status["load"],
        json!({"active": false, "level": "none", "remaining_seconds": 0})
    );
    assert_eq!(status["hang"]["active"], false);
    assert_eq!(status["hang"]["remaining_seconds"], 0);
    assert_eq!(status["redis"]["connected"], true);
    assert_eq!(status["redis"]["connection_count"], 1);
    assert!(status["redis"]["last_reset"].is_null());

    let reset: Value = client
        .post(svc.url("/chaos/redis-reset"))
        .json(&json!({"force": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reset["status"], "redis_connections_reset");
    assert_eq!(reset["connections_closed"], 1);
    let status: Value = get_json(client, svc.url("/chaos/status")).await;
    assert!(status["redis"]["last_reset"].is_string());
    // The next operation reconnects by itself.
    assert_eq!(get_status(client, svc.url("/")).await, StatusCode::OK);
    // Body is optional.
    assert_eq!(
        post_status(client, svc.url("/chaos/redis-reset")).await,
        StatusCode::OK
    );
}

/// `/metrics` is Prometheus text with the SPEC's instruments;
/// `/openapi.json` documents the chaos endpoints.
async fn assert_metrics_and_openapi(client: &reqwest::Client, svc: &Service) {
    let metrics = client.get(svc.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    for name in [
        "redis_operation_latency",
        "redis_connection_success",
        "app_memory_usage",
        "chaos_load_active",
        "http_server_request_duration",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    let doc: Value = get_json(client, svc.url("/openapi.json")).await;
    assert!(doc["paths"]["/chaos/load"]["post"].is_object());
}

#[tokio::test]
async fn health_livez_readyz_status_metrics_openapi() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(10));
    assert_health_readyz_livez(&client, &svc, &redis).await;
    assert_status_and_redis_reset(&client, &svc).await;
    assert_metrics_and_openapi(&client, &svc).await;
}

/// Load and hang bodies whose values are out of range, of the wrong type
/// or missing: 400 in the standard body.
async fn assert_bad_load_and_hang_bodies_are_400(client: &reqwest::Client, svc: &Service) {
    let bad_loads = [
        json!({"level": "", "duration_seconds": 10}),
        json!({"level": "extreme", "duration_seconds": 10}),
        json!({"duration_seconds": 10}),
        json!({"level": "low", "duration_seconds": -1}),
        json!({"level": "low", "duration_seconds": 0}),
        json!({"level": "low", "duration_seconds": 3601}),
        json!({"level": "low", "duration_seconds": 0.5}),
        json!({"level": "low", "duration_seconds": "60"}),
        json!({"level": "low"}),
        json!({"level": "low", "duration_seconds": 5, "cpu_percent": 0}),
        json!({"level": "low", "duration_seconds": 5, "memory_mb": 999999}),
    ];
    for body in bad_loads {
        let resp = client
            .post(svc.url("/chaos/load"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_error_body(&err, "Bad Request");
        assert!(
            err["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{err}"
        );
    }
    for body in [
        json!({"duration_seconds": -1}),
        json!({"duration_seconds": 3601}),
        json!({"duration_seconds": 1, "scope": "galaxy"}),
    ] {
        let resp = client
            .post(svc.url("/chaos/hang"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
    }
}

/// Malformed JSON is 400, the wrong content type 415, a 70 KiB body 413.
async fn assert_bodies_the_service_cannot_read(client: &reqwest::Client, svc: &Service) {
    // Malformed JSON.
    let resp = client
        .post(svc.url("/chaos/load"))
        .header("content-type", "application/json")
        .body("{\"level\": \"low\",")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );
    // Wrong content type.
    let resp = client
        .post(svc.url("/chaos/load"))
        .header("content-type", "text/plain")
        .body(r#"{"level":"low","duration_seconds":5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error_body(&resp.json().await.unwrap(), "Unsupported Media Type");
    // 70 KiB body.
    let big = format!(
        r#"{{"level":"low","duration_seconds":5,"pad":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let resp = client
        .post(svc.url("/chaos/load"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_error_body(&resp.json().await.unwrap(), "Payload Too Large");
}

/// An unknown path is 404, a known path with the wrong method 405.
async fn assert_unknown_path_and_wrong_method(client: &reqwest::Client, svc: &Service) {
    let resp = client.get(svc.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().contains_key("x-request-id"));
    assert_error_body(&resp.json().await.unwrap(), "Not Found");
    let resp = client.put(svc.url("/chaos/load")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_error_body(&resp.json().await.unwrap(), "Method Not Allowed");
    let resp = client.post(svc.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn bad_input_is_400_415_413_404_405_in_the_standard_body() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(10));
    assert_bad_load_and_hang_bodies_are_400(&client, &svc).await;
    assert_bodies_the_service_cannot_read(&client, &svc).await;
    assert_unknown_path_and_wrong_method(&client, &svc).await;
    // Nothing was started by any of that.
    let status: Value = get_json(&client, svc.url("/chaos/status")).await;
    assert_eq!(status["load"]["active"], false);
}

#[tokio::test]
async fn chaos_can_be_disabled_or_protected_by_a_token() {
    let redis = RedisServer::start();
    let off = Service::builder()
        .redis(&redis)
        .env("CHAOS_ENABLED", "false")
        .start();
    let client = http(Duration::from_secs(10));
    assert_eq!(
        get_status(&client, off.url("/chaos/status")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post_status(&client, off.url("/chaos/redis-reset")).await,
        StatusCode::NOT_FOUND
    );

    let guarded = Service::builder()
        .redis(&redis)
        .env("CHAOS_API_TOKEN", "s3cret")
        .start();
    let resp = client
        .post(guarded.url("/chaos/redis-reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_error_body(&resp.json().await.unwrap(), "Unauthorized");
    let resp = client
        .post(guarded.url("/chaos/redis-reset"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = client
        .post(guarded.url("/chaos/redis-reset"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Reading the status needs no token.
    assert_eq!(
        get_status(&client, guarded.url("/chaos/status")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn redis_disabled_still_serves() {
    let svc = Service::builder().env("REDIS_ENABLED", "false").start();
    let client = http(Duration::from_secs(10));
    let body: Value = get_json(&client, svc.url("/")).await;
    assert_eq!(body["redis_data"], "Redis unavailable");
    let health = client.get(svc.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "healthy");
    let resp = client
        .post(svc.url("/chaos/redis-reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_error_body(&resp.json().await.unwrap(), "Service Unavailable");
}
