//! Plays a hostile local process against the Toxiproxy-compatible API
//! (issue 11, item 1; SPEC section 13): the API answers any local caller,
//! so it must not let one redirect the lab's own proxy — the replicas send
//! their Redis password (AUTH) through it — nor take over its port, nor
//! point a new proxy off the machine; and every change it does allow is an
//! event naming the caller's address.
//!
//! The lab's proxy here is `redis` (added by the library, as the lab does)
//! in front of a stand-in Redis that echoes; the attacker listens on a
//! loopback port of its own and records whatever reaches it.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chaoslab_faultproxy::api::ApiConfig;
use chaoslab_faultproxy::{Change, FaultEvent, FaultProxy, ToxicKind, ToxicSpec, api, toxic};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{bounded, echo_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const AUTH: &[u8] = b"*3\r\n$4\r\nAUTH\r\n$7\r\nservice\r\n$6\r\ns3cret\r\n";

/// A listener that records every byte any client sends it.
async fn thief() -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stolen = Arc::new(Mutex::new(Vec::new()));
    let sink = stolen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    (addr, stolen)
}

struct Lab {
    faults: FaultProxy,
    /// The Toxiproxy API's address.
    api: SocketAddr,
    /// Where the replicas connect (the `redis` proxy).
    redis_via_proxy: SocketAddr,
    redis: SocketAddr,
    base: String,
    http: Client,
    stop: CancellationToken,
}

impl Lab {
    async fn start() -> Lab {
        Lab::start_with(ApiConfig::default()).await
    }

    async fn start_with(config: ApiConfig) -> Lab {
        let redis = echo_server().await;
        let faults = FaultProxy::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let redis_via_proxy = listener.local_addr().unwrap();
        faults
            .add_proxy("redis", listener, &redis.to_string())
            .await
            .unwrap();
        let api_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = api_listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(api::serve_with(
            api_listener,
            faults.clone(),
            config,
            stop.clone().cancelled_owned(),
        ));
        Lab {
            faults,
            api,
            redis_via_proxy,
            redis,
            base: format!("http://{api}"),
            http: Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stop,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// One request on a connection of its own, so the caller's address is
    /// known: (that address, status, body).
    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> (SocketAddr, u16, Value) {
        let mut stream = TcpStream::connect(self.api).await.unwrap();
        let caller = stream.local_addr().unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: attacker\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.api,
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("an answer in time")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        (
            caller,
            status,
            serde_json::from_str(body).unwrap_or(Value::Null),
        )
    }

    /// What a replica does: connect through the proxy and AUTH; true when
    /// the stand-in Redis (an echo) answered.
    async fn replica_auth(&self) -> bool {
        let Ok(Ok(mut c)) = tokio::time::timeout(
            Duration::from_secs(5),
            TcpStream::connect(self.redis_via_proxy),
        )
        .await
        else {
            return false;
        };
        if c.write_all(AUTH).await.is_err() {
            return false;
        }
        let mut back = vec![0u8; AUTH.len()];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut back)).await,
            Ok(Ok(_)) if back == AUTH
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn forbidden(status: StatusCode, body: &Value, what: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
    assert_eq!(
        body["status"], 403,
        "{what}: Toxiproxy's error body: {body}"
    );
    let message = body["error"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{what}: a message: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_labs_proxy_cannot_be_redirected_moved_or_deleted() {
    bounded(async {
        let lab = Lab::start().await;
        let (thief, stolen) = thief().await;
        assert!(lab.replica_auth().await, "passthrough before the attack");

        // Redirect the replicas' Redis connections to the thief.
        for (method, body) in [
            ("POST", json!({"upstream": thief.to_string()})),
            ("PATCH", json!({"upstream": thief.to_string()})),
            (
                "POST",
                json!({"upstream": thief.to_string(), "enabled": true}),
            ),
            ("POST", json!({"listen": "127.0.0.1:0"})),
            (
                "POST",
                json!({"listen": lab.redis_via_proxy.to_string(), "upstream": thief.to_string()}),
            ),
        ] {
            let (status, answer) = lab.call(method, "/proxies/redis", Some(body.clone())).await;
            forbidden(status, &answer, &format!("{method} {body}"));
        }
        // Delete it, to re-create it (or bind its port) as the thief.
        let (status, answer) = lab.call("DELETE", "/proxies/redis", None).await;
        forbidden(status, &answer, "DELETE /proxies/redis");
        let create = json!({"name": "redis", "listen": lab.redis_via_proxy.to_string(),
            "upstream": thief.to_string()});
        let (status, _) = lab.call("POST", "/proxies", Some(create)).await;
        assert_eq!(status, StatusCode::CONFLICT, "it still exists");

        let info = lab.faults.proxy("redis").unwrap();
        assert_eq!(info.upstream, lab.redis.to_string(), "upstream unchanged");
        assert_eq!(info.listen, lab.redis_via_proxy.to_string());
        assert!(info.enabled);
        assert!(lab.replica_auth().await, "the replicas still reach Redis");
        assert!(
            stolen.lock().unwrap().is_empty(),
            "nothing reached the thief"
        );

        // What the lab's proxy does allow: the same values (a no-op), its
        // toxics and enabled (chaostoolkit-toxiproxy, toxiproxy-python).
        let same = json!({"upstream": lab.redis.to_string(),
            "listen": lab.redis_via_proxy.to_string()});
        let (status, _) = lab.call("POST", "/proxies/redis", Some(same)).await;
        assert_eq!(status, StatusCode::OK, "an unchanged address is no change");
        let toxic = json!({"type": "latency", "attributes": {"latency": 1}});
        let (status, _) = lab.call("POST", "/proxies/redis/toxics", Some(toxic)).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = lab
            .call("DELETE", "/proxies/redis/toxics/latency_downstream", None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_lab_proxy_keeps_its_port() {
    bounded(async {
        let lab = Lab::start().await;
        let (status, answer) = lab
            .call("POST", "/proxies/redis", Some(json!({"enabled": false})))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["enabled"], false);
        // The thief tries to take the port the replicas dial.
        let taken = TcpListener::bind(lab.redis_via_proxy).await;
        assert!(
            taken.is_err(),
            "another process could bind the disabled proxy's port"
        );
        assert!(!lab.replica_auth().await, "disabled: Redis is cut off");
        let (status, _) = lab
            .call("POST", "/proxies/redis", Some(json!({"enabled": true})))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(lab.replica_auth().await, "enabled again, same port");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_created_through_the_api_target_loopback_only() {
    bounded(async {
        let lab = Lab::start().await;
        let mut n = 0;
        let mut create = |upstream: &str| {
            n += 1;
            json!({"name": format!("p{n}"), "upstream": upstream})
        };
        for upstream in [
            "10.1.2.3:6379",
            "192.168.0.1:80",
            "[2001:db8::1]:6379",
            "example.com:6379",
            "0.0.0.0:6379",
        ] {
            let (status, answer) = lab.call("POST", "/proxies", Some(create(upstream))).await;
            forbidden(status, &answer, upstream);
        }
        for upstream in [
            "127.0.0.1:6379",
            "127.9.8.7:1",
            "[::1]:6379",
            "localhost:6379",
        ] {
            let (status, answer) = lab.call("POST", "/proxies", Some(create(upstream))).await;
            assert_eq!(status, StatusCode::CREATED, "{upstream}: {answer}");
        }
        // Moving an API proxy off the machine is refused the same way.
        let (status, answer) = lab
            .call(
                "POST",
                "/proxies/p6",
                Some(json!({"upstream": "10.9.9.9:1"})),
            )
            .await;
        forbidden(status, &answer, "moving p6 off the machine");
        assert_eq!(lab.faults.proxy("p6").unwrap().upstream, "127.0.0.1:6379");
    })
    .await;
}

/// Every event on the channel now (they are sent before the API answers).
fn drain(events: &mut tokio::sync::broadcast::Receiver<FaultEvent>) -> Vec<FaultEvent> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        out.push(event);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_through_the_api_names_its_caller() {
    bounded(async {
        let lab = Lab::start().await;
        let mut events = lab.faults.subscribe();
        let upstream = lab.redis.to_string();
        let latency = json!({"name": "slow", "type": "latency", "attributes": {"latency": 1}});
        // (request, body, expected status, what its events must be)
        let steps: Vec<(&str, &str, Option<Value>, u16)> = vec![
            ("POST", "/proxies", Some(json!({"name": "mine", "upstream": upstream})), 201),
            ("POST", "/proxies/mine", Some(json!({"enabled": false})), 200),
            ("POST", "/proxies/mine", Some(json!({"enabled": true})), 200),
            ("POST", "/proxies/redis/toxics", Some(latency), 200),
            ("POST", "/proxies/redis/toxics/slow", Some(json!({"attributes": {"latency": 2}})), 200),
            ("DELETE", "/proxies/redis/toxics/slow", None, 204),
            ("POST", "/proxies/redis", Some(json!({"enabled": false})), 200),
            ("PATCH", "/proxies/redis", Some(json!({"upstream": "127.0.0.1:1"})), 403),
            ("POST", "/proxies", Some(json!({"name": "away", "upstream": "10.0.0.1:6379"})), 403),
            ("POST", "/proxies/mine/toxics", Some(json!({"type": "blackhole"})), 200),
            ("POST", "/reset", None, 204),
            ("DELETE", "/proxies/mine", None, 204),
        ];
        for (method, path, body, status) in steps {
            let (caller, got, answer) = lab.raw(method, path, body).await;
            assert_eq!(got, status, "{method} {path}: {answer}");
            let seen = drain(&mut events);
            assert!(!seen.is_empty(), "{method} {path}: no event");
            for event in &seen {
                assert_eq!(
                    event.caller,
                    Some(caller),
                    "{method} {path}: {event:?} names its caller"
                );
            }
            let changes: Vec<&Change> = seen.iter().map(|e| &e.change).collect();
            assert_changes(method, path, status, &changes);
        }
        // Refusals say what was refused and why.
        let (_, _, _) = lab
            .raw("DELETE", "/proxies/redis", None)
            .await;
        let refused = drain(&mut events);
        assert!(
            matches!(&refused[..], [FaultEvent { change: Change::Refused { request, reason }, proxy, .. }]
                if request == "DELETE /proxies/redis" && proxy == "redis" && reason.contains("deleting it")),
            "{refused:?}"
        );

        // The lab's own changes (the library) name no caller.
        let spec = ToxicSpec::new(ToxicKind::Blackhole(toxic::Blackhole {})).named("f-1");
        lab.faults.add_toxic("redis", spec).unwrap();
        lab.faults.remove_toxic("redis", "f-1").unwrap();
        let own = drain(&mut events);
        assert_eq!(own.len(), 2);
        assert!(own.iter().all(|e| e.caller.is_none()), "{own:?}");
    })
    .await;
}

/// The events of one API request are the change it made (or its refusal).
fn assert_changes(method: &str, path: &str, status: u16, changes: &[&Change]) {
    if path == "/reset" {
        // The reset itself, the blackhole it cleared and the proxy it
        // enabled again.
        assert!(matches!(changes[0], Change::Reset), "{changes:?}");
        assert!(changes.iter().any(|c| matches!(c, Change::Removed { .. })));
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, Change::ProxyUpdated { enabled: true, .. }))
        );
        return;
    }
    let expected = match (method, path) {
        ("POST", "/proxies") if status == 201 => {
            matches!(changes[..], [Change::ProxyCreated { enabled: true, .. }])
        }
        ("POST", "/proxies") | ("PATCH", _) => matches!(changes[..], [Change::Refused { .. }]),
        ("POST", "/proxies/mine") | ("POST", "/proxies/redis") => {
            matches!(changes[..], [Change::ProxyUpdated { .. }])
        }
        ("POST", "/proxies/redis/toxics") | ("POST", "/proxies/mine/toxics") => {
            matches!(changes[..], [Change::Added { .. }])
        }
        ("POST", _) => matches!(changes[..], [Change::Updated { .. }]),
        ("DELETE", "/proxies/mine") => matches!(changes[..], [Change::ProxyRemoved]),
        ("DELETE", _) => matches!(changes[..], [Change::Removed { .. }]),
        _ => true,
    };
    assert!(expected, "{method} {path}: {changes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_upstreams_only_when_the_api_allows_them() {
    bounded(async {
        let config = ApiConfig {
            allow_remote_upstream: true,
        };
        let lab = Lab::start_with(config).await;
        let remote = json!({"name": "cloud", "upstream": "10.1.2.3:6380", "enabled": false});
        let (status, answer) = lab.call("POST", "/proxies", Some(remote)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["upstream"], "10.1.2.3:6380");
        // The lab's own proxy still keeps its upstream.
        let (status, answer) = lab
            .call(
                "POST",
                "/proxies/redis",
                Some(json!({"upstream": "10.1.2.3:6380"})),
            )
            .await;
        forbidden(
            status,
            &answer,
            "the lab's proxy with remote upstreams allowed",
        );
        // Malformed upstreams are a 400 either way.
        let bad = json!({"name": "bad", "upstream": "10.1.2.3"});
        let (status, answer) = lab.call("POST", "/proxies", Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        // A Unix socket stays the library's, remote upstreams allowed or not.
        let unix = json!({"name": "sock", "upstream": "unix:/run/docker.sock"});
        let (status, answer) = lab.call("POST", "/proxies", Some(unix)).await;
        forbidden(status, &answer, "a unix upstream with remote allowed");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_created_through_the_api_never_forward_to_a_unix_socket() {
    bounded(async {
        let lab = Lab::start().await;
        // The proxy would reach the socket with the lab's permissions: any
        // local process could then talk to whatever the lab's user may.
        let unix = json!({"name": "sock", "upstream": "unix:/run/docker.sock"});
        let (status, answer) = lab.call("POST", "/proxies", Some(unix)).await;
        forbidden(status, &answer, "creating a proxy to a unix socket");
        assert!(
            answer["error"].as_str().unwrap().contains("Unix socket"),
            "{answer}"
        );
        let loopback = json!({"name": "p", "upstream": "127.0.0.1:6379"});
        let (status, answer) = lab.call("POST", "/proxies", Some(loopback)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let (status, answer) = lab
            .call(
                "POST",
                "/proxies/p",
                Some(json!({"upstream": "unix:/run/docker.sock"})),
            )
            .await;
        forbidden(status, &answer, "moving a proxy to a unix socket");
        assert_eq!(lab.faults.proxy("p").unwrap().upstream, "127.0.0.1:6379");
        // Malformed unix upstreams are a 400, as any malformed upstream.
        for bad in ["unix:relative.sock", "unix:"] {
            let body = json!({"name": "bad", "upstream": bad});
            let (status, answer) = lab.call("POST", "/proxies", Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        }
    })
    .await;
}
