//! Real load: CPU burnt on dedicated OS threads (never the async runtime's),
//! duty-cycled to a share of the process's CPUs, and memory allocated with
//! every page written so the RSS really grows. Both end by themselves at the
//! deadline (the threads check the clock every few milliseconds), or at once
//! when stopped; memory is freed (returned to the OS) at the end.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::NotStarted;

/// The seed's three load levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadLevel {
    Low,
    Medium,
    High,
}

impl LoadLevel {
    /// Every level by the name clients use, in the API's order.
    pub const CHOICES: &'static [(&'static str, LoadLevel)] = &[
        ("low", LoadLevel::Low),
        ("medium", LoadLevel::Medium),
        ("high", LoadLevel::High),
    ];

    /// Share of the process's CPUs kept busy.
    pub fn cpu_percent(self) -> u32 {
        match self {
            LoadLevel::Low => 30,
            LoadLevel::Medium => 60,
            LoadLevel::High => 90,
        }
    }
    /// Memory held resident, in MB.
    pub fn memory_mb(self) -> u64 {
        match self {
            LoadLevel::Low => 100,
            LoadLevel::Medium => 500,
            LoadLevel::High => 1000,
        }
    }
    /// The `chaos.load.level` gauge value.
    pub fn gauge(self) -> u64 {
        match self {
            LoadLevel::Low => 1,
            LoadLevel::Medium => 2,
            LoadLevel::High => 3,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            LoadLevel::Low => "low",
            LoadLevel::Medium => "medium",
            LoadLevel::High => "high",
        }
    }
}

/// What to burn, for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSpec {
    pub level: LoadLevel,
    pub duration: Duration,
    /// Share of the process's CPUs, 1–100.
    pub cpu_percent: u32,
    pub memory_mb: u64,
}

/// Length of one duty cycle: busy for `percent` of it, asleep for the rest.
const DUTY_PERIOD: Duration = Duration::from_millis(20);
/// Allocation unit: each chunk is an anonymous mapping of its own, whatever
/// the process's allocator (the `chaoslab` binary's keeps freed memory
/// for reuse), so dropping it gives the memory back to the OS at once.
const CHUNK_BYTES: usize = 64 << 20;
const PAGE: usize = 4096;

struct Running {
    spec: LoadSpec,
    deadline: Instant,
    stop: Arc<AtomicBool>,
}

/// Starts, reports and stops the one load that may run at a time.
#[derive(Default)]
pub struct LoadController {
    running: Mutex<Option<Running>>,
    /// Bytes currently held by the memory ballast (for tests and status).
    resident_bytes: Arc<AtomicU64>,
    /// Shutting down: no load starts.
    closed: AtomicBool,
}

/// A load as `/chaos/status` shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadStatus {
    pub active: Option<(LoadLevel, u64)>,
}

impl LoadController {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a load, or fails if one is active.
    pub fn start(&self, spec: LoadSpec) -> Result<(), NotStarted> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Relaxed) {
            return Err(NotStarted::ShuttingDown);
        }
        if let Some(r) = running.as_ref()
            && !r.stop.load(Ordering::Relaxed)
            && Instant::now() < r.deadline
        {
            return Err(NotStarted::AlreadyActive(format!(
                "a {} load is already running for {} more seconds; DELETE /chaos/load stops it",
                r.spec.level.name(),
                super::remaining_seconds(r.deadline)
            )));
        }
        let deadline = Instant::now() + spec.duration;
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let busy = DUTY_PERIOD.mul_f64(f64::from(spec.cpu_percent.clamp(1, 100)) / 100.0);
        for i in 0..cpus {
            let stop = stop.clone();
            let _ = std::thread::Builder::new()
                .name(format!("chaos-cpu-{i}"))
                .spawn(move || burn_cpu(busy, deadline, &stop));
        }
        if spec.memory_mb > 0 {
            let stop = stop.clone();
            let resident = self.resident_bytes.clone();
            let bytes = spec.memory_mb as usize * 1024 * 1024;
            let _ = std::thread::Builder::new()
                .name("chaos-memory".into())
                .spawn(move || hold_memory(bytes, deadline, &stop, &resident));
        }
        tracing::info!(
            level = spec.level.name(),
            duration_s = spec.duration.as_secs(),
            cpu_percent = spec.cpu_percent,
            memory_mb = spec.memory_mb,
            cpus,
            "chaos load started"
        );
        *running = Some(Running {
            spec,
            deadline,
            stop,
        });
        Ok(())
    }

    /// At shutdown: stops the load and starts no other.
    pub fn close(&self) {
        // Under the lock, so that no start slips in between.
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Relaxed);
        drop(running);
        self.stop();
    }

    /// Stops the load now. Returns whether one was running.
    pub fn stop(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.take() {
            Some(r) => {
                let was_active = Instant::now() < r.deadline && !r.stop.load(Ordering::Relaxed);
                r.stop.store(true, Ordering::Relaxed);
                if was_active {
                    tracing::info!("chaos load stopped early");
                }
                was_active
            }
            None => false,
        }
    }

    /// The active load's level and seconds left; inactive from the deadline on.
    pub fn status(&self) -> Option<(LoadLevel, u64)> {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.as_ref().and_then(|r| {
            (!r.stop.load(Ordering::Relaxed) && Instant::now() < r.deadline)
                .then(|| (r.spec.level, super::remaining_seconds(r.deadline)))
        })
    }

    /// Bytes the memory ballast holds right now.
    pub fn resident_bytes(&self) -> u64 {
        self.resident_bytes.load(Ordering::Relaxed)
    }
}

fn burn_cpu(busy: Duration, deadline: Instant, stop: &AtomicBool) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    loop {
        let cycle = Instant::now();
        if cycle >= deadline || stop.load(Ordering::Relaxed) {
            return;
        }
        while cycle.elapsed() < busy {
            for _ in 0..1000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
            }
            std::hint::black_box(x);
        }
        let rest = DUTY_PERIOD.saturating_sub(cycle.elapsed());
        if !rest.is_zero() {
            std::thread::sleep(rest.min(deadline.saturating_duration_since(Instant::now())));
        }
    }
}

fn hold_memory(bytes: usize, deadline: Instant, stop: &AtomicBool, resident: &AtomicU64) {
    let mut chunks: Vec<memmap2::MmapMut> = Vec::new();
    let mut left = bytes;
    while left > 0 && !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let size = left.min(CHUNK_BYTES);
        let mut chunk = match memmap2::MmapMut::map_anon(size) {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::warn!(error = %e, bytes = size, "memory load: the system refused more memory; holding what was allocated");
                break;
            }
        };
        // Touch every page so the kernel really backs it (RSS grows).
        for page in chunk.iter_mut().step_by(PAGE) {
            *page = 1;
        }
        std::hint::black_box(&chunk[..]);
        resident.fetch_add(size as u64, Ordering::Relaxed);
        chunks.push(chunk);
        left -= size;
    }
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(
            Duration::from_millis(10).min(deadline.saturating_duration_since(Instant::now())),
        );
    }
    drop(chunks);
    resident.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ms: u64, memory_mb: u64) -> LoadSpec {
        LoadSpec {
            level: LoadLevel::Low,
            duration: Duration::from_millis(ms),
            cpu_percent: 10,
            memory_mb,
        }
    }

    #[test]
    fn closing_stops_the_load_and_refuses_new_ones() {
        let c = LoadController::new();
        c.start(spec(5_000, 0)).unwrap();
        c.close();
        assert!(c.status().is_none());
        let refused = c.start(spec(5_000, 0)).err();
        assert!(
            matches!(refused, Some(NotStarted::ShuttingDown)),
            "{refused:?}"
        );
    }

    #[test]
    fn second_load_conflicts_until_stopped() {
        let c = LoadController::new();
        c.start(spec(5_000, 0)).unwrap();
        assert!(c.start(spec(5_000, 0)).is_err());
        assert!(c.stop());
        assert!(c.status().is_none());
        c.start(spec(50, 0)).unwrap();
        c.stop();
    }

    #[test]
    fn ends_at_its_deadline() {
        let c = LoadController::new();
        c.start(spec(200, 0)).unwrap();
        assert!(c.status().is_some());
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.status().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(c.status().is_none());
        assert!(c.start(spec(10, 0)).is_ok());
    }

    #[test]
    fn memory_is_held_then_released() {
        let c = LoadController::new();
        c.start(spec(10_000, 70)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.resident_bytes() < 70 << 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(c.resident_bytes(), 70 << 20);
        c.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.resident_bytes() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(c.resident_bytes(), 0);
    }
}
