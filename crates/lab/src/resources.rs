//! Resource accounting of a running replica from `/proc` (no cgroups needed):
//! CPU over the last second as % of a core and as % of the CPU request (the
//! autoscaler's input), resident memory against the limit. Over the limit
//! is what the kernel's OOM killer would act on in a container.

use std::time::Duration;

use chaoslab_telemetry::process::{ProcessSample, sample};

use crate::config::secs;
use crate::platform::Platform;

/// Samples process `pid` until its RSS exceeds the memory limit; returns
/// that RSS in MiB. Never returns while the process stays within it.
pub(crate) async fn watch(platform: &Platform, id: &str, pid: u32) -> f64 {
    let limits = &platform.config.file.limits;
    let limit_bytes = limits.memory_mb.saturating_mul(1024 * 1024);
    let period = secs(limits.sample_period_seconds).max(Duration::from_millis(10));
    let cpu_request = limits.cpu;
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                s.cpu_utilization = cpu / cpu_request;
                s.cpu_measured = true;
            }
        });
        if now.rss_bytes > limit_bytes {
            return rss_mb;
        }
    }
}
