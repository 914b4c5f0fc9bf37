//! External tools a test needs (redis-server, Chromium, Locust,
//! schemathesis, Chaos Toolkit…) and the one policy for a missing one: with
//! `CI` set the test fails, naming how to install it (CI installs every
//! tool through `.ci/setup.d/`, so a missing one is a broken setup); on a
//! developer's machine it is skipped with a note on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether `CI` is set (then no test may skip for a missing tool).
pub fn on_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Whether `program args…` runs and exits 0 (output discarded).
pub fn runs(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The executable `name` on `PATH` (or `name` itself when it holds a `/`).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let is_executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// The missing-tool policy: returns `present`; when it is false, panics
/// with `note` under CI, or prints `SKIPPED: note` for the caller to
/// return early. `note` names the tool and how to install it.
pub fn present_or_skip(present: bool, note: &str) -> bool {
    if !present {
        assert!(
            !on_ci(),
            "{note} (CI is set, so this fails instead of skipping)"
        );
        eprintln!("SKIPPED: {note}");
    }
    present
}

/// The executable `name` on `PATH`, under the missing-tool policy.
pub fn require(name: &str, note: &str) -> Option<PathBuf> {
    let found = find_on_path(name);
    present_or_skip(found.is_some(), note);
    found
}
