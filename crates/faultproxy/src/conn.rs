//! One proxied connection, from accept to close: the door (`deny_new` holds
//! it unanswered, `reset` resets it), the dial to the upstream (TCP, or a
//! Unix socket: [`crate::socket`]), the fast
//! path while no toxic acts on it ([`crate::passthrough`]), then the two
//! links, and how the connection ends — half-closes pass through, a toxic's close is
//! a FIN on both sockets, its reset an RST on both (`SO_LINGER` 0, as
//! Toxiproxy's `SetLinger(0)`). A connection a fault holds (at the door, or
//! a blackhole) is released when its client leaves, so a fault never keeps
//! descriptors for clients that are gone; at the door it reads what the
//! client sends (bounded, [`HeldAtDoor`]), so the client's close is never
//! stuck behind unread bytes.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::address::Upstream;
use crate::chain::{Chain, Door, door};
use crate::connections::WakeSlot;
use crate::link::{Carry, Link, Outcome};
use crate::passthrough::{self, Exit};
use crate::socket::Socket;
use crate::toxic::{Direction, End};

/// Everything a connection needs from its proxy.
pub(crate) struct ConnCtx {
    /// Where to dial.
    pub upstream: Arc<Upstream>,
    /// The proxy's toxics, live.
    pub chain: watch::Receiver<Chain>,
    /// Fires when the proxy is disabled, removed or shut down.
    pub kill: CancellationToken,
    /// Toxicity and jitter seed of this connection.
    pub seed: u64,
    /// Where the fast path registers its task for wake-ups.
    pub wake: WakeSlot,
}

/// Serves one accepted client until it is closed, one way or another: the
/// door, the dial, the fast path, the links. Each step returns `None` when
/// it ended the connection itself.
pub(crate) async fn serve(mut client: TcpStream, mut ctx: ConnCtx) {
    let Some(held) = pass_door(&mut client, &mut ctx).await else {
        return;
    };
    let Some(mut upstream) = dial(&client, &ctx).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let mut client = Socket::Tcp(client);
    let Some((carry, stale_read)) = fast_path(&mut client, &mut upstream, &mut ctx, held).await
    else {
        return;
    };
    let end = run_links(&mut client, &mut upstream, &ctx, carry, stale_read).await;
    if end == Some(End::Reset) {
        client.abort();
        upstream.abort();
    }
    // Dropping both sockets closes them (FIN, or RST after `abort`).
}

/// Step 1, the door: new connections meet `deny_new` and `reset` before
/// anything is dialled. A held client that leaves (FIN or RST) is released
/// at once: nothing of it outlives its client. What it sends meanwhile is
/// read (see `HeldAtDoor`): left unread, it would fill the socket's window,
/// and the client's FIN, queued behind it in the client's kernel, would
/// never arrive. `None` when the connection ended here (reset, released,
/// killed, or bytes lost at the door).
async fn pass_door(client: &mut TcpStream, ctx: &mut ConnCtx) -> Option<HeldAtDoor> {
    let mut held = HeldAtDoor::default();
    loop {
        let chain = ctx.chain.borrow_and_update().clone();
        match door(&chain, ctx.seed) {
            Door::Open => break,
            Door::Reset => {
                abort(client);
                return None;
            }
            Door::Held => {
                tokio::select! {
                    _ = ctx.kill.cancelled() => return None,
                    changed = ctx.chain.changed() => if changed.is_err() { return None },
                    read = held.read_from(client) => {
                        // Gone while still held (the rule may have been
                        // cleared unseen): released.
                        if !read && door(&ctx.chain.borrow(), ctx.seed) == Door::Held {
                            return None;
                        }
                        if !read {
                            held.eof = true;
                            break;
                        }
                    }
                }
            }
        }
    }
    if held.overflowed {
        // Bytes were lost at the door: the stream cannot go on.
        abort(client);
        return None;
    }
    Some(held)
}

/// How long dialling the upstream may take. An upstream that never
/// answers (a network fault dropping packets, a full accept queue) would
/// otherwise hold the client, a task and a connection slot for the
/// kernel's whole SYN retry schedule (about two minutes).
const DIAL_TIMEOUT: Duration = if cfg!(test) {
    Duration::from_millis(300)
} else {
    Duration::from_secs(10)
};

/// Step 2: dials the upstream. A dead upstream, or one that does not answer
/// within [`DIAL_TIMEOUT`], resets the client, as a client dialling it
/// directly would see a refusal or its own connect timeout.
async fn dial(client: &TcpStream, ctx: &ConnCtx) -> Option<Socket> {
    let upstream = tokio::select! {
        _ = ctx.kill.cancelled() => return None,
        dialled = tokio::time::timeout(DIAL_TIMEOUT, Socket::connect(&ctx.upstream)) => {
            dialled.unwrap_or_else(|_| {
                Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the upstream did not answer"))
            })
        }
    };
    match upstream {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::debug!(upstream = ?ctx.upstream, error = %e, "upstream dial failed");
            abort(client);
            None
        }
    }
}

/// Step 3: while no toxic acts on the connection, the fast path. It hands
/// over to the links at a chunk boundary when one does, or when a side
/// closes. What the client sent while held at the door goes first, through
/// the links (the fast path starts with nothing pending). Returns what
/// each direction carries to its link and whether the client's read
/// readiness is stale; `None` when the connection ended on the fast path.
async fn fast_path(
    client: &mut Socket,
    upstream: &mut Socket,
    ctx: &mut ConnCtx,
    mut held: HeldAtDoor,
) -> Option<((Carry, Carry), bool)> {
    let stale_read = false;
    let chain_now = ctx.chain.borrow_and_update().clone();
    let from_door = !held.bytes.is_empty() || held.eof;
    if from_door {
        let up = Carry {
            pending: (!held.bytes.is_empty()).then(|| held.bytes.split().freeze()),
            eof: held.eof,
        };
        return Some(((up, Carry::default()), stale_read));
    }
    if passthrough::toxic_acts(&chain_now, ctx.seed) {
        return Some((Default::default(), stale_read));
    }
    let exit = passthrough::run(
        client,
        upstream,
        &mut ctx.chain,
        ctx.seed,
        &ctx.wake,
        stale_read,
    )
    .await;
    match exit {
        Exit::Handover {
            up,
            down,
            stale_read,
        } => Some(((up, down), stale_read)),
        // Dropping both sockets closes them (FIN).
        Exit::Killed | Exit::End(End::Close) => None,
        Exit::End(End::Reset) => {
            client.abort();
            upstream.abort();
            None
        }
    }
}

/// Step 4: the two links, until both ways are closed or one ends the
/// connection; how it ends (`None`: both closed in order).
async fn run_links(
    client: &mut Socket,
    upstream: &mut Socket,
    ctx: &ConnCtx,
    carry: (Carry, Carry),
    stale_read: bool,
) -> Option<End> {
    // Fires once the client's FIN went on to the upstream: from then on a
    // link held by a fault serves nobody.
    let client_closed = CancellationToken::new();
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let up = Link {
        dir: Direction::Upstream,
        src: client_read,
        dst: upstream_write,
        chain: ctx.chain.clone(),
        kill: ctx.kill.clone(),
        seed: ctx.seed,
        src_is_client: true,
        stale_read,
        client_closed: client_closed.clone(),
        carry: carry.0,
    }
    .run();
    let down = Link {
        dir: Direction::Downstream,
        src: upstream_read,
        dst: client_write,
        chain: ctx.chain.clone(),
        kill: ctx.kill.clone(),
        seed: ctx.seed,
        src_is_client: false,
        stale_read: false,
        client_closed: client_closed.clone(),
        carry: carry.1,
    }
    .run();
    let mut up = pin!(up);
    let mut down = pin!(down);
    let (first, up_done) = tokio::select! {
        outcome = &mut up => (outcome, true),
        outcome = &mut down => (outcome, false),
    };
    let outcome = match first {
        // One way is closed; the other carries on until it closes too.
        Outcome::Eof if up_done => {
            client_closed.cancel();
            down.await
        }
        Outcome::Eof => up.await,
        other => other,
    };
    match outcome {
        Outcome::Eof => None,
        Outcome::End(end) => Some(end),
        Outcome::Killed | Outcome::Left => Some(End::Close),
    }
}

/// Makes the socket's close send an RST instead of a FIN.
fn abort(stream: &TcpStream) {
    if let Err(e) = stream.set_zero_linger() {
        tracing::debug!(error = %e, "could not set SO_LINGER 0");
    }
}

/// The most a connection held at the door keeps of what its client sends
/// (as much as a link queues).
const DOOR_KEPT: usize = 256 * 1024;

/// What a client held at the door sent. Up to [`DOOR_KEPT`] bytes are kept
/// and go upstream when the door opens; past that the client's bytes are
/// read and dropped (a client that keeps sending to a door that never
/// answers still gets its close through), and the connection is reset when
/// the door opens, since its stream lost bytes.
#[derive(Default)]
struct HeldAtDoor {
    bytes: BytesMut,
    /// Bytes were dropped.
    overflowed: bool,
    /// The client half-closed after the door opened unseen.
    eof: bool,
}

impl HeldAtDoor {
    /// Reads what the client sent: `false` once it closed (FIN) or reset.
    /// Cancel-safe.
    async fn read_from(&mut self, client: &mut TcpStream) -> bool {
        if self.bytes.len() < DOOR_KEPT {
            let room = DOOR_KEPT - self.bytes.len();
            self.bytes.reserve(room.min(16 * 1024));
            let mut limited = (&mut *client).take(room as u64);
            matches!(limited.read_buf(&mut self.bytes).await, Ok(n) if n > 0)
        } else {
            let mut scratch = [0u8; 8192];
            match client.read(&mut scratch).await {
                Ok(n) if n > 0 => {
                    self.overflowed = true;
                    true
                }
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpSocket, TcpStream};

    use crate::FaultProxy;

    /// An upstream that never answers a connect: a listener whose accept
    /// queue is full and never drained, so the kernel drops further SYNs.
    /// Returns it and the connections that filled it (kept open).
    async fn unanswering_upstream() -> (TcpListener, Vec<TcpStream>) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let listener = socket.listen(0).expect("listen");
        let addr = listener.local_addr().expect("address");
        let mut fillers = Vec::new();
        for _ in 0..4 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => fillers.push(stream),
                _ => break,
            }
        }
        (listener, fillers)
    }

    #[tokio::test]
    async fn an_upstream_that_never_answers_resets_the_client_after_the_dial_timeout() {
        let (upstream, _fillers) = unanswering_upstream().await;
        let upstream = upstream.local_addr().expect("address").to_string();
        let faults = FaultProxy::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        faults
            .add_proxy("stuck", listener, &upstream)
            .await
            .expect("proxy");
        let mut client = TcpStream::connect(addr).await.expect("the proxy accepts");
        let started = tokio::time::Instant::now();
        let mut byte = [0u8; 1];
        // Without the dial timeout the proxy holds the client for the
        // kernel's SYN retries (about two minutes).
        let read = tokio::time::timeout(Duration::from_secs(30), client.read(&mut byte))
            .await
            .expect("the client is let go long before the kernel gives up");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "no byte can come from an upstream never reached: {read:?}"
        );
        assert!(
            started.elapsed() >= super::DIAL_TIMEOUT / 2,
            "{:?}",
            started.elapsed()
        );
    }
}
