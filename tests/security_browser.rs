//! Issue 11 finding 2, played by a hostile web page (SPEC section 13,
//! "Browser attacks"): a page the developer happens to open can
//!
//! - rebind its own DNS name to 127.0.0.1 and then read and drive every
//!   listener of the lab as if it were its own site (`Host: evil.example`);
//! - send "simple" cross-site requests without any CORS preflight: a
//!   `text/plain`, form or empty POST, or any request carrying the page's
//!   `Origin`.
//!
//! Every listener — the ingress, a replica (`chaoslab serve`), the control
//! API and console, the Toxiproxy-compatible API — must refuse a foreign
//! `Host` with its own error body, and refuse a mutating request from
//! another site (403) or with a body that is not JSON (415), granting no
//! CORS; while the clients that send none of this (the seed's, Locust's,
//! Toxiproxy's, the lab's CLI, the console's same-origin calls) keep
//! working.

#[path = "common/mod.rs"]
mod common;
#[path = "lab_support/mod.rs"]
mod lab_support;

use std::time::Duration;

use lab_support::{Lab, builder};
use reqwest::Method;
use serde_json::Value;

const EVIL_HOST: &str = "evil.example:8000";
const EVIL_ORIGIN: &str = "https://evil.example";

/// A hostile request: what it is, its headers, its body, the expected
/// status.
type Attack<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>, u16);

/// What came back: status, headers, body parsed as JSON (Null if not JSON).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// Sends `method url` with `headers` and `body` (no body when `None`).
async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut request = http.request(method.clone(), url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// The section 3 error body, with `status`'s reason phrase as `error`.
fn assert_spec_error(answer: &Answer, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: {}", answer.body);
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or_default();
    assert_eq!(answer.body["error"], reason, "{what}: {}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.body["timestamp"].is_string(),
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.body["request_id"].is_string(),
        "{what}: {}",
        answer.body
    );
}

/// No listener grants CORS to anyone.
fn assert_no_cors(answer: &Answer, what: &str) {
    let granted: Vec<_> = answer
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-allow-"))
        .collect();
    assert!(granted.is_empty(), "{what} granted CORS: {granted:?}");
}

/// `host:port` of a URL such as `http://127.0.0.1:8000`.
fn authority(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// The port of a URL such as `http://127.0.0.1:8000`.
fn port(url: &str) -> &str {
    authority(url).rsplit(':').next().unwrap_or_default()
}

/// The control API's `Authorization` header, for requests built by hand:
/// this file checks the HTTP surface itself (foreign `Host`, cross-site
/// `Origin`, non-JSON bodies, the error bodies and headers they get), which
/// `LabClient` never sends by design; what the lab holds afterwards is read
/// through the fixture's client (`lab.api`).
fn token(lab: &Lab) -> String {
    format!("Bearer {}", lab.token())
}

/// DNS rebinding: `Host: evil.example:8000` reaches none of the lab's
/// listeners, each answering in its own error shape; the same request
/// naming loopback still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_dns_name_reaches_no_listener() {
    let lab = builder().start().await;
    let http = &lab.http;
    let token = token(&lab);
    let ingress = lab.ingress("");
    let replica = lab.replica_url("").await;
    let toxiproxy = lab.toxiproxy_url().await;

    for (what, base) in [("ingress", &ingress), ("replica", &replica)] {
        service_refuses_a_foreign_host(http, what, base).await;
    }
    // The ingress marks the refusal as its own.
    let answer = send(http, Method::GET, &ingress, &[("host", EVIL_HOST)], None).await;
    assert_eq!(
        answer.headers.get("x-chaoslab-error").map(|v| v.as_bytes()),
        Some(&b"forbidden-host"[..])
    );

    // The control API and console: refused before the token is even looked
    // at, and the page (which holds no secret) is not served either.
    control_api_refuses_a_foreign_host(&lab, &token).await;

    // The Toxiproxy-compatible API: Toxiproxy's error body.
    toxiproxy_api_refuses_a_foreign_host(http, &toxiproxy).await;
}

/// `what` at `base` (the ingress or a replica) refuses `Host:
/// evil.example` on `/`, `/chaos/status`, `/health` and a chaos POST with
/// the SPEC error body and no CORS; loopback names still work.
async fn service_refuses_a_foreign_host(http: &reqwest::Client, what: &str, base: &str) {
    for path in ["/", "/chaos/status", "/health"] {
        let url = format!("{base}{path}");
        let answer = send(http, Method::GET, &url, &[("host", EVIL_HOST)], None).await;
        assert_spec_error(&answer, 403, &format!("{what} GET {path}"));
        assert_no_cors(&answer, what);
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("evil.example"), "{what}: {detail}");
    }
    let reset = format!("{base}/chaos/redis-reset");
    let answer = send(http, Method::POST, &reset, &[("host", EVIL_HOST)], None).await;
    assert_spec_error(&answer, 403, &format!("{what} POST /chaos/redis-reset"));
    for host in [
        "localhost".to_string(),
        format!("localhost:{}", port(base)),
        authority(base).to_string(),
        "127.0.0.7".to_string(),
        "[::1]:8000".to_string(),
    ] {
        let answer = send(
            http,
            Method::GET,
            &format!("{base}/"),
            &[("host", &host)],
            None,
        )
        .await;
        assert_eq!(
            answer.status, 200,
            "{what} with Host {host}: {}",
            answer.body
        );
    }
}

/// The control API and console refuse a foreign `Host` even with the
/// token; `localhost:PORT` is served.
async fn control_api_refuses_a_foreign_host(lab: &Lab, token: &str) {
    let http = &lab.http;
    for path in ["/api/status", "/"] {
        let url = lab.control(path);
        let headers = [("host", EVIL_HOST), ("authorization", token)];
        let answer = send(http, Method::GET, &url, &headers, None).await;
        assert_spec_error(&answer, 403, &format!("control API GET {path}"));
        assert_no_cors(&answer, "control API");
    }
    let url = lab.control("/api/status");
    let host = format!("localhost:{}", port(&lab.control("")));
    let answer = send(
        http,
        Method::GET,
        &url,
        &[("host", &host), ("authorization", token)],
        None,
    )
    .await;
    assert_eq!(
        answer.status, 200,
        "control API with Host {host}: {}",
        answer.body
    );
}

/// The Toxiproxy-compatible API refuses a foreign `Host` in Toxiproxy's
/// error body; `localhost` is served.
async fn toxiproxy_api_refuses_a_foreign_host(http: &reqwest::Client, toxiproxy: &str) {
    for (method, path) in [(Method::GET, "/proxies"), (Method::POST, "/reset")] {
        let url = format!("{toxiproxy}{path}");
        let answer = send(http, method.clone(), &url, &[("host", EVIL_HOST)], None).await;
        assert_eq!(
            answer.status, 403,
            "Toxiproxy API {method} {path}: {}",
            answer.body
        );
        assert_eq!(answer.body["status"], 403, "{}", answer.body);
        assert!(
            answer.body["error"]
                .as_str()
                .is_some_and(|e| e.contains("evil.example")),
            "{}",
            answer.body
        );
        assert_no_cors(&answer, "Toxiproxy API");
    }
    let answer = send(
        http,
        Method::GET,
        &format!("{toxiproxy}/version"),
        &[("host", "localhost")],
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Cross-site requests through the ingress (the finding as reported): a
/// page's `Origin` is refused 403, a `text/plain` or form POST (the
/// "simple requests" a page sends without a preflight) 415 — and the
/// replicas' Redis connections stay untouched. The same POST from a
/// non-browser client, or from the lab's own origin, works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_chaos_requests_through_the_ingress_are_refused() {
    let lab = builder().start().await;
    let http = &lab.http;
    let reset = lab.ingress("/chaos/redis-reset");
    let before = chaos_status(&lab).await;

    for (what, headers, body, status) in simple_attacks() {
        let answer = send(http, Method::POST, &reset, headers, body).await;
        assert_spec_error(&answer, status, what);
        assert_no_cors(&answer, what);
        assert_eq!(
            answer
                .headers
                .get("x-chaoslab-error")
                .map(|v| v.to_str().unwrap_or("")),
            Some(if status == 403 {
                "cross-site"
            } else {
                "not-json"
            }),
            "{what}: the ingress refuses it itself"
        );
    }
    // The same hold for every mutating method and the other chaos calls.
    every_mutating_chaos_call_refused(&lab).await;
    // A CORS preflight is granted nothing.
    let answer = send(
        http,
        Method::OPTIONS,
        &reset,
        &[
            ("origin", EVIL_ORIGIN),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        None,
    )
    .await;
    assert_no_cors(&answer, "preflight");
    assert!(answer.status >= 400, "preflight: {}", answer.status);
    let after = chaos_status(&lab).await;
    assert_eq!(
        before["redis"]["last_reset"], after["redis"]["last_reset"],
        "no refused request reset Redis: {after}"
    );
    assert_eq!(after["load"]["active"], false, "{after}");

    // What clients send keep working: no body and no Content-Type (the
    // seed's clients, `chaoslab chaos redis-reset`), JSON, and the lab's
    // own origin (a page the ingress itself served).
    clients_keep_working(&lab).await;
}

/// What a page sends without a preflight, each with the status the ingress
/// refuses it with: a foreign `Origin` 403, a non-JSON body 415.
fn simple_attacks() -> [Attack<'static>; 7] {
    [
        (
            "foreign Origin, no body",
            &[("origin", EVIL_ORIGIN)],
            None,
            403,
        ),
        (
            "foreign Origin, JSON",
            &[
                ("origin", EVIL_ORIGIN),
                ("content-type", "application/json"),
            ],
            Some(r#"{"force": true}"#),
            403,
        ),
        (
            "Origin: null (sandboxed page)",
            &[("origin", "null")],
            None,
            403,
        ),
        (
            "another port of this machine",
            &[("origin", "http://127.0.0.1:1")],
            None,
            403,
        ),
        (
            "text/plain, empty",
            &[("content-type", "text/plain")],
            Some(""),
            415,
        ),
        (
            "form, empty",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some(""),
            415,
        ),
        (
            "multipart",
            &[("content-type", "multipart/form-data; boundary=x")],
            Some("--x--\r\n"),
            415,
        ),
    ]
}

/// Every other mutating chaos call through the ingress: 403 cross-site,
/// 415 as `text/plain`.
async fn every_mutating_chaos_call_refused(lab: &Lab) {
    let http = &lab.http;
    for (method, path) in [
        (Method::POST, "/chaos/load"),
        (Method::POST, "/chaos/hang"),
        (Method::DELETE, "/chaos/load"),
        (Method::DELETE, "/chaos/hang"),
        (Method::PUT, "/chaos/load"),
        (Method::PATCH, "/chaos/load"),
    ] {
        let url = lab.ingress(path);
        let answer = send(http, method.clone(), &url, &[("origin", EVIL_ORIGIN)], None).await;
        assert_spec_error(&answer, 403, &format!("{method} {path} cross-site"));
        let answer = send(
            http,
            method.clone(),
            &url,
            &[("content-type", "text/plain;charset=UTF-8")],
            Some(r#"{"level":"low","duration_seconds":60}"#),
        )
        .await;
        assert_spec_error(&answer, 415, &format!("{method} {path} text/plain"));
    }
}

/// A chaos POST with no body, with JSON, or from the lab's own origin
/// works, and a cross-origin GET carries no CORS grant.
async fn clients_keep_working(lab: &Lab) {
    let http = &lab.http;
    let reset = lab.ingress("/chaos/redis-reset");
    let own = format!("http://{}", authority(&lab.ingress("")));
    for (what, headers, body) in [
        ("no body, no headers", &[][..], None),
        (
            "JSON",
            &[("content-type", "application/json")][..],
            Some(r#"{"force": true}"#),
        ),
        (
            "JSON from the lab's own origin",
            &[
                ("content-type", "application/json"),
                ("origin", own.as_str()),
            ][..],
            Some(r#"{"force": true}"#),
        ),
    ] {
        let answer = send(http, Method::POST, &reset, headers, body).await;
        assert_eq!(answer.status, 200, "{what}: {}", answer.body);
        assert_eq!(answer.body["status"], "redis_connections_reset", "{what}");
    }
    // A page may still read nothing cross-origin: GETs carry no grant.
    let answer = send(
        http,
        Method::GET,
        &lab.ingress("/"),
        &[("origin", EVIL_ORIGIN)],
        None,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_no_cors(&answer, "GET /");
}

/// The same rules on a replica directly (`chaoslab serve` on loopback), on
/// the control API (with its token: a page that learnt it still cannot
/// use it cross-site) and on the Toxiproxy-compatible API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_changes_are_refused_on_every_listener() {
    let lab = builder().start().await;
    let http = &lab.http;
    let token = token(&lab);
    let replica = lab.replica_url("").await;
    let toxiproxy = lab.toxiproxy_url().await;

    replica_refuses_cross_site_changes(http, &replica).await;

    control_api_refuses_cross_site_changes(&lab, &token).await;

    toxiproxy_api_refuses_cross_site_changes(http, &toxiproxy).await;
}

/// A replica (`chaoslab serve`) refuses a cross-site or `text/plain` chaos
/// POST; the same POST with no body works.
async fn replica_refuses_cross_site_changes(http: &reqwest::Client, replica: &str) {
    let url = format!("{replica}/chaos/redis-reset");
    let answer = send(http, Method::POST, &url, &[("origin", EVIL_ORIGIN)], None).await;
    assert_spec_error(&answer, 403, "replica cross-site");
    assert!(answer.headers.contains_key("x-request-id"));
    let answer = send(
        http,
        Method::POST,
        &url,
        &[("content-type", "text/plain")],
        Some(""),
    )
    .await;
    assert_spec_error(&answer, 415, "replica text/plain");
    let answer = send(http, Method::POST, &url, &[], None).await;
    assert_eq!(answer.status, 200, "replica, no body: {}", answer.body);
}

/// The control API refuses a change cross-site or as `text/plain` even
/// with its token (nothing is created); the console's own origin works.
async fn control_api_refuses_cross_site_changes(lab: &Lab, token: &str) {
    let http = &lab.http;
    let faults = lab.control("/api/faults");
    let auth = ("authorization", token);
    let answer = send(
        http,
        Method::DELETE,
        &faults,
        &[auth, ("origin", EVIL_ORIGIN)],
        None,
    )
    .await;
    assert_spec_error(&answer, 403, "control API cross-site");
    assert_no_cors(&answer, "control API");
    let answer = send(
        http,
        Method::POST,
        &faults,
        &[auth, ("content-type", "text/plain")],
        Some(r#"{"kind":"network","mode":"block","duration_seconds":60}"#),
    )
    .await;
    assert_spec_error(&answer, 415, "control API text/plain");
    assert_eq!(lab.api("/api/faults").await, serde_json::json!([]));
    // The console's own calls: same origin, its token, JSON.
    let own = format!("http://{}", authority(&lab.control("")));
    let answer = send(
        http,
        Method::DELETE,
        &faults,
        &[auth, ("origin", &own)],
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "console DELETE: {}", answer.body);
}

/// The Toxiproxy-compatible API refuses a cross-site or `text/plain`
/// change in Toxiproxy's error body (nothing is created); JSON, or no body,
/// works.
async fn toxiproxy_api_refuses_cross_site_changes(http: &reqwest::Client, toxiproxy: &str) {
    let answer = send(
        http,
        Method::POST,
        &format!("{toxiproxy}/reset"),
        &[("origin", EVIL_ORIGIN), ("user-agent", "curl/8")],
        None,
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["status"].clone()),
        (403, serde_json::json!(403)),
        "Toxiproxy API cross-site: {}",
        answer.body
    );
    let create =
        r#"{"name":"web","listen":"127.0.0.1:0","upstream":"127.0.0.1:1","enabled":false}"#;
    let answer = send(
        http,
        Method::POST,
        &format!("{toxiproxy}/proxies"),
        &[("content-type", "text/plain")],
        Some(create),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["status"].clone()),
        (415, serde_json::json!(415)),
        "Toxiproxy API text/plain: {}",
        answer.body
    );
    let answer = send(
        http,
        Method::GET,
        &format!("{toxiproxy}/proxies"),
        &[],
        None,
    )
    .await;
    assert!(answer.body.get("web").is_none(), "{}", answer.body);
    // Toxiproxy's clients: JSON, or nothing at all.
    let answer = send(
        http,
        Method::POST,
        &format!("{toxiproxy}/proxies"),
        &[("content-type", "application/json")],
        Some(create),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let answer = send(http, Method::POST, &format!("{toxiproxy}/reset"), &[], None).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
}

/// `chaoslab serve` answers the names in ALLOWED_HOSTS (exact, or a
/// domain and its subdomains with a leading dot) besides loopback, and
/// refuses a bad list at start naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_the_names_in_allowed_hosts() {
    let svc = common::Service::builder()
        .env("REDIS_ENABLED", "false")
        .env("ALLOWED_HOSTS", "chaos.example, .apps.example")
        .start();
    let http = common::http(Duration::from_secs(10));
    let root = svc.url("/");
    for host in [
        "chaos.example:8000",
        "CHAOS.example.",
        "apps.example",
        "web.apps.example:443",
        "localhost",
        "127.0.0.1",
    ] {
        let answer = send(&http, Method::GET, &root, &[("host", host)], None).await;
        assert_eq!(answer.status, 200, "Host {host}: {}", answer.body);
    }
    for host in [
        EVIL_HOST,
        "chaos.example.evil.example",
        "xapps.example",
        "10.0.0.1",
    ] {
        let answer = send(&http, Method::GET, &root, &[("host", host)], None).await;
        assert_spec_error(&answer, 403, &format!("Host {host}"));
    }
    // Same origin under a configured name: allowed through to the handler
    // (503: Redis is disabled here).
    let url = svc.url("/chaos/redis-reset");
    let answer = send(
        &http,
        Method::POST,
        &url,
        &[
            ("host", "chaos.example"),
            ("origin", "https://chaos.example"),
        ],
        None,
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let answer = send(
        &http,
        Method::POST,
        &url,
        &[
            ("host", "chaos.example"),
            ("origin", "https://web.apps.example"),
        ],
        None,
    )
    .await;
    assert_spec_error(&answer, 403, "another allowed name is another site");

    let mut bad = common::Service::builder()
        .env("REDIS_ENABLED", "false")
        .env("ALLOWED_HOSTS", "good.example,bad/name")
        .spawn();
    let status = bad
        .wait_exit(chaoslab_test_support::GENEROUS)
        .expect("exits");
    assert_eq!(status.code(), Some(2), "{}", bad.logs());
    assert!(bad.logs().contains("ALLOWED_HOSTS"), "{}", bad.logs());
}

async fn chaos_status(lab: &Lab) -> Value {
    lab.http
        .get(lab.ingress("/chaos/status"))
        .send()
        .await
        .expect("chaos status")
        .json()
        .await
        .expect("chaos status JSON")
}
