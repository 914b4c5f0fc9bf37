//! `/proc` parsing against lines as the kernel writes them (names with
//! spaces, parentheses, newlines), garbage (an error, never a panic), and
//! this very process.

use proptest::prelude::*;

use super::*;

/// A stat line as the kernel writes it, from the fields we read.
fn line(pid: u32, comm: &str, state: char, ppid: u32, ticks: (u64, u64), start: u64) -> String {
    format!(
        "{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 {} {} 0 0 20 0 1 0 {start} 1234567 89 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
        ticks.0, ticks.1
    )
}

#[test]
fn parses_names_with_spaces_and_parens() {
    let stat = ProcStat::parse(&line(42, "my (odd) name", 'S', 1, (250, 50), 9876)).unwrap();
    assert_eq!(stat.pid, 42);
    assert_eq!(stat.comm, "my (odd) name");
    assert_eq!(stat.state, 'S');
    assert_eq!(stat.ppid, 1);
    assert_eq!(stat.pgrp, 42);
    assert_eq!((stat.utime_ticks, stat.stime_ticks), (250, 50));
    assert_eq!(stat.start_ticks, 9876);
    let hz = clock_ticks_per_second();
    assert_eq!(stat.cpu_time(), Duration::from_secs(300) / hz as u32);
}

#[test]
fn zombies_and_dead_are_gone() {
    for (state, gone) in [
        ('R', false),
        ('S', false),
        ('D', false),
        ('Z', true),
        ('X', true),
    ] {
        let stat = ProcStat::parse(&line(7, "x", state, 1, (0, 0), 1)).unwrap();
        assert_eq!(stat.is_gone(), gone, "{state}");
    }
}

#[test]
fn garbage_is_an_error() {
    for bad in [
        "",
        "42",
        "42 (name",
        "42 name) S 1",
        ") 42 (",
        "x (name) S 1 2 3",
        "42 (name) S 1 2",
        "42 (name) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "42 (name) S -1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "42 (name) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 notanumber",
        "42 (name) S 99999999999 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
    ] {
        assert!(ProcStat::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn rss_from_status() {
    assert_eq!(
        parse_rss_bytes("Name:\tx\nVmRSS:\t  2048 kB\n").unwrap(),
        2048 * 1024
    );
    assert_eq!(parse_rss_bytes("Name:\tzombie\nState:\tZ\n").unwrap(), 0);
    assert!(parse_rss_bytes("VmRSS:\tlots kB\n").is_err());
    assert!(parse_rss_bytes("VmRSS:\t12 MB\n").is_err());
    assert!(parse_rss_bytes("VmRSS:\t99999999999999999999 kB\n").is_err());
    assert!(parse_rss_bytes("VmRSS:\t18446744073709551615 kB\n").is_err());
}

#[test]
fn user_hz_comes_from_the_kernel() {
    let hz = clock_ticks_per_second();
    // 100 on x86 and arm64 kernels, 1024 on some alpha; never absurd.
    assert!((1..=10_000).contains(&hz), "{hz}");
}

#[test]
fn this_process_is_alive_and_sampled() {
    let me = std::process::id();
    assert!(alive(me));
    let stat = ProcStat::read(me).unwrap();
    assert_eq!(stat.pid, me);
    assert_eq!(start_time(me), Some(stat.start_ticks));
    assert!(processes().any(|p| p.pid == me));
    let args = cmdline(me).unwrap();
    assert!(!args.is_empty());
    let s = sample(None).unwrap();
    assert!(s.rss_bytes > 0);
    assert!(sample(Some(me)).unwrap().rss_bytes > 0);
}

#[test]
fn start_time_names_one_process() {
    let mine = start_time(std::process::id()).unwrap();
    assert_eq!(start_time(std::process::id()), Some(mine));
    let mut other = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let theirs = start_time(other.id()).unwrap();
    assert!(theirs >= mine, "a later process starts later");
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn no_such_process() {
    assert!(!alive(u32::MAX));
    assert_eq!(start_time(u32::MAX), None);
    assert!(matches!(
        ProcStat::read(u32::MAX),
        Err(ProcError::Read { .. })
    ));
    assert!(sample(Some(u32::MAX)).is_err());
    assert!(cmdline(u32::MAX).is_err());
}

#[test]
fn a_reaped_child_is_not_alive_and_a_zombie_is_not_either() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = child.id();
    assert!(alive(pid));
    assert_eq!(ProcStat::read(pid).unwrap().ppid, std::process::id());
    child.kill().unwrap();
    // Killed but not yet reaped: a zombie, not alive. Poll: the kernel
    // makes it a zombie shortly after the signal.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ProcStat::read(pid).is_ok_and(|s| !s.is_gone()) {
        assert!(Instant::now() < deadline, "the killed child never exited");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!alive(pid));
    child.wait().unwrap();
    assert!(!alive(pid));
}

#[test]
fn cpu_percent_of_a_busy_loop_is_positive() {
    let a = sample(None).unwrap();
    let start = Instant::now();
    let mut x = 0u64;
    // Busy until the kernel has counted some CPU time (a tick or more),
    // bounded in case the machine starves this thread.
    let deadline = start + Duration::from_secs(20);
    while sample(None).unwrap().cpu_time <= a.cpu_time + Duration::from_millis(50)
        && Instant::now() < deadline
    {
        for _ in 0..100_000 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
    }
    std::hint::black_box(x);
    let b = sample(None).unwrap();
    assert!(b.cpu_percent_since(&a) > 0.0);
    assert_eq!(a.cpu_percent_since(&a), 0.0);
}

proptest! {
    /// Any command name the kernel may write (any bytes but NUL, up to 15
    /// of them, as UTF-8 here) parses back with the right fields.
    #[test]
    fn any_comm_round_trips(
        comm in "[^\u{0}]{0,15}",
        pid in 1u32..=4_194_304,
        ppid in 0u32..=4_194_304,
        state in prop::sample::select(vec!['R', 'S', 'D', 'Z', 'T', 't', 'X', 'I']),
        utime: u64,
        stime: u64,
        start: u64,
    ) {
        let stat = ProcStat::parse(&line(pid, &comm, state, ppid, (utime, stime), start)).unwrap();
        prop_assert_eq!(&stat.comm, &comm);
        prop_assert_eq!(stat.pid, pid);
        prop_assert_eq!(stat.ppid, ppid);
        prop_assert_eq!(stat.state, state);
        prop_assert_eq!((stat.utime_ticks, stat.stime_ticks), (utime, stime));
        prop_assert_eq!(stat.start_ticks, start);
        let _ = stat.cpu_time();
    }

    /// Garbage never panics.
    #[test]
    fn garbage_never_panics(text in any::<String>()) {
        let _ = ProcStat::parse(&text);
        let _ = parse_rss_bytes(&text);
    }

    /// Every prefix of a valid line short of field 22 is an error, not a
    /// panic or a wrong answer.
    #[test]
    fn truncated_lines_are_errors(comm in "[^\u{0}]{0,15}", cut in 0usize..200) {
        let full = line(42, &comm, 'S', 1, (1, 2), 3);
        let Some(prefix) = full.get(..cut.min(full.len())) else { return Ok(()) };
        let fields_after_name = prefix.rfind(')').map(|i| prefix[i + 1..].split_whitespace().count());
        if fields_after_name.is_none_or(|n| n < 20) {
            prop_assert!(ProcStat::parse(prefix).is_err(), "{:?}", prefix);
        }
    }
}
