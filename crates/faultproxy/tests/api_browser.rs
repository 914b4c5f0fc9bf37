//! Plays a hostile web page against the Toxiproxy-compatible API (SPEC
//! section 13, "Browser attacks"; issue 11 item 2): the browser user-agent
//! check Toxiproxy relies on does not stop a page that rebinds its DNS
//! name to 127.0.0.1 or posts cross-site from a browser that does not say
//! "Mozilla". The API served by `api::serve` refuses a foreign `Host` and
//! a change from another site (403) or with a non-JSON body (415), in
//! Toxiproxy's `{"error", "status"}` body, and grants no CORS; what
//! Toxiproxy's clients send (JSON or no body, no `Origin`, loopback `Host`)
//! still works.

use std::net::SocketAddr;

use chaoslab_faultproxy::{FaultProxy, api};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Api {
    base: String,
    addr: SocketAddr,
    http: Client,
    faults: FaultProxy,
    stop: CancellationToken,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn api() -> Api {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let faults = FaultProxy::new();
    let stop = CancellationToken::new();
    tokio::spawn(api::serve(
        listener,
        faults.clone(),
        stop.clone().cancelled_owned(),
    ));
    Api {
        base: format!("http://{addr}"),
        addr,
        http: Client::builder().no_proxy().build().unwrap(),
        faults,
        stop,
    }
}

async fn send(
    api: &Api,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = api
        .http
        .request(method, format!("{}{path}", api.base))
        // Not a browser user agent: what the page's request carries is
        // checked, not who claims to send it.
        .header("user-agent", "toxiproxy-cli");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

const CREATE: &str = r#"{"name":"web","upstream":"127.0.0.1:1","enabled":false}"#;

#[tokio::test]
async fn a_rebound_host_is_refused_in_toxiproxy_shape() {
    let api = api().await;
    for (method, path, body) in [
        (Method::GET, "/proxies", None),
        (Method::GET, "/version", None),
        (Method::POST, "/reset", None),
        (Method::POST, "/proxies", Some(CREATE)),
    ] {
        let (status, body, headers) = send(
            &api,
            method.clone(),
            path,
            &[("host", "evil.example:8474")],
            body,
        )
        .await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["status"], 403, "{body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("evil.example:8474")),
            "{body}"
        );
        assert!(
            !headers
                .keys()
                .any(|k| k.as_str().starts_with("access-control-"))
        );
    }
    assert!(api.faults.proxy("web").is_err(), "nothing was created");
    let port = api.addr.port().to_string();
    for host in ["localhost", &format!("127.0.0.1:{port}"), "[::1]:8474"] {
        let (status, body, _) = send(&api, Method::GET, "/version", &[("host", host)], None).await;
        assert_eq!(status, 200, "Host {host}: {body}");
    }
}

#[tokio::test]
async fn cross_site_and_non_json_changes_are_refused() {
    let api = api().await;
    let own = api.base.clone();
    for (headers, body, status) in [
        (vec![("origin", "https://evil.example")], Some(CREATE), 403),
        (
            vec![
                ("origin", "https://evil.example"),
                ("content-type", "application/json"),
            ],
            Some(CREATE),
            403,
        ),
        (vec![("content-type", "text/plain")], Some(CREATE), 415),
        (
            vec![("content-type", "application/x-www-form-urlencoded")],
            Some(""),
            415,
        ),
    ] {
        let (got, answer, _) = send(&api, Method::POST, "/proxies", &headers, body).await;
        assert_eq!(
            (got, answer["status"].clone()),
            (status, json!(status)),
            "{headers:?}: {answer}"
        );
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, _, _) = send(&api, Method::POST, "/reset", &[("origin", "null")], None).await;
    assert_eq!(status, 403);
    assert!(api.faults.proxy("web").is_err(), "nothing was created");

    // Toxiproxy's clients: JSON (toxiproxy-python's `json=`), no body
    // (`POST /reset`), a body without Content-Type (older clients), and
    // the API's own origin.
    let json_ct = [("content-type", "application/json")];
    let (status, body, _) = send(&api, Method::POST, "/proxies", &json_ct, Some(CREATE)).await;
    assert_eq!(status, 201, "{body}");
    let update = r#"{"enabled":false}"#;
    let (status, body, _) = send(&api, Method::POST, "/proxies/web", &[], Some(update)).await;
    assert_eq!(status, 200, "{body}");
    let same_origin = [
        ("origin", own.as_str()),
        ("content-type", "application/json"),
    ];
    let (status, body, _) = send(
        &api,
        Method::POST,
        "/proxies/web",
        &same_origin,
        Some(update),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = send(&api, Method::POST, "/reset", &[], None).await;
    assert_eq!(status, 204);
    let (status, _, _) = send(&api, Method::DELETE, "/proxies/web", &[], None).await;
    assert_eq!(status, 204);
}
