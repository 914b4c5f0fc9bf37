//! Owner-only files and directories in the lab's state dir (passwords, the
//! control token, the state file) and the secrets that go in them.
//!
//! Files are written atomically: a temp file in the same directory, mode
//! 0600 from its creation, fsynced, then renamed over the target (and the
//! directory fsynced), so a crash or a concurrent reader sees the old file or
//! the new one, never half of one. Directories are created 0700; an existing
//! directory is used as it is (its mode is never changed) unless group or
//! others may write to it, which is refused: another user could then
//! replace what the lab keeps there.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rand::Rng;

/// Creates `dir` (and missing parents) with mode 0700. An existing
/// directory keeps its mode; one that group or others may write to (even
/// with the sticky bit, as /tmp) is refused with a clear error.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} is writable by group or others (mode {mode:04o}); the lab keeps secrets there: \
                 run `chmod go-w` on it or use another directory",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Writes `contents` to `path` atomically with mode 0600 (see the module
/// docs); an existing file is replaced, never rewritten in place.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} names no file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp_name = OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", secret(12)));
    let temp = dir.join(temp_name);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        // Exactly 0600 whatever the umask.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
        return written;
    }
    // Make the rename durable too; the file is complete either way, so a
    // directory that cannot be fsynced is not an error.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A random alphanumeric secret of `len` characters.
pub fn secret(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(secret(32).len(), 32);
    }

    #[test]
    fn a_write_replaces_the_file_it_never_rewrites_it_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.json");
        write_private(&path, b"old contents").unwrap();
        // A reader (or a crash) mid-write sees the old file or the new one,
        // never a truncated mix: the old inode keeps the old bytes.
        let mut old = std::fs::File::open(&path).unwrap();
        write_private(&path, b"new").unwrap();
        let mut seen = String::new();
        std::io::Read::read_to_string(&mut old, &mut seen).unwrap();
        assert_eq!(seen, "old contents");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["lab.json"], "no temp file left behind");
    }

    #[test]
    fn an_existing_directory_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("existing");
        std::fs::create_dir(&mine).unwrap();
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&mine).unwrap();
        let mode = std::fs::metadata(&mine).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "not chmodded");
    }

    #[test]
    fn a_new_directory_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("a/b");
        private_dir(&new).unwrap();
        let mode = std::fs::metadata(&new).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_directory_others_may_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o770, 0o1777] {
            let shared = dir.path().join(format!("shared-{mode:o}"));
            std::fs::create_dir(&shared).unwrap();
            std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = private_dir(&shared).unwrap_err();
            assert!(err.to_string().contains("writable by"), "{err}");
            let after = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
            assert_eq!(after, mode, "left alone");
        }
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(private_dir(&file).is_err(), "a file is not a directory");
    }

    #[test]
    fn a_failed_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // The rename cannot replace a non-empty directory (even as root).
        let target = dir.path().join("lab.json");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), "x").unwrap();
        assert!(write_private(&target, b"new").is_err());
        assert!(target.join("inside").exists(), "left whole");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["lab.json"], "no temp file left behind");
        assert!(write_private(Path::new("/"), b"x").is_err(), "no file name");
    }
}
