//! Property tests of the whole application (router, layers, extractors)
//! without a socket: arbitrary query strings on every route and arbitrary
//! bodies on every route that reads one. Never a panic, never a server
//! error but the documented 503 of redis-reset without Redis, every error
//! in the SPEC §3 body, and nothing valid refused.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use clap::Parser;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

use chaoslab_service::{AppState, ServeArgs, ServiceMetrics};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ServeArgs,
}

/// No Redis, loads without memory: nothing here reaches the network or
/// holds much.
fn state() -> AppState {
    let cli = Cli::try_parse_from([
        "serve",
        "--redis-enabled",
        "false",
        "--load-max-memory-mb",
        "0",
    ])
    .expect("arguments");
    let config = cli.args.validate().expect("config");
    AppState::new(config, ServiceMetrics::new(), Arc::new(String::new)).expect("state")
}

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/readyz"),
    ("GET", "/livez"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/chaos/status"),
    ("POST", "/chaos/load"),
    ("DELETE", "/chaos/load"),
    ("POST", "/chaos/hang"),
    ("DELETE", "/chaos/hang"),
    ("POST", "/chaos/redis-reset"),
    ("GET", "/no/such/route"),
    ("PUT", "/chaos/load"),
];

/// Sends one request; its status and body (`None`: still hanging after a
/// moment — a valid hang, ended by dropping the request).
async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<Vec<u8>>,
) -> Option<(StatusCode, Vec<u8>)> {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri)
        .header("host", "127.0.0.1");
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Body::from(body.unwrap_or_default())).unwrap();
    let app = chaoslab_service::app(state.clone());
    let resp = tokio::time::timeout(Duration::from_millis(200), app.oneshot(req))
        .await
        .ok()?
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    // Whatever started, stop it: these tests must not burn CPU.
    state.load().stop();
    state.hang().cancel();
    Some((status, bytes.to_vec()))
}

fn check_answer(status: StatusCode, body: &[u8], what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {status}"
    );
    if status.is_client_error() || status.is_server_error() {
        let body: Value = serde_json::from_slice(body)
            .map_err(|e| TestCaseError::fail(format!("{what}: {status}: not JSON: {e}")))?;
        for field in ["error", "detail", "timestamp", "request_id"] {
            prop_assert!(body[field].is_string(), "{}: {}: {}", what, status, body);
        }
        let detail = body["detail"].as_str().unwrap_or_default();
        for word in ["struct", "invalid type", "variant identifier"] {
            prop_assert!(!detail.contains(word), "{}: {}", what, detail);
        }
    }
    Ok(())
}

/// A query string: arbitrary text, percent-encoded where a URI needs it.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,60}",
        "[a-z_]{1,10}=[a-z0-9%+&=;]{0,20}",
        Just("level=high&duration_seconds=3600".to_string()),
        Just("%ff%00%zz".to_string()),
    ]
    .prop_map(|q| {
        q.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    })
}

/// A body: arbitrary bytes, or JSON near the API's shapes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..3700).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("low".to_string()),
            Just("process".to_string()),
            ".{0,10}"
        ]
        .prop_map(Value::String),
    ];
    let key = prop_oneof![
        Just("level".to_string()),
        Just("duration_seconds".to_string()),
        Just("cpu_percent".to_string()),
        Just("memory_mb".to_string()),
        Just("scope".to_string()),
        Just("force".to_string()),
        "[a-z]{0,6}",
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec((key, scalar.clone()), 0..5)
            .prop_map(|kv| serde_json::to_vec(&Value::Object(kv.into_iter().collect())).unwrap()),
        prop::collection::vec(scalar, 0..4)
            .prop_map(|items| serde_json::to_vec(&Value::Array(items)).unwrap()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_query_strings_never_break_a_route(route in 0..ROUTES.len(), q in query()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let state = state();
        let (method, path) = ROUTES[route];
        let uri = format!("{path}?{q}");
        let body = (method == "POST").then(|| br#"{"duration_seconds": 1, "level": "nope"}"#.to_vec());
        if let Some((status, bytes)) = runtime.block_on(send(&state, method, &uri, body)) {
            check_answer(status, &bytes, &format!("{method} {uri}"))?;
        }
    }

    #[test]
    fn arbitrary_bodies_are_answered_in_the_error_body(
        path in prop_oneof![Just("/chaos/load"), Just("/chaos/hang"), Just("/chaos/redis-reset")],
        bytes in body(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let state = state();
        let what = format!("POST {path} {}", String::from_utf8_lossy(&bytes));
        match runtime.block_on(send(&state, "POST", path, Some(bytes))) {
            Some((status, answer)) => check_answer(status, &answer, &what)?,
            None => prop_assert_eq!(path, "/chaos/hang", "{} still running", what),
        }
    }
}
