//! Property tests of the Toxiproxy API's input handling (issue 11, item 13;
//! SPEC section 13 "Bad input anywhere … never a panic"): arbitrary bytes,
//! arbitrary JSON and plausible-but-wrong field values go to every endpoint
//! that reads a body or a name — proxy create and update (of the lab's own
//! proxy and of an API one), toxic create and update — and the answer is
//! always a success or a 4xx with Toxiproxy's error body: never a panic,
//! never a 5xx (but a bind failure's 500), never serde's wording or a Rust
//! type name, always short and printable. And whatever the body, the lab's
//! own proxy keeps its listen and upstream addresses, and an API proxy never
//! ends up forwarding off the machine.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::Request;
use chaoslab_faultproxy::toxic::Latency;
use chaoslab_faultproxy::{FaultProxy, ToxicKind, ToxicSpec, api, is_local_upstream};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

/// Serde's phrasing and Rust's type names: an error must show neither.
const LEAKS: [&str; 9] = [
    "invalid type:",
    "expected struct",
    "missing field `",
    "unknown variant",
    "expected u64",
    "expected u16",
    "expected f32",
    "expected i64",
    "expected usize",
];

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An address-like string: plausible, hostile or garbage.
fn address() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!("127.0.0.1:0")),
        2 => Just(json!("localhost:0")),
        2 => Just(json!("[::1]:0")),
        3 => Just(json!("127.0.0.1:6379")),
        1 => Just(json!("0.0.0.0:0")),
        3 => Just(json!("10.0.0.1:6379")),
        1 => Just(json!("[2001:db8::1]:80")),
        2 => Just(json!("example.com:80")),
        1 => Just(json!("127.0.0.1")),
        1 => Just(json!("127.0.0.1:99999")),
        1 => Just(json!("127.0.0.1:+1")),
        1 => Just(json!(":80")),
        1 => Just(json!("")),
        2 => "[a-z0-9.:\\[\\]]{0,30}".prop_map(Value::String),
        1 => ".{0,40}".prop_map(Value::String),
        1 => json_value(),
    ]
}

/// An upstream: mostly valid (local or remote), else anything.
fn upstream() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!("127.0.0.1:6379")),
        1 => Just(json!("localhost:6380")),
        1 => Just(json!("[::1]:6381")),
        1 => Just(json!("127.1.2.3:1")),
        2 => Just(json!("10.0.0.1:6379")),
        1 => Just(json!("redis.example.com:6379")),
        3 => address(),
    ]
}

/// A listen address: mostly a free loopback port, else anything.
fn listen() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => Just(json!("127.0.0.1:0")),
        1 => Just(json!("localhost:0")),
        1 => Just(json!("[::1]:0")),
        2 => address(),
    ]
}

/// A name: plausible, empty, long, with control characters, or not a string.
fn name() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => "[a-z_]{1,12}".prop_map(Value::String),
        1 => Just(json!("")),
        1 => Just(json!("x".repeat(300))),
        1 => ".{0,20}".prop_map(Value::String),
        1 => json_value(),
    ]
}

/// A number-ish value for attributes and toxicity.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0u64..10_000).prop_map(|n| json!(n)),
        1 => any::<u64>().prop_map(|n| json!(n)),
        1 => any::<i64>().prop_map(|n| json!(n)),
        2 => (-2.0f64..2.0).prop_map(|f| json!(f)),
        1 => Just(json!(1e300)),
        1 => Just(json!(-0.0)),
        1 => json_value(),
    ]
}

/// An object with some of `fields` (each from its strategy) and maybe an
/// extra field.
fn object_of(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Vec<u8>> {
    let picks: Vec<_> = fields
        .into_iter()
        .map(|(key, values)| prop::option::weighted(0.8, values).prop_map(move |v| (key, v)))
        .collect();
    (picks, prop::option::weighted(0.2, (".{0,8}", json_value()))).prop_map(|(picked, extra)| {
        let mut map = Map::new();
        for (key, value) in picked {
            if let Some(value) = value {
                map.insert(key.to_owned(), value);
            }
        }
        if let Some((key, value)) = extra {
            map.insert(key, value);
        }
        Value::Object(map).to_string().into_bytes()
    })
}

/// A body: arbitrary bytes, arbitrary JSON, or an object shaped like the
/// endpoint's with arbitrary values.
fn body(shaped: impl Strategy<Value = Vec<u8>> + 'static) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        6 => shaped.boxed(),
    ]
}

fn proxy_body() -> impl Strategy<Value = Vec<u8>> {
    body(object_of(vec![
        ("name", name().boxed()),
        ("listen", listen().boxed()),
        ("upstream", upstream().boxed()),
        (
            "enabled",
            prop_oneof![4 => any::<bool>().prop_map(Value::Bool), 1 => json_value()].boxed(),
        ),
    ]))
}

fn attributes() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("latency"),
        Just("jitter"),
        Just("rate"),
        Just("timeout"),
        Just("delay"),
        Just("bytes"),
        Just("average_size"),
        Just("size_variation"),
        Just("other"),
    ];
    prop_oneof![
        4 => prop::collection::btree_map(keys, number(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
        1 => json_value(),
    ]
}

fn toxic_body() -> impl Strategy<Value = Vec<u8>> {
    let kinds = prop_oneof![
        6 => "(latency|bandwidth|timeout|reset_peer|slow_close|limit_data|slicer|deny_new|blackhole|reset)"
            .prop_map(Value::String),
        1 => json_value(),
    ];
    let streams = prop_oneof![
        6 => "(upstream|downstream|both|sideways)".prop_map(Value::String),
        1 => json_value(),
    ];
    body(object_of(vec![
        ("name", name().boxed()),
        ("type", kinds.boxed()),
        ("stream", streams.boxed()),
        ("toxicity", number().boxed()),
        ("attributes", attributes().boxed()),
    ]))
}

fn toxic_change_body() -> impl Strategy<Value = Vec<u8>> {
    body(object_of(vec![
        ("attributes", attributes().boxed()),
        ("toxicity", number().boxed()),
    ]))
}

/// A fault proxy with the lab's `redis` proxy, an API proxy `p` and a
/// latency toxic `t` on it.
struct Rig {
    faults: FaultProxy,
    app: axum::Router,
    redis_listen: String,
    redis_upstream: String,
}

async fn rig() -> Rig {
    let faults = FaultProxy::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let info = faults
        .add_proxy("redis", listener, "127.0.0.1:6379")
        .await
        .unwrap();
    let app = api::router(faults.clone());
    let (status, _) = send(
        &app,
        "POST",
        "/proxies",
        br#"{"name":"p","upstream":"127.0.0.1:6380","enabled":false}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 201);
    let latency = ToxicKind::Latency(Latency {
        latency: 1,
        jitter: 0,
    });
    faults
        .add_toxic("p", ToxicSpec::new(latency).named("t"))
        .unwrap();
    Rig {
        faults,
        app,
        redis_listen: info.listen,
        redis_upstream: info.upstream,
    }
}

async fn send(app: &axum::Router, method: &str, path: &str, body: Vec<u8>) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .extension(axum::extract::ConnectInfo(SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))))
        .body(Body::from(body))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The answer is a success in `ok` or a 4xx (a 500 only for a bind
/// failure) with Toxiproxy's error body, clear and free of serde's words.
fn well_formed(status: u16, answer: &Value, ok: &[u16]) -> Result<(), TestCaseError> {
    if ok.contains(&status) {
        return Ok(());
    }
    let message = answer["error"].as_str().unwrap_or_default();
    prop_assert!(
        (400..500).contains(&status)
            || (status == 500 && message.starts_with("could not listen on")),
        "status {status}: {answer}"
    );
    prop_assert_eq!(
        answer["status"].as_u64(),
        Some(u64::from(status)),
        "{}",
        answer
    );
    prop_assert!(!message.is_empty(), "an error message: {answer}");
    prop_assert!(message.len() <= 600, "a short message: {message}");
    prop_assert!(
        !message.chars().any(char::is_control),
        "printable: {message:?}"
    );
    for leak in LEAKS {
        prop_assert!(!message.contains(leak), "{leak:?} in {message}");
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn creating_a_proxy_from_any_body(body in proxy_body()) {
        runtime().block_on(async {
            let rig = rig().await;
            let (status, answer) = send(&rig.app, "POST", "/proxies", body).await;
            well_formed(status, &answer, &[201])?;
            if status == 201 {
                let upstream = answer["upstream"].as_str().unwrap_or_default();
                prop_assert!(is_local_upstream(upstream), "{answer}");
                let name = answer["name"].as_str().unwrap_or_default();
                prop_assert!(rig.faults.proxy(name).is_ok());
            }
            Ok(())
        })?;
    }

    #[test]
    fn updating_the_labs_proxy_from_any_body(
        body in proxy_body(),
        patch in any::<bool>(),
    ) {
        runtime().block_on(async {
            let rig = rig().await;
            let method = if patch { "PATCH" } else { "POST" };
            let (status, answer) = send(&rig.app, method, "/proxies/redis", body).await;
            well_formed(status, &answer, &[200])?;
            let info = rig.faults.proxy("redis").unwrap();
            prop_assert_eq!(&info.listen, &rig.redis_listen);
            prop_assert_eq!(&info.upstream, &rig.redis_upstream);
            Ok(())
        })?;
    }

    #[test]
    fn updating_an_api_proxy_from_any_body(body in proxy_body()) {
        runtime().block_on(async {
            let rig = rig().await;
            let (status, answer) = send(&rig.app, "POST", "/proxies/p", body).await;
            well_formed(status, &answer, &[200])?;
            let info = rig.faults.proxy("p").unwrap();
            prop_assert!(is_local_upstream(&info.upstream), "{:?}", info);
            Ok(())
        })?;
    }

    #[test]
    fn adding_a_toxic_from_any_body(body in toxic_body()) {
        runtime().block_on(async {
            let rig = rig().await;
            let (status, answer) = send(&rig.app, "POST", "/proxies/p/toxics", body).await;
            well_formed(status, &answer, &[200])?;
            let listed = rig.faults.toxics("p").unwrap().len();
            prop_assert_eq!(listed, if status == 200 { 2 } else { 1 });
            Ok(())
        })?;
    }

    #[test]
    fn changing_a_toxic_from_any_body(body in toxic_change_body()) {
        runtime().block_on(async {
            let rig = rig().await;
            let (status, answer) = send(&rig.app, "POST", "/proxies/p/toxics/t", body).await;
            well_formed(status, &answer, &[200])?;
            let toxic = rig.faults.toxic("p", "t").unwrap();
            prop_assert_eq!(toxic.kind.type_name(), "latency");
            Ok(())
        })?;
    }

    #[test]
    fn any_name_in_a_path(
        name in "[^/?#]{0,40}",
        method in "(GET|POST|PATCH|DELETE)",
        toxic in any::<bool>(),
    ) {
        runtime().block_on(async {
            let rig = rig().await;
            let encoded: String = name
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect();
            let path = if toxic {
                format!("/proxies/p/toxics/{encoded}")
            } else {
                format!("/proxies/{encoded}")
            };
            let (status, answer) = send(&rig.app, &method, &path, b"{}".to_vec()).await;
            well_formed(status, &answer, &[200, 204])?;
            prop_assert!(rig.faults.proxy("redis").is_ok(), "the lab's proxy stays");
            Ok(())
        })?;
    }
}
