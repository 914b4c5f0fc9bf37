//! The alert webhook as a receiver sees it, on loopback only: HTTPS
//! receivers are reached over TLS (a certificate generated here, trusted
//! through `[alerts] webhook_ca_file`), a slow receiver still gets every
//! "resolved" that pairs with a "firing" it was sent, and the webhook URL
//! (it may hold a secret) never appears in logs or errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chaoslab_console::alerts::{self, AlertRule, AlertsConfig, Condition, Sample};
use chaoslab_test_support::clock::unix_ms;
use chaoslab_test_support::wait::{GENEROUS, holds_within};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

fn rule(name: &str) -> AlertRule {
    AlertRule {
        name: name.into(),
        condition: Condition::ErrorCount { more_than: 0 },
        window_seconds: 60,
    }
}

fn config(url: String, rules: Vec<AlertRule>) -> AlertsConfig {
    AlertsConfig {
        evaluate_every_seconds: 1,
        webhook_url: Some(url),
        rules,
        ..AlertsConfig::default()
    }
}

/// Samples with a 5xx while `errors` is set, none after.
fn samples(errors: Arc<AtomicBool>) -> impl Fn() -> Vec<Sample> {
    move || {
        if errors.load(Ordering::SeqCst) {
            vec![Sample {
                unix_ms: unix_ms() - 100,
                requests: 1,
                errors_5xx: 1,
                latency_sum_ms: 1.0,
            }]
        } else {
            Vec::new()
        }
    }
}

/// What a receiver saw.
#[derive(Default)]
struct Seen {
    /// A TLS ClientHello arrived (first byte 0x16).
    tls_hello: AtomicBool,
    /// JSON bodies, in arrival order.
    bodies: Mutex<Vec<Value>>,
}

/// A test CA and a certificate for 127.0.0.1 signed by it.
struct TestPki {
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_key_der: Vec<u8>,
}

fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "chaoslab webhook test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca cert");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params")
        .signed_by(&leaf_key, &ca)
        .expect("leaf cert");
    TestPki {
        ca_pem: ca.pem(),
        leaf_der: leaf.der().to_vec(),
        leaf_key_der: leaf_key.serialize_der(),
    }
}

/// An HTTPS receiver on 127.0.0.1 with the leaf certificate of `pki`:
/// records ClientHellos and the JSON bodies it is POSTed; answers 200.
async fn https_receiver(pki: &TestPki) -> (String, Arc<Seen>) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(pki.leaf_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key_der.clone())),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Seen::default());
    let state = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = state.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                if matches!(stream.peek(&mut first).await, Ok(1)) && first[0] == 0x16 {
                    seen.tls_hello.store(true, Ordering::SeqCst);
                }
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                                seen.bodies.lock().unwrap().push(v);
                            }
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(
                                "ok",
                            ))))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (format!("https://127.0.0.1:{}/hook", addr.port()), seen)
}

/// Runs the alert loop with `config` while `body` runs, then stops it.
async fn with_alerts<F: std::future::Future<Output = ()>>(
    config: AlertsConfig,
    errors: Arc<AtomicBool>,
    emitted: Arc<Mutex<Vec<(String, &'static str)>>>,
    body: F,
) {
    let stop = tokio::sync::Notify::new();
    let run = alerts::run(
        config,
        samples(errors),
        move |t| emitted.lock().unwrap().push((t.rule.clone(), t.state)),
        stop.notified(),
    );
    let test = async {
        body.await;
        stop.notify_one();
    };
    tokio::join!(run, test);
}

#[tokio::test]
async fn an_https_webhook_is_reached_over_tls() {
    // Without webhook_ca_file the test CA is not trusted, so nothing is
    // delivered; but the client must speak TLS to the receiver.
    let pki = test_pki();
    let (url, seen) = https_receiver(&pki).await;
    let errors = Arc::new(AtomicBool::new(true));
    let emitted = Arc::new(Mutex::new(Vec::new()));
    let reached = Arc::new(AtomicBool::new(false));
    let flag = reached.clone();
    let probe = seen.clone();
    with_alerts(
        config(url, vec![rule("burst")]),
        errors,
        emitted,
        async move {
            let ok = holds_within(GENEROUS, || probe.tls_hello.load(Ordering::SeqCst)).await;
            flag.store(ok, Ordering::SeqCst);
        },
    )
    .await;
    assert!(
        reached.load(Ordering::SeqCst),
        "no TLS ClientHello reached the HTTPS receiver"
    );
    assert!(
        seen.bodies.lock().unwrap().is_empty(),
        "an untrusted certificate must not be accepted"
    );
}

#[tokio::test]
async fn an_https_webhook_with_its_ca_in_webhook_ca_file_gets_firing_and_resolved() {
    let pki = test_pki();
    let (url, seen) = https_receiver(&pki).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("webhook-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).expect("write CA");
    let cfg = AlertsConfig {
        webhook_ca_file: Some(ca_file),
        ..config(url, vec![rule("burst")])
    };
    cfg.validate().expect("valid");
    let errors = Arc::new(AtomicBool::new(true));
    let emitted = Arc::new(Mutex::new(Vec::new()));
    let flip = errors.clone();
    let probe = seen.clone();
    with_alerts(cfg, errors, emitted.clone(), async move {
        let states = |probe: &Seen| -> Vec<String> {
            probe
                .bodies
                .lock()
                .unwrap()
                .iter()
                .filter_map(|v| v["state"].as_str().map(str::to_owned))
                .collect()
        };
        assert!(
            holds_within(GENEROUS, || states(&probe) == ["firing"]).await,
            "no firing over HTTPS: {:?}",
            states(&probe)
        );
        flip.store(false, Ordering::SeqCst);
        assert!(
            holds_within(GENEROUS, || { states(&probe) == ["firing", "resolved"] }).await,
            "no resolved over HTTPS: {:?}",
            states(&probe)
        );
    })
    .await;
    let bodies = seen.bodies.lock().unwrap();
    assert_eq!(bodies[0]["rule"], "burst");
    assert_eq!(bodies[0]["window_seconds"], 60);
}

#[test]
fn webhook_ca_file_is_checked_at_config_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let https = "https://127.0.0.1:9/hook".to_string();
    let with = |url: &str, ca: std::path::PathBuf| AlertsConfig {
        webhook_url: Some(url.to_string()),
        webhook_ca_file: Some(ca),
        ..AlertsConfig::default()
    };
    let missing = with(&https, dir.path().join("nope.pem"))
        .validate()
        .expect_err("missing file");
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let err = with(&https, junk.clone()).validate().expect_err("no PEM");
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let good = dir.path().join("ca.pem");
    std::fs::write(&good, test_pki().ca_pem).expect("write");
    with(&https, good.clone()).validate().expect("a CA file");
    with(&https, good.clone())
        .webhook_client()
        .expect("a client");
    let err = with("http://127.0.0.1:9/hook", good)
        .validate()
        .expect_err("a CA for plain HTTP");
    assert!(err.to_string().contains("https://"), "{err}");
}

#[tokio::test]
async fn a_slow_receiver_still_gets_every_resolved_that_pairs_with_a_firing() {
    const RULES: usize = 10;
    let (url, received, release_tx) = holding_receiver().await;
    let rules: Vec<AlertRule> = (0..RULES).map(|i| rule(&format!("rule-{i}"))).collect();
    let errors = Arc::new(AtomicBool::new(true));
    let emitted = Arc::new(Mutex::new(Vec::<(String, &'static str)>::new()));
    let flip = errors.clone();
    let seen_emitted = emitted.clone();
    let seen_received = received.clone();
    with_alerts(config(url, rules), errors, emitted, async move {
        // Eight firings are held by the receiver: eight deliveries in flight.
        assert!(
            holds_within(GENEROUS, || { seen_received.lock().unwrap().len() >= 8 }).await,
            "8 firing deliveries never reached the receiver"
        );
        // Every rule resolves while those are still held.
        flip.store(false, Ordering::SeqCst);
        assert!(
            holds_within(GENEROUS, || {
                seen_emitted
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|(_, s)| *s == "resolved")
                    .count()
                    == RULES
            })
            .await,
            "the rules never resolved"
        );
        let _ = release_tx.send(true);
        // Every rule whose firing the receiver got must get its resolved,
        // after it.
        let paired = || every_rule_paired(&seen_received.lock().unwrap(), RULES);
        let ok = holds_within(GENEROUS, paired).await;
        let got: Vec<String> = seen_received
            .lock()
            .unwrap()
            .iter()
            .map(|v| format!("{}:{}", v["rule"], v["state"]))
            .collect();
        assert!(
            ok,
            "not every rule's firing was followed by its resolved: {got:?}"
        );
    })
    .await;
}

/// A webhook receiver that records each notification on arrival but holds
/// every "firing" one until `true` is sent on the returned channel; gives
/// its URL and what it received.
async fn holding_receiver() -> (
    String,
    Arc<Mutex<Vec<Value>>>,
    tokio::sync::watch::Sender<bool>,
) {
    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let app = {
        let received = received.clone();
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                let received = received.clone();
                let mut release = release_rx.clone();
                async move {
                    let firing = v["state"] == "firing";
                    received.lock().unwrap().push(v);
                    if firing {
                        let _ = release.wait_for(|go| *go).await;
                    }
                    "ok"
                }
            }),
        )
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received, release_tx)
}

/// Whether each of `rule-0`..`rule-{rules-1}` got exactly its firing, then
/// its resolved.
fn every_rule_paired(got: &[Value], rules: usize) -> bool {
    (0..rules).all(|i| {
        let name = format!("rule-{i}");
        let states: Vec<&str> = got
            .iter()
            .filter(|v| v["rule"] == name.as_str())
            .filter_map(|v| v["state"].as_str())
            .collect();
        states == ["firing", "resolved"]
    })
}

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn the_webhook_url_is_never_logged_or_shown() {
    const SECRET: &str = "s3cr3t-T0K3N";
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A receiver that answers 500, and a closed port: both failures are logged.
    let app = axum::Router::new()
        .fallback(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no") });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);

    for (target, expect) in [
        (
            format!("http://user:{SECRET}@127.0.0.1:{port}/hook/{SECRET}?token={SECRET}"),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            format!("http://127.0.0.1:{closed_port}/services/{SECRET}#{SECRET}"),
            format!("http://127.0.0.1:{closed_port}"),
        ),
    ] {
        let before = logs.text().len();
        let cfg = config(target.clone(), vec![rule("burst")]);
        let debug = format!("{cfg:?}");
        let errors = Arc::new(AtomicBool::new(true));
        let emitted = Arc::new(Mutex::new(Vec::new()));
        let watch = logs.clone();
        with_alerts(cfg, errors, emitted.clone(), async move {
            assert!(
                holds_within(GENEROUS, || {
                    watch.text()[before..].contains("webhook")
                        && watch.text()[before..].contains("fail")
                })
                .await,
                "no delivery failure was logged: {}",
                watch.text()
            );
        })
        .await;
        let text = logs.text();
        let new = &text[before..];
        assert!(!new.contains(SECRET), "the secret is logged: {new}");
        assert!(
            new.contains(&expect),
            "the log should still name {expect}: {new}"
        );
        assert_eq!(emitted.lock().unwrap().len(), 1);
        assert!(!debug.contains(SECRET), "Debug shows the URL: {debug}");
    }

    // Configuration errors do not show it either.
    let bad = AlertsConfig {
        webhook_url: Some(format!("ftp://user:{SECRET}@127.0.0.1/{SECRET}")),
        ..AlertsConfig::default()
    };
    let err = bad.validate().expect_err("ftp is refused").to_string();
    assert!(!err.contains(SECRET), "{err}");
}
