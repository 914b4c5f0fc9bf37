//! `chaoslab image build` end to end (issue 14 item 1): the real binary
//! builds its own image with podman, pulling nothing (`FROM scratch`), the
//! image runs `chaoslab serve` as the non-root user with no shell in it,
//! its size is reported (under 40 MB from a release build), `--save`
//! writes an archive, and without podman or buildah on PATH the command
//! exits 2 with one line saying how to install podman.

mod targets_podman;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chaoslab_test_support::tool;
use targets_podman::{Cleanup, run_bounded};

const BIN: &str = env!("CARGO_BIN_EXE_chaoslab");

fn chaoslab(cmd: &mut Command) -> std::process::Output {
    run_bounded(cmd, Duration::from_secs(180)).expect("chaoslab image build took over 180 s")
}

#[test]
fn without_podman_or_buildah_it_exits_2_saying_how_to_install() {
    let empty = tempfile::Builder::new()
        .prefix("chaoslab-test-path-")
        .tempdir()
        .unwrap();
    let o = chaoslab(
        Command::new(BIN)
            .args(["image", "build"])
            .env("PATH", empty.path()),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("apt-get install -y podman"), "{stderr}");
}

#[test]
fn builds_offline_from_this_binary_small_non_root_and_shell_free() {
    if tool::require(
        "podman",
        "podman not installed (apt-get install -y podman; .ci/setup.d/targets.sh)",
    )
    .is_none()
    {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("chaoslab-test-image-")
        .tempdir()
        .unwrap();
    let tag = format!("localhost/chaoslab-test-image-{}:1", std::process::id());
    let _cleanup = Cleanup {
        conf: None,
        plays: Vec::new(),
        pods: Vec::new(),
        images: vec![tag.clone()],
    };
    let archive = dir.path().join("image.tar");
    let o = chaoslab(
        Command::new(BIN)
            .args(["image", "build", "--tag", &tag, "--save"])
            .arg(&archive),
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{stdout}");
    assert_small(&stdout);
    assert!(
        archive.metadata().map(|m| m.len()).unwrap_or(0) > 1_000_000,
        "--save wrote the archive"
    );

    assert_runs_serve_as_non_root(&tag);
    // FROM scratch: one layer, holding the binary, its libraries and /etc — no shell.
    assert_one_layer_without_a_shell(dir.path(), &tag);
}

/// The size `image build` reports ("built TAG (12.3 MB) from PATH") is
/// small: under 40 MB for a release binary (120 for a debug one).
fn assert_small(stdout: &str) {
    // "built TAG (12.3 MB) from PATH"
    let mb: f64 = stdout
        .split('(')
        .nth(1)
        .and_then(|s| s.split(" MB").next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no size reported: {stdout}"));
    if cfg!(debug_assertions) {
        // A debug build's binary is several times a release build's.
        assert!(mb < 120.0, "{mb} MB");
    } else {
        assert!(
            mb < 40.0,
            "the release image must stay under 40 MB: {mb} MB"
        );
    }
}

/// The image runs `chaoslab serve` as 10001:10001 and exposes 8000.
fn assert_runs_serve_as_non_root(tag: &str) {
    let inspect = |format: &str| {
        let o = run_bounded(
            Command::new("podman").args(["image", "inspect", tag, "--format", format]),
            Duration::from_secs(30),
        )
        .expect("podman image inspect took over 30 s");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(inspect("{{.Config.User}}"), "10001:10001");
    assert_eq!(
        inspect("{{json .Config.Entrypoint}}"),
        r#"["/usr/local/bin/chaoslab","serve"]"#
    );
    assert!(inspect("{{json .Config.ExposedPorts}}").contains("8000/tcp"));
}

/// The saved OCI layers hold the binary and `/etc/passwd`, and no shell.
fn assert_one_layer_without_a_shell(dir: &Path, tag: &str) {
    let o = run_bounded(
        Command::new("podman")
            .args(["image", "save", "--format", "oci-dir", "-o"])
            .arg(dir.join("oci"))
            .arg(tag),
        Duration::from_secs(60),
    )
    .expect("podman image save took over 60 s");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listing = run_bounded(
        Command::new("sh").arg("-c").arg("for l in blobs/sha256/*; do tar tzf \"$l\" 2>/dev/null || tar tf \"$l\" 2>/dev/null; done").current_dir(dir.join("oci")),
        Duration::from_secs(60),
    )
    .expect("listing layers took over 60 s");
    let files = String::from_utf8_lossy(&listing.stdout);
    assert!(files.contains("usr/local/bin/chaoslab"), "{files}");
    assert!(files.contains("etc/passwd"), "{files}");
    for shell in ["bin/sh", "bin/bash", "usr/bin/sh"] {
        assert!(
            !files.lines().any(|f| f.trim_start_matches("./") == shell),
            "{shell} in the image"
        );
    }
}
