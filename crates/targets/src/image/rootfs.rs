//! The root filesystem of a `FROM scratch` image: an executable (stripped
//! when `strip` is installed), the shared libraries and loader `ldd` names
//! for it, `/etc/passwd` and `/etc/group` with one non-root user, the CA
//! bundle, and a world-writable sticky `/tmp`. Nothing else — no shell.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the root filesystem could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum RootFsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run ldd on {binary} ({detail}); install it with `apt-get install -y libc-bin`")]
    Ldd { binary: PathBuf, detail: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RootFsError + '_ {
    move |source| RootFsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The absolute paths of the shared libraries and dynamic loader `binary`
/// needs, as `ldd` resolves them on this machine (none for a static binary).
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, RootFsError> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| RootFsError::Ldd {
            binary: binary.to_path_buf(),
            detail: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let text = format!("{stdout}{stderr}");
        if text.contains("not a dynamic executable") || text.contains("statically linked") {
            return Ok(Vec::new());
        }
        return Err(RootFsError::Ldd {
            binary: binary.to_path_buf(),
            detail: text.trim().to_string(),
        });
    }
    Ok(parse_ldd(&stdout))
}

/// Parses `ldd` output: `name => /path (0x…)` and `/loader (0x…)` lines;
/// `linux-vdso` and `not found` lines carry no file.
pub fn parse_ldd(text: &str) -> Vec<PathBuf> {
    let mut libs = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split(" (0x").next().unwrap_or("").trim();
        if path.starts_with('/') && !libs.iter().any(|l: &PathBuf| l == Path::new(path)) {
            libs.push(PathBuf::from(path));
        }
    }
    libs
}

/// A root filesystem being assembled in a directory.
#[derive(Debug)]
pub struct RootFs {
    root: PathBuf,
}

impl RootFs {
    /// Creates `root` (with `/tmp`, mode 1777).
    pub fn new(root: PathBuf) -> Result<Self, RootFsError> {
        use std::os::unix::fs::PermissionsExt;
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
            .map_err(io(&tmp))?;
        Ok(Self { root })
    }

    fn target(&self, inside: &str) -> Result<PathBuf, RootFsError> {
        let path = self.root.join(inside.trim_start_matches('/'));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        Ok(path)
    }

    /// Copies the executable to `inside` (symlinks followed), stripped of
    /// symbols when `strip` is installed (the image is then far smaller).
    pub fn add_executable(&self, binary: &Path, inside: &str) -> Result<(), RootFsError> {
        use std::os::unix::fs::PermissionsExt;
        let target = self.target(inside)?;
        std::fs::copy(binary, &target).map_err(io(binary))?;
        let _ = Command::new("strip")
            .arg("--strip-unneeded")
            .arg(&target)
            .output();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .map_err(io(&target))
    }

    /// Copies every shared library `binary` needs to the same path inside.
    pub fn add_libraries_of(&self, binary: &Path) -> Result<(), RootFsError> {
        for lib in shared_libraries(binary)? {
            let target = self.target(&lib.to_string_lossy())?;
            std::fs::copy(&lib, &target).map_err(io(&lib))?;
        }
        Ok(())
    }

    /// `/etc/passwd` and `/etc/group` with root and `name` (uid = gid = `uid`),
    /// so tools and libraries that look the user up find it.
    pub fn add_users(&self, name: &str, uid: u32) -> Result<(), RootFsError> {
        let passwd = self.target("etc/passwd")?;
        std::fs::write(
            &passwd,
            format!("root:x:0:0:root:/root:/nonexistent\n{name}:x:{uid}:{uid}:{name}:/tmp:/nonexistent\n"),
        )
        .map_err(io(&passwd))?;
        let group = self.target("etc/group")?;
        std::fs::write(&group, format!("root:x:0:\n{name}:x:{uid}:\n")).map_err(io(&group))
    }

    /// The machine's CA bundle (for TLS to Redis or telemetry), when it has one.
    pub fn add_ca_bundle(&self) -> Result<(), RootFsError> {
        let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
        if bundle.is_file() {
            let target = self.target("etc/ssl/certs/ca-certificates.crt")?;
            std::fs::copy(bundle, &target).map_err(io(bundle))?;
        }
        Ok(())
    }
}
