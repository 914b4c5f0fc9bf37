//! Per-replica logs, as `kubectl logs` keeps them: every line a replica
//! writes (stdout or stderr) goes to `<state>/logs/<replica>.log` (rotated
//! at a size cap, one old file kept) and to a bounded live feed for
//! `chaoslab logs --follow`.
//!
//! One writer per file: the pumps (one per pipe: a replica's stdout and
//! stderr, and the pipes of its previous run for at most two seconds after
//! it ended, see [`LogPumps::finish`]) only read
//! lines and hand them to one writer thread, which owns every open log
//! file, counts its size and rotates it. Two writers rotating one file on
//! their own counts would rename it under each other and lose lines; and
//! the file I/O stays off the async runtime.

use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;

/// A log file is rotated past this size.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Longer lines are cut.
const MAX_LINE: usize = 64 * 1024;
/// Lines waiting for the writer; a full queue slows the pumps (and so the
/// replicas' writes), as a container runtime's log driver does.
const QUEUE: usize = 4096;

/// One line from one replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub replica: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub line: String,
}

/// What the writer thread is asked to do.
#[derive(Debug)]
enum Job {
    /// A pump of this replica starts: open its file if it is not.
    Open(String),
    Line(String, String),
    /// A pump of this replica ended; the file is closed after its last
    /// pump. The reply comes once its lines are written.
    Close(String, oneshot::Sender<()>),
    /// Delete the oldest log files beyond this many (never an open one).
    Prune(usize),
}

/// Where logs go.
#[derive(Debug)]
pub struct LogHub {
    dir: PathBuf,
    live: broadcast::Sender<LogLine>,
    /// To the writer thread (none if it could not be started: then lines
    /// only reach the live feed).
    writer: Option<mpsc::Sender<Job>>,
}

impl LogHub {
    /// A hub writing under `dir`, with its writer thread (which ends when
    /// the hub is dropped and its pumps ended).
    pub fn new(dir: PathBuf) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            dir: dir.clone(),
            open: HashMap::new(),
        };
        let writer = match std::thread::Builder::new()
            .name("chaoslab-logs".into())
            .spawn(move || writer.run(rx))
        {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the log writer: replica logs are not kept");
                None
            }
        };
        Self {
            dir,
            live: broadcast::channel(1024).0,
            writer,
        }
    }

    /// The file of a replica's current log.
    pub fn file(&self, replica: &str) -> PathBuf {
        self.dir.join(format!("{replica}.log"))
    }

    /// A live feed of every replica's lines from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.live.subscribe()
    }

    /// Pumps a run's stdout and stderr into `replica`'s log, each on a task
    /// of its own, until the run's end is followed by [`LogPumps::finish`].
    pub fn pumps(
        self: &Arc<Self>,
        replica: &str,
        stdout: Option<impl AsyncRead + Unpin + Send + 'static>,
        stderr: Option<impl AsyncRead + Unpin + Send + 'static>,
    ) -> LogPumps {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut start = |stream: &'static str, pipe: Box<dyn AsyncRead + Unpin + Send>| {
            let (hub, replica, until) = (self.clone(), replica.to_string(), stop.clone());
            tasks.push(tokio::spawn(async move {
                hub.pump(replica, stream, pipe, until.cancelled_owned())
                    .await;
            }));
        };
        if let Some(pipe) = stdout {
            start("stdout", Box::new(pipe));
        }
        if let Some(pipe) = stderr {
            start("stderr", Box::new(pipe));
        }
        LogPumps { stop, tasks }
    }

    /// Copies `pipe` line by line into the replica's log until it closes
    /// or `until` resolves; returns once its lines are in the file.
    async fn pump(
        &self,
        replica: String,
        stream: &'static str,
        pipe: impl AsyncRead + Unpin,
        until: impl std::future::Future<Output = ()>,
    ) {
        let mut until = std::pin::pin!(until);
        let writer = self.writer.clone();
        if let Some(w) = &writer {
            let _ = w.send(Job::Open(replica.clone())).await;
        }
        let mut lines = FramedRead::new(pipe, LinesCodec::new_with_max_length(MAX_LINE));
        let mut skipped = false;
        loop {
            let next = tokio::select! {
                next = lines.next() => next,
                () = &mut until => break,
            };
            let line = match next {
                Some(Ok(line)) => line,
                // Over-long line: the codec skips it; note that and go on.
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    skipped = true;
                    "[chaoslab: line longer than 64 KiB dropped]".to_string()
                }
                // After an error the reader ends the stream once, then
                // reads on: only the end after a skipped line is not the
                // pipe's (stopping would fail the replica's next writes).
                None if std::mem::take(&mut skipped) => continue,
                Some(Err(LinesCodecError::Io(_))) | None => break,
            };
            if let Some(w) = &writer {
                let _ = w.send(Job::Line(replica.clone(), line.clone())).await;
            }
            let _ = self.live.send(LogLine {
                replica: replica.clone(),
                stream: stream.into(),
                line,
            });
        }
        if let Some(w) = &writer {
            let (done, written) = oneshot::channel();
            if w.send(Job::Close(replica, done)).await.is_ok() {
                let _ = written.await;
            }
        }
    }

    /// The last `n` lines of a replica's log (empty when it has none). Reads
    /// only the end of the file.
    pub fn tail(&self, replica: &str, n: usize) -> Vec<LogLine> {
        tail_file(&self.file(replica), n)
            .into_iter()
            .map(|line| LogLine {
                replica: replica.to_string(),
                stream: "file".into(),
                line,
            })
            .collect()
    }

    /// Deletes the oldest replica log files (by modification time) beyond
    /// `keep`, so a long session of restarts and rollouts stays bounded;
    /// done by the writer thread, which never deletes a file it has open.
    pub fn prune(&self, keep: usize) {
        if let Some(w) = &self.writer {
            // A full queue: the next replica start prunes.
            let _ = w.try_send(Job::Prune(keep));
        }
    }

    /// Replica ids that have a log file, sorted.
    pub fn replicas_with_logs(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".log"))
                    .map(str::to_string)
            })
            .filter(|id| id != "redis")
            .collect();
        ids.sort();
        ids
    }
}

/// A replica's open log file, owned by the writer thread.
struct OpenLog {
    path: PathBuf,
    file: Option<BufWriter<std::fs::File>>,
    written: u64,
    /// Pumps writing to it.
    pumps: usize,
}

impl OpenLog {
    fn open(path: PathBuf) -> Self {
        let file = open_append(&path);
        let written = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Self {
            path,
            file: file.map(|f| BufWriter::with_capacity(64 * 1024, f)),
            written,
            pumps: 0,
        }
    }

    fn write(&mut self, line: &str) {
        if let Some(f) = self.file.as_mut()
            && writeln!(f, "{line}").is_ok()
        {
            self.written += line.len() as u64 + 1;
        }
        if self.written > MAX_FILE_BYTES {
            self.flush();
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
            *self = Self {
                pumps: self.pumps,
                ..Self::open(self.path.clone())
            };
        }
    }

    fn flush(&mut self) {
        if let Some(f) = self.file.as_mut() {
            let _ = f.flush();
        }
    }
}

/// The writer thread's state: every open log file.
struct Writer {
    dir: PathBuf,
    open: HashMap<String, OpenLog>,
}

impl Writer {
    fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut dirty = HashSet::new();
        while let Some(job) = jobs.blocking_recv() {
            self.handle(job, &mut dirty);
            // Take what else is queued, then write it out in one go.
            while let Ok(job) = jobs.try_recv() {
                self.handle(job, &mut dirty);
            }
            for id in dirty.drain() {
                if let Some(log) = self.open.get_mut(&id) {
                    log.flush();
                }
            }
        }
    }

    fn handle(&mut self, job: Job, dirty: &mut HashSet<String>) {
        match job {
            Job::Open(id) => {
                let path = self.dir.join(format!("{id}.log"));
                self.open
                    .entry(id)
                    .or_insert_with(|| OpenLog::open(path))
                    .pumps += 1;
            }
            Job::Line(id, line) => {
                let path = self.dir.join(format!("{id}.log"));
                self.open
                    .entry(id.clone())
                    .or_insert_with(|| OpenLog::open(path))
                    .write(&line);
                dirty.insert(id);
            }
            Job::Close(id, done) => {
                if let Some(log) = self.open.get_mut(&id) {
                    log.flush();
                    log.pumps = log.pumps.saturating_sub(1);
                    if log.pumps == 0 {
                        self.open.remove(&id);
                    }
                }
                let _ = done.send(());
            }
            Job::Prune(keep) => self.prune(keep),
        }
    }

    fn prune(&self, keep: usize) {
        let open: HashSet<PathBuf> = self.open.values().map(|l| l.path.clone()).collect();
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                (name.ends_with(".log") || name.ends_with(".log.1")) && !name.starts_with("redis.")
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= keep {
            return;
        }
        files.sort();
        let excess = files.len() - keep;
        for (_, path) in files
            .iter()
            .filter(|(_, path)| !open.contains(path))
            .take(excess)
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn open_append(path: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()
}

/// The last `n` lines of `path`, read backwards from its end in chunks
/// until `n` lines are found (a tail of a full 8 MiB file reads little).
fn tail_file(path: &Path, n: usize) -> Vec<String> {
    const CHUNK: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(len) = file.seek(SeekFrom::End(0)) else {
        return Vec::new();
    };
    let mut start = len;
    let mut bytes: Vec<u8> = Vec::new();
    // n lines need n + 1 newlines before them (or the start of the file);
    // the last byte is usually the final line's own newline.
    while start > 0 && bytes.iter().filter(|&&b| b == b'\n').count() <= n {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; (start - from) as usize];
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_exact(&mut chunk).is_err() {
            break;
        }
        chunk.extend_from_slice(&bytes);
        bytes = chunk;
        start = from;
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first one may be cut.
        lines.remove(0);
    }
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// How long a run's pipes may go on after the run ended: what its
/// processes wrote last still arrives; a pipe still open then is held by
/// a process that left the run's group, and is let go.
const DRAIN: Duration = Duration::from_secs(2);

/// The log pumps of one run ([`LogHub::pumps`]).
#[derive(Debug)]
pub struct LogPumps {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LogPumps {
    /// After the run: waits for its pipes to end, at most [`DRAIN`]; then
    /// stops the pumps still reading (a descendant that left the process
    /// group, and so outlived the run, keeps its pipe open), so that no
    /// pump or open log file outlives the run by more than that. Returns
    /// once their lines are in the file (or another [`DRAIN`] passed).
    pub async fn finish(self) {
        let deadline = tokio::time::Instant::now() + DRAIN;
        let mut tasks = self.tasks;
        while let Some(task) = tasks.last_mut() {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                break;
            }
            tasks.pop();
        }
        if tasks.is_empty() {
            return;
        }
        self.stop.cancel();
        for task in tasks {
            let _ = tokio::time::timeout(DRAIN, task).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use super::*;

    #[tokio::test]
    async fn pumps_lines_to_file_and_feed() {
        let dir = tempfile::tempdir().unwrap();
        let hub = LogHub::new(dir.path().to_path_buf());
        let mut feed = hub.subscribe();
        hub.pump("r1".into(), "stdout", &b"one\ntwo\nthree\n"[..], pending())
            .await;
        assert_eq!(feed.recv().await.unwrap().line, "one");
        let tail: Vec<String> = hub.tail("r1", 2).into_iter().map(|l| l.line).collect();
        assert_eq!(tail, ["two", "three"]);
        assert_eq!(hub.replicas_with_logs(), ["r1"]);
        assert!(hub.tail("nobody", 5).is_empty());
        for i in 0..5 {
            std::fs::write(dir.path().join(format!("old{i}.log")), "x").unwrap();
        }
        std::fs::write(dir.path().join("redis.log"), "x").unwrap();
        hub.prune(3);
        // The writer thread prunes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = std::fs::read_dir(dir.path()).unwrap().count();
            if left == 4 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{left} files left: want 3 replica logs and redis.log"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// A line over the limit is replaced by a note and the lines after it
    /// still come: the pump must not stop reading (the replica's writes
    /// would then fail, and a program that does not ignore SIGPIPE die).
    #[tokio::test]
    async fn an_over_long_line_is_noted_and_the_lines_after_it_still_come() {
        let dir = tempfile::tempdir().unwrap();
        let hub = LogHub::new(dir.path().to_path_buf());
        let mut output = b"before\n".to_vec();
        output.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        output.extend_from_slice(b"\nafter\nlast\n");
        hub.pump("r1".into(), "stdout", &output[..], pending())
            .await;
        let lines: Vec<String> = hub.tail("r1", 10).into_iter().map(|l| l.line).collect();
        assert_eq!(
            lines,
            [
                "before",
                "[chaoslab: line longer than 64 KiB dropped]",
                "after",
                "last"
            ]
        );
    }

    /// A run whose pipe stays open after it ended (a descendant that left
    /// its process group holds it): its pumps take what was written and
    /// stop within the drain time, the lines in the file; pipes that end
    /// with the run cost no wait.
    #[tokio::test]
    async fn a_run_s_pumps_end_soon_after_it_even_with_a_pipe_held_open() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let hub = Arc::new(LogHub::new(dir.path().to_path_buf()));
        let (mut held, stdout) = tokio::io::duplex(4096);
        held.write_all(b"written before the end\n").await.unwrap();
        let pumps = hub.pumps("r1", Some(stdout), Some(&b"stderr line\n"[..]));
        let started = tokio::time::Instant::now();
        tokio::time::timeout(4 * DRAIN, pumps.finish())
            .await
            .expect("the pumps end although the pipe is still open");
        assert!(started.elapsed() >= DRAIN, "{:?}", started.elapsed());
        let mut lines: Vec<String> = hub.tail("r1", 10).into_iter().map(|l| l.line).collect();
        lines.sort();
        assert_eq!(lines, ["stderr line", "written before the end"]);
        drop(held);
        // Pipes that end with the run: no wait.
        let pumps = hub.pumps("r2", Some(&b"bye\n"[..]), None::<&[u8]>);
        let started = tokio::time::Instant::now();
        pumps.finish().await;
        assert!(started.elapsed() < DRAIN, "{:?}", started.elapsed());
        assert_eq!(hub.tail("r2", 1)[0].line, "bye");
    }

    #[test]
    fn tail_reads_the_end_of_a_big_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let lines: Vec<String> = (0..50_000)
            .map(|i| format!("line {i} {}", "y".repeat(i % 300)))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        for n in [0, 1, 2, 100, 1000] {
            assert_eq!(tail_file(&path, n), lines[lines.len() - n..], "n = {n}");
        }
        // More than the file has, and a file without a final newline.
        std::fs::write(&path, "a\nb\nc").unwrap();
        assert_eq!(tail_file(&path, 10), ["a", "b", "c"]);
        assert_eq!(tail_file(&path, 1), ["c"]);
        std::fs::write(&path, "").unwrap();
        assert!(tail_file(&path, 3).is_empty());
    }

    /// Two pumps (stdout and stderr of one replica) write one file through
    /// a rotation: every line kept is in order and the kept lines of each
    /// stream are one unbroken run ending with its last line (only the
    /// oldest fall off with the rotated file, never lines in the middle).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_streams_of_one_replica_rotate_as_one_file() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let hub = std::sync::Arc::new(LogHub::new(dir.path().to_path_buf()));
        // 2 × 10 MiB through an 8 MiB cap: a rotation in each pump's own
        // count too, so two independent writers would both rotate.
        const LINES: usize = 100_000;
        let padding = "x".repeat(90);
        let mut pumps = Vec::new();
        for stream in ["stdout", "stderr"] {
            let (mut tx, rx) = tokio::io::duplex(4096);
            let padding = padding.clone();
            pumps.push(tokio::spawn(async move {
                for i in 0..LINES {
                    let line = format!("{stream} {i:06} {padding}\n");
                    tx.write_all(line.as_bytes()).await.unwrap();
                }
            }));
            let hub = hub.clone();
            pumps.push(tokio::spawn(async move {
                hub.pump("r1".into(), stream, rx, pending()).await;
            }));
        }
        for pump in pumps {
            pump.await.unwrap();
        }
        let file = hub.file("r1");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let last = |stream: &str| format!("{stream} {:06} {padding}", LINES - 1);
        let read = || {
            let old = std::fs::read_to_string(file.with_extension("log.1")).unwrap_or_default();
            let new = std::fs::read_to_string(&file).unwrap_or_default();
            format!("{old}{new}")
        };
        // The pumps have returned; the file may still be being written.
        let text = loop {
            let text = read();
            if ["stdout", "stderr"].iter().all(|s| text.contains(&last(s))) {
                break text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "last lines never written"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        for stream in ["stdout", "stderr"] {
            let seen: Vec<usize> = text
                .lines()
                .filter_map(|l| l.strip_prefix(stream)?.get(1..7)?.parse().ok())
                .collect();
            assert!(!seen.is_empty(), "{stream}: no line kept");
            let first = seen[0];
            let expected: Vec<usize> = (first..LINES).collect();
            assert!(
                seen == expected,
                "{stream}: {} lines kept from {first}, expected an unbroken run to {}",
                seen.len(),
                LINES - 1
            );
        }
        // A file is rotated once it passed the cap, so the rotated one
        // holds at least the cap (two writers rotating each on its own
        // count throw away a full file's worth of lines).
        let rotated = std::fs::metadata(file.with_extension("log.1"))
            .unwrap()
            .len();
        assert!(rotated >= MAX_FILE_BYTES, "rotated file of {rotated} bytes");
        let current = std::fs::metadata(&file).unwrap().len();
        assert!(
            current <= MAX_FILE_BYTES + 1024,
            "current file of {current} bytes"
        );
    }
}
