//! Resource usage of a process read from Linux's `/proc`: resident memory and
//! CPU time. The service reports its own (`app.memory.usage`,
//! `app.cpu.usage`); the lab samples its replicas for limits and autoscaling.

use std::io;
use std::time::{Duration, Instant};

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
pub fn sample(pid: Option<u32>) -> io::Result<ProcessSample> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    let status = std::fs::read_to_string(format!("{dir}/status"))?;
    Ok(ProcessSample {
        rss_bytes: parse_rss(&status)?,
        cpu_time: parse_cpu_time(&stat)?,
        taken_at: Instant::now(),
    })
}

/// Clock ticks per second used by `/proc/*/stat`; 100 on every Linux
/// architecture chaoslab targets (USER_HZ is fixed by the kernel ABI).
const CLOCK_TICKS_PER_SECOND: u64 = 100;

fn parse_cpu_time(stat: &str) -> io::Result<Duration> {
    // The command name (field 2) may contain spaces and parentheses: the
    // numeric fields start after the last ')'.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| invalid("no ')' in /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| invalid("short /proc stat"))
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / CLOCK_TICKS_PER_SECOND))
}

fn parse_rss(status: &str) -> io::Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        // Zombies and kernel threads have no VmRSS line: nothing resident.
        .unwrap_or("VmRSS: 0 kB");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| invalid("bad VmRSS line"))?;
    Ok(kb * 1024)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let stat = "42 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(parse_cpu_time(stat).unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\tx\nVmRSS:\t  2048 kB\n";
        assert_eq!(parse_rss(status).unwrap(), 2048 * 1024);
    }

    #[test]
    fn samples_this_process() {
        let s = sample(None).unwrap();
        assert!(s.rss_bytes > 0);
    }

    #[test]
    fn cpu_percent_of_busy_loop_is_positive() {
        let a = sample(None).unwrap();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(200) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let b = sample(None).unwrap();
        assert!(b.cpu_percent_since(&a) > 10.0);
    }
}
