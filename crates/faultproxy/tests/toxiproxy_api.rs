//! The Toxiproxy-compatible HTTP API over a real socket: paths, JSON shapes,
//! status codes and error bodies as Toxiproxy's `api.go`; what it sets is an
//! ordinary toxic that the library lists and announces.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use chaoslab_faultproxy::{Change, FaultProxy, Origin, api};
use chaoslab_test_support::RedisServer;
use chaoslab_test_support::wait::GENEROUS;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{Resp, bounded};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Api {
    faults: FaultProxy,
    base: String,
    http: Client,
    stop: CancellationToken,
}

impl Api {
    async fn start() -> Api {
        let faults = FaultProxy::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(api::serve(listener, faults.clone(), shutdown));
        Api {
            faults,
            base: format!("http://{addr}"),
            http: Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            stop,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let url = format!("{}{}", self.base, path);
        let mut request = self
            .http
            .request(method.parse().unwrap(), url)
            .header("user-agent", "toxiproxy-test");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn not_found(what: &str) -> Value {
    json!({"error": format!("{what} not found"), "status": 404})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_endpoints_have_toxiproxy_shapes_and_codes() {
    bounded(async {
        let redis = RedisServer::start();
        let api = Api::start().await;
        let upstream = redis.addr().to_string();
        let (listen, client) = create_and_refuse(&api, &upstream).await;
        disable_reset_and_delete(&api, listen, client).await;
    })
    .await;
}

/// `/version`, `POST /proxies` (201, 409, 400s) and `GET` of the list and
/// of a missing proxy; the created proxy's address and a client through it.
async fn create_and_refuse(api: &Api, upstream: &str) -> (SocketAddr, Resp) {
    let (status, body) = api.call("GET", "/version", None).await;
    assert_eq!(status, 200);
    assert!(
        body["version"].as_str().unwrap().starts_with("2."),
        "{body}"
    );

    let (status, body) = api.call("GET", "/proxies", None).await;
    assert_eq!((status.as_u16(), body), (200, json!({})));

    let create = json!({"name": "redis", "listen": "127.0.0.1:0", "upstream": upstream});
    let (status, proxy) = api.call("POST", "/proxies", Some(create.clone())).await;
    assert_eq!(status, 201, "{proxy}");
    assert_eq!(proxy["name"], "redis");
    assert_eq!(proxy["upstream"], upstream);
    assert_eq!(proxy["enabled"], true);
    assert_eq!(proxy["toxics"], json!([]));
    let listen: SocketAddr = proxy["listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(listen.port(), 0, "the bound port is reported");
    let mut client = Resp::connect(listen).await.unwrap();
    assert_eq!(client.cmd(&["PING"]).await.unwrap(), "+PONG");

    let (status, body) = api.call("POST", "/proxies", Some(create)).await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({"error": "proxy already exists", "status": 409})
    );

    let (status, body) = api
        .call(
            "POST",
            "/proxies",
            Some(json!({"name": "x", "listen": "127.0.0.1:0"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["status"], 400);
    assert!(
        body["error"].as_str().unwrap().contains("upstream"),
        "{body}"
    );

    let (status, _) = api.call("POST", "/proxies", Some(json!("nonsense"))).await;
    assert_eq!(status, 400);
    let outside = json!({"name": "o", "listen": "0.0.0.0:0", "upstream": upstream});
    let (status, body) = api.call("POST", "/proxies", Some(outside)).await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = api.call("GET", "/proxies", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["redis"]["listen"], listen.to_string().as_str());

    let (status, body) = api.call("GET", "/proxies/nope", None).await;
    assert_eq!((status.as_u16(), body), (404, not_found("proxy")));
    let (status, _) = api.call("DELETE", "/proxies/nope", None).await;
    assert_eq!(status, 404);
    (listen, client)
}

/// `enabled: false` (the live client closed), `POST /reset` (enabled
/// again, same address), `DELETE`.
async fn disable_reset_and_delete(api: &Api, listen: SocketAddr, mut client: Resp) {
    // enabled: false closes the listener and the live connection.
    let (status, body) = api
        .call("POST", "/proxies/redis", Some(json!({"enabled": false})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["enabled"], false);
    let err = client.reply_within(GENEROUS).await.unwrap_err();
    assert_ne!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert!(tokio::net::TcpStream::connect(listen).await.is_err());
    // The library says since when (the lab lists it as a fault).
    let info = api.faults.proxy("redis").unwrap();
    assert!(!info.enabled);
    let since = info.disabled_since.expect("disabled_since");
    assert!((chrono::Utc::now() - since).num_seconds() < 10);
    // Disabling again keeps the first instant.
    api.call("POST", "/proxies/redis", Some(json!({"enabled": false})))
        .await;
    assert_eq!(
        api.faults.proxy("redis").unwrap().disabled_since,
        Some(since)
    );

    // /reset enables every proxy again, on the same address.
    let (status, _) = api.call("POST", "/reset", None).await;
    assert_eq!(status, 204);
    let (_, body) = api.call("GET", "/proxies/redis", None).await;
    assert_eq!(body["enabled"], true);
    assert_eq!(api.faults.proxy("redis").unwrap().disabled_since, None);
    let mut again = Resp::connect(listen).await.unwrap();
    assert_eq!(again.cmd(&["PING"]).await.unwrap(), "+PONG");

    let (status, _) = api.call("DELETE", "/proxies/redis", None).await;
    assert_eq!(status, 204);
    let (_, body) = api.call("GET", "/proxies", None).await;
    assert_eq!(body, json!({}));
    assert!(api.faults.proxies().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toxics_endpoints_have_toxiproxy_shapes_and_codes() {
    bounded(async {
        let redis = RedisServer::start();
        let api = Api::start().await;
        let mut events = api.faults.subscribe();
        let create = json!({"name": "redis", "upstream": redis.addr().to_string()});
        assert_eq!(api.call("POST", "/proxies", Some(create)).await.0, 201);
        let toxics = "/proxies/redis/toxics";
        add_a_latency_toxic(&api, &mut events, toxics).await;
        bad_toxics_are_400s(&api, toxics).await;
        list_update_and_delete(&api, toxics).await;
    })
    .await;
}

/// A latency toxic through `POST` (200, then 409): an ordinary toxic,
/// listed and announced.
async fn add_a_latency_toxic(
    api: &Api,
    events: &mut tokio::sync::broadcast::Receiver<chaoslab_faultproxy::FaultEvent>,
    toxics: &str,
) {
    let latency = json!({"type": "latency", "attributes": {"latency": 150}});
    let (status, toxic) = api.call("POST", toxics, Some(latency.clone())).await;
    assert_eq!(status, 200, "{toxic}");
    assert_eq!(
        toxic,
        json!({
            "name": "latency_downstream",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"latency": 150, "jitter": 0},
        })
    );
    let (status, body) = api.call("POST", toxics, Some(latency)).await;
    assert_eq!(status, 409);
    assert_eq!(
        body,
        json!({"error": "toxic already exists", "status": 409})
    );

    // What the API set is an ordinary toxic: listed and announced.
    let listed = api.faults.all_toxics();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].origin, Origin::Api);
    let created = events.recv().await.unwrap();
    assert!(matches!(created.change, Change::ProxyCreated { .. }));
    let added = events.recv().await.unwrap();
    assert!(
        matches!(&added.change, Change::Added { toxic } if toxic.name == "latency_downstream"),
        "{added:?}"
    );
}

/// Bad toxics are 400s naming what is wrong; a slicer as
/// chaostoolkit-toxiproxy sends it; toxics of a missing proxy are a 404.
async fn bad_toxics_are_400s(api: &Api, toxics: &str) {
    let bad = [
        json!({"type": "gremlin"}),
        json!({"attributes": {}}),
        json!({"type": "latency", "stream": "sideways"}),
        json!({"type": "latency", "name": "t", "toxicity": 2.0}),
        json!({"type": "latency", "name": "n", "attributes": {"latency": -1}}),
        json!([1, 2]),
    ];
    for body in bad {
        let (status, answer) = api.call("POST", toxics, Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["status"], 400);
    }
    // An unknown type's 400 names the supported ones.
    let (_, answer) = api
        .call("POST", toxics, Some(json!({"type": "gremlin"})))
        .await;
    let message = answer["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("gremlin") && message.contains("slicer, deny_new"),
        "{answer}"
    );
    // Toxiproxy's slicer, as chaostoolkit-toxiproxy's create_slicer_toxic
    // sends it.
    let slicer = json!({"name": "sliced", "type": "slicer", "stream": "downstream",
        "toxicity": 1.0, "attributes": {"average_size": 64, "size_variation": 16, "delay": 100}});
    let (status, answer) = api.call("POST", toxics, Some(slicer)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], "slicer");
    assert_eq!(
        answer["attributes"],
        json!({"average_size": 64, "size_variation": 16, "delay": 100})
    );
    let (status, answer) = api
        .call(
            "POST",
            toxics,
            Some(json!({"type": "slicer", "attributes": {"average_size": 4, "size_variation": 5}})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("size_variation"),
        "{answer}"
    );
    let (status, _) = api.call("DELETE", &format!("{toxics}/sliced"), None).await;
    assert_eq!(status, 204);
    let (status, body) = api
        .call(
            "POST",
            "/proxies/nope/toxics",
            Some(json!({"type": "latency"})),
        )
        .await;
    assert_eq!((status.as_u16(), body), (404, not_found("proxy")));
}

/// More toxics, the list in chain order, an update of one attribute,
/// 404s, `DELETE`, `POST /reset`.
async fn list_update_and_delete(api: &Api, toxics: &str) {
    let bw = json!({"name": "bw", "type": "bandwidth", "stream": "upstream",
                    "toxicity": 0.5, "attributes": {"rate": 64}});
    let (status, toxic) = api.call("POST", toxics, Some(bw)).await;
    assert_eq!(status, 200);
    assert_eq!(toxic["stream"], "upstream");
    assert_eq!(toxic["toxicity"], 0.5);
    let hole = json!({"name": "hole", "type": "blackhole"});
    let (status, toxic) = api.call("POST", toxics, Some(hole)).await;
    assert_eq!(status, 200);
    assert_eq!(toxic["stream"], "both");

    let (status, list) = api.call("GET", toxics, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["latency_downstream", "bw", "hole"]);

    // Update: changed attributes only, the rest kept.
    let (status, toxic) = api
        .call(
            "POST",
            "/proxies/redis/toxics/latency_downstream",
            Some(json!({"attributes": {"jitter": 20}})),
        )
        .await;
    assert_eq!(status, 200, "{toxic}");
    assert_eq!(toxic["attributes"], json!({"latency": 150, "jitter": 20}));
    let (status, toxic) = api
        .call("GET", "/proxies/redis/toxics/latency_downstream", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(toxic["attributes"]["jitter"], 20);
    let (status, body) = api
        .call(
            "POST",
            "/proxies/redis/toxics/nope",
            Some(json!({"toxicity": 1})),
        )
        .await;
    assert_eq!((status.as_u16(), body), (404, not_found("toxic")));

    let (status, body) = api.call("GET", "/proxies/redis/toxics/nope", None).await;
    assert_eq!((status.as_u16(), body), (404, not_found("toxic")));
    let (status, _) = api.call("DELETE", "/proxies/redis/toxics/hole", None).await;
    assert_eq!(status, 204);
    let (status, _) = api.call("DELETE", "/proxies/redis/toxics/hole", None).await;
    assert_eq!(status, 404);

    let (_, proxy) = api.call("GET", "/proxies/redis", None).await;
    assert_eq!(proxy["toxics"].as_array().unwrap().len(), 2);
    assert_eq!(api.call("POST", "/reset", None).await.0, 204);
    let (_, list) = api.call("GET", toxics, None).await;
    assert_eq!(list, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_are_turned_away() {
    bounded(async {
        let api = Api::start().await;
        let response = api
            .http
            .get(format!("{}/proxies", api.base))
            .header("user-agent", "Mozilla/5.0")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    })
    .await;
}
