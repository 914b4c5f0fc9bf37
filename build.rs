//! Build script of the `chaoslab` binary: on GNU/Linux its relative
//! relocations are linked packed (`-z pack-relative-relocs`, DT_RELR, glibc
//! 2.36 and binutils 2.38 or later; older linkers ignore it). The table the
//! dynamic linker reads whole at every start shrinks from about 850 KiB to
//! a few KiB, all of which stayed resident in every replica (issue 12 item
//! 5: idle RSS).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
