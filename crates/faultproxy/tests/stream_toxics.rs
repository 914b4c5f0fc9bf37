//! Toxiproxy's stream toxics and the proxy's TCP behaviour, over an echo
//! server: half-closes pass through, `limit_data`, `timeout`, `reset_peer`,
//! `slow_close`, `slicer`, toxicity 0, a dead upstream, and a toxic added
//! while bytes are in flight — each over both upstream kinds (TCP and a
//! Unix socket: `name::tcp`, `name::unix`).

#[macro_use]
mod support;

use std::io::ErrorKind;
use std::time::Duration;

use chaoslab_faultproxy::toxic::{Blackhole, LimitData, ResetPeer, Slicer, SlowClose, Timeout};
use chaoslab_faultproxy::{Stream, ToxicKind, ToxicSpec};
use chaoslab_test_support::wait::GENEROUS;
use support::{Kind, Proxied, bounded, dead_upstream, echo_upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

async fn read_all(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    timeout(GENEROUS, stream.read_to_end(&mut out))
        .await
        .map_err(|_| std::io::Error::new(ErrorKind::TimedOut, "no end"))??;
    Ok(out)
}

async fn a_half_close_passes_through_and_every_byte_arrives(kind: Kind) {
    bounded(async {
        let echo = echo_upstream(kind).await;
        let proxied = Proxied::to(&echo.upstream).await;
        let mut client = TcpStream::connect(proxied.addr).await.unwrap();
        let payload: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = client.split();
        let writer = async {
            w.write_all(&payload).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let reader = async {
            let mut out = Vec::new();
            r.read_to_end(&mut out).await.unwrap();
            out
        };
        let ((), echoed) = tokio::join!(writer, reader);
        assert_eq!(echoed.len(), payload.len());
        assert!(echoed == payload, "bytes changed on the way");
    })
    .await;
}

async fn limit_data_passes_that_many_bytes_then_closes(kind: Kind) {
    bounded(async {
        let echo = echo_upstream(kind).await;
        let proxied = Proxied::to(&echo.upstream).await;
        let kind = ToxicKind::LimitData(LimitData { bytes: 5 });
        proxied
            .faults
            .add_toxic("redis", ToxicSpec::new(kind))
            .unwrap();
        let mut client = TcpStream::connect(proxied.addr).await.unwrap();
        client.write_all(b"hello world").await.unwrap();
        assert_eq!(read_all(&mut client).await.unwrap(), b"hello");
    })
    .await;
}

async fn timeout_stops_data_and_closes_after_its_timeout(kind: Kind) {
    bounded(async {
        let echo = echo_upstream(kind).await;
        let proxied = Proxied::to(&echo.upstream).await;
        let kind = ToxicKind::Timeout(Timeout { timeout: 300 });
        let spec = ToxicSpec::new(kind).on(Stream::Upstream);
        proxied.faults.add_toxic("redis", spec).unwrap();
        let start = Instant::now();
        let mut client = TcpStream::connect(proxied.addr).await.unwrap();
        client.write_all(b"dropped").await.unwrap();
        let got = read_all(&mut client).await.unwrap_or_default();
        assert!(got.is_empty(), "data passed a timeout toxic");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(250), "{took:?}");
    })
    .await;
}

async fn reset_peer_resets_once_data_arrives(kind: Kind) {
    bounded(async {
        let echo = echo_upstream(kind).await;
        let proxied = Proxied::to(&echo.upstream).await;
        let kind = ToxicKind::ResetPeer(ResetPeer { timeout: 100 });
        let spec = ToxicSpec::new(kind).on(Stream::Upstream);
        proxied.faults.add_toxic("redis", spec).unwrap();
        let mut client = TcpStream::connect(proxied.addr).await.unwrap();
        client.write_all(b"x").await.unwrap();
        let err = read_all(&mut client).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    })
    .await;
}

async fn slow_close_delays_the_close_not_the_data(kind: Kind) {
    bounded(async {
        let echo = echo_upstream(kind).await;
        let proxied = Proxied::to(&echo.upstream).await;
        let kind = ToxicKind::SlowClose(SlowClose { delay: 400 });
        proxied
            .faults
            .add_toxic("redis", ToxicSpec::new(kind))
            .unwrap();
        let mut client = TcpStream::connect(proxied.addr).await.unwrap();
        client.write_all(b"bye").await.unwrap();
        let mut echoed = [0u8; 3];
        timeout(GENEROUS, client.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        let start = Instant::now();
        client.shutdown().await.unwrap();
        assert!(read_all(&mut client).await.unwrap().is_empty());
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(350), "{took:?}");
    })
    .await;
}

async fn slicer_trickles_small_slices_and_loses_nothing(kind: Kind) {
    bounded(async {
        let echo = echo_upstream(kind).await;
        let proxied = Proxied::to(&echo.upstream).await;
        let kind = ToxicKind::Slicer(Slicer {
            average_size: 100,
            size_variation: 20,
            delay: 2_000,
        });
        proxied
            .faults
            .add_toxic("redis", ToxicSpec::new(kind).named("sliced"))
            .unwrap();
        let mut client = TcpStream::connect(proxied.addr).await.unwrap();
        let payload: Vec<u8> = (0..6_000u32).map(|i| (i % 251) as u8).collect();
        let start = Instant::now();
        client.write_all(&payload).await.unwrap();
        // Read the echo as it trickles in: many small reads, none larger
        // than a slice unless the kernel merged two.
        let mut echoed = Vec::new();
        let mut reads = 0;
        let mut buf = [0u8; 4096];
        while echoed.len() < payload.len() {
            let n = timeout(GENEROUS, client.read(&mut buf))
                .await
                .expect("the slices keep coming")
                .unwrap();
            assert!(n > 0, "closed early after {} bytes", echoed.len());
            echoed.extend_from_slice(&buf[..n]);
            reads += 1;
        }
        let elapsed = start.elapsed();
        assert!(echoed == payload, "bytes changed on the way");
        // At least 6000 / 120 = 50 slices, 2 ms apart.
        assert!(elapsed >= Duration::from_millis(90), "{elapsed:?}");
        assert!(reads >= 10, "{reads} reads");

        // Removing it mid-transfer passes the rest at once.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
        let (mut client, mut writer) = client.into_split();
        let sent = big.clone();
        let writing = tokio::spawn(async move { writer.write_all(&sent).await });
        let mut first = [0u8; 64];
        client.read_exact(&mut first).await.unwrap();
        proxied.faults.remove_toxic("redis", "sliced").unwrap();
        let start = Instant::now();
        let mut rest = vec![0u8; big.len() - first.len()];
        timeout(GENEROUS, client.read_exact(&mut rest))
            .await
            .expect("the rest arrives at once")
            .unwrap();
        // Still sliced, 199,936 bytes would take at least 1,666 slices of
        // at most 120 bytes, 2 ms apart: over 3.3 s.
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
        writing.await.unwrap().unwrap();
        assert_eq!(&first[..], &big[..64]);
        assert!(rest[..] == big[64..], "bytes changed on the way");
    })
    .await;
}

async fn toxicity_zero_never_acts(kind: Kind) {
    bounded(async {
        let echo = echo_upstream(kind).await;
        let proxied = Proxied::to(&echo.upstream).await;
        let spec = ToxicSpec::new(ToxicKind::Blackhole(Blackhole {})).toxicity(0.0);
        proxied.faults.add_toxic("redis", spec).unwrap();
        let mut client = TcpStream::connect(proxied.addr).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        timeout(GENEROUS, client.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&echoed, b"ping");
    })
    .await;
}

async fn a_dead_upstream_resets_the_client_like_a_refused_connection(kind: Kind) {
    bounded(async {
        // A TCP port is held while the proxy binds, so it cannot get the
        // same one, then closed; a Unix socket path has nobody behind it.
        let dead = dead_upstream(kind).await;
        let proxied = Proxied::to(&dead.upstream).await;
        drop(dead);
        // Only read: a write racing the RST would take the error instead.
        // The RST may even beat the end of the client's connect.
        let err = match TcpStream::connect(proxied.addr).await {
            Ok(mut client) => read_all(&mut client).await.unwrap_err(),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    })
    .await;
}

async fn a_blackhole_during_a_bulk_transfer_holds_then_delivers_everything(kind: Kind) {
    bounded(async {
        let echo = echo_upstream(kind).await;
        let proxied = Proxied::to(&echo.upstream).await;
        let mut client = TcpStream::connect(proxied.addr).await.unwrap();
        let payload: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
        let (first, rest) = payload.split_at(1_000_000);
        let faults = proxied.faults.clone();
        let (holed_tx, holed_rx) = tokio::sync::oneshot::channel::<()>();
        let (cleared_tx, cleared_rx) = tokio::sync::oneshot::channel::<()>();
        let (mut r, mut w) = client.split();
        let writer = async {
            w.write_all(first).await.unwrap();
            // The rest goes out while the blackhole is on.
            holed_rx.await.unwrap();
            w.write_all(rest).await.unwrap();
            // A close (even a half-close) while the blackhole holds the
            // connection is the client leaving: it is released. So the
            // writer half-closes once the blackhole is gone.
            cleared_rx.await.unwrap();
            w.shutdown().await.unwrap();
        };
        let reader = async {
            let mut out = vec![0u8; first.len()];
            r.read_exact(&mut out).await.unwrap();
            let spec = ToxicSpec::new(ToxicKind::Blackhole(Blackhole {})).named("h");
            faults.add_toxic("redis", spec).unwrap();
            holed_tx.send(()).unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let silent = timeout(Duration::from_millis(600), r.read(&mut buf)).await;
            assert!(silent.is_err(), "bytes passed a blackhole");
            faults.remove_toxic("redis", "h").unwrap();
            cleared_tx.send(()).unwrap();
            r.read_to_end(&mut out).await.unwrap();
            out
        };
        let ((), echoed) = tokio::join!(writer, reader);
        assert_eq!(echoed.len(), payload.len());
        assert!(
            echoed == payload,
            "bytes lost or reordered across a blackhole"
        );
    })
    .await;
}

over_both_upstreams!(
    a_half_close_passes_through_and_every_byte_arrives,
    limit_data_passes_that_many_bytes_then_closes,
    timeout_stops_data_and_closes_after_its_timeout,
    reset_peer_resets_once_data_arrives,
    slow_close_delays_the_close_not_the_data,
    slicer_trickles_small_slices_and_loses_nothing,
    toxicity_zero_never_acts,
    a_dead_upstream_resets_the_client_like_a_refused_connection,
    a_blackhole_during_a_bulk_transfer_holds_then_delivers_everything,
);
