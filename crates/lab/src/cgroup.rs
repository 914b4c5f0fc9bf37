//! Replicas in cgroups, as a container runtime puts containers in them:
//! the kernel enforces the memory limit (its OOM killer ends a replica over
//! it, and the cgroup counts the kill) and the CPU limit (a CFS quota:
//! 0.25 vCPU is 25 ms of every 100 ms, the rest of the period throttled).
//!
//! Whatever the machine mounts is detected, never assumed: the unified
//! hierarchy (cgroup v2) when it offers the `memory` and `cpu` controllers,
//! else the v1 hierarchies of `memory`, `cpu` and `cpuacct` (mounted
//! together or apart). The lab's cgroup is `chaoslab-<id>` at the root of
//! each hierarchy and each replica gets `chaoslab-<id>/<replica>`; a
//! replica's process joins its cgroup between fork and exec (it writes `0`
//! to `cgroup.procs`), so not one instruction of the service runs outside
//! its limits.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which cgroup interface the machine gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl std::fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V1 => "cgroup v1",
            Self::V2 => "cgroup v2",
        })
    }
}

/// Where each controller's hierarchy is mounted (the same path for all
/// three under v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchies {
    pub version: CgroupVersion,
    pub memory: PathBuf,
    pub cpu: PathBuf,
    pub cpuacct: PathBuf,
}

impl Hierarchies {
    /// Finds the hierarchies in `/proc/self/mountinfo`; the error says
    /// what is missing.
    pub fn detect() -> Result<Self, String> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        Self::from_mountinfo(&mountinfo, |path| {
            std::fs::read_to_string(path.join("cgroup.controllers")).ok()
        })
    }

    /// [`detect`](Self::detect) on given text; `controllers` reads a v2
    /// mount's `cgroup.controllers`.
    pub fn from_mountinfo(
        mountinfo: &str,
        controllers: impl Fn(&Path) -> Option<String>,
    ) -> Result<Self, String> {
        let mut v2: Option<PathBuf> = None;
        let (mut memory, mut cpu, mut cpuacct) = (None, None, None);
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split_whitespace().nth(4);
            let mut right = right.split_whitespace();
            let (fstype, _source, options) = (right.next(), right.next(), right.next());
            let Some(point) = mount_point.map(unescape) else {
                continue;
            };
            match fstype {
                Some("cgroup2") => v2 = Some(point),
                Some("cgroup") => {
                    let options: Vec<&str> = options.unwrap_or("").split(',').collect();
                    if options.contains(&"memory") {
                        memory = Some(point.clone());
                    }
                    if options.contains(&"cpu") {
                        cpu = Some(point.clone());
                    }
                    if options.contains(&"cpuacct") {
                        cpuacct = Some(point);
                    }
                }
                _ => {}
            }
        }
        let mut why_not_v2 = "no cgroup2 mount".to_string();
        if let Some(root) = v2 {
            let available = controllers(&root).unwrap_or_default();
            let has = |c: &str| available.split_whitespace().any(|x| x == c);
            if has("memory") && has("cpu") {
                return Ok(Self {
                    version: CgroupVersion::V2,
                    memory: root.clone(),
                    cpu: root.clone(),
                    cpuacct: root,
                });
            }
            why_not_v2 = format!(
                "the cgroup2 mount {} offers no memory and cpu controllers (they are bound to v1)",
                root.display()
            );
        }
        match (memory, cpu, cpuacct) {
            (Some(memory), Some(cpu), Some(cpuacct)) => Ok(Self {
                version: CgroupVersion::V1,
                memory,
                cpu,
                cpuacct,
            }),
            (memory, cpu, cpuacct) => {
                let missing: Vec<&str> = [
                    ("memory", memory.is_none()),
                    ("cpu", cpu.is_none()),
                    ("cpuacct", cpuacct.is_none()),
                ]
                .iter()
                .filter(|(_, m)| *m)
                .map(|(n, _)| *n)
                .collect();
                Err(format!(
                    "{why_not_v2}, and no cgroup v1 hierarchy for {}",
                    missing.join(", ")
                ))
            }
        }
    }

    fn roots(&self) -> Vec<PathBuf> {
        let set: BTreeSet<PathBuf> = [&self.memory, &self.cpu, &self.cpuacct]
            .into_iter()
            .cloned()
            .collect();
        set.into_iter().collect()
    }
}

/// Mount points escape space, tab, newline and backslash as octal.
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && let Ok(octal) = std::str::from_utf8(&bytes[i + 1..i + 4])
            && let Ok(v) = u8::from_str_radix(octal, 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// The lab's cgroup, `chaoslab-<id>` in each hierarchy.
#[derive(Debug, Clone)]
pub struct LabCgroups {
    pub hierarchies: Hierarchies,
    name: String,
}

impl LabCgroups {
    /// Creates `name` in every hierarchy (v2: with the memory and cpu
    /// controllers enabled for its children); the error says why not.
    pub fn create(hierarchies: Hierarchies, name: &str) -> Result<Self, String> {
        let lab = Self {
            hierarchies,
            name: name.to_string(),
        };
        if lab.hierarchies.version == CgroupVersion::V2 {
            let root = &lab.hierarchies.memory;
            enable_controllers(root).map_err(|e| {
                format!(
                    "cannot enable memory and cpu in {}: {e}",
                    root.join("cgroup.subtree_control").display()
                )
            })?;
        }
        for dir in lab.dirs() {
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    lab.remove();
                    return Err(format!("cannot create {}: {e}", dir.display()));
                }
            }
        }
        if lab.hierarchies.version == CgroupVersion::V2
            && let Err(e) = enable_controllers(&lab.hierarchies.memory.join(&lab.name))
        {
            lab.remove();
            return Err(format!("cannot enable memory and cpu for {name}: {e}"));
        }
        Ok(lab)
    }

    /// The lab's directory in each hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.hierarchies
            .roots()
            .into_iter()
            .map(|root| root.join(&self.name))
            .collect()
    }

    /// Where a replica's cgroup is (for status), in the memory hierarchy.
    pub fn describe(&self) -> String {
        format!(
            "{} ({})",
            self.hierarchies.memory.join(&self.name).display(),
            self.hierarchies.version
        )
    }

    /// Creates replica `id`'s cgroup with its limits.
    pub fn replica(&self, id: &str, memory_mb: u64, cpu: f64) -> io::Result<ReplicaCgroup> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a cgroup name: {id:?}"),
            ));
        }
        let h = &self.hierarchies;
        let group = ReplicaCgroup {
            version: h.version,
            memory: h.memory.join(&self.name).join(id),
            cpu: h.cpu.join(&self.name).join(id),
            cpuacct: h.cpuacct.join(&self.name).join(id),
        };
        for dir in group.dirs() {
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    group.remove();
                    return Err(e);
                }
            }
        }
        if let Err(e) = group.set_limits(memory_mb, cpu) {
            group.remove();
            return Err(e);
        }
        Ok(group)
    }

    /// Removes the lab's cgroups and every replica cgroup left in them
    /// (their processes killed first); idempotent.
    pub fn remove(&self) {
        for dir in self.dirs() {
            remove_tree(&dir);
        }
    }

    /// Removes what a lab named `name` left in the hierarchies the machine
    /// mounts (after a SIGKILL); whether anything was found.
    pub fn sweep(name: &str) -> bool {
        let Ok(h) = Hierarchies::detect() else {
            return false;
        };
        let mut found = false;
        for root in h.roots() {
            let dir = root.join(name);
            if dir.exists() {
                found = true;
                remove_tree(&dir);
            }
        }
        found
    }
}

/// The names of the labs' cgroups (`chaoslab-<id>`) at the root of every
/// hierarchy the machine mounts.
pub fn lab_names() -> BTreeSet<String> {
    let Ok(h) = Hierarchies::detect() else {
        return BTreeSet::new();
    };
    h.roots()
        .iter()
        .filter_map(|root| std::fs::read_dir(root).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|name| crate::kernel_name::id_of_kernel_name(name).is_some())
        .collect()
}

/// Whether any process runs in the cgroups named `name` (or below them)
/// in any hierarchy.
pub fn has_processes(name: &str) -> bool {
    fn any_in(dir: &Path) -> bool {
        !pids(dir).is_empty()
            || std::fs::read_dir(dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .any(|e| any_in(&e.path()))
            })
    }
    Hierarchies::detect().is_ok_and(|h| h.roots().iter().any(|root| any_in(&root.join(name))))
}

fn enable_controllers(dir: &Path) -> io::Result<()> {
    let control = dir.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control)?;
    for controller in ["memory", "cpu"] {
        if !enabled.split_whitespace().any(|c| c == controller) {
            std::fs::write(&control, format!("+{controller}"))?;
        }
    }
    Ok(())
}

/// Kills whatever runs in `dir` and its children, then removes them,
/// deepest first, within a few seconds.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                if Instant::now() >= deadline {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a cgroup");
                    return;
                }
                // Busy: processes still in it (only this lab's: it is the
                // lab's own cgroup).
                for pid in pids(dir) {
                    crate::spawner::signal(pid, libc::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// CPU throttling of a replica's cgroup (CFS quota at work).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throttling {
    /// Periods in which the quota ran out.
    pub nr_throttled: u64,
    /// Of how many periods.
    pub nr_periods: u64,
    /// Time spent throttled.
    pub throttled_seconds: f64,
}

/// One replica's cgroup.
#[derive(Debug, Clone)]
pub struct ReplicaCgroup {
    version: CgroupVersion,
    memory: PathBuf,
    cpu: PathBuf,
    cpuacct: PathBuf,
}

/// The CFS period the quota is a share of.
const CFS_PERIOD_US: u64 = 100_000;

impl ReplicaCgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        let set: BTreeSet<PathBuf> = [&self.memory, &self.cpu, &self.cpuacct]
            .into_iter()
            .cloned()
            .collect();
        set.into_iter().collect()
    }

    /// The memory hierarchy's directory (for status).
    pub fn path(&self) -> &Path {
        &self.memory
    }

    fn set_limits(&self, memory_mb: u64, cpu: f64) -> io::Result<()> {
        let bytes = memory_mb.saturating_mul(1024 * 1024);
        let quota = ((cpu * CFS_PERIOD_US as f64).round() as u64).max(1000);
        let write = |dir: &Path, file: &str, value: String| {
            std::fs::write(dir.join(file), &value).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot write {value} to {}: {e}", dir.join(file).display()),
                )
            })
        };
        match self.version {
            CgroupVersion::V1 => {
                write(&self.memory, "memory.limit_in_bytes", bytes.to_string())?;
                // No swap beyond the limit where the kernel accounts it (a
                // container's limit is on memory, not on swap).
                if self.memory.join("memory.memsw.limit_in_bytes").exists() {
                    write(
                        &self.memory,
                        "memory.memsw.limit_in_bytes",
                        bytes.to_string(),
                    )?;
                }
                let _ = write(&self.memory, "memory.swappiness", "0".into());
                write(&self.cpu, "cpu.cfs_period_us", CFS_PERIOD_US.to_string())?;
                write(&self.cpu, "cpu.cfs_quota_us", quota.to_string())?;
            }
            CgroupVersion::V2 => {
                write(&self.memory, "memory.max", bytes.to_string())?;
                if self.memory.join("memory.swap.max").exists() {
                    write(&self.memory, "memory.swap.max", "0".into())?;
                }
                write(&self.cpu, "cpu.max", format!("{quota} {CFS_PERIOD_US}"))?;
            }
        }
        Ok(())
    }

    /// The `cgroup.procs` files a process writes `0` to, to join this
    /// cgroup (one per hierarchy), as C strings for use between fork and
    /// exec.
    pub fn procs_files(&self) -> io::Result<Vec<CString>> {
        self.dirs()
            .into_iter()
            .map(|d| {
                CString::new(d.join("cgroup.procs").as_os_str().as_bytes())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
            })
            .collect()
    }

    /// Kills by the kernel's OOM killer in this cgroup so far (v1:
    /// `memory.oom_control`'s `oom_kill`, Linux 4.13+; v2: `memory.events`).
    pub fn oom_kills(&self) -> Option<u64> {
        let file = match self.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        };
        let text = std::fs::read_to_string(self.memory.join(file)).ok()?;
        field(&text, "oom_kill")
    }

    /// CPU time used by the cgroup so far, in nanoseconds.
    pub fn cpu_usage_ns(&self) -> Option<u64> {
        match self.version {
            CgroupVersion::V1 => std::fs::read_to_string(self.cpuacct.join("cpuacct.usage"))
                .ok()?
                .trim()
                .parse()
                .ok(),
            CgroupVersion::V2 => {
                let text = std::fs::read_to_string(self.cpu.join("cpu.stat")).ok()?;
                field(&text, "usage_usec").map(|us| us.saturating_mul(1000))
            }
        }
    }

    /// Memory charged to the cgroup now, in bytes.
    pub fn memory_bytes(&self) -> Option<u64> {
        let file = match self.version {
            CgroupVersion::V1 => "memory.usage_in_bytes",
            CgroupVersion::V2 => "memory.current",
        };
        std::fs::read_to_string(self.memory.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The CFS quota's throttling so far.
    pub fn throttling(&self) -> Option<Throttling> {
        let text = std::fs::read_to_string(self.cpu.join("cpu.stat")).ok()?;
        let throttled_seconds = match self.version {
            CgroupVersion::V1 => field(&text, "throttled_time")? as f64 / 1e9,
            CgroupVersion::V2 => field(&text, "throttled_usec")? as f64 / 1e6,
        };
        Some(Throttling {
            nr_throttled: field(&text, "nr_throttled")?,
            nr_periods: field(&text, "nr_periods")?,
            throttled_seconds,
        })
    }

    /// Removes the cgroup (what still runs in it is killed first).
    pub fn remove(&self) {
        for dir in self.dirs() {
            remove_tree(&dir);
        }
    }
}

/// `key value` lines (cpu.stat, memory.events, memory.oom_control).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_SPLIT: &str = "\
35 25 0:30 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
36 25 0:31 / /sys/fs/cgroup/cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpuacct
38 25 0:33 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory
44 25 0:39 / /sys/fs/cgroup/unified rw,relatime shared:18 - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_is_found_when_the_unified_mount_has_no_controllers() {
        let h = Hierarchies::from_mountinfo(V1_SPLIT, |_| Some(String::new())).unwrap();
        assert_eq!(h.version, CgroupVersion::V1);
        assert_eq!(h.memory, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(h.cpu, Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(h.cpuacct, Path::new("/sys/fs/cgroup/cpuacct"));
        assert_eq!(h.roots().len(), 3);
    }

    #[test]
    fn v2_wins_when_it_offers_memory_and_cpu() {
        let h =
            Hierarchies::from_mountinfo(V1_SPLIT, |_| Some("cpuset cpu io memory pids\n".into()))
                .unwrap();
        assert_eq!(h.version, CgroupVersion::V2);
        assert_eq!(h.roots(), vec![PathBuf::from("/sys/fs/cgroup/unified")]);
    }

    #[test]
    fn co_mounted_v1_controllers_and_missing_ones() {
        let text = "30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                    31 25 0:28 / /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n";
        let h = Hierarchies::from_mountinfo(text, |_| None).unwrap();
        assert_eq!(h.cpu, h.cpuacct);
        assert_eq!(h.memory, Path::new("/sys/fs/cgroup/mem ory"));
        assert_eq!(h.roots().len(), 2);
        let err = Hierarchies::from_mountinfo("", |_| None).unwrap_err();
        assert!(err.contains("no cgroup2 mount"), "{err}");
        assert!(err.contains("memory, cpu, cpuacct"), "{err}");
    }

    #[test]
    fn counters_are_read_by_name() {
        let stat = "nr_periods 10\nnr_throttled 4\nthrottled_time 2500000000\n";
        assert_eq!(field(stat, "nr_throttled"), Some(4));
        assert_eq!(field(stat, "throttled_time"), Some(2_500_000_000));
        assert_eq!(
            field("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
            Some(3)
        );
        assert_eq!(field("low 0\n", "oom_kill"), None);
    }
}
