//! Redis behind a network the lab makes in the kernel, as the cloud puts a
//! managed Redis behind a subnet and an NSG: a network namespace
//! `chaoslab-<id>` reached from the lab's own namespace over a veth pair
//! (`clh<id>` here, `clr<id>` there) with addresses of a private /29 that
//! no route of the machine uses (inside the namespace pair only, never an
//! outside address). Network faults are nftables rules in that namespace
//! (table `chaoslab-<id>`), where connection tracking is on from start-up —
//! a `ct state established,related accept` rule is there before any fault
//! — so flows opened before a fault are known as established:
//!
//! - deny-new: `ct state new drop` (a stateful NSG deny: what is open
//!   carries on, a new connect gets no answer);
//! - blackhole: every packet to and from Redis's port dropped, nothing
//!   closed;
//! - reset: every packet rejected with a TCP reset, and the open flows
//!   destroyed at once (`ss -K`, which sends the peers a reset; conntrack's
//!   entries flushed).
//!
//! Redis listens on three addresses of the namespace: `direct` (the
//! replicas connect to it, no userspace hop), `proxied` (the fault proxy's
//! upstream) and `admin` (the faults' admin connections; no rule matches
//! it) — plus a Unix socket for the lab's own admin connection, which no
//! network rule can cut. Latency and bandwidth faults keep the userspace
//! fault proxy: while one is active, a NAT rule in the lab's namespace
//! (table `chaoslab-<id>` there, hook output) sends new connections to
//! `direct` to the proxy's loopback listener instead ([`LabNetwork::route_via_proxy`]).
//!
//! Everything is made with `ip` (iproute2) and `nft` (nftables), each call
//! bounded by a timeout; [`LabNetwork::remove`] and [`LabNetwork::sweep`]
//! undo all of it by name.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::redis_server::find_executable;

/// How long one `ip`/`nft`/`ss` call may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the lab's network could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0} not found (install {1})")]
    Missing(&'static str, &'static str),
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
    #[error("no free private /29 for the lab's veth pair (every candidate overlaps a route)")]
    NoSubnet,
}

/// A network block in Redis's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    DenyNew,
    Blackhole,
    Reset,
}

/// The tools the network needs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ip: PathBuf,
    pub nft: PathBuf,
    pub ss: Option<PathBuf>,
    pub conntrack: Option<PathBuf>,
}

impl Tools {
    /// Finds `ip` and `nft` (and, optional, `ss` and `conntrack`) on PATH
    /// or in /usr/sbin and /sbin.
    pub fn find() -> Result<Self, NetError> {
        let find = |name: &str| {
            find_executable(Path::new(name)).or_else(|| {
                ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                    .iter()
                    .map(|d| Path::new(d).join(name))
                    .find(|p| find_executable(p).is_some())
            })
        };
        Ok(Self {
            ip: find("ip").ok_or(NetError::Missing("ip", "iproute2"))?,
            nft: find("nft").ok_or(NetError::Missing("nft", "nftables"))?,
            ss: find("ss"),
            conntrack: find("conntrack"),
        })
    }
}

/// The lab's namespace, veth pair and rules.
#[derive(Debug)]
pub struct LabNetwork {
    /// `chaoslab-<id>`: the namespace and both nftables tables.
    pub name: String,
    host_if: String,
    tools: Tools,
    /// The lab's end of the veth pair.
    pub host_addr: Ipv4Addr,
    /// Where replicas reach Redis.
    pub direct: Ipv4Addr,
    /// The fault proxy's upstream.
    pub proxied: Ipv4Addr,
    /// The faults' admin address (no rule matches it).
    pub admin: Ipv4Addr,
    /// Redis's port in the namespace.
    pub port: u16,
    rules: Mutex<Rules>,
}

#[derive(Debug, Default)]
struct Rules {
    blocks: BTreeMap<String, Block>,
    /// Latency/bandwidth faults routing through the proxy, and its port.
    via_proxy: BTreeMap<String, u16>,
    host_table: bool,
}

/// Runs a tool with an optional stdin, within [`TOOL_TIMEOUT`]; the tool
/// is reaped on every path.
fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, NetError> {
    let command = format!("{} {}", program.display(), args.join(" "));
    let failed = |message: String| NetError::Command {
        command: command.clone(),
        message,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let finished = finish(&mut child, stdin, TOOL_TIMEOUT);
    if finished.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let (status, stdout, stderr) = finished.map_err(failed)?;
    if status.success() {
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    } else {
        Err(failed(format!(
            "{status}: {}",
            String::from_utf8_lossy(&stderr).trim()
        )))
    }
}

/// Feeds `stdin` to `child` and drains its output while it runs — each
/// pipe on a thread of its own, so that a tool printing more than a pipe
/// holds, or not reading its input, cannot stall it — and waits for it at
/// most `timeout`. Its exit status and output; on an error the caller
/// kills and reaps it.
fn finish(
    child: &mut std::process::Child,
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<(std::process::ExitStatus, Vec<u8>, Vec<u8>), String> {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let feeder = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_string();
            Some(std::thread::spawn(move || pipe.write_all(text.as_bytes())))
        }
        _ => None,
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => break status,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            None => return Err(format!("no answer within {timeout:?}")),
        }
    };
    // The tool has ended: its pipes are closed, so the threads end too. A
    // write it cut short (it left without reading all its input) says
    // nothing its exit status and its stderr do not.
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    let output = |h: std::thread::JoinHandle<Vec<u8>>| h.join().unwrap_or_default();
    Ok((status, output(stdout), output(stderr)))
}

/// Candidate /29 networks (first address), most private first: 10.200.0.0
/// – 10.249.255.248, then 169.254.x.y (link-local, never 169.254.169.x).
fn candidates(id: &str) -> impl Iterator<Item = Ipv4Addr> {
    let seed = u32::from_str_radix(id, 16).unwrap_or(0);
    (0..64u32).map(move |i| {
        let h = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9));
        if i < 48 {
            Ipv4Addr::new(
                10,
                200 + (h % 50) as u8,
                (h >> 8) as u8,
                ((h >> 16) as u8 & 0x1f) << 3,
            )
        } else {
            let third = match 1 + (h >> 8) % 250 {
                169 => 170,
                x => x,
            };
            Ipv4Addr::new(169, 254, third as u8, ((h >> 16) as u8 & 0x1f) << 3)
        }
    })
}

/// Every IPv4 network the machine routes or holds an address in (as
/// `ip -4 route show table all` and `ip -4 addr` print them), but default.
fn used_networks(ip: &Path) -> Result<Vec<(Ipv4Addr, u8)>, NetError> {
    let mut text = run(ip, &["-4", "-o", "route", "show", "table", "all"], None)?;
    text.push_str(&run(ip, &["-4", "-o", "addr", "show"], None)?);
    Ok(text
        .split_whitespace()
        .filter_map(|token| {
            let (addr, len) = match token.split_once('/') {
                Some((a, l)) => (a, l.parse::<u8>().ok()?),
                None => (token, 32),
            };
            let addr: Ipv4Addr = addr.parse().ok()?;
            (len > 0 && len <= 32).then_some((addr, len))
        })
        .collect())
}

fn overlaps(a: Ipv4Addr, a_len: u8, b: Ipv4Addr, b_len: u8) -> bool {
    let len = a_len.min(b_len);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a) & mask == u32::from(b) & mask
}

impl LabNetwork {
    /// Makes the namespace, the veth pair, the addresses and the rules
    /// table (conntrack on); on any failure, removes what it made.
    pub fn create(id: &str, name: &str, port: u16) -> Result<Self, NetError> {
        let tools = Tools::find()?;
        let used = used_networks(&tools.ip)?;
        let base = candidates(id)
            .find(|c| !used.iter().any(|(n, l)| overlaps(*c, 29, *n, *l)))
            .ok_or(NetError::NoSubnet)?;
        let at = |i: u8| {
            let o = base.octets();
            Ipv4Addr::new(o[0], o[1], o[2], o[3] + i)
        };
        let network = Self {
            name: name.to_string(),
            host_if: format!("clh{id}"),
            tools,
            host_addr: at(1),
            direct: at(2),
            proxied: at(3),
            admin: at(4),
            port,
            rules: Mutex::new(Rules::default()),
        };
        if let Err(e) = network.build(id) {
            network.remove();
            return Err(e);
        }
        Ok(network)
    }

    fn build(&self, id: &str) -> Result<(), NetError> {
        let ip = &self.tools.ip;
        let ns = self.name.as_str();
        let ns_if = format!("clr{id}");
        let host = format!("{}/29", self.host_addr);
        run(ip, &["netns", "add", ns], None)?;
        run(
            ip,
            &[
                "link",
                "add",
                &self.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns_if,
                "netns",
                ns,
            ],
            None,
        )?;
        run(ip, &["addr", "add", &host, "dev", &self.host_if], None)?;
        run(ip, &["link", "set", &self.host_if, "up"], None)?;
        for addr in [self.direct, self.proxied, self.admin] {
            let cidr = format!("{addr}/29");
            run(ip, &["-n", ns, "addr", "add", &cidr, "dev", &ns_if], None)?;
        }
        run(ip, &["-n", ns, "link", "set", &ns_if, "up"], None)?;
        run(ip, &["-n", ns, "link", "set", "lo", "up"], None)?;
        // Conntrack from the start: the established rule is the table's
        // first use of connection state.
        let table = format!(
            "table inet {ns} {{\n\
             \tchain faults_in {{\n\t}}\n\
             \tchain faults_out {{\n\t}}\n\
             \tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\
             \t\tjump faults_in\n\t\tct state established,related accept\n\t}}\n\
             \tchain output {{\n\t\ttype filter hook output priority filter; policy accept;\n\
             \t\tjump faults_out\n\t}}\n}}\n"
        );
        self.nft_in_ns(&["-f", "-"], Some(&table))?;
        Ok(())
    }

    fn nft_in_ns(&self, args: &[&str], stdin: Option<&str>) -> Result<String, NetError> {
        let nft = self.tools.nft.to_string_lossy().into_owned();
        let mut full = vec!["netns", "exec", self.name.as_str(), nft.as_str()];
        full.extend_from_slice(args);
        run(&self.tools.ip, &full, stdin)
    }

    /// The addresses a fault rule matches (never `admin`).
    fn matched(&self) -> String {
        format!("{{ {}, {} }}", self.direct, self.proxied)
    }

    /// Rewrites the fault chains from the active blocks.
    fn apply_blocks(&self, blocks: &BTreeMap<String, Block>) -> Result<(), NetError> {
        let (ns, port, addrs) = (&self.name, self.port, self.matched());
        let mut script =
            format!("flush chain inet {ns} faults_in\nflush chain inet {ns} faults_out\n");
        let mut modes: Vec<Block> = blocks.values().copied().collect();
        modes.sort_by_key(|b| *b as u8);
        modes.dedup();
        for block in modes {
            let rule = match block {
                Block::DenyNew => {
                    format!(
                        "add rule inet {ns} faults_in ip daddr {addrs} tcp dport {port} ct state new drop\n"
                    )
                }
                Block::Blackhole => format!(
                    "add rule inet {ns} faults_in ip daddr {addrs} tcp dport {port} drop\n\
                     add rule inet {ns} faults_out ip saddr {addrs} tcp sport {port} drop\n"
                ),
                Block::Reset => format!(
                    "add rule inet {ns} faults_in ip daddr {addrs} tcp dport {port} reject with tcp reset\n"
                ),
            };
            script.push_str(&rule);
        }
        self.nft_in_ns(&["-f", "-"], Some(&script)).map(|_| ())
    }

    /// Adds fault `id`'s block; a reset also destroys the open flows.
    pub fn block(&self, id: &str, block: Block) -> Result<(), NetError> {
        let mut rules = crate::events::lock(&self.rules);
        rules.blocks.insert(id.to_string(), block);
        if let Err(e) = self.apply_blocks(&rules.blocks) {
            rules.blocks.remove(id);
            return Err(e);
        }
        drop(rules);
        if block == Block::Reset {
            self.destroy_flows();
        }
        Ok(())
    }

    /// Destroys Redis's open TCP flows on the matched addresses (each peer
    /// gets a reset) and forgets them in conntrack.
    fn destroy_flows(&self) {
        if let Some(ss) = &self.tools.ss {
            let ss = ss.to_string_lossy().into_owned();
            for addr in [self.direct, self.proxied] {
                let src = format!("{addr}:{}", self.port);
                let args = [
                    "netns",
                    "exec",
                    &self.name,
                    &ss,
                    "-K",
                    "-t",
                    "-n",
                    "state",
                    "connected",
                    "src",
                    &src,
                ];
                if let Err(e) = run(&self.tools.ip, &args, None) {
                    tracing::warn!(error = %e, "cannot destroy Redis's flows");
                }
            }
        }
        if let Some(conntrack) = &self.tools.conntrack {
            let conntrack = conntrack.to_string_lossy().into_owned();
            let port = self.port.to_string();
            let args = [
                "netns",
                "exec",
                &self.name,
                &conntrack,
                "-D",
                "-p",
                "tcp",
                "--orig-port-dst",
                &port,
            ];
            // Exits 1 when there was nothing to delete.
            let _ = run(&self.tools.ip, &args, None);
        }
    }

    /// Removes fault `id`'s block (nothing when it had none).
    pub fn unblock(&self, id: &str) -> Result<(), NetError> {
        let mut rules = crate::events::lock(&self.rules);
        if rules.blocks.remove(id).is_none() {
            return Ok(());
        }
        self.apply_blocks(&rules.blocks)
    }

    /// While fault `id` is active (`proxy_port` = Some), new connections
    /// of the replicas to `direct` go to the fault proxy on
    /// 127.0.0.1:`proxy_port` (a DNAT rule in the lab's namespace); with
    /// None, fault `id` no longer needs it. The table stays until the lab
    /// stops so flows routed through it keep their translation.
    pub fn route_via_proxy(&self, id: &str, proxy_port: Option<u16>) -> Result<(), NetError> {
        let mut rules = crate::events::lock(&self.rules);
        let before = rules.via_proxy.clone();
        match proxy_port {
            Some(port) => rules.via_proxy.insert(id.to_string(), port),
            None => rules.via_proxy.remove(id),
        };
        let (ns, direct, port) = (&self.name, self.direct, self.port);
        let mut script = String::new();
        if !rules.host_table {
            script.push_str(&format!(
                "table ip {ns} {{\n\tchain route_out {{\n\t\ttype nat hook output priority -100; policy accept;\n\t}}\n}}\n"
            ));
        }
        script.push_str(&format!("flush chain ip {ns} route_out\n"));
        if let Some(proxy) = rules.via_proxy.values().next() {
            script.push_str(&format!(
                "add rule ip {ns} route_out ip daddr {direct} tcp dport {port} dnat to 127.0.0.1:{proxy}\n"
            ));
        }
        match run(&self.tools.nft, &["-f", "-"], Some(&script)) {
            Ok(_) => {
                rules.host_table = true;
                Ok(())
            }
            Err(e) => {
                rules.via_proxy = before;
                Err(e)
            }
        }
    }

    /// Whether replicas' new connections go through the proxy now.
    pub fn routed_via_proxy(&self) -> bool {
        !crate::events::lock(&self.rules).via_proxy.is_empty()
    }

    /// Removes the tables, the veth pair and the namespace (Redis must be
    /// stopped first); idempotent, never fails.
    pub fn remove(&self) {
        sweep_with(&self.tools, &self.name, &self.host_if);
    }

    /// Removes what a lab named `name` (id `id`) left in the kernel's
    /// network (after a SIGKILL): whether anything was found.
    pub fn sweep(id: &str, name: &str) -> bool {
        match Tools::find() {
            Ok(tools) => sweep_with(&tools, name, &format!("clh{id}")),
            Err(_) => false,
        }
    }
}

/// The names (`chaoslab-<id>`) of the labs' network objects: namespaces,
/// nftables tables of this namespace and host ends of veth pairs
/// (`clh<id>`).
pub fn lab_names() -> BTreeSet<String> {
    let Ok(tools) = Tools::find() else {
        return BTreeSet::new();
    };
    let namespaces = run(&tools.ip, &["netns", "list"], None).unwrap_or_default();
    let tables = run(&tools.nft, &["list", "tables"], None).unwrap_or_default();
    let links = run(&tools.ip, &["-o", "link", "show"], None).unwrap_or_default();
    names_in_listings(&namespaces, &tables, &links)
}

/// [`lab_names`] from the text of `ip netns list`, `nft list tables` and
/// `ip -o link show`.
fn names_in_listings(namespaces: &str, tables: &str, links: &str) -> BTreeSet<String> {
    let namespaces = namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next());
    // "table ip chaoslab-0855e46c"
    let tables = tables.lines().filter_map(|l| l.split_whitespace().nth(2));
    // "341: clh0855e46c@if2: <BROADCAST,…"
    let links = links.lines().filter_map(|l| {
        let name = l.split(':').nth(1)?.trim();
        let name = name.split('@').next()?;
        Some(format!("chaoslab-{}", name.strip_prefix("clh")?))
    });
    namespaces
        .map(str::to_string)
        .chain(tables.map(str::to_string))
        .chain(links)
        .filter(|name| crate::kernel_name::id_of_kernel_name(name).is_some())
        .collect()
}

/// Whether any process runs in the network namespace `name`.
pub fn has_processes(name: &str) -> bool {
    let Ok(tools) = Tools::find() else {
        return false;
    };
    run(&tools.ip, &["netns", "pids", name], None).is_ok_and(|pids| !pids.trim().is_empty())
}

fn sweep_with(tools: &Tools, name: &str, host_if: &str) -> bool {
    let mut found = false;
    let ip = &tools.ip;
    if run(&tools.nft, &["list", "table", "ip", name], None).is_ok() {
        found = true;
        let _ = run(&tools.nft, &["delete", "table", "ip", name], None);
    }
    let namespaces = run(ip, &["netns", "list"], None).unwrap_or_default();
    if namespaces
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
    {
        found = true;
        // Whatever still runs in the lab's namespace is the lab's.
        let pids = run(ip, &["netns", "pids", name], None).unwrap_or_default();
        for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            crate::spawner::signal(pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !run(ip, &["netns", "pids", name], None)
            .unwrap_or_default()
            .trim()
            .is_empty()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = run(ip, &["netns", "del", name], None) {
            tracing::warn!(error = %e, "cannot remove the lab's network namespace");
        }
    }
    if run(ip, &["link", "show", "dev", host_if], None).is_ok() {
        found = true;
        let _ = run(ip, &["link", "del", "dev", host_if], None);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_s_output_beyond_a_pipe_s_capacity_comes_whole() {
        // 256 KiB on stdout and stderr each: more than a pipe holds, so a
        // tool blocks unless both are read while it runs.
        let script = "head -c 262144 /dev/zero | tr '\\0' a; head -c 262144 /dev/zero >&2";
        let out = run(Path::new("/bin/sh"), &["-c", script], None).expect("the tool ends");
        assert_eq!(out.len(), 262_144);
        assert!(out.bytes().all(|b| b == b'a'));
    }

    #[test]
    fn a_tool_that_fails_says_why_and_is_reaped_even_before_reading_its_input() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pid_file = dir.path().join("pid");
        // It leaves at once without reading the megabyte it is given: the
        // write fails (a broken pipe); the tool must still be waited for.
        let script = format!("echo $$ > {}; echo nope >&2; exit 3", pid_file.display());
        let input = "x".repeat(1 << 20);
        let error = run(Path::new("/bin/sh"), &["-c", &script], Some(&input))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("nope") && error.contains("exit status: 3"),
            "{error}"
        );
        let pid = std::fs::read_to_string(&pid_file).expect("the tool ran");
        let proc_entry = format!("/proc/{}", pid.trim());
        assert!(!Path::new(&proc_entry).exists(), "{proc_entry}: not reaped");
    }

    #[test]
    fn a_tool_that_does_not_answer_is_given_up_on_at_the_timeout() {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 30"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh starts");
        let started = Instant::now();
        let error = finish(&mut child, Some("input"), Duration::from_millis(200)).unwrap_err();
        assert!(error.contains("no answer"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn lab_names_come_from_namespaces_tables_and_veth_ends() {
        let names = names_in_listings(
            "chaoslab-0855e46c (id: 1)\nother\nchaoslab-zz\n",
            "table ip chaoslab-11112222\ntable inet filter\n",
            "1: lo: <LOOPBACK,UP> mtu 65536\n341: clh33334444@if2: <BROADCAST> mtu 1500\n7: clhx@if3: <UP>\n",
        );
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "chaoslab-0855e46c",
                "chaoslab-11112222",
                "chaoslab-33334444"
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn listing_parser_never_panics_and_yields_only_kernel_names(
            a in "\\PC*", b in "\\PC*", c in "(\\PC|\n|:|@)*",
        ) {
            for name in names_in_listings(&a, &b, &c) {
                proptest::prop_assert!(crate::kernel_name::id_of_kernel_name(&name).is_some());
            }
        }
    }

    #[test]
    fn candidates_are_private_slash_29s_and_avoid_used_routes() {
        let all: Vec<Ipv4Addr> = candidates("0badcafe").collect();
        assert_eq!(all.len(), 64);
        for c in &all {
            let o = c.octets();
            assert_eq!(o[3] % 8, 0, "{c} starts a /29");
            assert!(
                (o[0] == 10 && (200..250).contains(&o[1]))
                    || (o[0] == 169 && o[1] == 254 && o[2] != 169),
                "{c}"
            );
        }
        assert!(overlaps(
            Ipv4Addr::new(10, 200, 1, 8),
            29,
            Ipv4Addr::new(10, 0, 0, 0),
            8
        ));
        assert!(!overlaps(
            Ipv4Addr::new(10, 200, 1, 8),
            29,
            Ipv4Addr::new(10, 200, 1, 16),
            29
        ));
        assert!(overlaps(
            Ipv4Addr::new(10, 200, 1, 8),
            29,
            Ipv4Addr::new(10, 200, 1, 9),
            32
        ));
    }
}
