//! The name everything a lab makes in the kernel carries,
//! `chaoslab-<id>`, and the id it is made of: kept apart from the modules
//! that make those things (cgroups, the network namespace, the claim) so
//! that each of them can name and recognise a lab without depending on
//! the others.

use std::path::Path;

/// The lab's id in the kernel: 8 hex digits of a hash (FNV-1a) of its
/// absolute state dir — stable for a directory, so the next `up` finds a
/// killed lab's leftovers, and short enough for interface names (15
/// bytes at most).
pub fn lab_id(state_dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in state_dir.as_os_str().as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", (hash ^ (hash >> 32)) as u32)
}

/// `chaoslab-<id>`: the name of everything the lab makes in the kernel.
pub fn kernel_name(id: &str) -> String {
    format!("chaoslab-{id}")
}

/// The lab id in a kernel object's name `chaoslab-<8 hex digits>` (what
/// [`kernel_name`] makes); None for any other name.
pub fn id_of_kernel_name(name: &str) -> Option<&str> {
    let id = name.strip_prefix("chaoslab-")?;
    (id.len() == 8 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn kernel_names_round_trip_and_nothing_else_parses(text in "\\PC*", n in 0u32..) {
            let id = format!("{n:08x}");
            let name = kernel_name(&id);
            proptest::prop_assert_eq!(id_of_kernel_name(&name), Some(id.as_str()));
            if let Some(id) = id_of_kernel_name(&text) {
                proptest::prop_assert_eq!(kernel_name(id), text.clone());
            }
        }
    }

    #[test]
    fn only_chaoslab_and_eight_hex_digits_is_a_kernel_name() {
        assert_eq!(id_of_kernel_name("chaoslab-0855e46c"), Some("0855e46c"));
        for other in [
            "chaoslab-0855e46",
            "chaoslab-0855E46C",
            "chaoslab-0855e46cc",
            "xchaoslab-0855e46c",
            "chaoslab-",
            "",
            "chaoslab-é855e46c",
        ] {
            assert_eq!(id_of_kernel_name(other), None, "{other}");
        }
    }

    #[test]
    fn lab_ids_are_stable_short_and_differ_by_directory() {
        let a = lab_id(Path::new("/tmp/a/.chaoslab"));
        assert_eq!(a, lab_id(Path::new("/tmp/a/.chaoslab")));
        assert_ne!(a, lab_id(Path::new("/tmp/b/.chaoslab")));
        assert_eq!(a.len(), 8);
        assert!(format!("clh{a}").len() <= 15, "fits an interface name");
        assert_eq!(kernel_name("0badcafe"), "chaoslab-0badcafe");
    }
}
