//! Seed flows 4 and 5 at the service level: Redis going away and coming
//! back, and a revoked credential that the password file later restores —
//! all without restarting the service.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{GENEROUS, RedisServer, Service, eventually_async, get_status, http};

#[tokio::test]
async fn redis_outage_gives_503_then_recovers_without_restart() {
    let mut redis = RedisServer::start();
    let svc = Service::builder()
        .redis(&redis)
        .env("REDIS_SOCKET_TIMEOUT", "1")
        .env("REDIS_SOCKET_CONNECT_TIMEOUT", "1")
        .env("REDIS_BACKOFF_BASE", "0.2")
        .env("REDIS_BACKOFF_CAP", "0.5")
        .start();
    let pid = svc.pid();
    let client = http(Duration::from_secs(20));
    assert_eq!(get_status(&client, svc.url("/")).await, StatusCode::OK);
    redis.stop();
    // Each request is answered (no hang: the client's 20 s timeout is far
    // above the 1 s socket timeouts); the first 503 may take a few tries
    // while the pool notices the loss.
    let resp = eventually_async(GENEROUS, "GET / answers 503", || async {
        let r = client.get(svc.url("/")).send().await.ok()?;
        (r.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(r)
    })
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "Service Unavailable");
    assert_eq!(body["detail"], "Redis connection failed");
    let health = client.get(svc.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = health.json().await.unwrap();
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["redis"]["connected"], false);
    redis.restart();
    eventually_async(GENEROUS, "GET / is 200 again", || async {
        (client.get(svc.url("/")).send().await.ok()?.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(
        get_status(&client, svc.url("/health")).await,
        StatusCode::OK
    );
    assert_eq!(svc.pid(), pid, "same process throughout");
    assert!(
        svc.logs().contains("cannot connect to Redis"),
        "the outage is logged"
    );
}

#[tokio::test]
async fn revoked_credential_gives_auth_503_and_the_new_password_file_recovers() {
    let redis = RedisServer::start_with_acl();
    let (_, password_file) = redis.acl.clone().unwrap();
    let svc = Service::builder()
        .redis(&redis)
        .env("REDIS_BACKOFF_BASE", "0.1")
        .start();
    let client = http(Duration::from_secs(20));
    assert_eq!(get_status(&client, svc.url("/")).await, StatusCode::OK);
    // Revoke: rotate the password in Redis and drop the user's connections.
    assert_eq!(
        redis
            .admin(&["ACL", "SETUSER", "chaoslab", "resetpass", ">second-secret"])
            .unwrap(),
        "OK"
    );
    redis
        .admin(&["CLIENT", "KILL", "USER", "chaoslab"])
        .unwrap();
    let body: Value = eventually_async(GENEROUS, "GET / answers auth failure", || async {
        let r = client.get(svc.url("/")).send().await.ok()?;
        let body: Value = r.json().await.ok()?;
        (body["detail"] == "Redis authentication failed").then_some(body)
    })
    .await;
    assert_eq!(body["error"], "Service Unavailable");
    let logs = svc.logs();
    assert!(
        logs.contains("fetching it again and retrying once"),
        "refresh attempt logged:\n{logs}"
    );
    assert!(
        logs.contains("Redis authentication failed after one credential refresh"),
        "{logs}"
    );
    // Restore: the platform writes the new password to the file.
    std::fs::write(&password_file, "second-secret\n").unwrap();
    eventually_async(GENEROUS, "GET / is 200 again", || async {
        (client.get(svc.url("/")).send().await.ok()?.status() == StatusCode::OK).then_some(())
    })
    .await;
}
