//! The fault proxy in front of a real `redis-server`: each of chaoslab's
//! network faults shows its own failure to a Redis client, and clearing it
//! restores flow for existing and new connections with nothing lost —
//! passthrough and each fault over both upstream kinds (TCP and Redis's
//! Unix socket: `name::tcp`, `name::unix`).

#[macro_use]
mod support;

use std::io::ErrorKind;
use std::time::Duration;

use chaoslab_faultproxy::toxic::{Bandwidth, Blackhole, DenyNew, Latency, Reset};
use chaoslab_faultproxy::{Change, Stream, ToxicKind, ToxicSpec};
use chaoslab_test_support::RedisServer;
use chaoslab_test_support::samples::median;
use chaoslab_test_support::wait::{GENEROUS, until_async};
use support::{Kind, Proxied, Redis, Resp, bounded, redis_clients};
use tokio::time::Instant;

const SILENCE: Duration = Duration::from_millis(600);

async fn redis_cli_passes_through_without_faults(kind: Kind) {
    bounded(async {
        let redis = Redis::start(kind);
        let proxied = Proxied::to(&redis.upstream()).await;
        let port = proxied.addr.port().to_string();
        for (args, want) in [
            (vec!["PING"], "PONG"),
            (vec!["SET", "greeting", "hello"], "OK"),
            (vec!["GET", "greeting"], "hello"),
        ] {
            let out = tokio::process::Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port])
                .args(&args)
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(GENEROUS, out)
                .await
                .expect("redis-cli finished")
                .expect("redis-cli runs");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                want,
                "{args:?}"
            );
        }
    })
    .await;
}

async fn deny_new_keeps_established_connections_and_hangs_new_ones(kind: Kind) {
    bounded(async {
        let redis = Redis::start(kind);
        let proxied = Proxied::to(&redis.upstream()).await;
        let mut established = Resp::connect(proxied.addr).await.unwrap();
        assert_eq!(established.cmd(&["PING"]).await.unwrap(), "+PONG");
        let upstream_clients = redis_clients(redis.addr()).await;

        let spec = ToxicSpec::new(ToxicKind::DenyNew(DenyNew {})).named("nsg");
        proxied.faults.add_toxic("redis", spec).unwrap();

        // The established connection carries on.
        assert_eq!(established.cmd(&["SET", "k", "v"]).await.unwrap(), "+OK");
        // A new one is accepted by nobody: no answer, no close, no dial.
        let mut fresh = Resp::connect(proxied.addr).await.unwrap();
        fresh.send(&["PING"]).await.unwrap();
        let err = fresh.reply_within(SILENCE).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "no reply, no close: {err}");
        assert_eq!(redis_clients(redis.addr()).await, upstream_clients);

        // Clearing lets the held connection through, its PING answered.
        let cleared = Instant::now();
        proxied.faults.remove_toxic("redis", "nsg").unwrap();
        assert_eq!(fresh.reply_within(GENEROUS).await.unwrap(), "+PONG");
        eprintln!(
            "deny_new cleared → held PING answered in {:?}",
            cleared.elapsed()
        );
        let mut another = Resp::connect(proxied.addr).await.unwrap();
        assert_eq!(another.cmd(&["GET", "k"]).await.unwrap(), "$v");
    })
    .await;
}

async fn blackhole_stalls_without_closing_and_clearing_delivers_the_reply(kind: Kind) {
    bounded(async {
        let redis = Redis::start(kind);
        let proxied = Proxied::to(&redis.upstream()).await;
        let mut client = Resp::connect(proxied.addr).await.unwrap();
        assert_eq!(client.cmd(&["PING"]).await.unwrap(), "+PONG");

        let spec = ToxicSpec::new(ToxicKind::Blackhole(Blackhole {})).named("hole");
        proxied.faults.add_toxic("redis", spec).unwrap();
        client.send(&["INCR", "counter"]).await.unwrap();
        let err = client.reply_within(SILENCE).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::TimedOut,
            "stalled, not closed: {err}"
        );

        // A blackhole holds the reply forever: its arrival at all (within
        // a generous bound) shows clearing delivered it.
        let cleared = Instant::now();
        proxied.faults.remove_toxic("redis", "hole").unwrap();
        assert_eq!(client.reply_within(GENEROUS).await.unwrap(), ":1");
        let took = cleared.elapsed();
        eprintln!("blackhole cleared → pending reply in {took:?}");
        // Exactly once: the command was neither lost nor repeated.
        assert_eq!(client.cmd(&["GET", "counter"]).await.unwrap(), "$1");
    })
    .await;
}

async fn reset_resets_live_and_new_connections_at_once(kind: Kind) {
    bounded(async {
        let redis = Redis::start(kind);
        let proxied = Proxied::to(&redis.upstream()).await;
        let mut live = Resp::connect(proxied.addr).await.unwrap();
        assert_eq!(live.cmd(&["PING"]).await.unwrap(), "+PONG");

        // The connection is idle: only the toxic can end it, so an RST
        // within a generous bound is the toxic acting on a live connection.
        let added = Instant::now();
        let spec = ToxicSpec::new(ToxicKind::Reset(Reset {})).named("rst");
        proxied.faults.add_toxic("redis", spec).unwrap();
        let err = live.reply_within(GENEROUS).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        let took = added.elapsed();
        eprintln!("reset added → client saw RST in {took:?}");

        // A new connection is reset as soon as it is accepted (the RST may
        // already be there when the client sets its socket options).
        let err = match Resp::connect(proxied.addr).await {
            // Only read: a write racing the RST would take the error instead.
            Ok(mut fresh) => fresh.reply_within(GENEROUS).await.unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");

        proxied.faults.remove_toxic("redis", "rst").unwrap();
        let mut after = Resp::connect(proxied.addr).await.unwrap();
        assert_eq!(after.cmd(&["PING"]).await.unwrap(), "+PONG");
    })
    .await;
}

async fn rtt(client: &mut Resp, n: usize) -> Duration {
    let mut samples = Vec::new();
    for _ in 0..n {
        samples.push(client.ping_rtt().await.unwrap());
    }
    median(samples)
}

/// PINGs until one round trip is under `bound` (a generous deadline), every
/// one of them at least `floor` (what the toxics still on must add). A
/// latency toxic delays every PING, so a fast one proves it is gone; a
/// loaded machine only makes fast ones rarer, never impossible.
async fn until_a_ping_under(client: &mut Resp, bound: Duration, floor: Duration, what: &str) {
    let start = Instant::now();
    loop {
        let rtt = client.ping_rtt().await.unwrap();
        assert!(rtt >= floor, "{what}: a PING took {rtt:?}, under {floor:?}");
        if rtt < bound {
            return;
        }
        assert!(
            start.elapsed() < GENEROUS,
            "timed out after {GENEROUS:?} waiting for: {what} (a PING under {bound:?})"
        );
    }
}

async fn latency_adds_to_the_round_trip_until_cleared(kind: Kind) {
    bounded(async {
        let redis = Redis::start(kind);
        let proxied = Proxied::to(&redis.upstream()).await;
        let mut client = Resp::connect(proxied.addr).await.unwrap();
        let base = rtt(&mut client, 5).await;

        let kind = ToxicKind::Latency(Latency {
            latency: 200,
            jitter: 0,
        });
        proxied
            .faults
            .add_toxic("redis", ToxicSpec::new(kind).named("slow"))
            .unwrap();
        let slow = rtt(&mut client, 5).await;
        eprintln!("PING median: {base:?} → {slow:?} with 200 ms latency");
        assert!(slow >= Duration::from_millis(195), "{slow:?}");
        // 200 ms added, not more: some PING comes back well under 2 × 200.
        until_a_ping_under(
            &mut client,
            Duration::from_millis(400),
            Duration::from_millis(195),
            "200 ms latency on",
        )
        .await;

        proxied.faults.remove_toxic("redis", "slow").unwrap();
        until_a_ping_under(
            &mut client,
            Duration::from_millis(190),
            Duration::ZERO,
            "the latency cleared",
        )
        .await;
    })
    .await;
}

async fn bandwidth_limits_throughput(kind: Kind) {
    bounded(async {
        let redis = Redis::start(kind);
        let value = "x".repeat(300_000);
        let mut direct = Resp::connect(redis.addr()).await.unwrap();
        assert_eq!(direct.cmd(&["SET", "big", &value]).await.unwrap(), "+OK");
        let proxied = Proxied::to(&redis.upstream()).await;
        let mut client = Resp::connect(proxied.addr).await.unwrap();

        let start = Instant::now();
        assert_eq!(client.cmd(&["GET", "big"]).await.unwrap().len(), 300_001);
        let free = start.elapsed();

        let kind = ToxicKind::Bandwidth(Bandwidth { rate: 100 }); // 100 KB/s
        proxied
            .faults
            .add_toxic("redis", ToxicSpec::new(kind).on(Stream::Downstream))
            .unwrap();
        let start = Instant::now();
        client.send(&["GET", "big"]).await.unwrap();
        let reply = client.reply_within(GENEROUS).await.unwrap();
        assert_eq!(reply.len(), 300_001);
        let limited = start.elapsed();
        eprintln!("300 KB GET: {free:?} free, {limited:?} at 100 KB/s");
        // About 3 s; never under the rate's floor. The upper bound only
        // catches a rate ten times too low, not a slow machine.
        assert!(limited >= Duration::from_millis(2_400), "{limited:?}");
        assert!(limited <= Duration::from_secs(30), "{limited:?}");
    })
    .await;
}

async fn toxics_stack_and_each_clears_on_its_own(kind: Kind) {
    bounded(async {
        let redis = Redis::start(kind);
        let proxied = Proxied::to(&redis.upstream()).await;
        let faults = &proxied.faults;
        let mut client = Resp::connect(proxied.addr).await.unwrap();
        for (name, stream) in [("up", Stream::Upstream), ("down", Stream::Downstream)] {
            let kind = ToxicKind::Latency(Latency {
                latency: 150,
                jitter: 0,
            });
            let spec = ToxicSpec::new(kind).named(name).on(stream);
            faults.add_toxic("redis", spec).unwrap();
        }
        let both = rtt(&mut client, 3).await;
        assert!(both >= Duration::from_millis(295), "{both:?}");

        let spec = ToxicSpec::new(ToxicKind::Blackhole(Blackhole {})).named("hole");
        faults.add_toxic("redis", spec).unwrap();
        assert_eq!(faults.toxics("redis").unwrap().len(), 3);
        client.send(&["PING"]).await.unwrap();
        let err = client.reply_within(SILENCE).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        faults.remove_toxic("redis", "hole").unwrap();
        assert_eq!(client.reply_within(GENEROUS).await.unwrap(), "+PONG");
        let still = rtt(&mut client, 3).await;
        assert!(
            still >= Duration::from_millis(295),
            "latency stays: {still:?}"
        );

        faults.remove_toxic("redis", "up").unwrap();
        until_a_ping_under(
            &mut client,
            Duration::from_millis(290),
            Duration::from_millis(145),
            "one 150 ms latency left",
        )
        .await;
        assert_eq!(faults.clear_all().len(), 1);
        until_a_ping_under(
            &mut client,
            Duration::from_millis(140),
            Duration::ZERO,
            "every latency cleared",
        )
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_with_a_duration_expires_by_itself() {
    bounded(async {
        let redis = RedisServer::start();
        let proxied = Proxied::new(redis.addr()).await;
        let mut events = proxied.faults.subscribe();
        let mut client = Resp::connect(proxied.addr).await.unwrap();

        // Timed from before the add: the fault's 500 ms start after this
        // instant, so the reply cannot come sooner however slow the
        // machine (timing from the send would shrink on a slow one).
        let start = Instant::now();
        let spec = ToxicSpec::new(ToxicKind::Blackhole(Blackhole {}))
            .named("f-1")
            .lasting(Duration::from_millis(500));
        let added = proxied.faults.add_toxic("redis", spec).unwrap();
        assert_eq!(added.duration_ms, Some(500));
        assert!(added.remaining().unwrap() <= Duration::from_millis(500));
        client.send(&["PING"]).await.unwrap();
        assert_eq!(client.reply_within(GENEROUS).await.unwrap(), "+PONG");
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(450), "{waited:?}");

        let first = events.recv().await.unwrap();
        assert!(matches!(&first.change, Change::Added { toxic } if toxic.name == "f-1"));
        let second = events.recv().await.unwrap();
        assert!(
            matches!(&second.change, Change::Expired { toxic } if toxic.name == "f-1"),
            "{second:?}"
        );
        assert!(proxied.faults.all_toxics().is_empty());
        // Clearing an expired fault is a clean "not found".
        assert_eq!(
            proxied
                .faults
                .remove_toxic("redis", "f-1")
                .unwrap_err()
                .status(),
            404
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_closes_every_connection_and_keeps_the_port() {
    bounded(async {
        let redis = RedisServer::start();
        let proxied = Proxied::new(redis.addr()).await;
        let mut client = Resp::connect(proxied.addr).await.unwrap();
        assert_eq!(client.cmd(&["PING"]).await.unwrap(), "+PONG");
        until_async(GENEROUS, "connection counted", || async {
            proxied.faults.proxy("redis").unwrap().connections == 1
        })
        .await;

        let info = proxied.faults.set_enabled("redis", false).await.unwrap();
        assert!(!info.enabled);
        let err = client.reply_within(GENEROUS).await.unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ),
            "{err}"
        );
        // A lab proxy keeps its port while disabled (no other process can
        // take it) and resets every new connection at once.
        assert!(tokio::net::TcpListener::bind(proxied.addr).await.is_err());
        let refused = match Resp::connect(proxied.addr).await {
            Ok(mut fresh) => fresh.cmd(&["PING"]).await.unwrap_err(),
            Err(e) => e,
        };
        assert!(
            matches!(
                refused.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionRefused
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::BrokenPipe
            ),
            "{refused}"
        );
        assert_eq!(proxied.faults.proxy("redis").unwrap().connections, 0);

        proxied.faults.set_enabled("redis", true).await.unwrap();
        let mut again = Resp::connect(proxied.addr).await.unwrap();
        assert_eq!(again.cmd(&["PING"]).await.unwrap(), "+PONG");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_runtime_serves_faults_and_stops_on_shutdown() {
    bounded(async {
        let redis = RedisServer::start();
        let faults = chaoslab_faultproxy::FaultProxy::dedicated().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        faults
            .add_proxy("redis", listener, &redis.addr().to_string())
            .await
            .unwrap();
        let mut client = Resp::connect(addr).await.unwrap();
        assert_eq!(client.cmd(&["PING"]).await.unwrap(), "+PONG");

        let spec = ToxicSpec::new(ToxicKind::Blackhole(Blackhole {}))
            .named("f-9")
            .lasting(Duration::from_millis(300));
        faults.add_toxic("redis", spec).unwrap();
        client.send(&["PING"]).await.unwrap();
        assert_eq!(
            client.reply_within(GENEROUS).await.unwrap(),
            "+PONG"
        );
        assert!(faults.all_toxics().is_empty(), "expired on its own");

        let mut events = faults.subscribe();
        let spec = ToxicSpec::new(ToxicKind::Reset(Reset {})).named("f-10");
        faults.add_toxic("redis", spec).unwrap();
        faults.shutdown().await;
        assert!(matches!(events.recv().await.unwrap().change, Change::Added { .. }));
        assert!(
            matches!(events.recv().await.unwrap().change, Change::Removed { ref toxic } if toxic.name == "f-10"),
            "shutdown clears every fault"
        );
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
        assert_eq!(faults.proxies().len(), 0);
        assert_eq!(
            faults
                .add_toxic("redis", ToxicSpec::new(ToxicKind::Reset(Reset {})))
                .unwrap_err()
                .status(),
            503
        );
    })
    .await;
}

over_both_upstreams!(
    redis_cli_passes_through_without_faults,
    deny_new_keeps_established_connections_and_hangs_new_ones,
    blackhole_stalls_without_closing_and_clearing_delivers_the_reply,
    reset_resets_live_and_new_connections_at_once,
    latency_adds_to_the_round_trip_until_cleared,
    bandwidth_limits_throughput,
    toxics_stack_and_each_clears_on_its_own,
);
