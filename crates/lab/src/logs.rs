//! Per-replica logs, as `kubectl logs` keeps them: every line a replica
//! writes (stdout or stderr) goes to `<state>/logs/<replica>.log` (rotated
//! at a size cap, one old file kept) and to a bounded live feed for
//! `chaoslab logs --follow`.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;
use tokio::sync::broadcast;
use tokio_util::codec::{FramedRead, LinesCodec};

/// A log file is rotated past this size.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;
/// Longer lines are cut.
const MAX_LINE: usize = 64 * 1024;

/// One line from one replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub replica: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    pub line: String,
}

/// Where logs go.
#[derive(Debug)]
pub struct LogHub {
    dir: PathBuf,
    live: broadcast::Sender<LogLine>,
}

impl LogHub {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            live: broadcast::channel(1024).0,
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

    /// Copies `pipe` line by line into the replica's log until it closes.
    pub async fn pump(&self, replica: String, stream: &'static str, pipe: impl AsyncRead + Unpin) {
        let path = self.file(&replica);
        let mut lines = FramedRead::new(pipe, LinesCodec::new_with_max_length(MAX_LINE));
        let mut file = open_append(&path);
        let mut written: u64 = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        while let Some(next) = lines.next().await {
            let line = match next {
                Ok(line) => line,
                // Over-long line: the codec skips it; note that and go on.
                Err(_) => "[chaoslab: line longer than 64 KiB dropped]".to_string(),
            };
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
                written += line.len() as u64 + 1;
            }
            if written > MAX_FILE_BYTES {
                let _ = std::fs::rename(&path, path.with_extension("log.1"));
                file = open_append(&path);
                written = 0;
            }
            let _ = self.live.send(LogLine {
                replica: replica.clone(),
                stream: stream.into(),
                line,
            });
        }
    }

    /// The last `n` lines of a replica's log (empty when it has none).
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
    /// `keep`, so a long session of restarts and rollouts stays bounded.
    pub fn prune(&self, keep: usize) {
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
        for (_, path) in files.iter().take(files.len() - keep) {
            let _ = std::fs::remove_file(path);
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

fn open_append(path: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()
}

fn tail_file(path: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read(path) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pumps_lines_to_file_and_feed() {
        let dir = tempfile::tempdir().unwrap();
        let hub = LogHub::new(dir.path().to_path_buf());
        let mut feed = hub.subscribe();
        hub.pump("r1".into(), "stdout", &b"one\ntwo\nthree\n"[..])
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
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, 4, "3 replica logs and redis.log");
    }
}
