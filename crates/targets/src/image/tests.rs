//! Unit tests of the image's root filesystem and Containerfile.

use super::*;

#[test]
fn ldd_output_is_parsed() {
    let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n\tlibmissing.so => not found\n";
    let libs = rootfs::parse_ldd(text);
    assert_eq!(
        libs,
        vec![
            PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
            PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
            PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
        ]
    );
}

#[test]
fn context_holds_binary_libraries_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    prepare_context(dir.path(), &exe, false).unwrap();
    let root = dir.path().join("rootfs");
    assert!(root.join("usr/local/bin/chaoslab").is_file());
    for lib in shared_libraries(&exe).unwrap() {
        assert!(
            root.join(lib.strip_prefix("/").unwrap()).is_file(),
            "{}",
            lib.display()
        );
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("chaoslab:x:10001:10001:"), "{passwd}");
    let file = std::fs::read_to_string(dir.path().join("Containerfile")).unwrap();
    assert!(file.starts_with("FROM scratch\n"));
    assert!(!root.join("bin/sh").exists(), "no shell in the image");
}

#[test]
fn repository_containerfile_ends_with_the_same_runtime_stage() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Containerfile");
    let text = std::fs::read_to_string(&path).unwrap();
    let runtime: Vec<&str> = SERVICE_RUNTIME_STAGE.lines().skip(1).collect();
    let tail: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let tail = &tail[tail.len() - runtime.len()..];
    assert_eq!(
        tail[1..],
        runtime[1..],
        "keep Containerfile's runtime stage equal to image::SERVICE_RUNTIME_STAGE"
    );
    assert!(text.contains("FROM scratch"));
    assert!(text.contains("USER 10001:10001"));
}

#[test]
fn unknown_builder_is_bad_input() {
    let err = find_builder(Some("docker")).unwrap_err().to_string();
    assert!(err.contains("unknown builder `docker`"), "{err}");
}
