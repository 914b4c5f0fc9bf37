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
//! tokio no longer knows the bytes are there (`ReadSide::peer_left`,
//! `read_direct`).
//!
//! The loop is one `turn` after another, each a sequence of named steps:
//! `read_stale`, then `plain_copy` or `settle_head`, `deadlines`,
//! `pass_eof` and `wait`.

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::chain::{Chain, Installed};
use crate::socket::{ReadSide, WriteSide};
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
    pub src: ReadSide<'a>,
    /// Where bytes go.
    pub dst: WriteSide<'a>,
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

/// Reads what is waiting in `src` past tokio's readiness (which
/// `ReadSide::peer_left` consumed) into `buf`'s spare room.
fn read_direct(src: &ReadSide<'_>, buf: &mut BytesMut) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ_SIZE, 0);
    let read = src.read_direct_into(&mut buf[start..]);
    buf.truncate(start + read.as_ref().map_or(0, |n| *n));
    read
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

/// What a link holds between turns: its stages, the queue of chunks read
/// and not yet written, and where its source stands.
struct Flow {
    stages: Vec<Stage>,
    queue: VecDeque<Chunk>,
    /// Bytes in `queue`.
    queued: usize,
    /// When the source closed.
    eof_at: Option<Instant>,
    /// Where reads land.
    buf: BytesMut,
    /// Order of the next read.
    seq: u64,
    /// Bytes tokio no longer reports wait in the source (see
    /// `ReadSide::peer_left`).
    stale_read: bool,
}

impl Flow {
    /// Queues `buf`'s bytes as the next read, `written` of them already out.
    fn push_read(&mut self, written: usize) {
        let data = self.buf.split().freeze();
        self.queued += data.len();
        self.queue.push_back(Chunk {
            data,
            seq: self.seq,
            entered: Instant::now(),
            passed: Vec::new(),
            written,
            committed: false,
        });
        self.seq += 1;
    }

    /// Whether the link is a plain copy: no toxic, nothing pending.
    fn plain(&self) -> bool {
        self.stages.is_empty() && self.queue.is_empty() && self.eof_at.is_none()
    }
}

/// Where the head of the queue stands after a turn.
struct Settled {
    /// The next instant a toxic named.
    wake: Option<Instant>,
    /// The head waits for the destination to take bytes.
    need_writable: bool,
}

/// The kill switch, registered once for the link's life.
type Killed<'k> = Pin<&'k mut WaitForCancellationFutureOwned>;

impl Link<'_> {
    /// Runs the link until its source closes, a toxic ends the connection or
    /// the kill switch fires.
    pub(crate) async fn run(mut self) -> Outcome {
        // Registered once for the link's life, not once per read: the kill
        // switch is polled on every wake-up of a busy connection.
        let kill = self.kill.clone();
        let mut killed = std::pin::pin!(kill.cancelled_owned());
        let mut flow = self.start_flow();
        loop {
            if let Err(outcome) = self.turn(&mut flow, killed.as_mut()).await {
                return outcome;
            }
        }
    }

    /// The stages of the chain as it is, and what the fast path carried.
    fn start_flow(&mut self) -> Flow {
        let mut stages: Vec<Stage> = Vec::new();
        let chain = self.chain.borrow_and_update().clone();
        rebuild(&mut stages, &chain, self.dir, self.seed, Instant::now());
        let mut flow = Flow {
            stages,
            queue: VecDeque::new(),
            queued: 0,
            eof_at: None,
            buf: BytesMut::with_capacity(READ_SIZE),
            seq: 0,
            stale_read: self.stale_read,
        };
        let carry = mem::take(&mut self.carry);
        if let Some(data) = carry.pending {
            flow.queued += data.len();
            flow.queue.push_back(Chunk {
                data,
                seq: 0,
                entered: Instant::now(),
                passed: Vec::new(),
                written: 0,
                committed: true,
            });
        }
        flow.eof_at = carry.eof.then(Instant::now);
        flow
    }

    /// One turn of the loop: read what tokio no longer reports, then either
    /// copy plainly or move the head through the toxics, pass the close on,
    /// and wait for what comes next. `Err` is how the link ends.
    async fn turn(&mut self, flow: &mut Flow, killed: Killed<'_>) -> Result<(), Outcome> {
        self.read_stale(flow)?;
        if flow.plain() {
            return self.plain_copy(flow, killed).await;
        }
        let now = Instant::now();
        let (settled, head_ready) = self.settle_head(flow, now)?;
        let wake = deadlines(&flow.stages, head_ready, now, settled.wake)?;
        let reading_allowed = reads(&flow.stages);
        let wake = self.pass_eof(flow, reading_allowed, now, wake).await?;
        let settled = Settled {
            wake,
            need_writable: settled.need_writable,
        };
        self.wait(flow, killed, settled, reading_allowed, now).await
    }

    /// Bytes tokio no longer reports (see `ReadSide::peer_left`): once
    /// reading is allowed again, read them directly until the socket is
    /// empty — only new bytes raise the readiness again.
    fn read_stale(&self, flow: &mut Flow) -> Result<(), Outcome> {
        if !(flow.stale_read
            && flow.eof_at.is_none()
            && flow.queued < MAX_QUEUED
            && reads(&flow.stages))
        {
            return Ok(());
        }
        match read_direct(&self.src, &mut flow.buf) {
            Ok(0) => {
                flow.stale_read = false;
                flow.eof_at = Some(Instant::now());
            }
            Ok(_) => flow.push_read(0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => flow.stale_read = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(Outcome::End(End::Reset)),
        }
        Ok(())
    }

    /// No toxic, nothing pending: a plain copy — read, then write at once;
    /// what the destination does not take now is queued.
    async fn plain_copy(&mut self, flow: &mut Flow, killed: Killed<'_>) -> Result<(), Outcome> {
        flow.buf.reserve(READ_SIZE);
        tokio::select! {
            biased;
            _ = killed => return Err(Outcome::Killed),
            changed = self.chain.changed() => {
                if changed.is_err() {
                    return Err(Outcome::Killed);
                }
                let chain = self.chain.borrow_and_update().clone();
                rebuild(&mut flow.stages, &chain, self.dir, self.seed, Instant::now());
            }
            read = self.src.read_buf(&mut flow.buf) => {
                match read {
                    Ok(0) => flow.eof_at = Some(Instant::now()),
                    Ok(_) => {
                        let mut written = 0;
                        while written < flow.buf.len() {
                            match self.dst.try_write(&flow.buf[written..]) {
                                Ok(n) => written += n,
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(_) => return Err(Outcome::End(End::Close)),
                            }
                        }
                        if written < flow.buf.len() {
                            flow.push_read(written);
                        } else {
                            flow.buf.clear();
                        }
                    }
                    Err(_) => return Err(Outcome::End(End::Reset)),
                }
            }
        }
        Ok(())
    }

    /// Settles the head of the queue: through the stages, then out, chunk
    /// after chunk until one waits. Also says whether the head is ready and
    /// only waits for the destination.
    fn settle_head(&mut self, flow: &mut Flow, now: Instant) -> Result<(Settled, bool), Outcome> {
        let mut settled = Settled {
            wake: None,
            need_writable: false,
        };
        let mut head_ready = false;
        while let Some(head) = flow.queue.front_mut() {
            let step = if head.written > 0 || head.committed {
                Step::Ready
            } else {
                evaluate(head, &mut flow.stages, self.seed, now)
            };
            match step {
                Step::Ready => {
                    match self.dst.try_write(&head.data[head.written..]) {
                        Ok(n) => head.written += n,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            settled.need_writable = true;
                            head_ready = true;
                            break;
                        }
                        Err(_) => return Err(Outcome::End(End::Close)),
                    }
                    if head.written == head.data.len() {
                        flow.queued -= head.data.len();
                        flow.queue.pop_front();
                    }
                }
                Step::Wait(at) => {
                    settled.wake = Some(at);
                    break;
                }
                Step::Hold => break,
                Step::Dropped => {
                    flow.queued -= head.data.len();
                    flow.queue.pop_front();
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
                    flow.queue.push_front(front);
                }
                Step::End(end) => return Err(Outcome::End(end)),
            }
        }
        Ok((settled, head_ready))
    }

    /// The source closed and everything before the close is out: passes
    /// the close on (a half-close, `Err(Eof)`), unless a toxic holds it
    /// back (then the instant it names joins `wake`) or stops reading.
    async fn pass_eof(
        &mut self,
        flow: &Flow,
        reading_allowed: bool,
        now: Instant,
        mut wake: Option<Instant>,
    ) -> Result<Option<Instant>, Outcome> {
        if let (Some(at), true) = (flow.eof_at, flow.queue.is_empty()) {
            let held = flow
                .stages
                .iter()
                .filter(|s| s.active)
                .filter_map(|s| s.toxic.kind.toxic().hold_eof(at))
                .max();
            match held {
                Some(until) if now < until => wake = earliest(wake, until),
                _ if reading_allowed => {
                    let _ = self.dst.shutdown().await;
                    return Err(Outcome::Eof);
                }
                _ => {}
            }
        }
        Ok(wake)
    }

    /// Waits for whatever comes first — the kill switch, the client gone
    /// while a fault holds this link, a chain change, the source (a read,
    /// or while not reading its close), the destination taking bytes, the
    /// instant a toxic named, or stale bytes to read — and takes it in.
    async fn wait(
        &mut self,
        flow: &mut Flow,
        killed: Killed<'_>,
        settled: Settled,
        reading_allowed: bool,
        now: Instant,
    ) -> Result<(), Outcome> {
        let may_read = flow.eof_at.is_none() && flow.queued < MAX_QUEUED && reading_allowed;
        if may_read {
            flow.buf.reserve(READ_SIZE);
        }
        // Held by a fault that stops reading: the client may still leave.
        let watch_client = self.src_is_client && flow.eof_at.is_none() && !reading_allowed;
        let client_gone = !self.src_is_client && !reading_allowed;
        let stale_read = flow.stale_read;
        let (src, buf) = (&mut self.src, &mut flow.buf);
        let src_event = async {
            if may_read {
                SrcEvent::Read(src.read_buf(buf).await)
            } else {
                SrcEvent::Watched(src.peer_left().await)
            }
        };
        let Settled {
            wake,
            need_writable,
        } = settled;
        tokio::select! {
            biased;
            _ = killed => return Err(Outcome::Killed),
            _ = self.client_closed.cancelled(), if client_gone => {
                // Only if a fault still holds the link: the chain may
                // have changed unseen (this task's budget ran out).
                if let Some(end) = self.catch_up(&mut flow.stages) {
                    return Err(Outcome::End(end));
                }
                if !reads(&flow.stages) {
                    return Err(Outcome::Left);
                }
            }
            changed = self.chain.changed() => {
                if changed.is_err() {
                    return Err(Outcome::Killed);
                }
                let chain = self.chain.borrow_and_update().clone();
                if let Some(end) = rebuild(&mut flow.stages, &chain, self.dir, self.seed, Instant::now()) {
                    return Err(Outcome::End(end));
                }
            }
            event = src_event, if may_read || watch_client => return self.on_src_event(flow, event),
            ready = self.dst.writable(), if need_writable => {
                if ready.is_err() {
                    return Err(Outcome::End(End::Close));
                }
            }
            _ = sleep_until(wake.unwrap_or(now)), if wake.is_some() => {}
            // Bytes tokio does not report are waiting: read them now.
            _ = std::future::ready(()), if stale_read && may_read => {}
        }
        Ok(())
    }

    /// Takes in what happened at the source.
    fn on_src_event(&mut self, flow: &mut Flow, event: SrcEvent) -> Result<(), Outcome> {
        let read = match event {
            SrcEvent::Read(read) => read,
            SrcEvent::Watched(true) => {
                if let Some(end) = self.catch_up(&mut flow.stages) {
                    return Err(Outcome::End(end));
                }
                if !reads(&flow.stages) {
                    return Err(Outcome::Left);
                }
                // The fault is gone: the next read sees the
                // close (its readiness stays set).
                return Ok(());
            }
            SrcEvent::Watched(false) => {
                flow.stale_read = true;
                return Ok(());
            }
        };
        match read {
            Ok(0) => flow.eof_at = Some(Instant::now()),
            Ok(_) => flow.push_read(0),
            Err(_) => return Err(Outcome::End(End::Reset)),
        }
        Ok(())
    }
}

/// Faults that end the connection whether data flows or not. An orderly
/// close waits for what already passed to be written (`head_ready`).
/// Returns the earliest instant to look again.
fn deadlines(
    stages: &[Stage],
    head_ready: bool,
    now: Instant,
    mut wake: Option<Instant>,
) -> Result<Option<Instant>, Outcome> {
    for stage in stages.iter().filter(|s| s.active) {
        if let Some((at, end)) = stage.toxic.kind.toxic().deadline(&stage.state)
            && (end == End::Reset || !head_ready)
        {
            if now >= at {
                return Err(Outcome::End(end));
            }
            wake = earliest(wake, at);
        }
    }
    Ok(wake)
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
