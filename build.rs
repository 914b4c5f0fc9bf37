//! Build script of the `chaoslab` binary: how it is linked on GNU/Linux,
//! for a smaller resident set in every replica (issue 12 item 5: idle RSS).
//!
//! - Relative relocations packed (`-z pack-relative-relocs`, DT_RELR, glibc
//!   2.36 and binutils 2.38 or later; older linkers ignore it): the table
//!   the dynamic linker reads whole at every start shrinks from about
//!   850 KiB to a few KiB, all of which stayed resident.
//! - Release builds with Rust's own linker (rust-lld, the default on
//!   x86_64-unknown-linux-gnu since Rust 1.90) lay out the functions
//!   `chaoslab serve` runs first, in the order of `link/serve.order`
//!   (`--symbol-ordering-file`; regenerate it with `link/serve-order.sh`).
//!   The kernel maps code in 64 KiB windows around each page it faults in:
//!   scattered over 17 MB of .text, the 1.5 MB that runs kept about 8.7 MB
//!   resident. Skipped when another linker is configured (GNU ld does not
//!   know the flag) or CHAOSLAB_SYMBOL_ORDER=0.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/serve.order");
    println!("cargo:rerun-if-env-changed=CHAOSLAB_SYMBOL_ORDER");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join("link/serve.order");
    if var("PROFILE") == "release"
        && var("CHAOSLAB_SYMBOL_ORDER") != "0"
        && default_lld()
        && order.is_file()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Names of functions since renamed or gone are expected: ignored.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the binary is linked by rust-lld: the target's default linker
/// (x86_64-unknown-linux-gnu, Rust 1.90 or later) and none configured in
/// the environment. A linker chosen in a Cargo config file is not visible
/// here: set CHAOSLAB_SYMBOL_ORDER=0 then.
fn default_lld() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    let custom = flags.contains("linker") || flags.contains("fuse-ld");
    let configured =
        std::env::vars().any(|(k, _)| k.starts_with("CARGO_TARGET_") && k.ends_with("_LINKER"));
    var("TARGET") == "x86_64-unknown-linux-gnu"
        && !custom
        && !configured
        && rustc_minor() >= Some(90)
}

/// The minor version of the compiler building this crate (`1.N.x`).
fn rustc_minor() -> Option<u32> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    (parts.next()? == "1").then_some(())?;
    parts.next()?.parse().ok()
}
