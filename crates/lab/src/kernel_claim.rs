//! Who owns a `chaoslab-<id>` name in the kernel, so that any lab's `up`
//! can remove what a dead lab left there — not only the next lab of the
//! same state dir. A lab in kernel mode holds an exclusive `flock` on
//! `/run/chaoslab/<name>.lock` from before it makes its first cgroup or
//! namespace until it has removed the last one; the kernel releases the
//! lock when the lab's process ends, however it ends (SIGKILL included).
//! So a lock that can be taken means the owner is gone; a name whose lock
//! is held belongs to a running lab and is never touched.
//!
//! Names without a lock file were made by a chaoslab that took no claim
//! (or their file was removed): they are removed only when no process
//! runs in their cgroups and namespace.
//!
//! The file is opened close-on-exec (no child inherits the lock) and
//! removed by its holder while held; whoever takes a lock checks that the
//! path still names the file it locked, else tries again.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;

use crate::cgroup::{self, LabCgroups};
use crate::kernel_name::id_of_kernel_name;
use crate::netns::{self, LabNetwork};

/// Where the claims live (root only: kernel mode needs root).
pub const CLAIM_DIR: &str = "/run/chaoslab";

/// How long a lab waits for a claim another lab's sweep holds a moment.
const TAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A lab's hold on its kernel name; released (and its file removed) when
/// dropped, or by the kernel when the process ends.
#[derive(Debug)]
pub struct KernelClaim {
    file: File,
    path: PathBuf,
}

/// What holds a name's claim.
enum Owner {
    /// A running lab.
    Alive,
    /// Nobody: the claim is ours now, until dropped.
    Gone(KernelClaim),
    /// No claim file.
    Unknown,
}

impl KernelClaim {
    /// Claims `name` in [`CLAIM_DIR`] (waits while another lab's sweep
    /// holds it for a moment).
    pub fn take(name: &str) -> io::Result<Self> {
        Self::take_in(Path::new(CLAIM_DIR), name)
    }

    fn take_in(dir: &Path, name: &str) -> io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let path = claim_path(dir, name);
        let deadline = Instant::now() + TAKE_TIMEOUT;
        loop {
            if let Some(claim) = try_lock(&path, true)? {
                return Ok(claim);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "{} is held by another process: is a lab of this directory running elsewhere?",
                        path.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for KernelClaim {
    fn drop(&mut self) {
        // Removed while held, so nobody takes a lock on a file that is
        // about to go; the lock goes with the descriptor.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn claim_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.lock"))
}

/// Locks the claim file at `path` without waiting: None when another
/// process holds it. Creates the file when `create`; without it, a missing
/// file is `NotFound`.
fn try_lock(path: &Path, create: bool) -> io::Result<Option<KernelClaim>> {
    for _ in 0..10 {
        // Close-on-exec (std's default): no child inherits the lock.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        // The holder before us may have removed the file just before we
        // locked it: then the lock is on a file nobody else will open.
        if same_file(&file, path) {
            return Ok(Some(KernelClaim {
                file,
                path: path.to_path_buf(),
            }));
        }
        if !create && !path.exists() {
            return Err(io::ErrorKind::NotFound.into());
        }
    }
    Err(io::Error::other(format!(
        "{} keeps being replaced",
        path.display()
    )))
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn owner(dir: &Path, name: &str) -> Owner {
    match try_lock(&claim_path(dir, name), false) {
        Ok(Some(claim)) => Owner::Gone(claim),
        Ok(None) => Owner::Alive,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Owner::Unknown,
        // Cannot tell: leave it alone.
        Err(_) => Owner::Alive,
    }
}

/// Every `chaoslab-<id>` name something in the kernel carries: cgroups,
/// network namespaces, nftables tables, veth ends.
pub fn kernel_names() -> BTreeSet<String> {
    let mut names = cgroup::lab_names();
    names.extend(netns::lab_names());
    names
}

/// Removes what every dead lab left in the kernel (other than `own`, the
/// caller's name, whose leftovers the caller sweeps itself): the names
/// removed.
pub fn sweep_dead_labs(own: &str) -> Vec<String> {
    sweep_dead_labs_in(Path::new(CLAIM_DIR), own, kernel_names())
}

fn sweep_dead_labs_in(dir: &Path, own: &str, names: BTreeSet<String>) -> Vec<String> {
    let mut removed = Vec::new();
    for name in names {
        let Some(id) = id_of_kernel_name(&name) else {
            continue;
        };
        if name == own {
            continue;
        }
        let _claim = match owner(dir, &name) {
            Owner::Alive => continue,
            Owner::Gone(claim) => Some(claim),
            Owner::Unknown if cgroup::has_processes(&name) || netns::has_processes(&name) => {
                continue;
            }
            Owner::Unknown => None,
        };
        tracing::warn!("removing what the dead lab {name} left in the kernel");
        LabCgroups::sweep(&name);
        LabNetwork::sweep(id, &name);
        removed.push(name);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_claim_is_exclusive_and_its_file_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let claim = KernelClaim::take_in(dir.path(), "chaoslab-00000001").unwrap();
        let path = claim_path(dir.path(), "chaoslab-00000001");
        assert!(path.exists());
        assert!(matches!(
            owner(dir.path(), "chaoslab-00000001"),
            Owner::Alive
        ));
        drop(claim);
        assert!(!path.exists());
        assert!(matches!(
            owner(dir.path(), "chaoslab-00000001"),
            Owner::Unknown
        ));
    }

    #[test]
    fn a_claim_left_by_a_dead_process_can_be_taken() {
        // A file whose holder is gone: no lock on it.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(claim_path(dir.path(), "chaoslab-00000002"), "").unwrap();
        let Owner::Gone(claim) = owner(dir.path(), "chaoslab-00000002") else {
            panic!("a claim nobody holds is the claim of a dead lab");
        };
        drop(claim);
        assert!(!claim_path(dir.path(), "chaoslab-00000002").exists());
    }

    #[test]
    fn the_sweep_never_touches_a_held_name_or_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let _held = KernelClaim::take_in(dir.path(), "chaoslab-00000003").unwrap();
        let removed = sweep_dead_labs_in(
            dir.path(),
            "chaoslab-00000004",
            names(&["chaoslab-00000003", "chaoslab-00000004", "not-a-lab"]),
        );
        assert!(removed.is_empty(), "{removed:?}");
    }

    #[test]
    fn the_sweep_takes_names_whose_claim_is_free() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(claim_path(dir.path(), "chaoslab-00000005"), "").unwrap();
        // Nothing of this name exists in the kernel: sweeping it is a no-op
        // that needs no root.
        let removed = sweep_dead_labs_in(dir.path(), "", names(&["chaoslab-00000005"]));
        assert_eq!(removed, ["chaoslab-00000005"]);
        assert!(!claim_path(dir.path(), "chaoslab-00000005").exists());
    }
}
