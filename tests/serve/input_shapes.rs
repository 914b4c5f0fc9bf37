//! Input of the wrong shape, as a careless or hostile client sends it: a
//! JSON array or string where an object belongs (serde's positional form of
//! a struct must not be accepted), a mistyped enum field, `null` where a
//! value is required, and HTTP heads the parser refuses (too long a URL,
//! too large a head, garbage). Every answer is the SPEC §3 error body with
//! a detail naming the field and what it expects — never a Rust type name,
//! never an empty body.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{RedisServer, Service, get_json, http};

/// Words that only a Rust deserializer would say.
const RUST_WORDS: &[&str] = &[
    "struct",
    "LoadRequest",
    "HangRequest",
    "ResetRequest",
    "variant identifier",
    "i64",
    "u32",
    "u64",
    "bool`",
    "malformed JSON",
];

fn assert_section3(body: &Value, error: &str) {
    assert_eq!(body["error"], error, "body: {body}");
    assert!(
        body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "body: {body}"
    );
    assert!(
        body["request_id"].as_str().is_some_and(|r| !r.is_empty()),
        "body: {body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "body: {body}"
    );
}

/// One wrong-shaped body: the path it goes to, the body, and the words the
/// 400's detail must contain.
type ShapeCase = (&'static str, Value, &'static [&'static str]);

/// A JSON array, string, number or `null` where `/chaos/load` wants an
/// object: serde's positional form of `LoadRequest` was accepted before.
fn load_bodies_that_are_not_objects() -> Vec<ShapeCase> {
    vec![
        ("/chaos/load", json!(["low", 5]), &["JSON object", "level"]),
        ("/chaos/load", json!(["low", 5, 1, 0]), &["JSON object"]),
        ("/chaos/load", json!("low"), &["JSON object", "a string"]),
        ("/chaos/load", json!(42), &["JSON object", "a number"]),
        ("/chaos/load", json!(null), &["JSON object"]),
    ]
}

/// `/chaos/load` objects with a mistyped, missing or unknown field (a
/// mistyped enum field was "malformed JSON").
fn load_objects_with_a_wrong_field() -> Vec<ShapeCase> {
    vec![
        (
            "/chaos/load",
            json!({"level": 5, "duration_seconds": 5}),
            &["level", "\"low\"", "a number"],
        ),
        (
            "/chaos/load",
            json!({"level": ["low"], "duration_seconds": 5}),
            &["level", "an array"],
        ),
        (
            "/chaos/load",
            json!({"level": null, "duration_seconds": 5}),
            &["level"],
        ),
        (
            "/chaos/load",
            json!({"level": "low", "duration_seconds": "60"}),
            &["duration_seconds", "integer", "a string"],
        ),
        (
            "/chaos/load",
            json!({"level": "low", "duration_seconds": 2.5}),
            &["duration_seconds", "integer", "2.5"],
        ),
        (
            "/chaos/load",
            json!({"level": "low", "duration_seconds": 5, "cpu_percent": true}),
            &["cpu_percent", "integer"],
        ),
        (
            "/chaos/load",
            json!({"level": "low", "duration_seconds": 5, "memory_mb": -1}),
            &["memory_mb", "-1"],
        ),
        (
            "/chaos/load",
            json!({"level": "low", "duration_seconds": 5, "pad": 1}),
            &["unknown field", "pad", "level"],
        ),
        ("/chaos/load", json!({}), &["level", "required"]),
    ]
}

/// Wrong shapes for `/chaos/hang` and `/chaos/redis-reset`.
fn hang_and_reset_bodies_of_the_wrong_shape() -> Vec<ShapeCase> {
    vec![
        (
            "/chaos/hang",
            json!([1]),
            &["JSON object", "duration_seconds"],
        ),
        (
            "/chaos/hang",
            json!({"duration_seconds": 1, "scope": 7}),
            &["scope", "\"request\"", "a number"],
        ),
        (
            "/chaos/hang",
            json!({"duration_seconds": 1, "scope": "galaxy"}),
            &["scope", "galaxy"],
        ),
        (
            "/chaos/redis-reset",
            json!([true]),
            &["JSON object", "force"],
        ),
        (
            "/chaos/redis-reset",
            json!({"force": "yes"}),
            &["force", "true or false", "a string"],
        ),
        ("/chaos/redis-reset", json!({"forse": true}), &["forse"]),
    ]
}

/// Posts the case's body and checks the answer is a SPEC §3 400 whose
/// detail has every expected word and no word of Rust's.
async fn assert_400_naming_the_field(client: &reqwest::Client, svc: &Service, case: ShapeCase) {
    let (path, body, words) = case;
    let resp = client.post(svc.url(path)).json(&body).send().await.unwrap();
    let status = resp.status();
    assert!(resp.headers().contains_key("x-request-id"));
    let err: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {err}");
    assert_section3(&err, "Bad Request");
    let detail = err["detail"].as_str().unwrap();
    for word in words {
        assert!(
            detail.contains(word),
            "{path} {body}: detail {detail:?} lacks {word:?}"
        );
    }
    for word in RUST_WORDS {
        assert!(
            !detail.contains(word),
            "{path} {body}: detail {detail:?} says {word:?}"
        );
    }
}

/// A body of whitespace is not a left-out body (schemathesis found `\n`
/// accepted as "no body").
async fn assert_whitespace_bodies_are_malformed_json(client: &reqwest::Client, svc: &Service) {
    for (path, body) in [
        ("/chaos/redis-reset", "\n"),
        ("/chaos/load", "  "),
        ("/chaos/hang", "\r\n"),
    ] {
        let resp = client
            .post(svc.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path} {body:?}");
        let err: Value = resp.json().await.unwrap();
        assert_section3(&err, "Bad Request");
        assert!(
            err["detail"].as_str().unwrap().contains("malformed JSON"),
            "{err}"
        );
    }
}

/// Optional fields may be null (= left out); the body's object form works.
async fn assert_the_object_form_with_null_optionals_works(client: &reqwest::Client, svc: &Service) {
    let resp = client
        .post(svc.url("/chaos/load"))
        .json(&json!({"level": "low", "duration_seconds": 5, "cpu_percent": 1, "memory_mb": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let started: Value = resp.json().await.unwrap();
    assert_eq!(started["memory_mb"], 100, "{started}");
    assert_eq!(
        client
            .delete(svc.url("/chaos/load"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let resp = client
        .post(svc.url("/chaos/redis-reset"))
        .json(&json!({"force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_a_400_naming_the_field() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    let client = http(Duration::from_secs(10));
    let cases = load_bodies_that_are_not_objects()
        .into_iter()
        .chain(load_objects_with_a_wrong_field())
        .chain(hang_and_reset_bodies_of_the_wrong_shape());
    for case in cases {
        assert_400_naming_the_field(&client, &svc, case).await;
    }
    assert_whitespace_bodies_are_malformed_json(&client, &svc).await;
    // Nothing was started by any of that.
    let status = get_json(&client, svc.url("/chaos/status")).await;
    assert_eq!(status["load"]["active"], false, "{status}");
    assert_eq!(status["hang"]["active"], false, "{status}");

    assert_the_object_form_with_null_optionals_works(&client, &svc).await;
}

/// Sends `request` raw and reads the whole answer until the server closes
/// (bounded by a read timeout): status code, head, body.
fn raw_exchange(port: u16, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // The server may answer and close before it has read everything. (No
    // half-close: the server takes a client's EOF for hanging up.)
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if answer.is_empty() => panic!("no answer: {e}"),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    (code, head.to_string(), body.to_string())
}

/// Every answer in `answers` (a pipelined exchange) as (status, body).
fn split_answers(raw: &str) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some((head, after)) = rest.split_once("\r\n\r\n") {
        let code: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("content-length");
        out.push((code, serde_json::from_str(&after[..len]).unwrap()));
        rest = &after[len..];
    }
    out
}

/// One head the parser refuses: the raw request, the status, its reason
/// (the body's `error`) and the words the detail must contain.
type RefusedHead = (String, u16, &'static str, &'static [&'static str]);

/// Heads over a limit: too long a URL (8 KiB), too large a head (16 KiB),
/// too many header fields.
fn heads_over_a_limit() -> Vec<RefusedHead> {
    let long_url = |n: usize| {
        format!(
            "GET /?q={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "a".repeat(n)
        )
    };
    let big_head = |n: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}\r\n\r\n",
            "b".repeat(n)
        )
    };
    let many_headers = {
        let mut h = String::from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for i in 0..150 {
            h.push_str(&format!("X-H{i}: v\r\n"));
        }
        h + "\r\n"
    };
    vec![
        (long_url(9 * 1024), 414, "URI Too Long", &["8 KiB"]),
        (long_url(100 * 1024), 414, "URI Too Long", &["8 KiB"]),
        (
            big_head(20 * 1024),
            431,
            "Request Header Fields Too Large",
            &["16 KiB"],
        ),
        (
            big_head(600 * 1024),
            431,
            "Request Header Fields Too Large",
            &["16 KiB"],
        ),
        (
            many_headers,
            431,
            "Request Header Fields Too Large",
            &["header fields"],
        ),
    ]
}

/// Heads that are not HTTP/1.1 as the parser reads it: garbage, a header
/// line without a colon, a bad Content-Length or Transfer-Encoding, an
/// unknown version.
fn malformed_heads() -> Vec<RefusedHead> {
    vec![
        (
            "GARBAGE\r\n\r\n".into(),
            400,
            "Bad Request",
            &["request line"],
        ),
        (
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n".into(),
            400,
            "Bad Request",
            &["header"],
        ),
        (
            "POST /chaos/load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n".into(),
            400,
            "Bad Request",
            &["Content-Length"],
        ),
        (
            "POST /chaos/load HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n"
                .into(),
            400,
            "Bad Request",
            &["Transfer-Encoding"],
        ),
        (
            "GET / HTTP/3.0\r\nHost: 127.0.0.1\r\n\r\n".into(),
            400,
            "Bad Request",
            &["HTTP/1.1"],
        ),
    ]
}

/// Sends the refused head raw and checks the answer: its status, a request
/// id, a JSON SPEC §3 body whose detail has every expected word.
fn assert_refused_with_the_error_body(port: u16, case: RefusedHead) {
    let (request, code, reason, words) = case;
    let what = &request[..request.len().min(60)];
    let (got, head, body) = raw_exchange(port, request.as_bytes());
    assert_eq!(got, code, "{what:?}: {head}\n{body}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("x-request-id:"), "{what:?}: {head}");
    assert!(
        lower.contains("content-type: application/json"),
        "{what:?}: {head}"
    );
    let body: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{what:?}: body {body:?} is not JSON: {e}"));
    assert_section3(&body, reason);
    let detail = body["detail"].as_str().unwrap();
    for word in words {
        assert!(
            detail.contains(word),
            "{what:?}: detail {detail:?} lacks {word:?}"
        );
    }
}

#[test]
fn heads_the_parser_refuses_get_the_error_body() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    for case in heads_over_a_limit().into_iter().chain(malformed_heads()) {
        assert_refused_with_the_error_body(svc.port, case);
    }
    // A head just under the limits is served as usual.
    let ok = format!(
        "GET /livez?q={} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(8 * 1024 - 20),
        "b".repeat(6 * 1024)
    );
    let (code, head, _) = raw_exchange(svc.port, ok.as_bytes());
    assert_eq!(code, 200, "{head}");
}

#[test]
fn a_refused_head_is_answered_after_the_requests_before_it() {
    let redis = RedisServer::start();
    let svc = Service::builder().redis(&redis).start();
    // Two good requests (one with a body), then a head over 16 KiB, then a
    // request the server must never see.
    let body = r#"{"force": true}"#;
    let request = format!(
        "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\
         POST /chaos/redis-reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}\
         GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: {}\r\n\r\n\
         POST /chaos/load HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"level\":\"low\",\"duration_seconds\":3600}}",
        body.len(),
        "p".repeat(17 * 1024),
    );
    let mut stream = TcpStream::connect(("127.0.0.1", svc.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let answers = split_answers(&String::from_utf8_lossy(&raw));
    let codes: Vec<u16> = answers.iter().map(|(c, _)| *c).collect();
    assert_eq!(codes, [200, 200, 431], "{answers:?}");
    assert_eq!(answers[1].1["status"], "redis_connections_reset");
    assert_section3(&answers[2].1, "Request Header Fields Too Large");
    let status = http_get_json(svc.port, "/chaos/status");
    assert_eq!(status["load"]["active"], false, "{status}");
}

fn http_get_json(port: u16, path: &str) -> Value {
    let (code, _, body) = raw_exchange(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(code, 200);
    serde_json::from_str(&body).unwrap()
}
