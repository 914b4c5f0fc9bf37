//! What Linux's `/proc` says about a process: whether it is alive, when it
//! started (with the pid, that names one process for good: a recycled pid
//! gets a new start time), its parent and group, resident memory and CPU
//! time. The lab supervises replicas and recognises its own earlier run
//! with it, the service and experiments measure themselves, tests find
//! the processes they started.
//!
//! `/proc/<pid>/stat` is one line, `pid (comm) state ppid pgrp …`, whose
//! second field is the command name as the process set it: it may hold
//! spaces, parentheses and even newlines, so the numeric fields are the
//! ones after the *last* `)`. CPU times are in clock ticks of USER_HZ,
//! read from the kernel (`AT_CLKTCK`), not assumed to be 100. A line that
//! does not have this shape is an error, never a panic.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Why `/proc` could not tell.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (most often: no such process).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file does not have the shape the kernel writes.
    #[error("malformed /proc data: {0}")]
    Malformed(&'static str),
}

/// The fields of `/proc/<pid>/stat` chaoslab uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 1.
    pub pid: u32,
    /// Field 2, without its parentheses (at most 15 bytes, any of them).
    pub comm: String,
    /// Field 3: `R` running, `S` sleeping, `Z` zombie, `X` dead…
    pub state: char,
    /// Field 4: the parent's pid.
    pub ppid: u32,
    /// Field 5: the process group.
    pub pgrp: u32,
    /// Field 14: CPU time in user mode, in clock ticks.
    pub utime_ticks: u64,
    /// Field 15: CPU time in kernel mode, in clock ticks.
    pub stime_ticks: u64,
    /// Field 22: when the process started, in clock ticks after boot.
    pub start_ticks: u64,
}

impl ProcStat {
    /// Parses one `/proc/<pid>/stat` line.
    pub fn parse(line: &str) -> Result<Self, ProcError> {
        let open = line
            .find('(')
            .ok_or(ProcError::Malformed("no '(' in stat"))?;
        let close = line
            .rfind(')')
            .ok_or(ProcError::Malformed("no ')' in stat"))?;
        if close < open {
            return Err(ProcError::Malformed("')' before '(' in stat"));
        }
        let pid = line[..open]
            .trim()
            .parse()
            .map_err(|_| ProcError::Malformed("stat's pid is not a number"))?;
        let comm = line[open + 1..close].to_string();
        let fields: Vec<&str> = line[close + 1..].split_whitespace().collect();
        // After the name, field n of proc(5) is fields[n - 3].
        let field = |n: usize| -> Result<u64, ProcError> {
            fields
                .get(n - 3)
                .ok_or(ProcError::Malformed("stat line too short"))?
                .parse()
                .map_err(|_| ProcError::Malformed("stat field is not a number"))
        };
        let small = |n: usize| -> Result<u32, ProcError> {
            u32::try_from(field(n)?).map_err(|_| ProcError::Malformed("stat pid out of range"))
        };
        let mut state = fields
            .first()
            .ok_or(ProcError::Malformed("stat has no state"))?
            .chars();
        let (Some(state_char), None) = (state.next(), state.next()) else {
            return Err(ProcError::Malformed("stat state is not one letter"));
        };
        Ok(ProcStat {
            pid,
            comm,
            state: state_char,
            ppid: small(4)?,
            pgrp: small(5)?,
            utime_ticks: field(14)?,
            stime_ticks: field(15)?,
            start_ticks: field(22)?,
        })
    }

    /// Reads and parses `/proc/<pid>/stat`.
    pub fn read(pid: u32) -> Result<Self, ProcError> {
        Self::parse(&read_text(&format!("/proc/{pid}/stat"))?)
    }

    /// Whether the process has exited and waits to be reaped (zombie) or
    /// is being torn down (dead).
    pub fn is_gone(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    /// User plus system CPU time.
    pub fn cpu_time(&self) -> Duration {
        ticks_to_duration(self.utime_ticks.saturating_add(self.stime_ticks))
    }
}

/// Whether process `pid` exists and has not exited (not a zombie).
pub fn alive(pid: u32) -> bool {
    ProcStat::read(pid).is_ok_and(|stat| !stat.is_gone())
}

/// When process `pid` started, in clock ticks after boot (`None`: no such
/// process). With the pid it names one process for good.
pub fn start_time(pid: u32) -> Option<u64> {
    ProcStat::read(pid).ok().map(|stat| stat.start_ticks)
}

/// Process `pid`'s command line, one string per argument (lossy UTF-8).
pub fn cmdline(pid: u32) -> Result<Vec<String>, ProcError> {
    let path = format!("/proc/{pid}/cmdline");
    let bytes = std::fs::read(&path).map_err(|source| ProcError::Read {
        path: path.into(),
        source,
    })?;
    Ok(bytes
        .split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect())
}

/// Every process whose stat could be read now (processes come and go
/// while the list is read; those that went are skipped).
pub fn processes() -> impl Iterator<Item = ProcStat> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| ProcStat::read(pid).ok())
}

/// USER_HZ: the clock ticks per second of `/proc`'s CPU times, as the
/// kernel tells each process at exec (`AT_CLKTCK`).
pub fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = u128::from(clock_ticks_per_second().max(1));
    let nanos = u128::from(ticks) * 1_000_000_000 / hz;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Resident memory in bytes from `/proc/<pid>/status` text: its `VmRSS`
/// line (zombies and kernel threads have none: nothing resident).
pub fn parse_rss_bytes(status: &str) -> Result<u64, ProcError> {
    let Some(line) = status.lines().find(|l| l.starts_with("VmRSS:")) else {
        return Ok(0);
    };
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let kib: u64 = words
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or(ProcError::Malformed("VmRSS is not a number"))?;
    if words.next().is_some_and(|unit| unit != "kB") {
        return Err(ProcError::Malformed("VmRSS is not in kB"));
    }
    kib.checked_mul(1024)
        .ok_or(ProcError::Malformed("VmRSS out of range"))
}

/// One reading of a process's resource usage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    /// Resident set size in bytes (`VmRSS`): what the memory limit and the
    /// OOM killer look at.
    pub rss_bytes: u64,
    /// User plus system CPU time consumed since the process started.
    pub cpu_time: Duration,
    /// When the sample was taken, to turn two samples into a rate.
    pub taken_at: Instant,
}

impl ProcessSample {
    /// CPU used between `earlier` and `self`, as a percentage of one CPU
    /// (200 % = two CPUs fully busy).
    pub fn cpu_percent_since(&self, earlier: &ProcessSample) -> f64 {
        let wall = self.taken_at.saturating_duration_since(earlier.taken_at);
        if wall.is_zero() {
            return 0.0;
        }
        let cpu = self.cpu_time.saturating_sub(earlier.cpu_time);
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
    }
}

/// Samples the process `pid`, or this process when `pid` is `None`.
pub fn sample(pid: Option<u32>) -> Result<ProcessSample, ProcError> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    };
    let stat = ProcStat::parse(&read_text(&format!("{dir}/stat"))?)?;
    let status = read_text(&format!("{dir}/status"))?;
    Ok(ProcessSample {
        rss_bytes: parse_rss_bytes(&status)?,
        cpu_time: stat.cpu_time(),
        taken_at: Instant::now(),
    })
}

fn read_text(path: &str) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|source| ProcError::Read {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests;
