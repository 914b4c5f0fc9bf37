//! Connections held by a fault are released when their client leaves
//! (issue 11, item 5; SPEC section 13 "Bounds"). A `deny_new` fault holds
//! new connections unanswered and a `blackhole` stops reading: without care
//! neither notices its client closing, and every such connection keeps two
//! descriptors (and, for a blackhole, a connection to the upstream) until
//! the fault ends — a local process could exhaust the proxy's 4096 slots
//! or the descriptor limit just by connecting and leaving.
//!
//! The test plays that client: it opens many connections while the fault is
//! on, closes them (FIN and RST), and checks — while the fault is still
//! active — that the proxy's connection count, the upstream's open
//! connections and this process's descriptors (`/proc/self/fd`; the proxy
//! runs in-process) all come back down within a deadline. One test only, so
//! no other test of this binary opens descriptors meanwhile.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chaoslab_faultproxy::toxic::{Blackhole, DenyNew};
use chaoslab_faultproxy::{FaultProxy, Stream, ToxicKind, ToxicSpec};
use chaoslab_test_support::wait::{GENEROUS, until_async as eventually};
use support::bounded;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Clients per scenario.
const CLIENTS: usize = 40;
/// How long a release may take (generous: a loaded CI machine).
const RELEASE: Duration = GENEROUS;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

async fn connections(faults: &FaultProxy) -> usize {
    faults.proxy("p").map_or(usize::MAX, |p| p.connections)
}

/// Closes half the clients with a FIN, half with an RST.
fn leave(clients: Vec<TcpStream>) {
    for (i, client) in clients.into_iter().enumerate() {
        if i % 2 == 1 {
            let _ = client.set_zero_linger();
        }
        drop(client);
    }
}

/// Waits until the proxy, the upstream and the descriptor table are back
/// where they were, and the fault is still on.
async fn released(faults: &FaultProxy, upstream_open: &AtomicUsize, fds: usize, what: &str) {
    eventually(
        RELEASE,
        &format!("{what}: proxy connections released"),
        || async { connections(faults).await == 0 },
    )
    .await;
    eventually(
        RELEASE,
        &format!("{what}: upstream connections closed"),
        || async { upstream_open.load(Ordering::SeqCst) == 0 },
    )
    .await;
    eventually(
        RELEASE,
        &format!("{what}: descriptors back to {fds}"),
        || async { open_fds() <= fds },
    )
    .await;
    assert_eq!(
        faults.toxics("p").unwrap().len(),
        1,
        "{what}: the fault is still active"
    );
}

/// Clients of the flooding scenario.
const FLOODERS: usize = 4;
/// What a flooding client sends at most: more than the client's send and
/// the proxy's receive buffers hold on loopback.
const FLOOD: usize = 16 * 1024 * 1024;

/// Sends up to [`FLOOD`] bytes, stopping once a write stays blocked (a peer
/// that reads nothing).
async fn flood(client: &mut TcpStream) {
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < FLOOD {
        match tokio::time::timeout(Duration::from_millis(200), client.write_all(&chunk)).await {
            Ok(Ok(())) => sent += chunk.len(),
            _ => break,
        }
    }
}

/// Opens `CLIENTS` connections through the proxy and has each echo a byte,
/// so each is established end to end.
async fn established(addr: SocketAddr) -> Vec<TcpStream> {
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        tokio::time::timeout(GENEROUS, c.read_exact(&mut one))
            .await
            .expect("echo in time")
            .unwrap();
        clients.push(c);
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_held_by_a_fault_are_released_when_their_clients_leave() {
    bounded(async {
        let (upstream, upstream_open) = chaoslab_test_support::echo::tcp_counting().await;
        let faults = FaultProxy::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        faults
            .add_proxy("p", listener, &upstream.to_string())
            .await
            .unwrap();
        // Warm up: the runtime's own descriptors (worker wake-ups, timers)
        // exist before counting.
        leave(established(addr).await);
        released_without_fault(&faults, &upstream_open).await;
        let fds = open_fds();
        let held = Held {
            faults: &faults,
            addr,
            upstream_open: &upstream_open,
            fds,
        };
        held_at_the_door(&held).await;
        flooders_held_at_the_door(&held).await;
        held_by_a_blackhole(&held).await;
        held_by_a_blackhole_on_replies(&held).await;

        // The proxy still serves.
        leave(established(addr).await);
        faults.shutdown().await;
    })
    .await;
}

/// What each step of the held-connections test works on.
struct Held<'a> {
    faults: &'a FaultProxy,
    addr: SocketAddr,
    upstream_open: &'a AtomicUsize,
    /// Descriptors open before any fault.
    fds: usize,
}

/// deny_new: clients held at the door, unanswered, then leaving.
async fn held_at_the_door(held: &Held<'_>) {
    let Held {
        faults,
        addr,
        upstream_open,
        fds,
    } = *held;
    // 1. deny_new: new connections are held at the door, unanswered.
    let deny = ToxicSpec::new(ToxicKind::DenyNew(DenyNew {})).named("deny");
    faults.add_toxic("p", deny).unwrap();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
        clients.push(c);
    }
    eventually(RELEASE, "every client held at the door", || async {
        connections(faults).await == CLIENTS
    })
    .await;
    leave(clients);
    released(faults, upstream_open, fds, "deny_new").await;
    faults.remove_toxic("p", "deny").unwrap();
}

/// deny_new, clients flooding before they leave.
async fn flooders_held_at_the_door(held: &Held<'_>) {
    let Held {
        faults,
        addr,
        upstream_open,
        fds,
    } = *held;
    // 1b. deny_new, clients that send more than the sockets buffer
    //     before leaving (the fuzz test's seed 1565559133091913592):
    //     left unread, their bytes filled the proxy's receive window and
    //     each client's FIN stayed queued behind them in the client's
    //     kernel — the proxy never saw the close and held them forever.
    faults
        .add_toxic(
            "p",
            ToxicSpec::new(ToxicKind::DenyNew(DenyNew {})).named("deny"),
        )
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..FLOODERS {
        clients.push(TcpStream::connect(addr).await.unwrap());
    }
    eventually(
        RELEASE,
        "every flooding client held at the door",
        || async { connections(faults).await == FLOODERS },
    )
    .await;
    for c in &mut clients {
        flood(c).await;
    }
    leave(clients);
    released(faults, upstream_open, fds, "deny_new, flooded").await;
    faults.remove_toxic("p", "deny").unwrap();
}

/// A blackhole both ways on established connections.
async fn held_by_a_blackhole(held: &Held<'_>) {
    let Held {
        faults,
        addr,
        upstream_open,
        fds,
    } = *held;
    // 2. blackhole (both ways): established connections stop passing
    //    bytes; the proxy stops reading from the client.
    let clients = established(addr).await;
    let hole = ToxicSpec::new(ToxicKind::Blackhole(Blackhole {})).named("hole");
    faults.add_toxic("p", hole).unwrap();
    let mut clients = clients;
    for c in &mut clients {
        c.write_all(b"held").await.unwrap();
    }
    leave(clients);
    released(faults, upstream_open, fds, "blackhole").await;
    faults.remove_toxic("p", "hole").unwrap();
}

/// A blackhole on the replies only.
async fn held_by_a_blackhole_on_replies(held: &Held<'_>) {
    let Held {
        faults,
        addr,
        upstream_open,
        fds,
    } = *held;
    // 3. blackhole on the replies only: the client's bytes and close
    //    reach the upstream, whose replies are held.
    let clients = established(addr).await;
    let hole = ToxicSpec::new(ToxicKind::Blackhole(Blackhole {}))
        .named("hole-down")
        .on(Stream::Downstream);
    faults.add_toxic("p", hole).unwrap();
    let mut clients = clients;
    for c in &mut clients {
        c.write_all(b"reply held").await.unwrap();
    }
    leave(clients);
    released(faults, upstream_open, fds, "blackhole downstream").await;
    faults.remove_toxic("p", "hole-down").unwrap();
}

async fn released_without_fault(faults: &FaultProxy, upstream_open: &AtomicUsize) {
    eventually(RELEASE, "warm-up connections closed", || async {
        connections(faults).await == 0 && upstream_open.load(Ordering::SeqCst) == 0
    })
    .await;
}
