//! Entra ID end to end (SPEC §4, seed auth-failure flow; issue 13 item 7):
//! the real `chaoslab serve` built with `--features entra-id`, a real
//! redis-server with an ACL user named after the identity's object id, and
//! a local stand-in for the managed-identity endpoint Container Apps
//! provides (IDENTITY_ENDPOINT + IDENTITY_HEADER, api-version 2019-08-01).
//!
//! The stand-in identity endpoint is the one test double: there is no Azure
//! here. It checks what the real endpoint checks (the X-IDENTITY-HEADER
//! secret, the api-version, the resource, the user-assigned identity's
//! client_id), mints unsigned JWTs with `oid`/`exp` claims and short
//! lifetimes, and plays Entra ID + Azure Managed Redis's side: each minted
//! token becomes a password of the ACL user while it is valid and is
//! removed when it expires. A MONITOR connection shows which connection
//! authenticated when.
//!
//! Run with `cargo test --features entra-id --test serve_entra`.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use reqwest::StatusCode as Status;
use serde_json::{Value, json};

use common::{GENEROUS, RedisServer, Service, eventually_async, get_status, http};

/// The object id of the user-assigned identity the tests use.
const OBJECT_ID: &str = "3f0c6c1e-7d1a-4c1e-9a51-entra0bject1d";
/// Its client id (AZURE_CLIENT_ID selects it).
const CLIENT_ID: &str = "a1b2c3d4-client-id-of-the-identity";
/// The IDENTITY_HEADER secret the platform gives the replica.
const IDENTITY_SECRET: &str = "stand-in-identity-header-secret";

/// One token the stand-in minted.
#[derive(Clone, Debug)]
struct Minted {
    token: String,
    requested_at: SystemTime,
    expires_at: SystemTime,
}

/// The stand-in identity endpoint's state.
struct Identity {
    redis_port: u16,
    lifetime: Duration,
    /// While set, tokens are still minted but Redis no longer accepts the
    /// identity (its access was revoked).
    revoked: AtomicBool,
    minted: Mutex<Vec<Minted>>,
    /// Requests refused (wrong secret, api-version, resource, client_id).
    refused: Mutex<Vec<String>>,
    serial: AtomicU64,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Runs a command on the test's Redis as its admin.
fn admin(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["--no-auth-warning", "-a", "admin"])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn token_endpoint(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let refuse = |status: StatusCode, why: String| {
        id.refused.lock().unwrap().push(why.clone());
        (
            status,
            axum::Json(json!({"error": "invalid_request", "error_description": why})),
        )
            .into_response()
    };
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(IDENTITY_SECRET)
    {
        return refuse(StatusCode::UNAUTHORIZED, "bad X-IDENTITY-HEADER".into());
    }
    if query.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return refuse(StatusCode::BAD_REQUEST, format!("api-version {query:?}"));
    }
    if query.get("resource").map(String::as_str) != Some("https://redis.azure.com") {
        return refuse(StatusCode::BAD_REQUEST, format!("resource {query:?}"));
    }
    if query.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        // The system-assigned identity is not assigned to this replica.
        return refuse(StatusCode::BAD_REQUEST, format!("client_id {query:?}"));
    }
    let now = SystemTime::now();
    let expires_at = now + id.lifetime;
    let serial = id.serial.fetch_add(1, Ordering::Relaxed);
    let claims =
        json!({"oid": OBJECT_ID, "exp": unix(expires_at), "iat": unix(now), "jti": serial});
    let token = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    if !id.revoked.load(Ordering::SeqCst) {
        let port = id.redis_port;
        let pass = format!(">{token}");
        tokio::task::spawn_blocking(move || admin(port, &["ACL", "SETUSER", OBJECT_ID, &pass]))
            .await
            .unwrap();
    }
    id.minted.lock().unwrap().push(Minted {
        token: token.clone(),
        requested_at: now,
        expires_at,
    });
    axum::Json(json!({
        "access_token": token,
        "expires_on": unix(expires_at).to_string(),
        "resource": "https://redis.azure.com",
        "token_type": "Bearer",
        "client_id": CLIENT_ID,
    }))
    .into_response()
}

/// Starts the stand-in on a loopback port; its IDENTITY_ENDPOINT.
async fn start_identity(id: Arc<Identity>) -> String {
    let app = axum::Router::new()
        .route("/msi/token", axum::routing::get(token_endpoint))
        .with_state(id);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/msi/token")
}

/// Removes each minted token from the ACL user once it expires, as Entra
/// ID's expiry would make Redis refuse it; ends with the test.
fn enforce_expiry(id: Arc<Identity>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut removed = 0;
        while !stop.load(Ordering::SeqCst) {
            let expired: Vec<Minted> = id.minted.lock().unwrap()[removed..]
                .iter()
                .take_while(|m| m.expires_at <= SystemTime::now())
                .cloned()
                .collect();
            for m in &expired {
                admin(
                    id.redis_port,
                    &["ACL", "SETUSER", OBJECT_ID, &format!("<{}", m.token)],
                );
            }
            removed += expired.len();
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// A MONITOR session: `(client address, command)` of everything Redis runs.
struct Monitor {
    seen: Arc<Mutex<Vec<(String, String)>>>,
    stream: TcpStream,
}

impl Monitor {
    fn start(port: u16) -> Monitor {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"AUTH admin\r\nMONITOR\r\n").unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { return };
                // +1700000000.123456 [0 127.0.0.1:54321] "GET" "key"
                let Some(rest) = line.split_once(" [").map(|(_, r)| r) else {
                    continue;
                };
                let Some((client, cmd)) = rest.split_once("] ") else {
                    continue;
                };
                let addr = client.split_whitespace().nth(1).unwrap_or("").to_string();
                let name = cmd.split('"').nth(1).unwrap_or("").to_uppercase();
                sink.lock().unwrap().push((addr, name));
            }
        });
        Monitor { seen, stream }
    }

    /// The client addresses that ran `command`.
    fn clients_running(&self, command: &str) -> Vec<String> {
        let mut addrs: Vec<String> = self
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, c)| c == command)
            .map(|(a, _)| a.clone())
            .collect();
        addrs.dedup();
        addrs
    }

    /// How many times `addr` ran `command`.
    fn count(&self, addr: &str, command: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, c)| a == addr && c == command)
            .count()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stream.shutdown(std::net::Shutdown::Both).ok();
    }
}

/// The failed-authentication entries of the ACL log.
fn acl_auth_failures(port: u16) -> usize {
    admin(port, &["ACL", "LOG"])
        .lines()
        .filter(|l| l.trim() == "auth")
        .count()
}

struct Setup {
    redis: RedisServer,
    id: Arc<Identity>,
    endpoint: String,
}

async fn setup(lifetime: Duration) -> Option<Setup> {
    let redis = if chaoslab_test_support::redis::installed_or_skip() {
        RedisServer::start_with_acl()
    } else {
        return None;
    };
    // The identity's Redis user: Azure Managed Redis names it after the
    // object id; it has no password until a token is minted.
    let port = redis.port;
    assert_eq!(
        admin(
            port,
            &[
                "ACL",
                "SETUSER",
                OBJECT_ID,
                "on",
                "resetpass",
                "~*",
                "+@all"
            ]
        ),
        "OK"
    );
    let id = Arc::new(Identity {
        redis_port: port,
        lifetime,
        revoked: AtomicBool::new(false),
        minted: Mutex::new(Vec::new()),
        refused: Mutex::new(Vec::new()),
        serial: AtomicU64::new(0),
    });
    let endpoint = start_identity(id.clone()).await;
    Some(Setup {
        redis,
        id,
        endpoint,
    })
}

fn service(s: &Setup, identity_header: &str) -> Service {
    Service::builder()
        .env("REDIS_HOST", "127.0.0.1")
        .env("REDIS_PORT", s.redis.port)
        .env("REDIS_USE_ENTRA_ID", "true")
        .env("AZURE_CLIENT_ID", CLIENT_ID)
        .env("IDENTITY_ENDPOINT", &s.endpoint)
        .env("IDENTITY_HEADER", identity_header)
        .env("REDIS_SOCKET_TIMEOUT", "2")
        .env("REDIS_SOCKET_CONNECT_TIMEOUT", "2")
        .env("REDIS_BACKOFF_BASE", "0.2")
        .env("REDIS_BACKOFF_CAP", "0.5")
        .start()
}

fn minted(id: &Identity) -> Vec<Minted> {
    id.minted.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_renewed_on_the_live_connection_and_a_revoked_identity_is_a_503() {
    let lifetime = Duration::from_secs(8);
    let Some(s) = setup(lifetime).await else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let enforcer = enforce_expiry(s.id.clone(), stop.clone());
    let monitor = Monitor::start(s.redis.port);
    let svc = service(&s, IDENTITY_SECRET);
    let client = http(Duration::from_secs(20));

    // Start-up: a token, AUTH as the object id, the counter served.
    assert_eq!(
        get_status(&client, svc.url("/")).await,
        Status::OK,
        "{}",
        svc.logs()
    );
    assert!(!minted(&s.id).is_empty(), "no token was requested");
    assert!(
        s.id.refused.lock().unwrap().is_empty(),
        "{:?}",
        s.id.refused.lock().unwrap()
    );

    // Three lifetimes of steady traffic while expired tokens are removed:
    // every request succeeds, Redis never refuses a credential, and the one
    // connection authenticates again before each token runs out.
    renewed_on_the_live_connection(&s, &svc, &client, &monitor, lifetime).await;

    // The connection dropped (as the platform may): reconnecting uses the
    // current token, which Redis still accepts (the request that found the
    // connection broken may be a 503 `Redis connection failed`: an INCR
    // that may have been sent is not repeated).
    admin(s.redis.port, &["CLIENT", "KILL", "USER", OBJECT_ID]);
    eventually_async(GENEROUS, "GET / is 200 after the reconnect", || async {
        (get_status(&client, svc.url("/")).await == Status::OK).then_some(())
    })
    .await;
    assert_eq!(acl_auth_failures(s.redis.port), 0, "{}", svc.logs());

    // Revoked: the identity still gets tokens, Redis refuses them all.
    revoked_is_a_503(&s, &svc, &client).await;

    // Access restored: the next token works without a restart.
    s.id.revoked.store(false, Ordering::SeqCst);
    eventually_async(
        GENEROUS,
        "GET / is 200 again once access is restored",
        || async { (get_status(&client, svc.url("/")).await == Status::OK).then_some(()) },
    )
    .await;

    stop.store(true, Ordering::SeqCst);
    enforcer.join().unwrap();
}

/// Steady traffic for three token lifetimes: every answer 200, tokens
/// renewed before the previous one expires, no refused AUTH, and one
/// service connection authenticating again at least three times.
async fn renewed_on_the_live_connection(
    s: &Setup,
    svc: &Service,
    client: &reqwest::Client,
    monitor: &Monitor,
    lifetime: Duration,
) {
    let started = Instant::now();
    while started.elapsed() < lifetime * 3 {
        assert_eq!(
            get_status(client, svc.url("/")).await,
            Status::OK,
            "{}",
            svc.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tokens = minted(&s.id);
    assert!(
        tokens.len() >= 3,
        "only {} tokens in 3 lifetimes",
        tokens.len()
    );
    for pair in tokens.windows(2) {
        assert!(
            pair[1].requested_at < pair[0].expires_at,
            "a token was renewed only after the previous one expired: {pair:?}"
        );
    }
    assert_eq!(
        acl_auth_failures(s.redis.port),
        0,
        "{}",
        admin(s.redis.port, &["ACL", "LOG"])
    );
    let service_clients = monitor.clients_running("INCRBY");
    assert_eq!(
        service_clients.len(),
        1,
        "the service reconnected instead of authenticating again: {service_clients:?}; seen: {:?}",
        &monitor.seen.lock().unwrap()[..]
    );
    let auths = monitor.count(&service_clients[0], "AUTH");
    assert!(
        auths >= 3,
        "the live connection authenticated {auths} times in 3 lifetimes"
    );
}

/// With the identity's access revoked, `/` is a 503 `Redis authentication
/// failed` after a fresh token was tried, and `/health` is a 503 too.
async fn revoked_is_a_503(s: &Setup, svc: &Service, client: &reqwest::Client) {
    s.id.revoked.store(true, Ordering::SeqCst);
    admin(s.redis.port, &["ACL", "SETUSER", OBJECT_ID, "resetpass"]);
    admin(s.redis.port, &["CLIENT", "KILL", "USER", OBJECT_ID]);
    // The first request may only find the connection broken (see above).
    let first = client.get(svc.url("/")).send().await.unwrap();
    assert_eq!(first.status(), Status::SERVICE_UNAVAILABLE);
    let before = minted(&s.id).len();
    let resp = client.get(svc.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), Status::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["detail"], "Redis authentication failed", "{body}");
    assert!(
        minted(&s.id).len() > before,
        "no new token was fetched after Redis refused the credential"
    );
    assert!(acl_auth_failures(s.redis.port) >= 1);
    let health = client.get(svc.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), Status::SERVICE_UNAVAILABLE);
    assert!(
        svc.logs().contains("Redis rejected the credential"),
        "{}",
        svc.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_endpoint_that_refuses_is_an_auth_failure_not_a_hang() {
    let Some(s) = setup(Duration::from_secs(60)).await else {
        return;
    };
    let svc = service(&s, "not-the-secret");
    let client = http(Duration::from_secs(20));
    let started = Instant::now();
    let resp = client.get(svc.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), Status::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["detail"], "Redis authentication failed", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the answer took {:?}",
        started.elapsed()
    );
    assert!(minted(&s.id).is_empty());
    assert!(
        s.id.refused
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("X-IDENTITY-HEADER")),
        "the stand-in saw no request with the wrong secret"
    );
}
