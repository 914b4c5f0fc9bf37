//! Component tests of the faults against the real parts they act on: a
//! real `redis-server` (a `LabRedis`, as the lab hands over its own), the
//! real fault proxy in front of it, and the lab's `Platform` for events (no
//! replicas). They
//! check what the end-to-end tests cannot see as directly: the toxic is on
//! the proxy, the ACL password really changed, the data survived a restart,
//! every fault and clearing is an event, and bad input changes nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaoslab_test_support::wait::{GENEROUS, until_async};
use chaoslab_test_support::{free_port, redis};

use axum::body::Body;
use chaoslab_faultproxy::FaultProxy;
use chaoslab_faults::registry::{Ending, Outcome};
use chaoslab_faults::{Faults, REDIS_PROXY};
use chaoslab_lab::{FileConfig, LabConfig, LabRedis, Overrides, Platform, SERVICE_USER};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Rig {
    faults: Faults,
    platform: Arc<Platform>,
    proxy_addr: std::net::SocketAddr,
    redis_addr: std::net::SocketAddr,
    admin_password: String,
    password_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn rig() -> Option<Rig> {
    // CI never skips silently: there, a missing redis-server is a failure.
    if !redis::installed_or_skip() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let redis = LabRedis::standalone(
        "redis-server".as_ref(),
        free_port(),
        &dir.path().join("redis"),
        dir.path().join("redis.log"),
        GENEROUS,
    )
    .await
    .unwrap();
    let redis_addr = redis.addr();
    let admin_password = std::fs::read_to_string(dir.path().join("redis").join("admin.password"))
        .unwrap()
        .trim()
        .to_string();
    let password_file = redis.service_password_file.clone();
    let proxy = FaultProxy::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    proxy
        .add_proxy(REDIS_PROXY, listener, &redis_addr.to_string())
        .await
        .unwrap();
    let config = LabConfig::resolve(
        FileConfig::default(),
        &Overrides::default(),
        "/bin/true".into(),
    )
    .unwrap();
    let platform = Platform::standalone(config, dir.path().join("logs")).unwrap();
    let faults = Faults::start(
        platform.clone(),
        Some(proxy),
        Some(redis),
        "http://127.0.0.1:9".into(),
    )
    .unwrap();
    Some(Rig {
        faults,
        platform,
        proxy_addr,
        redis_addr,
        admin_password,
        password_file,
        _dir: dir,
    })
}

/// A connection to Redis at `addr` as the default user (AUTH with
/// `password` when given), every step within `timeout`; None when none.
async fn connect(
    addr: std::net::SocketAddr,
    password: Option<&str>,
    timeout: Duration,
) -> Option<::redis::aio::MultiplexedConnection> {
    use ::redis::IntoConnectionInfo as _;
    let mut settings = ::redis::RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    let info = ::redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
        .into_connection_info()
        .ok()?
        .set_redis_settings(settings);
    let client = ::redis::Client::open(info).ok()?;
    let config = ::redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let connecting = client.get_multiplexed_async_connection_with_config(&config);
    tokio::time::timeout(timeout, connecting).await.ok()?.ok()
}

async fn ping(addr: std::net::SocketAddr, password: Option<&str>) -> bool {
    let Some(mut conn) = connect(addr, password, Duration::from_millis(500)).await else {
        return false;
    };
    let reply = ::redis::cmd("PING").query_async::<String>(&mut conn).await;
    reply.is_ok_and(|r| r == "PONG")
}

fn reasons(platform: &Platform) -> Vec<(String, String)> {
    platform
        .events()
        .history(0, 1000)
        .into_iter()
        .filter(|e| e.reason.starts_with("Fault"))
        .map(|e| (e.reason, e.data["id"].as_str().unwrap_or("").to_string()))
        .collect()
}

async fn api(rig: &Rig, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        })
        .unwrap();
    let response = rig.faults.router().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Adds (flow 10) a deny-new fault for 2 s, no replicas to reset, checks
/// its record and that a new connection hangs; returns its id.
async fn add_deny_new_for_two_seconds(rig: &Rig, pw: &str) -> String {
    let adding = Instant::now();
    let (status, fault) = api(
        rig,
        "POST",
        "/api/faults",
        Some(json!({"kind": "network", "mode": "deny-new", "duration_seconds": 2})),
    )
    .await;
    assert_eq!(status, 201, "{fault}");
    let id = fault["id"].as_str().unwrap().to_string();
    assert_eq!(
        (fault["kind"].as_str(), fault["target"].as_str()),
        (Some("network"), Some("redis"))
    );
    assert_eq!(fault["duration_seconds"], 2);
    assert!(fault["remaining_seconds"].as_u64().unwrap() <= 2);
    // Judged only if the attempt ended within the fault's 2 s (they start
    // after `adding`): a slow machine may see it expire first.
    let flowed = ping(rig.proxy_addr, Some(pw)).await;
    if adding.elapsed() < Duration::from_secs(2) {
        assert!(!flowed, "a new connection hangs");
    } else {
        eprintln!("note: too slow to see the 2 s fault before it expired");
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_fault_add_list_expire_clear_with_events() {
    let Some(rig) = rig().await else { return };
    let pw = rig.admin_password.clone();
    until_async(GENEROUS, "passthrough", || ping(rig.proxy_addr, Some(&pw))).await;

    let id = add_deny_new_for_two_seconds(&rig, &pw).await;
    until_async(GENEROUS, "Redis itself is fine", || {
        ping(rig.redis_addr, Some(&pw))
    })
    .await;

    // List.
    let (_, list) = api(&rig, "GET", "/api/faults", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["mode"], "deny-new");

    // Auto-expire.
    until_async(GENEROUS, "the fault expires", || async {
        api(&rig, "GET", "/api/faults", None).await.1 == json!([])
    })
    .await;
    until_async(GENEROUS, "flows again after expiry", || {
        ping(rig.proxy_addr, Some(&pw))
    })
    .await;

    // Clear (until cleared), then clear again: idempotent.
    let (status, second) = api(
        &rig,
        "POST",
        "/api/faults",
        Some(json!({"kind": "network", "mode": "blackhole", "duration_seconds": 0})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(second["remaining_seconds"], Value::Null);
    let second_id = second["id"].as_str().unwrap().to_string();
    assert_ne!(second_id, id, "ids are never reused");
    let (status, cleared) = api(&rig, "DELETE", &format!("/api/faults/{second_id}"), None).await;
    assert_eq!((status, cleared["cleared"].clone()), (200, json!(true)));
    let (status, cleared) = api(&rig, "DELETE", &format!("/api/faults/{second_id}"), None).await;
    assert_eq!((status, cleared["cleared"].clone()), (200, json!(false)));
    until_async(GENEROUS, "Redis answers a PING", || {
        ping(rig.proxy_addr, Some(&pw))
    })
    .await;

    let events = reasons(&rig.platform);
    assert_eq!(
        events,
        vec![
            ("FaultInjected".into(), id.clone()),
            ("FaultExpired".into(), id),
            ("FaultInjected".into(), second_id.clone()),
            ("FaultCleared".into(), second_id),
        ]
    );
    rig.faults.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_400_with_the_error_body_and_changes_nothing() {
    let Some(rig) = rig().await else { return };
    for body in [
        json!({"kind": "network", "mode": "sideways"}),
        json!({"kind": "network", "duration_seconds": -1}),
        json!({"kind": "network", "mode": "latency"}),
        json!({"kind": "kill", "replica": "no-such-replica"}),
        json!({"kind": "deploy", "variant": "bad-mood"}),
        json!({"kind": "redis", "action": "explode"}),
        json!({"kind": "auth", "action": "forget"}),
        json!({"kind": "weather"}),
        json!("not an object"),
    ] {
        let (status, answer) = api(&rig, "POST", "/api/faults", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {answer}");
        for field in ["error", "detail", "timestamp", "request_id"] {
            assert!(answer[field].is_string(), "{field} in {answer}");
        }
    }
    let (_, answer) = api(
        &rig,
        "POST",
        "/api/faults",
        Some(json!({"kind": "kill", "replica": "r-9"})),
    )
    .await;
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("unknown replica `r-9`"),
        "{answer}"
    );
    assert_eq!(api(&rig, "GET", "/api/faults", None).await.1, json!([]));
    assert!(
        reasons(&rig.platform).is_empty(),
        "no event for refused input"
    );
    until_async(GENEROUS, "Redis answers a PING", || {
        ping(rig.proxy_addr, Some(&rig.admin_password))
    })
    .await;
    rig.faults.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_revoke_rotates_the_acl_password_and_restore_publishes_it() {
    let Some(rig) = rig().await else { return };
    let old = std::fs::read_to_string(&rig.password_file).unwrap();
    let auth = async |password: &str| {
        let mut conn = connect(rig.redis_addr, None, GENEROUS).await.unwrap();
        ::redis::cmd("AUTH")
            .arg(SERVICE_USER)
            .arg(password)
            .query_async::<()>(&mut conn)
            .await
            .is_ok()
    };
    assert!(auth(&old).await);
    let registry = rig.faults.registry();
    let Outcome::Injected(fault) = registry
        .inject(serde_json::from_value(json!({"kind": "auth", "action": "revoke"})).unwrap())
        .await
        .unwrap()
    else {
        panic!("revoke is a fault")
    };
    assert!(!auth(&old).await, "the old password is revoked");
    assert_eq!(
        std::fs::read_to_string(&rig.password_file).unwrap(),
        old,
        "the file is untouched"
    );
    // A second revoke while one is active is refused.
    assert!(
        registry
            .inject(serde_json::from_value(json!({"kind": "auth", "action": "revoke"})).unwrap())
            .await
            .is_err()
    );
    let Outcome::Restored(ids) = registry
        .inject(serde_json::from_value(json!({"kind": "auth", "action": "restore"})).unwrap())
        .await
        .unwrap()
    else {
        panic!("restore restores")
    };
    assert_eq!(ids, vec![fault["id"].as_str().unwrap().to_string()]);
    let new = std::fs::read_to_string(&rig.password_file).unwrap();
    assert_ne!(new, old);
    assert!(auth(&new).await, "the file holds the new credential");
    rig.faults.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stop_and_clear_restarts_it_with_its_data() {
    let Some(rig) = rig().await else { return };
    let pw = rig.admin_password.clone();
    let mut conn = connect(rig.redis_addr, Some(&pw), GENEROUS).await.unwrap();
    ::redis::cmd("SET")
        .arg("kept")
        .arg("yes")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let registry = rig.faults.registry();
    let Outcome::Injected(fault) = registry
        .inject(serde_json::from_value(json!({"kind": "redis", "action": "stop"})).unwrap())
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(!ping(rig.redis_addr, Some(&pw)).await, "stopped");
    let id = fault["id"].as_str().unwrap();
    assert!(registry.clear(id, Ending::Cleared, true).await.unwrap());
    until_async(GENEROUS, "started again", || {
        ping(rig.redis_addr, Some(&pw))
    })
    .await;
    let mut conn = connect(rig.redis_addr, Some(&pw), GENEROUS).await.unwrap();
    let mut get = ::redis::cmd("GET");
    let kept = get.arg("kept");
    assert_eq!(kept.query_async::<String>(&mut conn).await.unwrap(), "yes");
    // The service user exists again with the file's password.
    let password = std::fs::read_to_string(&rig.password_file).unwrap();
    let mut conn = connect(rig.redis_addr, None, GENEROUS).await.unwrap();
    let mut auth = ::redis::cmd("AUTH");
    let authed = auth.arg(SERVICE_USER).arg(&password);
    assert_eq!(authed.query_async::<String>(&mut conn).await.unwrap(), "OK");
    // A restart is a one-shot: done and not listed.
    let (status, restart) = api(
        &rig,
        "POST",
        "/api/faults",
        Some(json!({"kind": "redis", "action": "restart"})),
    )
    .await;
    assert_eq!(status, 201, "{restart}");
    assert_eq!(restart["remaining_seconds"], 0);
    until_async(GENEROUS, "Redis answers a PING", || {
        ping(rig.redis_addr, Some(&pw))
    })
    .await;
    assert_eq!(api(&rig, "GET", "/api/faults", None).await.1, json!([]));
    rig.faults.shutdown().await;
}

/// A request to the fault proxy's Toxiproxy-compatible API (what
/// toxiproxy-python and chaostoolkit-toxiproxy send).
async fn toxiproxy(rig: &Rig, method: &str, path: &str, body: Value) -> (u16, Value) {
    let proxy = rig.faults.registry().lab().proxy.clone().unwrap();
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = chaoslab_faultproxy::api::router(proxy)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Waits until the proxy follower has announced everything before now: it
/// handles the proxy's changes in order, so once a toxic added now is
/// announced, every earlier change was handled (and nothing was announced
/// twice). The toxic is then removed again.
async fn follower_caught_up(rig: &Rig, marker: &str) {
    let (status, _) = toxiproxy(
        rig,
        "POST",
        "/proxies/redis/toxics",
        json!({"name": marker, "type": "latency", "attributes": {"latency": 0}}),
    )
    .await;
    assert_eq!(status, 200);
    let seen = ("FaultInjected".to_string(), marker.to_string());
    until_async(GENEROUS, "the follower caught up", || async {
        reasons(&rig.platform).contains(&seen)
    })
    .await;
    let (status, _) = api(rig, "DELETE", &format!("/api/faults/{marker}"), None).await;
    assert_eq!(status, 200);
}

fn without(events: Vec<(String, String)>, marker: &str) -> Vec<(String, String)> {
    events.into_iter().filter(|(_, id)| id != marker).collect()
}

/// The faults list holds exactly the disabled `redis` proxy, as a fault
/// of the Toxiproxy API.
async fn assert_listed_as_disabled_proxy(rig: &Rig) {
    let (_, list) = api(rig, "GET", "/api/faults", None).await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 1, "{list:?}");
    let fault = &list[0];
    assert_eq!(fault["id"], "redis-disabled");
    assert_eq!(fault["kind"], "network");
    assert_eq!(fault["mode"], "proxy-disabled");
    assert_eq!(fault["target"], "redis");
    assert_eq!(fault["origin"], "api");
    assert_eq!(fault["remaining_seconds"], Value::Null);
    assert!(fault["started"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_disabled_through_the_toxiproxy_api_is_a_fault_until_cleared() {
    let Some(rig) = rig().await else { return };
    let pw = rig.admin_password.clone();
    until_async(GENEROUS, "passthrough", || ping(rig.proxy_addr, Some(&pw))).await;
    let disable = || toxiproxy(&rig, "POST", "/proxies/redis", json!({"enabled": false}));
    let injected = ("FaultInjected".to_string(), "redis-disabled".to_string());
    let cleared = ("FaultCleared".to_string(), "redis-disabled".to_string());

    // chaostoolkit-toxiproxy's disable_proxy: listed at once, announced.
    let (status, proxy) = disable().await;
    assert_eq!((status, proxy["enabled"].clone()), (200, json!(false)));
    assert!(!ping(rig.proxy_addr, Some(&pw)).await, "Redis is cut off");
    assert_listed_as_disabled_proxy(&rig).await;
    until_async(GENEROUS, "FaultInjected", || async {
        reasons(&rig.platform).contains(&injected)
    })
    .await;

    // `fault clear --all` enables it again, announced once.
    let (status, answer) = api(&rig, "DELETE", "/api/faults", None).await;
    assert_eq!(
        (status, answer),
        (200, json!({"cleared": ["redis-disabled"]}))
    );
    until_async(GENEROUS, "flows again", || ping(rig.proxy_addr, Some(&pw))).await;
    assert_eq!(api(&rig, "GET", "/api/faults", None).await.1, json!([]));
    follower_caught_up(&rig, "marker-1").await;
    assert_eq!(
        without(reasons(&rig.platform), "marker-1"),
        vec![injected.clone(), cleared.clone()]
    );

    // `fault clear redis-disabled`, then again: idempotent.
    disable().await;
    let (status, answer) = api(&rig, "DELETE", "/api/faults/redis-disabled", None).await;
    assert_eq!((status, answer["cleared"].clone()), (200, json!(true)));
    let (status, answer) = api(&rig, "DELETE", "/api/faults/redis-disabled", None).await;
    assert_eq!((status, answer["cleared"].clone()), (200, json!(false)));
    until_async(GENEROUS, "flows again", || ping(rig.proxy_addr, Some(&pw))).await;

    // Enabled again through the API (enable_proxy): cleared, announced.
    disable().await;
    let (status, _) = toxiproxy(&rig, "POST", "/proxies/redis", json!({"enabled": true})).await;
    assert_eq!(status, 200);
    assert_eq!(api(&rig, "GET", "/api/faults", None).await.1, json!([]));
    follower_caught_up(&rig, "marker-2").await;
    let events = without(without(reasons(&rig.platform), "marker-1"), "marker-2");
    assert_eq!(
        events,
        [&injected, &cleared]
            .repeat(3)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
    );

    // Disabled when the lab stops: cleared (announced) with the rest.
    disable().await;
    until_async(GENEROUS, "FaultInjected", || async {
        reasons(&rig.platform)
            .iter()
            .filter(|e| **e == injected)
            .count()
            == 4
    })
    .await;
    rig.faults.shutdown().await;
    let events = reasons(&rig.platform);
    assert_eq!(
        events.iter().filter(|e| **e == cleared).count(),
        4,
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&cleared));
}
