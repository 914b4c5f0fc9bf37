//! A fuzz-style test of the data path (issue 11, tests; SPEC section 13):
//! clients and an upstream that send random bytes in random sizes, half-close,
//! close, reset and vanish at random, through a proxy whose toxics (every
//! kind, random attributes, stream and toxicity, added, changed and removed
//! through the library and the API while bytes flow) and enabled state keep
//! changing. Nothing may panic (a panic hook counts every panic, also inside
//! the proxy's tasks, which tokio would otherwise swallow), and once the
//! clients are gone and the toxics cleared, no connection may be left — on
//! the proxy or on the upstream.
//!
//! Seeded: `FUZZ_SEED=N` replays a run (the seed is printed); `FUZZ_ROUNDS`
//! runs longer (default 6 rounds of about a second).

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use chaoslab_faultproxy::toxic::{
    Bandwidth, Blackhole, DenyNew, Latency, LimitData, Reset, ResetPeer, Slicer, SlowClose, Timeout,
};
use chaoslab_faultproxy::{FaultProxy, Stream, ToxicKind, ToxicSpec, api};
use chaoslab_test_support::wait::{GENEROUS, until_async};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use support::bounded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};
use tower::ServiceExt;

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts every panic in the process (the previous hook still prints it).
fn count_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = if rng.random_bool(0.05) {
        rng.random_range(0..256 * 1024)
    } else {
        rng.random_range(0..max)
    };
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes[..]);
    bytes
}

/// An upstream that answers whatever it reads with random bytes, and now
/// and then half-closes, closes or resets; counts its open connections.
async fn fuzz_upstream(seed: u64) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    let counter = open.clone();
    tokio::spawn(async move {
        let mut n = 0u64;
        while let Ok((stream, _)) = listener.accept().await {
            n += 1;
            counter.fetch_add(1, Ordering::SeqCst);
            let counter = counter.clone();
            let mut rng = StdRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            tokio::spawn(async move {
                serve_randomly(stream, &mut rng).await;
                counter.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

async fn serve_randomly(mut stream: TcpStream, rng: &mut StdRng) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut write_closed = false;
    if rng.random_bool(0.2) {
        let hello = random_bytes(rng, 512);
        if stream.write_all(&hello).await.is_err() {
            return;
        }
    }
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        match rng.random_range(0..100) {
            0..2 => return,
            2..4 => {
                let _ = stream.set_zero_linger();
                return;
            }
            4..6 if !write_closed => {
                write_closed = true;
                let _ = stream.shutdown().await;
            }
            _ if !write_closed => {
                let answer = random_bytes(rng, 4096);
                if stream.write_all(&answer).await.is_err() {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// A client doing random things for about `span`: write random bytes,
/// read a little, half-close, then close, reset or just drop.
async fn fuzz_client(addr: SocketAddr, seed: u64, span: Duration) {
    let mut rng = StdRng::seed_from_u64(seed);
    let Ok(Ok(mut stream)) = timeout(Duration::from_secs(2), TcpStream::connect(addr)).await else {
        return;
    };
    let until = Instant::now() + span;
    let mut buf = vec![0u8; 64 * 1024];
    let mut write_closed = false;
    while Instant::now() < until {
        match rng.random_range(0..100) {
            0..40 if !write_closed => {
                let bytes = random_bytes(&mut rng, 8192);
                let wait = Duration::from_millis(rng.random_range(1..100));
                if let Ok(Err(_)) = timeout(wait, stream.write_all(&bytes)).await {
                    return;
                }
            }
            40..80 => {
                let wait = Duration::from_millis(rng.random_range(1..100));
                if let Ok(Ok(0) | Err(_)) = timeout(wait, stream.read(&mut buf)).await {
                    return;
                }
            }
            80..84 if !write_closed => {
                write_closed = true;
                let _ = stream.shutdown().await;
            }
            84..87 => {
                let _ = stream.set_zero_linger();
                return;
            }
            87..90 => return,
            _ => tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await,
        }
    }
}

/// A random toxic: any kind, small random attributes.
fn random_kind(rng: &mut StdRng) -> ToxicKind {
    match rng.random_range(0..10) {
        0 => ToxicKind::Latency(Latency {
            latency: rng.random_range(0..50),
            jitter: rng.random_range(0..20),
        }),
        1 => ToxicKind::Bandwidth(Bandwidth {
            rate: rng.random_range(0..2000),
        }),
        2 => ToxicKind::Timeout(Timeout {
            timeout: rng.random_range(0..300),
        }),
        3 => ToxicKind::ResetPeer(ResetPeer {
            timeout: rng.random_range(0..300),
        }),
        4 => ToxicKind::SlowClose(SlowClose {
            delay: rng.random_range(0..200),
        }),
        5 => ToxicKind::LimitData(LimitData {
            bytes: rng.random_range(0..20_000),
        }),
        6 => {
            let average_size = rng.random_range(0..2000);
            ToxicKind::Slicer(Slicer {
                average_size,
                size_variation: rng.random_range(0..=average_size),
                delay: rng.random_range(0..2000),
            })
        }
        7 => ToxicKind::DenyNew(DenyNew {}),
        8 => ToxicKind::Blackhole(Blackhole {}),
        _ => ToxicKind::Reset(Reset {}),
    }
}

fn random_stream(rng: &mut StdRng) -> Stream {
    match rng.random_range(0..3) {
        0 => Stream::Upstream,
        1 => Stream::Downstream,
        _ => Stream::Both,
    }
}

/// Changes the faults at random until `until`: toxics added, changed and
/// removed through the library and the API, the proxy disabled and enabled.
async fn stir(faults: FaultProxy, seed: u64, until: Instant) {
    let mut rng = StdRng::seed_from_u64(seed);
    let app = api::router(faults.clone());
    let mut n = 0u32;
    while Instant::now() < until {
        n += 1;
        let names: Vec<String> = faults
            .toxics("p")
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.name)
            .collect();
        match rng.random_range(0..100) {
            0..35 => {
                let spec = ToxicSpec::new(random_kind(&mut rng))
                    .named(format!("t{seed:x}-{n}"))
                    .on(random_stream(&mut rng))
                    .toxicity(rng.random_range(0.0..=1.0));
                let _ = faults.add_toxic("p", spec);
            }
            35..50 => {
                // The same through the API, with random JSON attributes.
                let kind = random_kind(&mut rng);
                let body = json!({
                    "name": format!("a{seed:x}-{n}"),
                    "type": kind.type_name(),
                    "stream": random_stream(&mut rng).as_str(),
                    "toxicity": rng.random_range(0.0..=1.0),
                    "attributes": kind.attributes(),
                });
                let request = Request::post("/proxies/p/toxics")
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap();
                let answer = app.clone().oneshot(request).await.unwrap();
                assert!(answer.status().is_success(), "{}", answer.status());
            }
            50..60 if !names.is_empty() => {
                let name = &names[rng.random_range(0..names.len())];
                let toxicity = Some(rng.random_range(0.0..=1.0));
                let _ = faults.update_toxic("p", name, None, toxicity);
            }
            60..85 if !names.is_empty() => {
                let name = &names[rng.random_range(0..names.len())];
                let _ = faults.remove_toxic("p", name);
            }
            85..90 => {
                let enabled = rng.random_bool(0.5);
                let _ = faults.set_enabled("p", enabled).await;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..60))).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_and_random_faults_leave_no_panic_and_no_connection() {
    count_panics();
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let rounds: u64 = std::env::var("FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    eprintln!("FUZZ_SEED={seed} FUZZ_ROUNDS={rounds}");
    bounded(async move {
        let (upstream, upstream_open) = fuzz_upstream(seed).await;
        let faults = FaultProxy::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        faults
            .add_proxy("p", listener, &upstream.to_string())
            .await
            .unwrap();
        fuzz_rounds(&faults, addr, seed, rounds).await;
        released_with_holding_faults_on(&faults, &upstream_open).await;

        faults.clear_all();
        until_async(GENEROUS, "every proxied connection released", || async {
            faults.proxy("p").unwrap().connections == 0
        })
        .await;
        until_async(GENEROUS, "every upstream connection closed", || async {
            upstream_open.load(Ordering::SeqCst) == 0
        })
        .await;
        // The proxy still serves after all that.
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut one = [0u8; 1];
        let read = timeout(GENEROUS, client.read(&mut one)).await;
        assert!(read.is_ok(), "an answer from the upstream after the fuzz");
        drop(client);
        faults.shutdown().await;
        assert_eq!(PANICS.load(Ordering::SeqCst), 0, "no panic anywhere");
    })
    .await;
}

/// `rounds` rounds of random clients while the faults are stirred.
async fn fuzz_rounds(faults: &FaultProxy, addr: SocketAddr, seed: u64, rounds: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for round in 0..rounds {
        let span = Duration::from_millis(rng.random_range(300..1200));
        let stirring = tokio::spawn(stir(faults.clone(), rng.random(), Instant::now() + span));
        let clients: Vec<_> = (0..rng.random_range(4..24))
            .map(|_| tokio::spawn(fuzz_client(addr, rng.random(), span)))
            .collect();
        for client in clients {
            // A client's own waits are bounded; a generous bound on it.
            timeout(span + GENEROUS, client)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a client hung"))
                .unwrap();
        }
        stirring.await.unwrap();
        assert_eq!(PANICS.load(Ordering::SeqCst), 0, "round {round}: a panic");
    }
}

/// The clients are gone: every connection is released with the faults that
/// hold or eat connections still on.
async fn released_with_holding_faults_on(faults: &FaultProxy, upstream_open: &AtomicUsize) {
    // The clients are gone. With the faults that hold or eat
    // connections still on (deny_new, blackhole, timeout, reset…) —
    // only those that merely slow delivery are cleared, as they may
    // rightly take minutes to deliver what was sent — nothing may stay.
    faults.set_enabled("p", true).await.unwrap();
    for toxic in faults.toxics("p").unwrap() {
        let slows = matches!(
            toxic.kind,
            ToxicKind::Latency(_)
                | ToxicKind::Bandwidth(_)
                | ToxicKind::Slicer(_)
                | ToxicKind::SlowClose(_)
        );
        if slows {
            faults.remove_toxic("p", &toxic.name).unwrap();
        }
    }
    let holding: Vec<String> = faults
        .toxics("p")
        .unwrap()
        .iter()
        .map(|t| format!("{} {}", t.kind.type_name(), t.stream))
        .collect();
    until_async(
        GENEROUS,
        &format!("every connection released with {holding:?} still on"),
        || async {
            faults.proxy("p").unwrap().connections == 0 && upstream_open.load(Ordering::SeqCst) == 0
        },
    )
    .await;
}
