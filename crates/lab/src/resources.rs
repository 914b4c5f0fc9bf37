//! Resource accounting of a running replica: CPU over the last second as
//! % of a core and as % of the CPU request (the autoscaler's input), memory
//! against the limit. Two sources, one per isolation level (SPEC §14):
//!
//! - kernel: the replica's cgroup — CPU time (`cpuacct.usage` /
//!   `cpu.stat usage_usec`), memory charged, the CFS quota's throttling
//!   and the OOM killer's kills. The kernel enforces the limits itself, so
//!   this never ends a replica.
//! - process: `/proc` (no cgroups needed) — RSS over the limit is what the
//!   kernel's OOM killer would act on in a container, so [`watch`] returns
//!   and the supervisor kills the replica.

use std::time::Duration;

use chaoslab_foundation::proc::{ProcessSample, sample};
use tokio::time::Instant;

use crate::cgroup::ReplicaCgroup;
use crate::config::secs;
use crate::platform::Platform;

/// A replica's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub memory_mb: u64,
    /// Cores: the CFS quota (kernel mode) and the base of utilisation.
    pub cpu: f64,
}

/// Samples the replica until (process mode) its RSS exceeds the memory
/// limit; returns that RSS in MiB. In kernel mode (`cgroup` given) it
/// samples the cgroup and never returns.
pub(crate) async fn watch(
    platform: &Platform,
    id: &str,
    pid: u32,
    limits: Limits,
    cgroup: Option<&ReplicaCgroup>,
) -> f64 {
    let period =
        secs(platform.config.file.limits.sample_period_seconds).max(Duration::from_millis(10));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    match cgroup {
        Some(cgroup) => watch_cgroup(platform, id, limits, cgroup, &mut ticks).await,
        None => watch_process(platform, id, pid, limits, &mut ticks).await,
    }
}

async fn watch_cgroup(
    platform: &Platform,
    id: &str,
    limits: Limits,
    cgroup: &ReplicaCgroup,
    ticks: &mut tokio::time::Interval,
) -> f64 {
    let mut window_start: Option<(Instant, u64)> = None;
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let usage = cgroup.cpu_usage_ns();
        let cpu = match (window_start, usage) {
            (Some((at, used)), Some(usage)) if now.duration_since(at) >= Duration::from_secs(1) => {
                window_start = Some((now, usage));
                let cores =
                    usage.saturating_sub(used) as f64 / 1e9 / now.duration_since(at).as_secs_f64();
                Some(cores * 100.0)
            }
            (None, Some(usage)) => {
                window_start = Some((now, usage));
                None
            }
            _ => None,
        };
        let memory = cgroup.memory_bytes();
        let throttling = cgroup.throttling();
        let oom_kills = cgroup.oom_kills();
        platform.update_replica(id, |s| {
            if let Some(bytes) = memory {
                s.rss_mb = bytes as f64 / (1024.0 * 1024.0);
            }
            if let Some(cpu) = cpu {
                s.cpu_percent = cpu;
                s.cpu_utilization = cpu / limits.cpu;
                s.cpu_measured = true;
            }
            if let Some(t) = throttling {
                s.cpu_throttled_periods = t.nr_throttled;
                s.cpu_throttled_seconds = t.throttled_seconds;
            }
            if let Some(kills) = oom_kills {
                s.oom_kills = kills;
            }
        });
    }
}

async fn watch_process(
    platform: &Platform,
    id: &str,
    pid: u32,
    limits: Limits,
    ticks: &mut tokio::time::Interval,
) -> f64 {
    let limit_bytes = limits.memory_mb.saturating_mul(1024 * 1024);
    let mut window_start: Option<ProcessSample> = None;
    loop {
        ticks.tick().await;
        let Ok(now) = sample(Some(pid)) else {
            // Gone (the wait branch will see the exit) or unreadable.
            std::future::pending::<()>().await;
            continue;
        };
        let rss_mb = now.rss_bytes as f64 / (1024.0 * 1024.0);
        let cpu = match &window_start {
            Some(start)
                if now.taken_at.duration_since(start.taken_at) >= Duration::from_secs(1) =>
            {
                let cpu = now.cpu_percent_since(start);
                window_start = Some(now);
                Some(cpu)
            }
            Some(_) => None,
            None => {
                window_start = Some(now);
                None
            }
        };
        platform.update_replica(id, |s| {
            s.rss_mb = rss_mb;
            if let Some(cpu) = cpu {
                s.cpu_percent = cpu;
                s.cpu_utilization = cpu / limits.cpu;
                s.cpu_measured = true;
            }
        });
        if now.rss_bytes > limit_bytes {
            return rss_mb;
        }
    }
}
