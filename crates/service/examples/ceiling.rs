//! The ceiling `chaoslab serve` is measured against (issue 12 item 5,
//! `bench/service-ceiling.sh`): the least an axum + redis-rs server must do
//! to answer the service's three hot endpoints with the same JSON shapes —
//! `GET /` (one pipelined round trip: GET sample + INCR counter), `GET
//! /health` (one pipelined round trip: PING + SET last-check, uncached) and
//! `GET /chaos/status` (no Redis) — over one multiplexed connection, on the
//! same multi-threaded tokio runtime, and nothing else: no middleware, no
//! limits, no logs, no metrics, no spans.
//!
//!   cargo run --release --example ceiling -- 127.0.0.1:8001 redis://127.0.0.1:6379/
//!
//! It is a yardstick, not a service: a Redis error is a bare 503.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use serde_json::{Value, json};

const SAMPLE_KEY: &str = "chaos_lab:data:sample";
const COUNTER_KEY: &str = "chaos_lab:counter:requests";
const LAST_CHECK_KEY: &str = "chaos_lab:health:last_check";

#[derive(Clone)]
struct Ceiling {
    redis: MultiplexedConnection,
    replica: Arc<str>,
}

#[derive(Serialize)]
struct Root {
    message: &'static str,
    redis_data: String,
    timestamp: String,
    request_count: i64,
    replica: String,
    revision: &'static str,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn root(State(s): State<Ceiling>) -> Result<Json<Root>, StatusCode> {
    let mut conn = s.redis.clone();
    let (sample, count): (Option<String>, i64) = redis::pipe()
        .get(SAMPLE_KEY)
        .incr(COUNTER_KEY, 1)
        .query_async(&mut conn)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Json(Root {
        message: "Hello from Container Apps Chaos Lab",
        redis_data: sample.unwrap_or_default(),
        timestamp: now(),
        request_count: count,
        replica: s.replica.to_string(),
        revision: "ceiling",
    }))
}

async fn health(State(s): State<Ceiling>) -> (StatusCode, Json<Value>) {
    let mut conn = s.redis.clone();
    let started = std::time::Instant::now();
    let ok = redis::pipe()
        .cmd("PING")
        .ignore()
        .cmd("SET")
        .arg(LAST_CHECK_KEY)
        .arg(now())
        .arg("EX")
        .arg(300)
        .ignore()
        .query_async::<()>(&mut conn)
        .await
        .is_ok();
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ok { "healthy" } else { "unhealthy" },
        "redis": { "connected": ok, "latency_ms": started.elapsed().as_millis() as u64 },
        "timestamp": now(),
    });
    (code, Json(body))
}

async fn status() -> Json<Value> {
    Json(json!({
        "load": { "active": false, "level": "none", "remaining_seconds": 0 },
        "hang": { "active": false, "remaining_seconds": 0, "scope": null, "indefinite": false },
        "redis": { "enabled": true, "connected": true, "connection_count": 1, "last_reset": null },
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(redis_url)) = (args.next(), args.next()) else {
        return Err(
            "usage: ceiling <listen address, e.g. 127.0.0.1:8001> <redis://host:port/>".into(),
        );
    };
    let listen: SocketAddr = listen
        .parse()
        .map_err(|e| format!("{listen:?} is not an address such as 127.0.0.1:8001: {e}"))?;
    let client = redis::Client::open(redis_url.as_str())
        .map_err(|e| format!("{redis_url:?} is not a Redis URL: {e}"))?;
    let redis = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("cannot connect to {redis_url}: {e}"))?;
    let state = Ceiling {
        redis,
        replica: Arc::from(format!("ceiling-{}", std::process::id())),
    };
    let app = Router::new()
        .route("/", get(root))
        .route("/health", get(health))
        .route("/chaos/status", get(status))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, app).await?;
    Ok(())
}
