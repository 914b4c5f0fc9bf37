//! Component tests of the control API with `oneshot` (no socket, no
//! replica): authentication, error bodies, status, events as JSON lines,
//! deploy validation.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{LabInfo, router};
use crate::config::{FileConfig, LabConfig, Overrides};
use crate::platform::{Platform, RedisEndpoint};
use crate::spawner::Spawner;

fn platform(dir: &std::path::Path) -> Arc<Platform> {
    let config = LabConfig::resolve(
        FileConfig::default(),
        &Overrides::default(),
        "/bin/true".into(),
    )
    .unwrap();
    let redis = RedisEndpoint {
        env: Vec::new(),
        describe: "none".into(),
        admin: None,
    };
    Platform::new(config, Spawner::start().unwrap(), redis, dir.to_path_buf())
}

fn info() -> LabInfo {
    LabInfo {
        pid: 1,
        started_at: "t".into(),
        state_dir: ".chaoslab".into(),
        ingress_url: "http://127.0.0.1:8000".into(),
        control_url: "http://127.0.0.1:8090".into(),
        redis: "none".into(),
        toxiproxy_url: None,
    }
}

async fn call(
    app: axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn every_route_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(platform(dir.path()), "secret".into(), info());
    let (status, body) = call(app.clone(), "GET", "/api/status", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "Unauthorized");
    assert!(body["request_id"].is_string() && body["timestamp"].is_string());
    let (status, _) = call(app.clone(), "GET", "/api/status", Some("wrong"), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(app, "GET", "/api/status", Some("secret"), "").await;
    assert_eq!(status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["lab"]["ingress_url"], "http://127.0.0.1:8000");
    assert_eq!(body["probes"]["readiness"]["action"]["path"], "/health");
}

#[tokio::test]
async fn events_are_json_lines_since_a_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    for i in 0..3 {
        p.events
            .normal("Tick", "lab", format!("tick {i}"), serde_json::Value::Null);
    }
    let app = router(p, "t".into(), info());
    let (status, body) = call(app, "GET", "/api/events?since=1", Some("t"), "").await;
    assert_eq!(status, StatusCode::OK);
    let seqs: Vec<u64> = body
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, [2, 3]);
}

#[tokio::test]
async fn bad_deploys_are_400_and_unknown_revisions_404() {
    let dir = tempfile::tempdir().unwrap();
    let app = router(platform(dir.path()), "t".into(), info());
    let (status, body) = call(
        app.clone(),
        "POST",
        "/api/revisions",
        Some("t"),
        r#"{"env":["NOEQUALS"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("KEY=VALUE"), "{body}");
    let (status, _) = call(
        app.clone(),
        "POST",
        "/api/revisions",
        Some("t"),
        r#"{"suffix":"Bad Suffix"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        app.clone(),
        "POST",
        "/api/revisions",
        Some("t"),
        "{not json",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(app.clone(), "GET", "/api/revisions/nope", Some("t"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(app, "POST", "/api/revisions/nope/activate", Some("t"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn extra_routes_are_mounted_with_or_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let faults = axum::Router::new().route("/api/faults", axum::routing::get(|| async { "[]" }));
    let page = axum::Router::new().route("/", axum::routing::get(|| async { "console" }));
    let app = super::router_with(platform(dir.path()), "t".into(), info(), faults, page);
    assert_eq!(
        call(app.clone(), "GET", "/api/faults", None, "").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(app.clone(), "GET", "/api/faults", Some("t"), "").await,
        (StatusCode::OK, "[]".into())
    );
    assert_eq!(
        call(app.clone(), "GET", "/", None, "").await,
        (StatusCode::OK, "console".into())
    );
    assert_eq!(
        call(app, "GET", "/nope", Some("t"), "").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(start_paused = true)]
async fn a_quiet_follow_stream_sends_an_empty_line_every_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path());
    p.events
        .normal("Tick", "lab", "first".to_string(), serde_json::Value::Null);
    let app = router(p.clone(), "t".into(), info());
    let request = Request::builder()
        .uri("/api/events?follow=true")
        .header("authorization", "Bearer t")
        .body(Body::empty())
        .unwrap();
    let mut body = app.oneshot(request).await.unwrap().into_body();
    let mut next = async || {
        let frame = body.frame().await.unwrap().unwrap();
        String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
    };
    // The history first (with whatever the lab said on its own).
    while !next().await.contains("\"first\"") {}
    // Time is paused: the heartbeat comes when the clock has moved on by
    // one, and not before (auto-advance jumps to the next timer).
    let before = tokio::time::Instant::now();
    let beat = super::FOLLOW_HEARTBEAT;
    let heard = tokio::time::timeout(beat * 2, next()).await;
    assert_eq!(heard.as_deref(), Ok("\n"), "a heartbeat within two");
    assert_eq!(before.elapsed(), beat);
    let heard = tokio::time::timeout(beat * 2, next()).await;
    assert_eq!(heard.as_deref(), Ok("\n"));
    p.shutdown.cancel();
    assert!(body.frame().await.is_none(), "the stream ends with the lab");
}
