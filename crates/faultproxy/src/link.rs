//! One direction of one proxied connection: read from the source socket, pass
//! each chunk through the toxics covering this direction, write to the
//! destination (Toxiproxy's `link.go`, one task-free loop instead of a
//! goroutine per toxic).
//!
//! A connection runs its links once a toxic acts on it or a side closes;
//! until then both directions go through the fast path
//! ([`crate::passthrough`]), which hands over what it read and could not yet
//! write (`Link::carry`). With no toxic (left) the link is a plain copy:
//! read, then write at once. With toxics, chunks are kept in a small bounded queue stamped with when they
//! entered their current stage; only the head advances, so order is kept.
//! One `select!` waits for everything — the kill switch, a chain change, the
//! source being readable (when the chain and the queue bound allow reading),
//! the destination being writable, and the next instant a toxic named — so
//! every wait is interruptible and a chain change is seen at once. Only a
//! toxic whose fault is dropping data drops a byte.
//!
//! Reads go through `AsyncRead` (`read_buf`, cancel-safe): tokio then drops
//! the socket's read readiness after a short read, which saves the extra
//! `EAGAIN` read per chunk that `try_read` would cost.
//!
//! A link held by a fault that stops it reading (a blackhole) still notices
//! its client leaving, without reading: it waits for the socket's
//! read-closed readiness (`EPOLLRDHUP`/`EPOLLHUP`), consuming the plain
//! read readiness that bytes arriving meanwhile raise (else the wait would
//! spin); the first read after that goes to the socket directly, since
//! tokio no longer knows the bytes are there ([`peer_left`],
//! `read_direct`).

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::chain::{Chain, Installed};
use crate::splitmix::{mix, unit};
use crate::toxic::{ChunkView, Direction, End, StageState, Verdict};

/// Bytes asked for per read.
const READ_SIZE: usize = 32 * 1024;
/// At most this many bytes wait in a link's queue; past it the link stops
/// reading and TCP flow control pushes back on the sender.
const MAX_QUEUED: usize = 256 * 1024;

/// How a link finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The source closed and the close was passed on (half-close).
    Eof,
    /// A toxic, or an I/O error, ends the whole connection.
    End(End),
    /// The proxy was disabled, removed or shut down.
    Killed,
    /// The client left while a fault held the link: release everything.
    Left,
}

/// One direction of a connection.
pub(crate) struct Link<'a> {
    /// Which way the bytes go.
    pub dir: Direction,
    /// Where bytes come from.
    pub src: ReadHalf<'a>,
    /// Where bytes go.
    pub dst: WriteHalf<'a>,
    /// The proxy's toxics, live.
    pub chain: watch::Receiver<Chain>,
    /// Fires when the connection must close now.
    pub kill: CancellationToken,
    /// The connection's toxicity and jitter seed.
    pub seed: u64,
    /// Whether the source is the client (the upstream link): while a toxic
    /// stops this link reading, the client's close ends the connection.
    pub src_is_client: bool,
    /// The source's read readiness was consumed while the connection was
    /// held at the door: the first read goes to the socket directly.
    pub stale_read: bool,
    /// Fires when the client's FIN went on upstream (the other link ended):
    /// while a toxic stops this link reading, nobody is left to serve.
    pub client_closed: CancellationToken,
    /// What the connection's fast path hands over (`passthrough`): bytes
    /// read before any toxic acted (they pass none), and whether the
    /// source already closed.
    pub carry: Carry,
}

/// What happened at the source socket.
enum SrcEvent {
    /// A read finished.
    Read(io::Result<usize>),
    /// While not reading: the peer closed (`true`) or sent bytes (`false`).
    Watched(bool),
}

/// Waits until the peer of `stream` closes its side (FIN or RST), without
/// reading: `true` then. `false` when bytes arrived instead: their read
/// readiness is consumed (so the next wait sleeps until something new
/// happens), and the next read must use `read_direct`.
pub(crate) async fn peer_left(stream: &TcpStream) -> bool {
    match stream.ready(Interest::READABLE).await {
        Err(_) => true,
        Ok(ready) if ready.is_read_closed() => true,
        Ok(_) => {
            // A closure that "would block" makes tokio clear the read
            // readiness it reported (closed states stay set).
            let _ = stream.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
            false
        }
    }
}

/// Reads what is waiting in `stream` past tokio's readiness (which
/// `peer_left` consumed), through a duplicate of its descriptor (the same
/// non-blocking socket: `WouldBlock` when nothing is there).
fn read_direct(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ_SIZE, 0);
    let read = read_direct_into(stream, &mut buf[start..]);
    buf.truncate(start + read.as_ref().map_or(0, |n| *n));
    read
}

/// [`read_direct`] into a slice.
pub(crate) fn read_direct_into(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    use std::os::fd::AsFd;
    let mut dup = std::net::TcpStream::from(stream.as_fd().try_clone_to_owned()?);
    dup.read(buf)
}

/// What one direction carries over to its link.
#[derive(Debug, Default)]
pub(crate) struct Carry {
    /// Read and not yet (fully) written; passes no toxic.
    pub pending: Option<Bytes>,
    /// The source closed (its FIN is still to be passed on).
    pub eof: bool,
}

/// Whether every toxic acting on this link lets it read.
fn reads(stages: &[Stage]) -> bool {
    stages
        .iter()
        .all(|s| !s.active || s.toxic.kind.toxic().reads())
}

/// A toxic as it acts on this link.
struct Stage {
    toxic: Arc<Installed>,
    /// Whether the toxic acts on this connection (toxicity).
    active: bool,
    state: StageState,
}

/// Bytes read and not yet written.
struct Chunk {
    data: Bytes,
    /// Order of the read on this link; seeds the chunk's random draws.
    seq: u64,
    /// When the chunk entered its current stage.
    entered: Instant,
    /// Ids of the toxics the chunk went through.
    passed: Vec<u64>,
    /// Bytes already written; once writing began the chunk is committed.
    written: usize,
    /// Passes no toxic: read on the fast path before any toxic acted.
    committed: bool,
}

/// What the chain decided for the head chunk.
enum Step {
    Ready,
    Wait(Instant),
    Hold,
    Dropped,
    Split(usize, u64),
    End(End),
}

impl Link<'_> {
    /// Runs the link until its source closes, a toxic ends the connection or
    /// the kill switch fires.
    pub(crate) async fn run(mut self) -> Outcome {
        // Registered once for the link's life, not once per read: the kill
        // switch is polled on every wake-up of a busy connection.
        let kill = self.kill.clone();
        let mut killed = std::pin::pin!(kill.cancelled_owned());
        let mut stages: Vec<Stage> = Vec::new();
        let chain = self.chain.borrow_and_update().clone();
        rebuild(&mut stages, &chain, self.dir, self.seed, Instant::now());
        let mut queue: VecDeque<Chunk> = VecDeque::new();
        let mut queued = 0usize;
        let carry = mem::take(&mut self.carry);
        if let Some(data) = carry.pending {
            queued += data.len();
            queue.push_back(Chunk {
                data,
                seq: 0,
                entered: Instant::now(),
                passed: Vec::new(),
                written: 0,
                committed: true,
            });
        }
        let mut eof_at: Option<Instant> = carry.eof.then(Instant::now);
        let mut buf = BytesMut::with_capacity(READ_SIZE);
        let mut seq = 0u64;
        let mut stale_read = self.stale_read;

        loop {
            // Bytes tokio no longer reports (see `peer_left`): once reading
            // is allowed again, read them directly until the socket is
            // empty — only new bytes raise the readiness again.
            if stale_read && eof_at.is_none() && queued < MAX_QUEUED && reads(&stages) {
                match read_direct(self.src.as_ref(), &mut buf) {
                    Ok(0) => {
                        stale_read = false;
                        eof_at = Some(Instant::now());
                    }
                    Ok(_) => {
                        let data = buf.split().freeze();
                        queued += data.len();
                        queue.push_back(Chunk {
                            data,
                            seq,
                            entered: Instant::now(),
                            passed: Vec::new(),
                            written: 0,
                            committed: false,
                        });
                        seq += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => stale_read = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Outcome::End(End::Reset),
                }
            }

            // Fast path: no toxic, nothing pending — a plain copy.
            if stages.is_empty() && queue.is_empty() && eof_at.is_none() {
                buf.reserve(READ_SIZE);
                tokio::select! {
                    biased;
                    _ = &mut killed => return Outcome::Killed,
                    changed = self.chain.changed() => {
                        if changed.is_err() {
                            return Outcome::Killed;
                        }
                        let chain = self.chain.borrow_and_update().clone();
                        rebuild(&mut stages, &chain, self.dir, self.seed, Instant::now());
                    }
                    read = self.src.read_buf(&mut buf) => {
                        match read {
                            Ok(0) => eof_at = Some(Instant::now()),
                            Ok(_) => {
                                let mut written = 0;
                                while written < buf.len() {
                                    match self.dst.try_write(&buf[written..]) {
                                        Ok(n) => written += n,
                                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                        Err(_) => return Outcome::End(End::Close),
                                    }
                                }
                                if written < buf.len() {
                                    let data = buf.split().freeze();
                                    queued += data.len();
                                    queue.push_back(Chunk {
                                        data,
                                        seq,
                                        entered: Instant::now(),
                                        passed: Vec::new(),
                                        written,
                                        committed: false,
                                    });
                                    seq += 1;
                                } else {
                                    buf.clear();
                                }
                            }
                            Err(_) => return Outcome::End(End::Reset),
                        }
                    }
                }
                continue;
            }

            let now = Instant::now();
            let mut wake: Option<Instant> = None;
            let mut need_writable = false;

            // Settle the head: through the stages, then out.
            let mut head_ready = false;
            while let Some(head) = queue.front_mut() {
                let step = if head.written > 0 || head.committed {
                    Step::Ready
                } else {
                    evaluate(head, &mut stages, self.seed, now)
                };
                match step {
                    Step::Ready => {
                        match self.dst.try_write(&head.data[head.written..]) {
                            Ok(n) => head.written += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                need_writable = true;
                                head_ready = true;
                                break;
                            }
                            Err(_) => return Outcome::End(End::Close),
                        }
                        if head.written == head.data.len() {
                            queued -= head.data.len();
                            queue.pop_front();
                        }
                    }
                    Step::Wait(at) => {
                        wake = Some(at);
                        break;
                    }
                    Step::Hold => break,
                    Step::Dropped => {
                        queued -= head.data.len();
                        queue.pop_front();
                    }
                    Step::Split(n, id) => {
                        let mut front = Chunk {
                            data: head.data.split_to(n),
                            seq: head.seq,
                            entered: now,
                            passed: head.passed.clone(),
                            written: 0,
                            committed: false,
                        };
                        front.passed.push(id);
                        queue.push_front(front);
                    }
                    Step::End(end) => return Outcome::End(end),
                }
            }

            // Faults that end the connection whether data flows or not. An
            // orderly close waits for what already passed to be written.
            for stage in stages.iter().filter(|s| s.active) {
                if let Some((at, end)) = stage.toxic.kind.toxic().deadline(&stage.state)
                    && (end == End::Reset || !head_ready)
                {
                    if now >= at {
                        return Outcome::End(end);
                    }
                    wake = earliest(wake, at);
                }
            }

            let reading_allowed = reads(&stages);

            // The source closed and everything before the close is out.
            if let (Some(at), true) = (eof_at, queue.is_empty()) {
                let held = stages
                    .iter()
                    .filter(|s| s.active)
                    .filter_map(|s| s.toxic.kind.toxic().hold_eof(at))
                    .max();
                match held {
                    Some(until) if now < until => wake = earliest(wake, until),
                    _ if reading_allowed => {
                        let _ = self.dst.shutdown().await;
                        return Outcome::Eof;
                    }
                    _ => {}
                }
            }

            let may_read = eof_at.is_none() && queued < MAX_QUEUED && reading_allowed;
            if may_read {
                buf.reserve(READ_SIZE);
            }
            // Held by a fault that stops reading: the client may still leave.
            let watch_client = self.src_is_client && eof_at.is_none() && !reading_allowed;
            let client_gone = !self.src_is_client && !reading_allowed;
            let src = &mut self.src;
            let src_event = async {
                if may_read {
                    SrcEvent::Read(src.read_buf(&mut buf).await)
                } else {
                    SrcEvent::Watched(peer_left(src.as_ref()).await)
                }
            };
            tokio::select! {
                biased;
                _ = &mut killed => return Outcome::Killed,
                _ = self.client_closed.cancelled(), if client_gone => {
                    // Only if a fault still holds the link: the chain may
                    // have changed unseen (this task's budget ran out).
                    if let Some(end) = self.catch_up(&mut stages) {
                        return Outcome::End(end);
                    }
                    if !reads(&stages) {
                        return Outcome::Left;
                    }
                }
                changed = self.chain.changed() => {
                    if changed.is_err() {
                        return Outcome::Killed;
                    }
                    let chain = self.chain.borrow_and_update().clone();
                    if let Some(end) = rebuild(&mut stages, &chain, self.dir, self.seed, Instant::now()) {
                        return Outcome::End(end);
                    }
                }
                event = src_event, if may_read || watch_client => {
                    let read = match event {
                        SrcEvent::Read(read) => read,
                        SrcEvent::Watched(true) => {
                            if let Some(end) = self.catch_up(&mut stages) {
                                return Outcome::End(end);
                            }
                            if !reads(&stages) {
                                return Outcome::Left;
                            }
                            // The fault is gone: the next read sees the
                            // close (its readiness stays set).
                            continue;
                        }
                        SrcEvent::Watched(false) => {
                            stale_read = true;
                            continue;
                        }
                    };
                    match read {
                        Ok(0) => eof_at = Some(Instant::now()),
                        Ok(_) => {
                            let data = buf.split().freeze();
                            queued += data.len();
                            queue.push_back(Chunk {
                                data,
                                seq,
                                entered: Instant::now(),
                                passed: Vec::new(),
                                written: 0,
                                committed: false,
                            });
                            seq += 1;
                        }
                        Err(_) => return Outcome::End(End::Reset),
                    }
                }
                ready = self.dst.writable(), if need_writable => {
                    if ready.is_err() {
                        return Outcome::End(End::Close);
                    }
                }
                _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
                // Bytes tokio does not report are waiting: read them now.
                _ = std::future::ready(()), if stale_read && may_read => {}
            }
        }
    }
}

impl Link<'_> {
    /// Applies a chain change not yet seen, if there is one.
    fn catch_up(&mut self, stages: &mut Vec<Stage>) -> Option<End> {
        if !self.chain.has_changed().unwrap_or(false) {
            return None;
        }
        let chain = self.chain.borrow_and_update().clone();
        rebuild(stages, &chain, self.dir, self.seed, Instant::now())
    }
}

/// The earlier of an optional instant and another.
fn earliest(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Brings the link's stages in line with `chain`, keeping the state of the
/// toxics still there; returns how a removed toxic ends the connection, if
/// it does.
fn rebuild(
    stages: &mut Vec<Stage>,
    chain: &Chain,
    dir: Direction,
    seed: u64,
    now: Instant,
) -> Option<End> {
    let mut old = mem::take(stages);
    for toxic in chain
        .iter()
        .filter(|t| t.stream.covers(dir) && !t.at_accept())
    {
        let state = match old.iter().position(|s| s.toxic.id == toxic.id) {
            Some(i) => old.swap_remove(i).state,
            None => StageState::new(now),
        };
        stages.push(Stage {
            active: toxic.acts_on(seed),
            toxic: toxic.clone(),
            state,
        });
    }
    old.iter()
        .filter(|s| s.active)
        .find_map(|s| s.toxic.kind.toxic().on_remove(&s.state))
}

/// Runs the head chunk through the stages it has not passed yet.
fn evaluate(chunk: &mut Chunk, stages: &mut [Stage], seed: u64, now: Instant) -> Step {
    for stage in stages.iter_mut() {
        let id = stage.toxic.id;
        if chunk.passed.contains(&id) {
            continue;
        }
        if !stage.active {
            chunk.passed.push(id);
            continue;
        }
        let view = ChunkView {
            len: chunk.data.len(),
            entered: chunk.entered,
            random: unit(mix(seed ^ mix(chunk.seq) ^ id)),
        };
        match stage
            .toxic
            .kind
            .toxic()
            .on_chunk(view, &mut stage.state, now)
        {
            Verdict::Pass => {
                chunk.passed.push(id);
                chunk.entered = now;
            }
            Verdict::PassSome(n) if n >= view.len => {
                chunk.passed.push(id);
                chunk.entered = now;
            }
            Verdict::PassSome(0) | Verdict::Hold => return Step::Hold,
            Verdict::PassSome(n) => return Step::Split(n, id),
            Verdict::WaitUntil(at) => return Step::Wait(at),
            Verdict::Drop => return Step::Dropped,
            Verdict::End(end) => return Step::End(end),
        }
    }
    Step::Ready
}
